"""`lims trace`: from any id, the whole tree of the patient's materials, both ways.

The id is read as lims reads ids everywhere (ids.reads_as_lims_id: a code that reads as
one is taken as one, otherwise as a patient code), resolved to its patient, and the
patient's tree is built from the rows: donations, cultures (split children under their
parent, thawed ones under the bank vial they came from), bank vials, lots (under their
culture, and by reference under the CSF they are suspended in), vials and retained
samples, the shipments the vials travelled in, and follow-up events. A shipment carrying
several patients' vials is the root, with each patient's tree below it.

A node's state, time and who are its status and the last change of it: the time a
record states for that change where it keeps one (an administration typed late keeps
when it was given), else the trail's entry of the change, else when it was made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlmodel import Session, col, select

from lims.config import Settings
from lims.domain import ids
from lims.domain.states import (
    BANK_VIAL,
    CULTURE,
    LOT,
    RETAINED_SAMPLE,
    SHIPMENT,
    VIAL,
    Lifecycle,
)
from lims.errors import BadInput, shown
from lims.models import (
    CSF,
    Aspirate,
    AuditEntry,
    BankVial,
    Culture,
    FollowUpEvent,
    Lot,
    Patient,
    RetainedSample,
    Shipment,
    ShipmentVial,
    Vial,
)
from lims.services import lookup
from lims.services.aspirates import din_of
from lims.uow import UnitOfWork
from lims.views import trace as kinds
from lims.views.trace import Trace, TraceNode, TraceRef

TRACEABLE = (
    "a DIN, culture, passage, lot, vial, bank vial, retained sample, shipment or patient code"
)

When = tuple[datetime | None, str | None]
Key = TypeVar("Key")
Item = TypeVar("Item")


def trace(uow: UnitOfWork, *, item: str) -> Trace:
    """The tree of the patient (or of each patient of a shipment) the id belongs to."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    patients, traced, shipment = _resolve(session, settings, item)
    built = _Builder(session)
    cancelled = shipment is not None and shipment.status == SHIPMENT.action("cancel").target
    if len(patients) == 1 and not cancelled:
        return Trace(traced=traced, tree=built.patient(patients[0]))
    assert shipment is not None
    # Several patients' vials (or none) in one shipment, or a cancelled one, which no
    # patient's tree holds: the shipment is the root, with each patient's tree below.
    built.shown.add(shipment.code)
    trees = tuple(built.patient(patient) for patient in patients)
    return Trace(traced=traced, tree=_shipment_node(shipment, trees))


def tree_of_lot(session: Session, lot: Lot) -> TraceNode:
    """The tree of the lot's patient, as `lims trace LOT` gives it: the batch record's chain
    of identity and custody."""
    return _Builder(session).patient(_patient(session, lot.patient_id))


# --- what the id names --------------------------------------------------------------------------


def _resolve(
    session: Session, settings: Settings, text: str
) -> tuple[list[Patient], str, Shipment | None]:
    """The patients whose tree holds the record the id names, the node id it has there, and
    the shipment when it names one."""
    kind = ids.reads_as_lims_id(text)
    if kind is None:
        patient = lookup.patient(session, settings, text, "id")
        return [patient], patient.code, None
    if kind == "DIN":
        aspirate = lookup.aspirate(session, text, "id")
        return [_patient(session, aspirate.patient_id)], aspirate.din, None
    if kind == ids.CultureId.kind:
        culture = lookup.culture(session, text, "id")
        return [_patient_of_culture(session, culture)], culture.code, None
    if kind == ids.PassageId.kind:
        passage = lookup.passage(session, text, "id")
        passed = session.get(Culture, passage.culture_id)
        assert passed is not None
        return [_patient_of_culture(session, passed)], passed.code, None
    if kind == ids.LotId.kind:
        lot = lookup.lot(session, text, "id")
        return [_patient(session, lot.patient_id)], lot.code, None
    if kind == ids.VialId.kind:
        vial = lookup.vial(session, text, "id")
        return [_patient(session, _lot(session, vial.lot_id).patient_id)], vial.code, None
    if kind == ids.BankVialId.kind:
        bank_vial = lookup.bank_vial(session, text, "id")
        frozen = session.get(Culture, bank_vial.culture_id)
        assert frozen is not None
        return [_patient_of_culture(session, frozen)], bank_vial.code, None
    if kind == ids.RetainedSampleId.kind:
        sample = lookup.retained_sample(session, text, "id")
        return [_patient(session, _lot(session, sample.lot_id).patient_id)], sample.code, None
    if kind == ids.ShipmentId.kind:
        shipment = lookup.shipment(session, text, "id")
        return _patients_of_shipment(session, shipment), shipment.code, shipment
    raise BadInput(
        "id", f"must be {TRACEABLE}: a {kind} has no place in a trace (got {shown(text)})"
    )


def _patient(session: Session, patient_id: int) -> Patient:
    found = session.get(Patient, patient_id)
    assert found is not None
    return found


def _lot(session: Session, lot_id: int) -> Lot:
    found = session.get(Lot, lot_id)
    assert found is not None
    return found


def _patient_of_culture(session: Session, culture: Culture) -> Patient:
    aspirate = session.get(Aspirate, culture.aspirate_id)
    assert aspirate is not None
    return _patient(session, aspirate.patient_id)


def _patients_of_shipment(session: Session, shipment: Shipment) -> list[Patient]:
    return list(
        session.exec(
            select(Patient)
            .join(Lot, col(Lot.patient_id) == col(Patient.id))
            .join(Vial, col(Vial.lot_id) == col(Lot.id))
            .join(ShipmentVial, col(ShipmentVial.vial_id) == col(Vial.id))
            .where(
                col(ShipmentVial.shipment_id) == shipment.id,
                col(ShipmentVial.removed_at).is_(None),
            )
            .distinct()
            .order_by(col(Patient.code))
        ).all()
    )


# --- building the tree --------------------------------------------------------------------------


@dataclass
class _Builder:
    """Builds trees depth first: a node stands in full where it is first reached."""

    session: Session
    shown: set[str] = field(default_factory=set)

    def _first(self, node_id: str) -> bool:
        if node_id in self.shown:
            return False
        self.shown.add(node_id)
        return True

    def patient(self, patient: Patient) -> TraceNode:
        """A patient's tree: every patient is a root, reached once."""
        self.shown.add(patient.code)
        rows = _Rows.of(self.session, patient)
        children: list[TraceNode | TraceRef] = [
            self._donation(rows, aspirate) for aspirate in rows.aspirates
        ]
        children += [self._event(event) for event in rows.events_of_patient]
        withdrawn = patient.withdrawn_at is not None
        return TraceNode(
            id=patient.code,
            kind=kinds.PATIENT,
            state="withdrawn" if withdrawn else "active",
            alarm=withdrawn,
            at=patient.withdrawn_at if withdrawn else patient.recorded_at,
            by=patient.withdrawn_by if withdrawn else patient.recorded_by,
            detail=patient.study,
            children=tuple(children),
        )

    def _shipment(self, shipment: Shipment) -> TraceNode | TraceRef:
        if not self._first(shipment.code):
            return TraceRef(shipment.code)
        return _shipment_node(shipment, ())

    def _donation(self, rows: _Rows, aspirate: Aspirate) -> TraceNode | TraceRef:
        if not self._first(aspirate.din):
            return TraceRef(aspirate.din)
        if aspirate.material == CSF:
            children = [self._lot(rows, lot) for lot in rows.lots_in_vehicle[aspirate.id]]
            material = "CSF"
        else:
            children = [
                self._culture(rows, culture) for culture in rows.first_cultures[aspirate.id]
            ]
            material = "bone marrow"
        return TraceNode(
            id=aspirate.din,
            kind=kinds.DONATION,
            state="nonconforming" if aspirate.nonconforming else "received",
            alarm=aspirate.nonconforming,
            at=aspirate.received_at,
            by=aspirate.recorded_by,
            detail=f"{material}, {aspirate.volume_ml:g} mL, DIN {din_of(aspirate).display}",
            children=tuple(children),
        )

    def _culture(self, rows: _Rows, culture: Culture) -> TraceNode | TraceRef:
        if not self._first(culture.code):
            return TraceRef(culture.code)
        assert culture.id is not None
        children = [self._culture(rows, child) for child in rows.split_from[culture.id]]
        children += [self._bank_vial(rows, vial) for vial in rows.bank_vials[culture.id]]
        children += [self._lot(rows, lot) for lot in rows.lots_of_culture[culture.id]]
        at, by = _culture_when(culture, rows)
        return TraceNode(
            id=culture.code,
            kind=kinds.CULTURE,
            state=culture.status,
            alarm=CULTURE.alarming(culture.status),
            at=at,
            by=by,
            detail=culture.kind,
            children=tuple(children),
        )

    def _bank_vial(self, rows: _Rows, vial: BankVial) -> TraceNode | TraceRef:
        if not self._first(vial.code):
            return TraceRef(vial.code)
        thawed = rows.cultures_by_id.get(vial.thawed_into_id or 0)
        return TraceNode(
            id=vial.code,
            kind=kinds.BANK_VIAL,
            state=vial.status,
            alarm=BANK_VIAL.alarming(vial.status),
            at=vial.ended_at or vial.frozen_at,
            by=vial.ended_by or vial.recorded_by,
            detail=f"{vial.cells:,} cells",
            children=() if thawed is None else (self._culture(rows, thawed),),
        )

    def _lot(self, rows: _Rows, lot: Lot) -> TraceNode | TraceRef:
        if not self._first(lot.code):
            return TraceRef(lot.code)
        assert lot.id is not None
        children = [self._vial(rows, vial) for vial in rows.vials[lot.id]]
        children += [self._sample(rows, sample) for sample in rows.samples[lot.id]]
        at, by = rows.changed.get((LOT.entity_type, lot.code), (None, None))
        return TraceNode(
            id=lot.code,
            kind=kinds.LOT,
            state=lot.status,
            alarm=LOT.alarming(lot.status),
            at=at or lot.formulated_at,
            by=by or lot.recorded_by,
            detail=f"{lot.vials} × {lot.cells_per_vial:,} cells in {lot.vehicle}",
            children=tuple(children),
        )

    def _vial(self, rows: _Rows, vial: Vial) -> TraceNode | TraceRef:
        if not self._first(vial.code):
            return TraceRef(vial.code)
        assert vial.id is not None
        children = [self._shipment(shipment) for shipment in rows.shipments[vial.id]]
        children += [self._event(event) for event in rows.events_of_vial[vial.id]]
        at, by = _vial_when(vial, rows)
        route = ", ".join(part for part in (vial.route, vial.physician) if part)
        return TraceNode(
            id=vial.code,
            kind=kinds.VIAL,
            state=vial.status,
            alarm=VIAL.alarming(vial.status),
            at=at,
            by=by,
            detail=route or None,
            children=tuple(children),
        )

    def _sample(self, rows: _Rows, sample: RetainedSample) -> TraceNode | TraceRef:
        if not self._first(sample.code):
            return TraceRef(sample.code)
        return TraceNode(
            id=sample.code,
            kind=kinds.RETAINED_SAMPLE,
            state=sample.status,
            alarm=RETAINED_SAMPLE.alarming(sample.status),
            at=sample.ended_at or sample.retained_at,
            by=sample.ended_by or sample.recorded_by,
            detail=None,
            children=(),
        )

    def _event(self, event: FollowUpEvent) -> TraceNode:
        grade = ", ".join(
            part
            for part in (event.severity, "serious" if event.serious else None, event.related)
            if part
        )
        return TraceNode(
            id=f"event {event.id}",
            kind=kinds.EVENT,
            state=event.kind,
            at=event.occurred_at,
            by=event.recorded_by,
            detail=grade or None,
            children=(),
        )


def _shipment_node(shipment: Shipment, children: tuple[TraceNode | TraceRef, ...]) -> TraceNode:
    at, by = _shipment_when(shipment)
    return TraceNode(
        id=shipment.code,
        kind=kinds.SHIPMENT,
        state=shipment.status,
        alarm=SHIPMENT.alarming(shipment.status),
        at=at,
        by=by,
        detail=f"to {shipment.site_code} ({shipment.site_name}) by {shipment.courier}",
        children=children,
    )


def _shipment_when(shipment: Shipment) -> When:
    if shipment.ended_at is not None:  # lost or cancelled
        return shipment.ended_at, shipment.ended_by
    if shipment.received_at is not None:
        return shipment.received_at, shipment.received_by
    if shipment.dispatched_at is not None:
        return shipment.dispatched_at, shipment.dispatched_by
    return shipment.created_at, shipment.created_by


def _culture_when(culture: Culture, rows: _Rows) -> When:
    """A formulated culture as of its lot's formulation (the time the lot states), any other
    as of the trail's last change of its state, else its start."""
    assert culture.id is not None
    made = rows.lots_of_culture[culture.id]
    if made and culture.status == CULTURE.action("formulate").target:
        return made[0].formulated_at, made[0].recorded_by
    return rows.changed.get((CULTURE.entity_type, culture.code)) or (
        culture.started_at,
        culture.recorded_by,
    )


# The vial's states that its shipment dates: in it, arrived with it, or lost with it.
_TRAVELLING = {VIAL.action(action).target for action in ("ship", "receive", "lose")}


def _vial_when(vial: Vial, rows: _Rows) -> When:
    """When the vial came to be in its state, and who moved it: as the vial states it
    (administered, issued, destroyed), else as its shipment does (shipped, received,
    lost), else as the trail does (released, recalled), else its lot's formulation."""
    stated = {
        VIAL.action("administer").target: (vial.administered_at, vial.administered_by),
        VIAL.action("issue").target: (vial.issued_at, vial.issued_by),
        VIAL.action("destroy").target: (vial.destroyed_at, vial.destroyed_by),
    }.get(vial.status)
    if stated is not None and stated[0] is not None:
        return stated
    assert vial.id is not None
    travelled = rows.shipments[vial.id]
    if vial.status in _TRAVELLING and travelled:
        return _shipment_when(travelled[-1])
    changed = rows.changed.get((VIAL.entity_type, vial.code))
    if changed is not None:
        return changed
    lot = rows.lots_by_id[vial.lot_id]
    return lot.formulated_at, lot.recorded_by


# --- the rows of one patient --------------------------------------------------------------------


@dataclass
class _Rows:
    """Everything one patient's tree is drawn from, read in one query per table."""

    aspirates: Sequence[Aspirate]
    cultures_by_id: dict[int, Culture]
    first_cultures: dict[int | None, list[Culture]]  # by aspirate: started from the donation
    split_from: dict[int, list[Culture]]  # by parent culture: split, not thawed
    bank_vials: dict[int, list[BankVial]]  # by culture
    lots_by_id: dict[int, Lot]
    lots_of_culture: dict[int, list[Lot]]
    lots_in_vehicle: dict[int | None, list[Lot]]  # by the CSF donation they are suspended in
    vials: dict[int, list[Vial]]  # by lot
    samples: dict[int, list[RetainedSample]]  # by lot
    shipments: dict[int, list[Shipment]]  # by vial, in the order they were made
    events_of_vial: dict[int, list[FollowUpEvent]]
    events_of_patient: list[FollowUpEvent]  # events that name no vial
    changed: dict[tuple[str, str], When]  # last status change in the trail, by (type, id)

    @classmethod
    def of(cls, session: Session, patient: Patient) -> _Rows:
        aspirates = session.exec(
            select(Aspirate)
            .where(col(Aspirate.patient_id) == patient.id)
            .order_by(col(Aspirate.received_at), col(Aspirate.id))
        ).all()
        cultures = session.exec(
            select(Culture)
            .where(col(Culture.aspirate_id).in_([a.id for a in aspirates]))
            .order_by(col(Culture.started_at), col(Culture.id))
        ).all()
        culture_ids = [c.id for c in cultures]
        bank_vials = session.exec(
            select(BankVial)
            .where(col(BankVial.culture_id).in_(culture_ids))
            .order_by(col(BankVial.id))
        ).all()
        thawed = {v.thawed_into_id for v in bank_vials if v.thawed_into_id is not None}
        lots = session.exec(
            select(Lot)
            .where(col(Lot.patient_id) == patient.id)
            .order_by(col(Lot.formulated_at), col(Lot.id))
        ).all()
        lot_ids = [lot.id for lot in lots]
        vials = session.exec(
            select(Vial).where(col(Vial.lot_id).in_(lot_ids)).order_by(col(Vial.number))
        ).all()
        vial_ids = [v.id for v in vials]
        samples = session.exec(
            select(RetainedSample)
            .where(col(RetainedSample.lot_id).in_(lot_ids))
            .order_by(col(RetainedSample.number))
        ).all()
        packed = session.exec(
            select(ShipmentVial, Shipment)
            .join(Shipment, col(Shipment.id) == col(ShipmentVial.shipment_id))
            .where(
                col(ShipmentVial.vial_id).in_(vial_ids),
                col(ShipmentVial.removed_at).is_(None),
                # A cancelled shipment carried no vial anywhere (as vials.shipments_of says).
                col(Shipment.status) != SHIPMENT.action("cancel").target,
            )
            .order_by(col(Shipment.id))
        ).all()
        events = session.exec(
            select(FollowUpEvent)
            .where(col(FollowUpEvent.patient_id) == patient.id)
            .order_by(col(FollowUpEvent.occurred_at), col(FollowUpEvent.id))
        ).all()
        changed = _last_changes(
            session,
            [
                (CULTURE, [c.code for c in cultures]),
                (LOT, [lot.code for lot in lots]),
                (VIAL, [v.code for v in vials]),
            ],
        )
        return cls(
            aspirates=aspirates,
            cultures_by_id={c.id: c for c in cultures if c.id is not None},
            first_cultures=_grouped(
                (c.aspirate_id, c) for c in cultures if c.parent_id is None and c.id not in thawed
            ),
            split_from=_grouped(
                (c.parent_id, c) for c in cultures if c.parent_id is not None and c.id not in thawed
            ),
            bank_vials=_grouped((v.culture_id, v) for v in bank_vials),
            lots_by_id={lot.id: lot for lot in lots if lot.id is not None},
            lots_of_culture=_grouped((lot.culture_id, lot) for lot in lots),
            lots_in_vehicle=_grouped(
                (lot.vehicle_aspirate_id, lot) for lot in lots if lot.vehicle_aspirate_id
            ),
            vials=_grouped((v.lot_id, v) for v in vials),
            samples=_grouped((s.lot_id, s) for s in samples),
            shipments=_grouped((packing.vial_id, shipment) for packing, shipment in packed),
            events_of_vial=_grouped((e.vial_id, e) for e in events if e.vial_id is not None),
            events_of_patient=[e for e in events if e.vial_id is None],
            changed=changed,
        )


def _grouped(pairs: Iterable[tuple[Key, Item]]) -> defaultdict[Key, list[Item]]:
    groups: defaultdict[Key, list[Item]] = defaultdict(list)
    for key, item in pairs:
        groups[key].append(item)
    return groups


def _last_changes(
    session: Session, records: Sequence[tuple[Lifecycle, Sequence[str]]]
) -> dict[tuple[str, str], When]:
    """The last entry of the trail that changed each record's status: when and by whom."""
    changed: dict[tuple[str, str], When] = {}
    for lifecycle, codes in records:
        if not codes:
            continue
        moves = [
            lifecycle.audit_action(name)
            for name, action in lifecycle.actions.items()
            if action.target is not None
        ]
        for entry in session.exec(
            select(AuditEntry)
            .where(
                col(AuditEntry.entity_type) == lifecycle.entity_type,
                col(AuditEntry.entity_id).in_(codes),
                col(AuditEntry.action).in_(moves),
            )
            .order_by(col(AuditEntry.seq))
        ).all():
            at = datetime.fromisoformat(entry.at)
            changed[(entry.entity_type, entry.entity_id)] = (at, entry.username)
    return changed
