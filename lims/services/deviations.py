"""Deviations: departures from the process on a culture or a lot.

Bench rules open them automatically; a failing QC result opens one of kind `oos`
(out of specification); people open them by hand. Closing one is a QA signature.
An OOS deviation is closed with its result invalidated (a lab error is proven) or
confirmed; only a confirmed failure of a waivable criterion may be waived, at the
treating physician's documented request, and then for that result only.
"""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, col, select

from lims import audit, site
from lims.auth import Actor
from lims.domain import ids, spec
from lims.domain.spec import OOS, Criterion
from lims.domain.states import DEVIATION, LOT, DeviationSeverity, OOSOutcome
from lims.errors import BadInput, NotFound, RuleViolation, shown
from lims.models import (
    DEVIATION_SEVERITIES,
    LONG_TEXT_MAX,
    Aspirate,
    AuditEntry,
    Culture,
    Deviation,
    Lot,
    Passage,
    QCResult,
    Signature,
)
from lims.services import lookup, signatures, verdicts
from lims.services.transitions import change_status
from lims.timeutil import json_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.deviations import DeviationView


def view(
    deviation: Deviation,
    subject: str,
    passage_code: str | None,
    closing: Signature | None = None,
) -> DeviationView:
    assert deviation.id is not None
    return from_record(
        DeviationView,
        deviation,
        deviation_id=deviation.id,
        subject=subject,
        passage_id=passage_code,
        signed_by=None if closing is None else f"{closing.full_name} ({closing.username})",
    )


def _closing_signatures(session: Session, deviations: list[Deviation]) -> dict[int, Signature]:
    """The signature that closed each closed deviation, by deviation id."""
    closed = {d.id for d in deviations if d.closed_at is not None}
    if not closed:
        return {}
    found = session.exec(select(Signature).where(col(Signature.deviation_id).in_(closed))).all()
    return {signature.deviation_id: signature for signature in found if signature.deviation_id}


def _codes(session: Session, deviations: list[Deviation]) -> list[tuple[str, str | None]]:
    """Each deviation's subject (its lot's or culture's code, or else its aspirate's DIN) and
    its passage's code, if any."""
    dins = dict(
        session.exec(
            select(Aspirate.id, Aspirate.din).where(
                col(Aspirate.id).in_({d.aspirate_id for d in deviations if d.aspirate_id})
            )
        ).all()
    )
    culture_codes = dict(
        session.exec(
            select(Culture.id, Culture.code).where(
                col(Culture.id).in_({d.culture_id for d in deviations if d.culture_id})
            )
        ).all()
    )
    lot_codes = dict(
        session.exec(
            select(Lot.id, Lot.code).where(
                col(Lot.id).in_({d.lot_id for d in deviations if d.lot_id})
            )
        ).all()
    )
    passage_codes = dict(
        session.exec(
            select(Passage.id, Passage.code).where(
                col(Passage.id).in_({d.passage_id for d in deviations if d.passage_id})
            )
        ).all()
    )
    return [
        (
            lot_codes[d.lot_id]
            if d.lot_id
            else culture_codes[d.culture_id]
            if d.culture_id
            else dins[d.aspirate_id],
            passage_codes.get(d.passage_id),
        )
        for d in deviations
    ]


def _views(session: Session, deviations: list[Deviation]) -> list[DeviationView]:
    codes = _codes(session, deviations)
    closings = _closing_signatures(session, deviations)
    return [
        view(d, *code, closings.get(d.id) if d.id is not None else None)
        for d, code in zip(deviations, codes, strict=True)
    ]


def closing_hash(
    deviation: Deviation,
    subject: str,
    passage_code: str | None,
    *,
    resolution: str,
    waived: bool,
    outcome: str | None = None,
    physician_request: str | None = None,
) -> str:
    """The SHA-256 a closing signature stores: the deviation as it stood, and how it is closed.

    The record is written out key by key, not taken from the deviation's `--json`: a new
    output key must not change what a signature covers, and the hashes already stored were
    made from exactly these keys and values, as canonical JSON (keys sorted). An OOS
    deviation's outcome and physician's request are added only where there are some, so
    those hashes still come out the same.
    """
    record = {
        "deviation_id": deviation.id,
        "subject": subject,
        "kind": deviation.kind,
        "criterion": deviation.criterion,
        "description": deviation.description,
        "status": deviation.status,
        "passage_id": passage_code,
        "opened_at": json_time(deviation.opened_at),
        "opened_by": deviation.opened_by,
        "closed_at": json_time(deviation.closed_at),
        "closed_by": deviation.closed_by,
        "resolution": resolution,
        "waived": waived,
    }
    if outcome is not None:
        record["outcome"] = outcome
    if deviation.severity != DeviationSeverity.MAJOR:  # what every deviation was before 0009
        record["severity"] = deviation.severity
    if physician_request is not None:
        record["physician_request"] = physician_request
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def on_culture(session: Session, culture: Culture) -> list[DeviationView]:
    deviations = session.exec(
        select(Deviation).where(col(Deviation.culture_id) == culture.id).order_by(col(Deviation.id))
    ).all()
    return _views(session, list(deviations))


def on_lot(session: Session, lot: Lot) -> list[DeviationView]:
    """Deviations on the lot and on the culture it came from."""
    deviations = session.exec(
        select(Deviation)
        .where(
            (col(Deviation.lot_id) == lot.id)
            | (col(Deviation.culture_id) == lot.culture_id)
            | (col(Deviation.aspirate_id) == lot.aspirate_id)
        )
        .order_by(col(Deviation.id))
    ).all()
    return _views(session, list(deviations))


def list_deviations(uow: UnitOfWork, *, open_only: bool = False) -> list[DeviationView]:
    session = uow.session
    uow.require("read_records")
    query = select(Deviation).order_by(col(Deviation.id))
    if open_only:
        query = query.where(col(Deviation.status).in_(DEVIATION.pending_states()))
    return _views(session, list(session.exec(query).all()))


def _open(
    session: Session, actor: Actor, deviation: Deviation, subject: str, passage: str | None
) -> DeviationView:
    """Save a deviation as opened now by `actor`, on the record; it is numbered on saving."""
    deviation.opened_at, deviation.opened_by = utcnow(), actor.username
    session.add(deviation)
    session.flush()
    audit.record_about(
        session,
        ("deviation", str(deviation.id)),
        "deviation.open",
        by=actor.username,
        new={
            "subject": subject,
            "passage": passage,
            "kind": deviation.kind,
            "criterion": deviation.criterion,
            "description": deviation.description,
            "status": deviation.status,
            "result_id": deviation.result_id,
            "severity": deviation.severity,
            **({} if deviation.event_id is None else {"event_id": deviation.event_id}),
        },
    )
    return view(deviation, subject, passage)


def open_on_lot(
    session: Session,
    actor: Actor,
    lot: Lot,
    *,
    kind: str,
    criterion: str | None,
    result_id: int | None,
    description: str,
    severity: DeviationSeverity = DeviationSeverity.MAJOR,
    event_id: int | None = None,
) -> DeviationView:
    """Open a deviation on a lot, in the transaction of the step that showed it (a QC
    result, or the follow-up event `event_id`)."""
    deviation = Deviation(
        lot_id=lot.id,
        kind=kind,
        criterion=criterion,
        result_id=result_id,
        description=description,
        severity=severity,
        event_id=event_id,
    )
    return _open(session, actor, deviation, lot.code, None)


def open_on_culture(
    session: Session,
    actor: Actor,
    *,
    culture_id: int,
    culture_code: str,
    passage_id: int | None,
    passage_code: str | None,
    kind: str,
    description: str,
) -> DeviationView:
    """Open a deviation on a culture, in the transaction of the step that showed it."""
    deviation = Deviation(
        culture_id=culture_id, passage_id=passage_id, kind=kind, description=description
    )
    return _open(session, actor, deviation, culture_code, passage_code)


def open_on_aspirate(
    session: Session, actor: Actor, aspirate: Aspirate, *, kind: str, description: str
) -> DeviationView:
    """Open a deviation on an aspirate alone (a nonconforming receipt), in the step's
    transaction; it names the aspirate by its DIN."""
    deviation = Deviation(aspirate_id=aspirate.id, kind=kind, description=description)
    return _open(session, actor, deviation, aspirate.din, None)


def on_patient(session: Session, patient_id: int) -> list[DeviationView]:
    """Deviations on any of the patient's aspirates, cultures and lots."""
    aspirates = select(Aspirate.id).where(col(Aspirate.patient_id) == patient_id)
    cultures = select(Culture.id).where(col(Culture.aspirate_id).in_(aspirates))
    lots = select(Lot.id).where(col(Lot.patient_id) == patient_id)
    deviations = session.exec(
        select(Deviation)
        .where(
            col(Deviation.aspirate_id).in_(aspirates)
            | col(Deviation.culture_id).in_(cultures)
            | col(Deviation.lot_id).in_(lots)
        )
        .order_by(col(Deviation.id))
    ).all()
    return _views(session, list(deviations))


def kinds_by_passage(session: Session, culture_id: int) -> set[tuple[int | None, str]]:
    """(passage id, kind) of every deviation on a culture, open or closed."""
    rows = session.exec(
        select(Deviation.passage_id, Deviation.kind).where(col(Deviation.culture_id) == culture_id)
    ).all()
    return {(passage_id, kind) for passage_id, kind in rows}


def open_deviation(
    uow: UnitOfWork,
    *,
    lot: str | None = None,
    culture: str | None = None,
    description: str,
    criterion: str | None = None,
    severity: str | None = None,
) -> DeviationView:
    """Open a deviation by hand on a lot or a culture, optionally tied to a release criterion."""

    session = uow.session
    actor = uow.require("record_bench_work")
    graded = DeviationSeverity(
        choice("severity", severity, DEVIATION_SEVERITIES)
        if severity is not None
        else DeviationSeverity.MAJOR
    )
    if (lot is None) == (culture is None):
        raise BadInput("lot/culture", "give exactly one: --lot LOT or --culture CULTURE")
    free_text("description", description, max_length=LONG_TEXT_MAX, multiline=True)
    if criterion is not None and lot is None:
        raise BadInput("criterion", "a criterion belongs to a lot's release: use --lot")
    if lot is not None:
        found_lot = lookup.lot(session, lot)
        judged_by = site.specification(session, found_lot.spec_version)
        if criterion is not None and criterion not in judged_by:
            raise BadInput(
                "criterion",
                f"must be one of {', '.join(judged_by)} (got {shown(criterion)})",
            )
        deviation = Deviation(
            lot_id=found_lot.id,
            criterion=criterion,
            kind="manual",
            description=description,
            severity=graded,
        )
        subject = found_lot.code
    else:
        assert culture is not None
        found_culture = lookup.culture(session, culture)
        deviation = Deviation(
            culture_id=found_culture.id, kind="manual", description=description, severity=graded
        )
        subject = found_culture.code
    return _open(session, actor, deviation, subject, None)


def close_deviation(
    uow: UnitOfWork,
    *,
    deviation_id: str | int,
    resolution: str,
    password: str,
    invalidate: bool = False,
    confirm: bool = False,
    waive: bool = False,
    physician_request: str | None = None,
) -> DeviationView:
    """QA closes a deviation with a signature.

    An out-of-specification deviation is closed with exactly one of `invalidate` (a lab
    error is proven: the result no longer counts, the investigation's results do) or
    `confirm` (the result stands); `waive` accepts a confirmed failure of a waivable
    criterion at the treating physician's request, named in `physician_request`.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    number = ids.read_deviation_id(deviation_id)
    free_text("resolution", resolution, max_length=LONG_TEXT_MAX, multiline=True)
    _check_closing_options(invalidate, confirm, waive, physician_request)
    deviation = session.get(Deviation, number)
    if deviation is None:
        raise NotFound(f"no deviation {number}")
    outcome = _outcome(deviation, invalidate=invalidate, confirm=confirm)
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"closing deviation {number}"
    )
    DEVIATION.check("close", code=str(number), status=deviation.status)
    [(subject, passage)] = _codes(session, [deviation])
    lot = session.get(Lot, deviation.lot_id) if deviation.lot_id is not None else None
    if waive:
        # Only an OOS deviation is closed with --waive, and it has both.
        assert lot is not None
        assert deviation.criterion is not None
        if not site.specification(session, lot.spec_version)[deviation.criterion].waivable:
            raise RuleViolation(f"{deviation.criterion} can never be waived")
        LOT.check("waive", code=lot.code, status=lot.status)
        _not_its_releaser(session, lot, actor.username)
    meaning = _closing_meaning(outcome, waive)
    record_hash = closing_hash(
        deviation,
        subject,
        passage,
        resolution=resolution,
        waived=waive,
        outcome=outcome,
        physician_request=physician_request,
    )
    closing = signatures.sign(
        session, deviation, signer=signer, record_hash=record_hash, meaning=meaning
    )
    deviation.closed_at = utcnow()
    deviation.closed_by = actor.username
    deviation.resolution = resolution
    deviation.outcome = outcome
    deviation.waived = waive
    deviation.waived_result_id = deviation.result_id if waive else None
    deviation.physician_request = physician_request
    change_status(
        session,
        DEVIATION,
        deviation,
        "close",
        by=actor.username,
        new={
            "resolution": resolution,
            "outcome": outcome,
            "waived": waive,
            "waived_result_id": deviation.waived_result_id,
            "physician_request": physician_request,
            "meaning": meaning,
            "closed_by": actor.username,
        },
    )
    session.flush()
    if outcome == OOSOutcome.INVALIDATED:
        assert lot is not None
        _investigation_results_judged(session, actor, lot, deviation)
    return view(deviation, subject, passage, closing)


def _not_its_releaser(session: Session, lot: Lot, username: str) -> None:
    """A failure found after release is waived by another QA user than the one who released
    the lot: a waiver and a release are never one person's alone."""
    released_by = session.exec(
        select(AuditEntry.username).where(
            col(AuditEntry.entity_type) == "lot",
            col(AuditEntry.entity_id) == lot.code,
            col(AuditEntry.action) == LOT.audit_action("release"),
        )
    ).first()
    if released_by == username:
        raise RuleViolation(
            f"{username} released {lot.code}; another QA reviewer must waive a failure of it"
        )


def _check_closing_options(
    invalidate: bool, confirm: bool, waive: bool, physician_request: str | None
) -> None:
    if invalidate and confirm:
        raise BadInput("invalidate/confirm", "give one of them, not both")
    if waive and not confirm:
        raise BadInput(
            "waive", "only with --confirm: a waiver accepts a failure confirmed to be true"
        )
    if physician_request is not None:
        if not waive:
            raise BadInput("physician-request", "only with --waive")
        free_text("physician-request", physician_request, max_length=LONG_TEXT_MAX, multiline=True)
    elif waive:
        raise BadInput(
            "physician-request",
            "required with --waive: the treating physician's documented request to use the "
            "product despite the failure",
        )


def _outcome(deviation: Deviation, *, invalidate: bool, confirm: bool) -> str | None:
    """How the closing settles an OOS deviation's result; None for any other deviation."""
    if deviation.kind != OOS:
        if invalidate or confirm:
            raise RuleViolation(
                f"deviation {deviation.id} is not an out-of-specification result: "
                "close it without --invalidate, --confirm or --waive"
            )
        return None
    if not (invalidate or confirm):
        raise BadInput(
            "invalidate/confirm",
            f"give one: deviation {deviation.id} is an out-of-specification result, "
            "invalidated (a lab error is proven) or confirmed",
        )
    return OOSOutcome.INVALIDATED if invalidate else OOSOutcome.CONFIRMED


def _closing_meaning(outcome: str | None, waive: bool) -> str:
    if outcome is None:
        return "deviation closed"
    if waive:
        return "deviation closed, result confirmed, failure waived at the physician's request"
    return f"deviation closed, result {outcome}"


def _investigation_results_judged(
    session: Session, actor: Actor, lot: Lot, closed: Deviation
) -> None:
    """Once an OOS result is invalidated its investigation's results count, each of them:
    one that fails is out of specification in its own right and opens its own deviation,
    so no failing result is left behind a later passing one."""
    assert closed.criterion is not None
    criterion = site.specification(session, lot.spec_version)[closed.criterion]
    investigated = session.exec(
        select(QCResult)
        .where(col(QCResult.investigation_id) == closed.id)
        .order_by(col(QCResult.id))
    ).all()
    # A failure of a released lot is critical: its product may be with patients.
    severity = (
        DeviationSeverity.CRITICAL if LOT.with_patients(lot.status) else DeviationSeverity.MAJOR
    )
    for result in investigated:
        if not spec.passes(criterion, verdicts.recorded(result)):
            open_out_of_specification(session, actor, lot, result, criterion, severity)


def open_out_of_specification(
    session: Session,
    actor: Actor,
    lot: Lot,
    result: QCResult,
    criterion: Criterion,
    severity: DeviationSeverity = DeviationSeverity.MAJOR,
) -> None:
    """An OOS deviation on the lot for a failing result, in the transaction that showed it;
    a censored one says why its value does not pass (`below 10 may still be above 7`)."""
    unit = f" {criterion.unit}" if criterion.unit else ""
    doubt = spec.doubt(criterion, verdicts.recorded(result))
    open_on_lot(
        session,
        actor,
        lot,
        kind=OOS,
        criterion=result.test,
        result_id=result.id,
        description=(
            f"{result.test} out of specification: {result.value}{unit} "
            f"(spec {criterion.describe()})" + (f": {doubt}" if doubt else "")
        ),
        severity=severity,
    )
