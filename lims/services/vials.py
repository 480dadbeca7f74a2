"""Vials and the chain of identity: a vial goes only to the patient whose cells it holds.

Every verification is audited, matched or not. Issue and administration
require a matching scan of the vial's own label, and so do packing a vial into a
shipment and receiving it (lims.services.shipments, which judges its scans here). A vial
packed in a shipment not yet dispatched goes to no patient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims import audit
from lims.audit import Subject
from lims.auth import Actor
from lims.config import Settings
from lims.domain import ids, isbt128
from lims.domain import payload as qr
from lims.domain.states import LOT, SHIPMENT, VIAL, expired
from lims.errors import AuditedRuleViolation, BadInput, RuleViolation, shown
from lims.models import (
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    Lot,
    Patient,
    Shipment,
    ShipmentVial,
    Vial,
)
from lims.services import bindings, consent, late_entries, lookup, screening, verdicts
from lims.services.transitions import change_status
from lims.timeutil import after, json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.records import LateEntryView
from lims.views.vials import Verification, VialView


def vial_view(
    vial: Vial,
    lot: Lot,
    patient: str,
    now: datetime,
    late: Sequence[LateEntryView] = (),
    *,
    shipment: str | None,
) -> VialView:
    return from_record(
        VialView,
        vial,
        vial_id=vial.code,
        lot_id=lot.code,
        status=VIAL.shown(vial.status, expired=expired(lot.expires_at, now)),
        division=isbt128.division_text(vial.division),
        patient=patient,
        expires_at=lot.expires_at,
        shipment=shipment,
        late_entry=bool(late),
        late_entries=list(late),
        acknowledged_pending=verdicts.tests_named(vial.acknowledged_pending),
    )


# --- where a vial travels: the shipments it is packed in -----------------------------------


def packed_in(session: Session, vial: Vial) -> Shipment | None:
    """The shipment the vial is packed in while it is still being packed (open), if any: such
    a vial is on its way out of the lab and goes to no patient here."""
    return session.exec(
        select(Shipment)
        .join(ShipmentVial, col(ShipmentVial.shipment_id) == col(Shipment.id))
        .where(
            col(ShipmentVial.vial_id) == vial.id,
            col(ShipmentVial.removed_at).is_(None),
            col(Shipment.status).in_(SHIPMENT.action("add").sources),
        )
    ).first()


def shipments_of(session: Session, vials: Sequence[Vial]) -> dict[str, str]:
    """The shipment each vial was last packed in and not taken out of (its id), by vial id."""
    return {vial: shipment.code for vial, shipment in travels_of(session, vials).items()}


def travels_of(session: Session, vials: Sequence[Vial]) -> dict[str, Shipment]:
    """The shipment each vial was last packed in and not taken out of, by vial id (its code);
    a cancelled shipment took no vial anywhere."""
    if not vials:
        return {}
    rows = session.exec(
        select(Vial.code, Shipment)
        .join(ShipmentVial, col(ShipmentVial.vial_id) == col(Vial.id))
        .join(Shipment, col(Shipment.id) == col(ShipmentVial.shipment_id))
        .where(
            col(Vial.id).in_([vial.id for vial in vials]),
            col(ShipmentVial.removed_at).is_(None),
            col(Shipment.status) != SHIPMENT.action("cancel").target,
        )
        .order_by(col(ShipmentVial.id))
    ).all()
    return dict(rows)


def custody_subjects(session: Session, vial: Vial) -> list[Subject]:
    """The shipments the vial was ever packed in, as audit subjects: whether it may go to a
    patient rests on them (and on its packing rows, which the vial itself brings)."""
    shipments = session.exec(
        select(ShipmentVial.shipment_id)
        .where(col(ShipmentVial.vial_id) == vial.id)
        .order_by(col(ShipmentVial.shipment_id))
        .distinct()
    ).all()
    return [("shipment", ids.ShipmentId(number).code) for number in shipments]


def _late(session: Session, vial: Vial) -> list[LateEntryView]:
    return late_entries.marks(session, "vial", [vial.code]).get(vial.code, [])


def with_lot(session: Session, vial: Vial) -> tuple[Lot, Patient]:
    """The vial's lot and the lot's patient."""
    lot = session.get(Lot, vial.lot_id)
    assert lot is not None
    patient = session.get(Patient, lot.patient_id)
    assert patient is not None
    return lot, patient


def list_vials(uow: UnitOfWork, *, lot: str) -> list[VialView]:
    session = uow.session
    uow.require("read_records")
    found = lookup.lot(session, lot)
    patient = session.get(Patient, found.patient_id)
    assert patient is not None
    now = utcnow()
    vials = session.exec(
        select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
    ).all()
    late = late_entries.marks(session, "vial", [vial.code for vial in vials])
    shipped = shipments_of(session, vials)
    return [
        vial_view(
            vial, found, patient.code, now, late.get(vial.code, []), shipment=shipped.get(vial.code)
        )
        for vial in vials
    ]


def _view(session: Session, vial: Vial, lot: Lot, patient: str, now: datetime) -> VialView:
    """One vial as `vial show` and the commands that move it show it."""
    shipment = shipments_of(session, [vial]).get(vial.code)
    return vial_view(vial, lot, patient, now, _late(session, vial), shipment=shipment)


def show_vial(uow: UnitOfWork, *, vial: str) -> VialView:
    session = uow.session
    uow.require("read_records")
    found = lookup.vial(session, vial)
    lot, patient = with_lot(session, found)
    return _view(session, found, lot, patient.code, utcnow())


@dataclass(frozen=True)
class ScannedLabel:
    """A vial label's 2-D code as scanned: the lims QR payload, or an ISBT 128 Data Matrix,
    whose vial is the one of its DIN and division."""

    vial_id: str  # the vial it names; for a Data Matrix naming none, its DIN and division
    din: str
    expires_at: datetime
    vial: Vial | None  # as found in this database
    patient: str | None = None  # the QR payload's
    product: isbt128.ProductCode | None = None  # the Data Matrix's


DIN_SCANNED = "this is the donation's DIN (ISBT 128 Code 128); scan the vial's 2-D code"


def read_scan(session: Session, scan: str) -> ScannedLabel:
    """A scanned label, its fields well formed and its vial looked up, or BadInput naming
    the scan."""
    if isbt128.is_din_symbol(scan):
        raise BadInput("scan", DIN_SCANNED)
    if isbt128.is_compound_message(scan):
        matrix = isbt128.read_compound_message(scan)
        division = matrix.product.division
        vial = session.exec(
            select(Vial).where(col(Vial.din) == matrix.din, col(Vial.division) == division)
        ).first()
        return ScannedLabel(
            vial_id=vial.code
            if vial is not None
            else f"DIN {matrix.din} division {matrix.product.eye_readable}",
            din=matrix.din,
            expires_at=matrix.expires_at,
            vial=vial,
            product=matrix.product,
        )
    scanned = qr.decode(scan)
    # A check value anyone can compute does not make a label: fields no lims label
    # holds would reach the terminal, the audit trail (entity ids of 64) and lookups.
    if not ids.VialId.matches(scanned.vial_id) or not ids.is_labelled_patient_code(scanned.patient):
        raise BadInput(
            "scan",
            "must be a lims vial label's QR payload: its vial id or patient code is malformed "
            f"(got {shown(scan)})",
        )
    return ScannedLabel(
        vial_id=scanned.vial_id,
        din=scanned.din,
        expires_at=scanned.expires_at,
        vial=session.exec(select(Vial).where(col(Vial.code) == scanned.vial_id)).first(),
        patient=scanned.patient,
    )


def label_disagreement(
    session: Session, settings: Settings, scanned: ScannedLabel, vial: Vial, owner: Patient
) -> str | None:
    """Why the label scanned is not what the vial's record says (its patient, DIN, product
    code and collection type), or None."""
    if scanned.din != vial.din or (scanned.patient is not None and scanned.patient != owner.code):
        return (
            f"the label of {vial.code} does not agree with its record "
            f"(label: patient {scanned.patient or 'not on it'}, DIN {scanned.din}); "
            "destroy and reprint it"
        )
    if scanned.product is not None:
        assert owner.id is not None
        collection = screening.statement_for(session, settings, owner.id).collection_type
        expected = (settings.labels.product_code, collection)
        if (scanned.product.description, scanned.product.collection_type) != expected:
            return (
                f"the label of {vial.code} says product {scanned.product.eye_readable}, not "
                f"{expected[0] or 'a product code'} with collection type {collection}: "
                "destroy and reprint it"
            )
    return None


def expiry_disagreement(scanned: ScannedLabel, vial: Vial, lot: Lot) -> str | None:
    """Why the expiry on the label scanned is not the vial's, or None."""
    if scanned.expires_at != lot.expires_at.replace(second=0, microsecond=0):
        return f"the label of {vial.code} shows another expiry than its record; reprint it"
    return None


def _judge(
    session: Session, settings: Settings, scan: str, patient: str, *, now: datetime, action: str
) -> tuple[Verification, Vial | None]:
    """Whether the scanned vial may go to the patient now, by the vial action named."""
    scanned = read_scan(session, scan)
    lookup.valid_patient_code(settings, patient, "patient")
    vial = scanned.vial
    if vial is None:
        return Verification(
            match=False,
            vial_id=scanned.vial_id,
            patient=patient,
            vial_patient=None,
            reason=f"vial {scanned.vial_id} is not in this database",
        ), None
    lot, owner = with_lot(session, vial)

    def refuse(reason: str) -> tuple[Verification, Vial | None]:
        return Verification(
            match=False, vial_id=vial.code, patient=patient, vial_patient=owner.code, reason=reason
        ), vial

    if owner.code != patient:
        return refuse(f"vial {vial.code} belongs to patient {owner.code}, not to {patient}")
    withdrawn = consent.withdrawal(owner, settings.tz)
    if withdrawn is not None:
        return refuse(f"{withdrawn}: vial {vial.code} may not be given")
    disagrees = label_disagreement(session, settings, scanned, vial, owner)
    if disagrees is not None:
        return refuse(disagrees)
    refused = LOT.refusal(
        "hand_out_vials", code=lot.code, status=lot.status, vial=vial.code
    ) or VIAL.refusal(action, code=vial.code, status=vial.status)
    if refused is not None:
        return refuse(refused)
    packed = packed_in(session, vial)
    if packed is not None:
        return refuse(
            f"vial {vial.code} is packed in shipment {packed.code}, not yet "
            "dispatched; take it out first (lims ship remove)"
        )
    evaluation = verdicts.evaluate(session, settings, lot, now=now)
    holds = evaluation.hold_reasons
    if holds:
        return refuse(f"lot {lot.code} is on hold: {'; '.join(holds)}")
    if expired(lot.expires_at, now):
        return refuse(f"vial {vial.code} expired at {show_time(lot.expires_at, settings.tz)}")
    disagrees = expiry_disagreement(scanned, vial, lot)
    if disagrees is not None:
        return refuse(disagrees)
    pending = evaluation.pending_tests
    return Verification(
        match=True,
        vial_id=vial.code,
        patient=patient,
        vial_patient=owner.code,
        reason=f"vial {vial.code} belongs to patient {patient} and is {vial.status}"
        + (f"; final results pending: {', '.join(pending)}" if pending else ""),
    ), vial


def audit_verification(session: Session, actor: Actor, result: Verification, action: str) -> None:
    """The verdict on a scan, on the record of the vial scanned: MATCH or MISMATCH and why."""
    audit.record_about(
        session,
        ("vial", result.vial_id),
        action,
        by=actor.username,
        new={
            "result": "MATCH" if result.match else "MISMATCH",
            "match": result.match,
            "vial_id": result.vial_id,
            "patient": result.patient,
            "vial_patient": result.vial_patient,
            "reason": result.reason,
        },
    )


def verify(uow: UnitOfWork, *, scan: str, patient: str) -> Verification:
    """MATCH when the vial is its patient's, released, not expired and not yet issued."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    result, scanned = _judge(session, settings, scan, patient, now=utcnow(), action="issue")
    if scanned is not None:
        bindings.require_agreement(session, _bound_subjects(session, scanned, result))
    audit_verification(session, actor, result, "vial.verify")
    return result


def _bound_subjects(session: Session, scanned: Vial, result: Verification) -> list[Subject]:
    """The records a scan's verdict rests on: the vial (and its lot), the shipments it was
    packed in, and its patient, whose consent it reads."""
    subjects: list[Subject] = [("vial", scanned.code), *custody_subjects(session, scanned)]
    if result.vial_patient is not None:
        subjects.append(("patient", result.vial_patient))
    return subjects


def judged_scan(
    session: Session,
    settings: Settings,
    actor: Actor,
    found: Vial,
    scan: str,
    patient: str,
    *,
    at: datetime,
    action: str,
    refused_as: str,
) -> Verification:
    """The scan of FOUND's label judged for the vial `action` at `at`: its MATCH, or the
    MISMATCH put on record as `refused_as` and raised (VialMismatch, which commits it). A
    scan of another vial, however good, does not match."""
    bindings.require_agreement(session, [("vial", found.code), *custody_subjects(session, found)])
    result, scanned = _judge(session, settings, scan, patient, now=at, action=action)
    if scanned is not None:
        bindings.require_agreement(session, _bound_subjects(session, scanned, result))
    if result.match and (scanned is None or scanned.id != found.id):
        result = replace(
            result, match=False, reason=f"the scan is of {result.vial_id}, not of {found.code}"
        )
    if not result.match:
        audit_verification(session, actor, result, refused_as)
        raise VialMismatch(result)
    return result


def _move(
    session: Session,
    settings: Settings,
    actor: Actor,
    action: str,
    vial: str,
    scan: str,
    patient: str,
    *,
    at: datetime,
    late: str | None = None,
    entered_at: datetime | None = None,
    acknowledge_pending: bool = False,
    details: Mapping[str, Any] | None = None,
) -> VialView:
    """`action` (issue, administer) on a vial, at the bench with its label scanned; `late`
    is the reason it is entered late, at `entered_at`. Judged at `at`: a vial is given
    only before its expiry, whenever the step is typed. A vial is issued while final results
    of its lot are pending only with them acknowledged. `details` are columns of the vial
    the step sets, stated in its entry."""
    found = lookup.vial(session, vial)
    if found.issued_at is not None and action == "administer" and at <= found.issued_at:
        raise BadInput(
            "at",
            f"must be after the vial was issued at {show_time(found.issued_at, settings.tz)}",
        )
    judged_scan(
        session,
        settings,
        actor,
        found,
        scan,
        patient,
        at=at,
        action=action,
        refused_as=f"{VIAL.audit_action(action)}.refused",
    )
    lot, owner = with_lot(session, found)
    acknowledged: dict[str, Any] = {}
    if action == "issue":
        found.issued_at, found.issued_by = at, actor.username
        acknowledged = _acknowledged(session, settings, found, lot, acknowledge_pending, at)
    else:
        found.administered_at, found.administered_by = at, actor.username
    for column, value in (details or {}).items():
        setattr(found, column, value)
    change_status(
        session,
        VIAL,
        found,
        action,
        by=actor.username,
        new={"patient": patient, "at": json_time(at), **acknowledged, **(details or {})},
    )
    late_entries.record(
        session,
        late,
        action=VIAL.audit_action(action),
        subject=("vial", found.code),
        at=at,
        entered_at=entered_at or at,
        by=actor.username,
    )
    return _view(session, found, lot, owner.code, at)


class VialMismatch(AuditedRuleViolation):
    """A move refused because the scan did not match; the refusal is audited (commits)."""

    def __init__(self, result: Verification) -> None:
        super().__init__(f"MISMATCH: {result.reason}")
        self.result = result


def _acknowledged(
    session: Session,
    settings: Settings,
    vial: Vial,
    lot: Lot,
    acknowledge_pending: bool,
    at: datetime,
) -> dict[str, Any]:
    """The pending tests of the vial's lot, which its issue must acknowledge; kept on the
    vial, and what its entry states of them."""
    evaluation = verdicts.evaluate(session, settings, lot, now=at)
    if not evaluation.pending:
        return {}
    pending = evaluation.pending_tests
    if not acknowledge_pending:
        named = ", ".join(
            started.test
            + (
                ""
                if started.expected_final_at is None
                else f" (expected {show_time(started.expected_final_at, settings.tz)})"
            )
            for started in evaluation.pending
        )
        raise RuleViolation(
            f"final results of lot {lot.code} are pending: {named}; issue {vial.code} "
            "with --acknowledge-pending to acknowledge them"
        )
    vial.acknowledged_pending = verdicts.stored_tests(pending)
    return {"acknowledged_pending": pending}


def issue(
    uow: UnitOfWork, *, vial: str, scan: str, patient: str, acknowledge_pending: bool = False
) -> VialView:
    """Issue a released vial for its patient; while final results of its lot are pending,
    only with them acknowledged (acknowledge_pending)."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    return _move(
        session,
        settings,
        actor,
        "issue",
        vial,
        scan,
        patient,
        at=utcnow(),
        acknowledge_pending=acknowledge_pending,
    )


def administer(
    uow: UnitOfWork,
    *,
    vial: str,
    scan: str,
    patient: str,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    route: str | None = None,
    physician: str | None = None,
) -> VialView:
    """Record that the vial was given to its patient, by which route and on whose order."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    details = _administration(settings, route, physician)
    now = utcnow()
    when = past_moment("at", at, settings.tz, now)
    late = late_entries.reason_for(uow, when, now, late_reason)
    return _move(
        session,
        settings,
        actor,
        "administer",
        vial,
        scan,
        patient,
        at=when,
        late=late,
        entered_at=now,
        details=details,
    )


def _administration(settings: Settings, route: str | None, physician: str | None) -> dict[str, Any]:
    """The route and treating physician of an administration, each required if the site says
    so (administration.route_required, administration.physician_required): both are in the
    batch record and on the notice a recall or hold sends to the physician."""
    rules = settings.administration
    routes = tuple(rules.routes)
    if route is not None:
        choice("route", route, routes)
    elif rules.route_required:
        raise BadInput(
            "route",
            "must be given at this site (administration.route_required): "
            f"one of {', '.join(routes)}",
        )
    if physician is not None:
        free_text("physician", physician, max_length=SHORT_TEXT_MAX)
    elif rules.physician_required:
        raise BadInput(
            "physician",
            "must be given at this site (administration.physician_required): "
            "the treating physician's name",
        )
    return {"route": route, "physician": physician}


def destroy(
    uow: UnitOfWork,
    *,
    vial: str,
    reason: str,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> VialView:
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    now = utcnow()
    when = past_moment("at", at, settings.tz, now)
    late = late_entries.reason_for(uow, when, now, late_reason)
    found = lookup.vial(session, vial)
    lot, owner = with_lot(session, found)
    after("at", when, lot.formulated_at, f"the formulation of lot {lot.code}", settings.tz)
    # Whether it is packed rests on its packing rows and its shipments: as the trail says.
    bindings.require_agreement(session, [("vial", found.code), *custody_subjects(session, found)])
    packed = packed_in(session, found)
    if packed is not None:
        raise RuleViolation(
            f"vial {found.code} is packed in shipment {packed.code}; take it out "
            "first (lims ship remove)"
        )
    change_status(session, VIAL, found, "destroy", by=actor.username, reason=reason)
    found.destroyed_at, found.destroyed_by, found.destroy_reason = when, actor.username, reason
    late_entries.record(
        session,
        late,
        action=VIAL.audit_action("destroy"),
        subject=("vial", found.code),
        at=when,
        entered_at=now,
        by=actor.username,
    )
    return _view(session, found, lot, owner.code, now)


UNREADABLE_SCAN_SHOWN = 200  # characters of an unreadable scan kept in its audit entry


def record_unreadable(uow: UnitOfWork, *, patient: str, scan: str, reason: str) -> None:
    """A line the scanner loop could not read as a label, on the record of the patient it was
    scanned for: what arrived (escaped, cut) and why it was refused."""
    actor = uow.require("record_bench_work")
    code = lookup.valid_patient_code(uow.settings, patient, "patient")
    audit.record_about(
        uow.session,
        ("patient", code),
        "vial.scan_unreadable",
        by=actor.username,
        new={"scan": shown(scan, UNREADABLE_SCAN_SHOWN), "reason": reason},
    )


def start_scanning(uow: UnitOfWork, *, patient: str) -> None:
    """Refuse a scanner session at once, before the first vial, if no scan could be judged."""
    uow.require("record_bench_work")
    lookup.valid_patient_code(uow.settings, patient, "patient")
