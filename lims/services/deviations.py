"""Deviations: departures from the process on a culture or a lot.

Bench rules open them automatically; people open them by hand. Closing one is
a QA signature; closing with a waiver lets release proceed past the failed
criterion it names (never a safety test), for the result it was closed on.
"""

from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, col, select

from lims import audit, site
from lims.auth import Actor
from lims.domain import ids
from lims.domain.states import DEVIATION, LOT
from lims.errors import BadInput, NotFound, RuleViolation, shown
from lims.models import LONG_TEXT_MAX, Culture, Deviation, Lot, Passage
from lims.services import lookup, qc, signatures
from lims.services.transitions import change_status
from lims.timeutil import json_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views import from_record
from lims.views.deviations import DeviationView


def view(deviation: Deviation, subject: str, passage_code: str | None) -> DeviationView:
    assert deviation.id is not None
    return from_record(
        DeviationView,
        deviation,
        deviation_id=deviation.id,
        subject=subject,
        passage_id=passage_code,
    )


def _codes(session: Session, deviations: list[Deviation]) -> list[tuple[str, str | None]]:
    """Each deviation's subject (its lot's or culture's code) and its passage's code, if any."""
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
            lot_codes[d.lot_id] if d.lot_id else culture_codes[d.culture_id],
            passage_codes.get(d.passage_id),
        )
        for d in deviations
    ]


def _views(session: Session, deviations: list[Deviation]) -> list[DeviationView]:
    codes = _codes(session, deviations)
    return [view(d, *code) for d, code in zip(deviations, codes, strict=True)]


def closing_hash(
    deviation: Deviation, subject: str, passage_code: str | None, *, resolution: str, waived: bool
) -> str:
    """The SHA-256 a closing signature stores: the deviation as it stood, and how it is closed.

    The record is written out key by key, not taken from the deviation's `--json`: a new
    output key must not change what a signature covers, and the hashes already stored were
    made from exactly these keys and values, as canonical JSON (keys sorted).
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
        .where((col(Deviation.lot_id) == lot.id) | (col(Deviation.culture_id) == lot.culture_id))
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
        },
    )
    return view(deviation, subject, passage)


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
) -> DeviationView:
    """Open a deviation by hand on a lot or a culture, optionally tied to a release criterion."""

    session = uow.session
    actor = uow.require("record_bench_work")
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
            lot_id=found_lot.id, criterion=criterion, kind="manual", description=description
        )
        subject = found_lot.code
    else:
        assert culture is not None
        found_culture = lookup.culture(session, culture)
        deviation = Deviation(culture_id=found_culture.id, kind="manual", description=description)
        subject = found_culture.code
    return _open(session, actor, deviation, subject, None)


def close_deviation(
    uow: UnitOfWork,
    *,
    deviation_id: str | int,
    resolution: str,
    password: str,
    waive: bool = False,
) -> DeviationView:
    """QA closes a deviation with a signature; --waive accepts the failure it names."""

    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    number = ids.read_deviation_id(deviation_id)
    free_text("resolution", resolution, max_length=LONG_TEXT_MAX, multiline=True)
    deviation = session.get(Deviation, number)
    if deviation is None:
        raise NotFound(f"no deviation {number}")
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"closing deviation {number}"
    )
    DEVIATION.check("close", code=str(number), status=deviation.status)
    [(subject, passage)] = _codes(session, [deviation])
    waived_result_id = None
    if waive:
        criterion = deviation.criterion
        if criterion is None or deviation.lot_id is None:
            raise RuleViolation(
                f"deviation {number} names no release criterion; only such a deviation can waive"
            )
        lot = session.get(Lot, deviation.lot_id)
        assert lot is not None
        if not site.specification(session, lot.spec_version)[criterion].waivable:
            raise RuleViolation(f"{criterion} can never be waived")
        LOT.check_unlocked(code=lot.code, status=lot.status)
        evaluation = qc.evaluate(session, settings, lot, now=utcnow())
        verdict = next(v for v in evaluation.criteria if v.test == criterion)
        if verdict.verdict == "pass":
            raise RuleViolation(f"{criterion} passes on {lot.code}: there is nothing to waive")
        waived_result_id = qc.latest_result_id(session, lot, criterion)
    meaning = "deviation closed, failure waived" if waive else "deviation closed"
    record_hash = closing_hash(deviation, subject, passage, resolution=resolution, waived=waive)
    signatures.sign(session, deviation, signer=signer, record_hash=record_hash, meaning=meaning)
    deviation.closed_at = utcnow()
    deviation.closed_by = actor.username
    deviation.resolution = resolution
    deviation.waived = waive
    deviation.waived_result_id = waived_result_id
    change_status(
        session,
        DEVIATION,
        deviation,
        "close",
        by=actor.username,
        new={"resolution": resolution, "waived": waive, "meaning": meaning},
    )
    session.flush()
    return view(deviation, subject, passage)
