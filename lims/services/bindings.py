"""Records bound to the audit trail: the rows that decide what may happen next agree with it.

A row that decides what may happen next (a lot's status and patient, a vial's status, a
culture's, a deviation's, a signature, a QC result, a user's role) must hold what the trail
last stated of it: an `update lots set status = 'released'` that leaves the trail alone
is a row that disagrees. `lims audit verify` looks at every bound row (verify, walking
the trail once); the commands that rely on some rows look at those first
(require_agreement) and refuse, saving nothing, when one differs.

What is bound is declared below, one declaration per table (BINDINGS), read by one
mechanism: the trail is folded, oldest entry first, into the latest value it states under
each key for each entity (entity type, entity id), and each bound column is compared with
its key's latest value. Two kinds of table:

- `Entities`: each row is an entity of the trail (a lot by its code, a deviation by its
  number, a user by name). Its row must have been born on record (an entry of an action
  in `born_in`, or listed in another entity's entry: `Listing`, a lot.formulate's vials),
  and every entity born on record must still have its row.
- `Sequenced`: rows with no entity of their own, each recorded by one entry about its
  parent, in order (a lot's QC results, its signatures): the n-th row of a parent by id is
  compared with the n-th such entry, and the counts must agree. Where the entries name
  their row (`named_by`), a row is compared with what the entries naming it last stated.

Binding another column is one `Bound` more in its table's declaration, with its rows query
selecting the column under its name; binding another table is one declaration more in
BINDINGS (the equipment register, its calibrations and which step used which piece are the
last ones).

Entries written by earlier versions of lims may lack keys: a column whose key the trail
never stated for an entity is not compared (unless `before_stated` says what a row holds
until then), and a sequenced entry without its `marker` key records no row. A whole trail
rewritten together with its rows agrees with itself: the head hash kept outside the
database (README, "Audit trail") is what anchors it.

A service module, as the rule needs the store: lot release and the vial moves call
require_agreement; `lims audit verify`, the demo and backups call verify. It reads the
tables and the trail and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Label,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from lims import audit
from lims.audit import Subject
from lims.domain.count_use import STEP_KINDS
from lims.domain.equipment import USE_SUBJECTS
from lims.domain.ids import CountId, ShipmentId
from lims.domain.signatures import manifestation
from lims.domain.states import CultureState
from lims.domain.storage import Position, place_label
from lims.errors import RuleViolation
from lims.models import (
    MARROW,
    Aspirate,
    AuditEntry,
    BankVial,
    Calibration,
    CellCount,
    CountFile,
    Culture,
    Deviation,
    Equipment,
    EquipmentUse,
    FollowUpEvent,
    LateEntry,
    LoggerFile,
    Lot,
    LotHold,
    Passage,
    Patient,
    QCResult,
    RetainedSample,
    Shipment,
    ShipmentVial,
    Signature,
    StorageLocation,
    StoragePosition,
    User,
    Vial,
)
from lims.services import late_entries
from lims.timeutil import json_time
from lims.views.trail import ChainVerification, Disagreement

REFUSAL = "record disagrees with the audit trail: "


class _NeverStated:
    def __repr__(self) -> str:
        return "NEVER_STATED"


NEVER_STATED: Any = _NeverStated()
"""A bound column with no value before its key is first stated: not compared until then."""


@dataclass(frozen=True)
class Bound:
    """A column that must hold what the trail last stated under `key`.

    `field` is the rows query's label for it (by default the column's name), `as_stated`
    turns the row into the value as the trail writes it (a time as JSON text), and
    `before_stated` is what a row holds while the trail has not stated the key yet.
    """

    column: str
    key: str
    before_stated: Any = NEVER_STATED
    field: str | None = None
    as_stated: Callable[[RowMapping], Any] | None = None

    def value(self, row: RowMapping) -> Any:
        if self.as_stated is not None:
            return self.as_stated(row)
        return row[self.field or self.column]


@dataclass(frozen=True)
class Listing:
    """Entities first stated inside their parent's entry: an entry about a `parent_type`
    of `action` lists their ids under `key`.

    Each listed entity is stated to belong to the parent under `parent_key`, and to hold
    what the parent's entry states under `copied`'s values (its keys are the child's).
    """

    parent_type: str
    action: str
    key: str
    parent_key: str
    copied: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entities:
    """A table whose rows are entities of the trail, `entity_type` and the row's "id".

    `rows` selects "id" (the entity id), each bound column and, for a row that belongs to
    another entity (of a type in `belongs_to`), "parent_type" and "parent" (that entity): a
    check of the parent checks the rows that belong to it, and a check of the row checks
    its parent.
    """

    table: str
    entity_type: str
    rows: Select[*tuple[Any, ...]]
    columns: tuple[Bound, ...]
    born_in: frozenset[str] = frozenset()
    listed_in: Listing | None = None
    belongs_to: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Sequenced:
    """A table whose rows are recorded, one entry each and in order, about their parent.

    The entries are those about the parent (`parent_type`, the row's "parent") of an action
    in `actions` that state `marker`; `rows` selects "id" (the primary key, whose order is
    the order of recording), "parent_type", "parent" and each bound column. With
    `named_by`, each entry names its row's id under that key instead, and several entries
    may state a row (made, then changed).
    """

    table: str
    parent_type: str
    actions: frozenset[str]
    marker: str
    rows: Select[*tuple[Any, ...]]
    columns: tuple[Bound, ...]
    named_by: str | None = None


Binding = Entities | Sequenced


def _parent(entity_type: str, entity_id: Any) -> tuple[Label[Any], Label[Any]]:
    return literal(entity_type, String).label("parent_type"), entity_id.label("parent")


def _listed(column: str) -> Callable[[RowMapping], Any]:
    """A column holding a JSON list, as the trail states it: the list (or the text as it
    stands, when it is none, so that it disagrees rather than stopping the check)."""

    def stated(row: RowMapping) -> Any:
        text = row[column]
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    return stated


def _iso_date(row: RowMapping) -> str | None:
    stated = row["consent_date"]
    return None if stated is None else stated.isoformat()


def _signature_said(row: RowMapping) -> str:
    """The manifestation the signing entry printed, from the signature's row."""
    return manifestation(row["username"], row["full_name"], row["signed_at"], row["meaning"])


_PARENT_CULTURE = aliased(Culture)
_THAWED_INTO = aliased(Culture)
_VEHICLE = aliased(Aspirate)
# The lots drawing on each CSF donation as their vehicle, as one text per donation.
_DRAWN_BY = (
    select(
        col(Lot.vehicle_aspirate_id).label("aspirate_id"),
        func.aggregate_strings(col(Lot.code), ",").label("drawn_by"),
    )
    .where(col(Lot.vehicle_aspirate_id).is_not(None))
    .group_by(col(Lot.vehicle_aspirate_id))
    .subquery()
)


def _drawn_by(row: RowMapping) -> list[str]:
    """The lots drawing on a donation, sorted, as the trail states them (aspirate.draw)."""
    text = row["drawn_by"]
    return sorted(text.split(",")) if text else []


_DEVIATION_SUBJECT = func.coalesce(col(Lot.code), col(Culture.code), col(Aspirate.din))


def _late_entries(entity_type: str) -> Sequenced:
    """The late-entry marks on records of one type, each stated by its own entry."""
    return Sequenced(
        table="late_entries",
        parent_type=entity_type,
        actions=frozenset({late_entries.ACTION}),
        marker="reason",
        rows=select(
            col(LateEntry.id).label("id"),
            *_parent(entity_type, col(LateEntry.entity_id)),
            col(LateEntry.action),
            col(LateEntry.reason),
        ).where(col(LateEntry.entity_type) == entity_type),
        columns=(Bound("action", "action"), Bound("reason", "reason")),
    )


def _numbered_code(kind: type[CountId | ShipmentId], number: Any) -> ColumnElement[str]:
    """The id of a record numbered by its row (CountId.code, e.g. CNT-000123; ShipmentId's) as
    the trail names it, in SQL: the number after the kind's prefix, zero-padded to its width."""
    blank = kind(0).code
    prefix = blank.rstrip("0")
    width = len(blank) - len(prefix)
    digits = cast(number, String)
    return case(
        *(
            (number < 10**places, literal(prefix + "0" * (width - places)) + digits)
            for places in range(1, width)
        ),
        else_=literal(prefix) + digits,
    )


def _count_code(number: Any) -> ColumnElement[str]:
    return _numbered_code(CountId, number)


def _shipment_code(number: Any) -> ColumnElement[str]:
    return _numbered_code(ShipmentId, number)


def _step_viability(row: RowMapping) -> float | None:
    """The viability a counted passage or lot keeps; a culture or an aspirate keeps none, so
    what the count states is what it holds."""
    kept = row["passage_viability"]
    if kept is None:
        kept = row["lot_viability"]
    return kept if kept is not None or row["used_by"] is None else row["viability"]


def _taken_by(row: RowMapping) -> str | None:
    """The step whose row names the count (count_id), as count.use states it in used_by;
    none, or every one when more than one step names it (then it matches no entry)."""
    steps = [f"{kind} {row[kind]}" for kind in STEP_KINDS if row[kind] is not None]
    return "; ".join(steps) or None


def _place(row: RowMapping) -> str | None:
    """Where a stored item is, PATH:POSITION as the trail states it (lims.services.placement),
    from its storage_positions row; None once it has left storage."""
    if row["box"] is None:
        return None
    return place_label(row["box"], Position(row["grid_row"], row["grid_column"]))


_PARENT_LOCATION = aliased(StorageLocation)

# Every kind of record a step can mark as entered late (lims.services.late_entries).
LATE_ENTRY_SUBJECTS = (
    "aspirate",
    "culture",
    "passage",
    "lot",
    "vial",
    "bank_vial",
    "retained_sample",
    "shipment",
)


def _equipment_uses(entity_type: str) -> Sequenced:
    """The equipment a step used, on records of one type (lims.domain.equipment.USE_SUBJECTS):
    each use stated by an `equipment.use` entry about the step's record, naming its row, and
    again when its step moved in time. Which lots a failed calibration reaches, and what the
    batch record says was used under which calibration, are read from them."""
    return Sequenced(
        table="equipment_uses",
        parent_type=entity_type,
        actions=frozenset({"equipment.use", "equipment.use_moved"}),
        marker="use_id",
        named_by="use_id",
        rows=select(
            col(EquipmentUse.id).label("id"),
            *_parent(entity_type, col(EquipmentUse.entity_id)),
            col(Equipment.code).label("equipment_code"),
            col(EquipmentUse.action),
            col(EquipmentUse.used_at),
            col(EquipmentUse.calibration_id),
            col(Culture.code).label("culture_code"),
            col(Lot.code).label("lot_code"),
        )
        .join(Equipment, col(Equipment.id) == col(EquipmentUse.equipment_id))
        .outerjoin(Culture, col(Culture.id) == col(EquipmentUse.culture_id))
        .outerjoin(Lot, col(Lot.id) == col(EquipmentUse.lot_id))
        .where(col(EquipmentUse.entity_type) == entity_type),
        columns=(
            Bound("equipment_id", "equipment", field="equipment_code"),
            Bound("action", "step"),
            Bound("used_at", "step_at", as_stated=lambda row: json_time(row["used_at"])),
            Bound("calibration_id", "calibration_id"),
            Bound("culture_id", "on_culture", field="culture_code"),
            Bound("lot_id", "on_lot", field="lot_code"),
        ),
    )


BINDINGS: tuple[Binding, ...] = (
    Entities(
        table="cultures",
        entity_type="culture",
        born_in=frozenset({"culture.start", "culture.split", "culture.thaw"}),
        rows=select(
            col(Culture.code).label("id"),
            col(Culture.status),
            col(_PARENT_CULTURE.code).label("parent_culture"),
            col(Passage.code).label("source_passage"),
            col(Culture.cells_plated),
        )
        .outerjoin(_PARENT_CULTURE, col(_PARENT_CULTURE.id) == col(Culture.parent_id))
        .outerjoin(Passage, col(Passage.id) == col(Culture.source_passage_id)),
        columns=(
            Bound("status", "status", before_stated=CultureState.ACTIVE.value),
            # A culture started on its own states no parent: it has none until split.
            Bound("parent_id", "parent", before_stated=None, field="parent_culture"),
            Bound(
                "source_passage_id", "source_passage", before_stated=None, field="source_passage"
            ),
            # What a split drew from its parent's harvest: the sum may not exceed it.
            Bound("cells_plated", "cells_plated"),
        ),
    ),
    # Frozen cells: what a harvest gave (the sum may not exceed it), whether the vial may
    # still be thawed and what it may seed, the lineage a culture thawed from it carries on,
    # and where it is kept.
    Entities(
        table="bank_vials",
        entity_type="bank_vial",
        born_in=frozenset({"bank_vial.freeze"}),
        rows=select(
            col(BankVial.code).label("id"),
            col(BankVial.status),
            col(Culture.code).label("culture_code"),
            col(Passage.code).label("passage_code"),
            col(BankVial.cells),
            col(BankVial.frozen_at),
            col(_THAWED_INTO.code).label("thawed_into"),
            col(BankVial.thaw_viability),
            col(StorageLocation.path).label("box"),
            col(StoragePosition.grid_row),
            col(StoragePosition.grid_column),
        )
        .join(Culture, col(Culture.id) == col(BankVial.culture_id))
        .join(Passage, col(Passage.id) == col(BankVial.passage_id))
        .outerjoin(_THAWED_INTO, col(_THAWED_INTO.id) == col(BankVial.thawed_into_id))
        .outerjoin(StoragePosition, col(StoragePosition.bank_vial_id) == col(BankVial.id))
        .outerjoin(StorageLocation, col(StorageLocation.id) == col(StoragePosition.location_id)),
        columns=(
            Bound("status", "status"),
            Bound("culture_id", "culture", field="culture_code"),
            Bound("passage_id", "passage", field="passage_code"),
            Bound("cells", "cells"),
            Bound("frozen_at", "frozen_at", as_stated=lambda row: json_time(row["frozen_at"])),
            Bound("thawed_into_id", "thawed_into", before_stated=None, field="thawed_into"),
            Bound("thaw_viability", "thaw_viability", before_stated=None),
            Bound("storage_positions", "position", as_stated=_place),
        ),
    ),
    Entities(
        table="aspirates",
        entity_type="aspirate",
        born_in=frozenset({"aspirate.receive"}),
        rows=select(
            col(Aspirate.din).label("id"),
            col(Patient.code).label("patient_code"),
            col(Aspirate.collected_at),
            col(Aspirate.received_at),
            col(Aspirate.nonconforming),
            col(Aspirate.material),
            col(Aspirate.volume_ml),
            _DRAWN_BY.c.drawn_by,
        )
        .join(Patient, col(Patient.id) == col(Aspirate.patient_id))
        .outerjoin(_DRAWN_BY, _DRAWN_BY.c.aspirate_id == col(Aspirate.id)),
        columns=(
            Bound("patient_id", "patient", field="patient_code"),
            # Consent, birth year and transit are judged by these times.
            Bound(
                "collected_at", "collected_at", as_stated=lambda row: json_time(row["collected_at"])
            ),
            Bound(
                "received_at", "received_at", as_stated=lambda row: json_time(row["received_at"])
            ),
            Bound("nonconforming", "nonconforming", before_stated=False),
            # CSF is a lot's vehicle, bone marrow its cells (every aspirate before 0012).
            Bound("material", "material", before_stated=MARROW),
            # What a CSF donation has left for lots to draw is its volume less theirs: the
            # lots drawing on it (aspirate.draw states them) and, bound on each lot, its mL.
            Bound("volume_ml", "volume_ml"),
            Bound(
                "vehicle_aspirate_id of lots",
                "drawn_by",
                before_stated=[],
                field="drawn_by",
                as_stated=_drawn_by,
            ),
        ),
    ),
    Entities(
        table="lots",
        entity_type="lot",
        born_in=frozenset({"lot.formulate"}),
        belongs_to=frozenset({"culture"}),
        rows=select(
            col(Lot.code).label("id"),
            *_parent("culture", col(Culture.code)),
            col(Lot.status),
            col(Lot.patient_id),
            col(Patient.code).label("patient_code"),
            col(Lot.spec_version),
            col(Lot.final_passage),
            col(Lot.cells_per_vial),
            col(Lot.pending_at_release),
            col(Lot.release_completed_at),
            col(Lot.release_completed_by),
            col(_VEHICLE.din).label("vehicle_din"),
            col(Lot.vehicle_ml),
        )
        .join(Culture, col(Culture.id) == col(Lot.culture_id))
        .join(Patient, col(Patient.id) == col(Lot.patient_id))
        .outerjoin(_VEHICLE, col(_VEHICLE.id) == col(Lot.vehicle_aspirate_id)),
        columns=(
            Bound("status", "status"),
            Bound("patient_id", "patient_id"),
            Bound("patient_id", "patient", field="patient_code"),
            Bound("culture_id", "culture", field="parent"),
            Bound("spec_version", "spec_version"),
            Bound("final_passage", "final_passage"),
            Bound("cells_per_vial", "cells_per_vial"),
            # A release on interim results (lot.release states the tests pending) needs QA's
            # completion (lot.complete) once their final results are in.
            Bound(
                "pending_at_release",
                "pending_at_release",
                before_stated=None,
                as_stated=_listed("pending_at_release"),
            ),
            Bound(
                "release_completed_at",
                "release_completed_at",
                before_stated=None,
                as_stated=lambda row: json_time(row["release_completed_at"]),
            ),
            Bound("release_completed_by", "release_completed_by", before_stated=None),
            # The patient's CSF the cells are suspended in, and the mL drawn from it; a lot
            # formulated before 0012 had a typed vehicle only.
            Bound("vehicle_aspirate_id", "vehicle_din", before_stated=None, field="vehicle_din"),
            Bound("vehicle_ml", "vehicle_ml", before_stated=None),
        ),
    ),
    Entities(
        table="vials",
        entity_type="vial",
        belongs_to=frozenset({"lot"}),
        listed_in=Listing(
            "lot", "lot.formulate", "vials", parent_key="lot", copied={"status": "status"}
        ),
        rows=select(
            col(Vial.code).label("id"),
            *_parent("lot", col(Lot.code)),
            col(Vial.status),
            col(Vial.acknowledged_pending),
            col(Vial.route),
            col(Vial.physician),
        ).join(Lot, col(Lot.id) == col(Vial.lot_id)),
        columns=(
            Bound("status", "status"),
            Bound("lot_id", "lot", field="parent"),
            # The pending tests its issuer acknowledged (vial.issue states them).
            Bound(
                "acknowledged_pending",
                "acknowledged_pending",
                before_stated=None,
                as_stated=_listed("acknowledged_pending"),
            ),
            # What the recall or hold notice tells the physician: none until administered.
            Bound("route", "route", before_stated=None),
            Bound("physician", "physician", before_stated=None),
        ),
    ),
    Entities(
        table="deviations",
        entity_type="deviation",
        born_in=frozenset({"deviation.open"}),
        belongs_to=frozenset({"lot", "culture", "aspirate"}),
        rows=select(
            cast(col(Deviation.id), String).label("id"),
            case(
                (col(Deviation.lot_id).is_not(None), "lot"),
                (col(Deviation.culture_id).is_not(None), "culture"),
                else_="aspirate",
            ).label("parent_type"),
            _DEVIATION_SUBJECT.label("parent"),
            col(Deviation.status),
            col(Deviation.kind),
            col(Deviation.criterion),
            col(Passage.code).label("passage_id"),
            col(Deviation.waived),
            col(Deviation.resolution),
            col(Deviation.result_id),
            col(Deviation.outcome),
            col(Deviation.physician_request),
            col(Deviation.closed_by),
            col(Deviation.waived_result_id),
            col(Deviation.severity),
            col(Deviation.event_id),
        )
        .outerjoin(Lot, col(Lot.id) == col(Deviation.lot_id))
        .outerjoin(Culture, col(Culture.id) == col(Deviation.culture_id))
        .outerjoin(Aspirate, col(Aspirate.id) == col(Deviation.aspirate_id))
        .outerjoin(Passage, col(Passage.id) == col(Deviation.passage_id)),
        columns=(
            Bound("status", "status"),
            Bound("lot_id, culture_id or aspirate_id", "subject", field="parent"),
            Bound("kind", "kind"),
            Bound("criterion", "criterion"),
            Bound("passage_id", "passage"),
            Bound("waived", "waived", before_stated=False),
            Bound("resolution", "resolution"),
            Bound("result_id", "result_id"),
            Bound("outcome", "outcome"),
            Bound("physician_request", "physician_request"),
            Bound("closed_by", "closed_by"),
            Bound("waived_result_id", "waived_result_id"),
            # A deviation opened before 0009 was of no stated severity: major, as it reads.
            Bound("severity", "severity", before_stated="major"),
            # Stated only by a deviation a follow-up event opened.
            Bound("event_id", "event_id", before_stated=None),
        ),
    ),
    Entities(
        table="patients",
        entity_type="patient",
        born_in=frozenset({"patient.create"}),
        rows=select(
            col(Patient.code).label("id"),
            col(Patient.initials),
            col(Patient.birth_year),
            col(Patient.consent_date),
            col(Patient.withdrawn_at).is_not(None).label("withdrawn"),
            col(Patient.weight_kg),
        ),
        columns=(
            Bound("initials", "initials"),
            Bound("birth_year", "birth_year"),
            Bound("consent_date", "consent_date", as_stated=_iso_date),
            # Consent stands until a withdrawal is recorded: a row that says otherwise would
            # stop or restart manufacturing on its own.
            Bound("withdrawn_at", "withdrawn", before_stated=False, field="withdrawn"),
            # A dose per kilogram is judged by it; a patient recorded before 0008 had none.
            Bound("weight_kg", "weight_kg", before_stated=None),
        ),
    ),
    Entities(
        table="follow_up_events",
        entity_type="event",
        born_in=frozenset({"event.record"}),
        belongs_to=frozenset({"patient"}),
        rows=select(
            cast(col(FollowUpEvent.id), String).label("id"),
            *_parent("patient", col(Patient.code)),
            col(Vial.code).label("vial_code"),
            col(FollowUpEvent.kind),
            col(FollowUpEvent.severity),
            col(FollowUpEvent.serious),
            col(FollowUpEvent.related),
            col(FollowUpEvent.occurred_at),
        )
        .join(Patient, col(Patient.id) == col(FollowUpEvent.patient_id))
        .outerjoin(Vial, col(Vial.id) == col(FollowUpEvent.vial_id)),
        # Whether an event may call for an expedited safety report, and which lots it
        # followed, are read from these.
        columns=(
            Bound("patient_id", "patient", field="parent"),
            Bound("vial_id", "vial", field="vial_code"),
            Bound("kind", "kind"),
            Bound("severity", "severity"),
            Bound("serious", "serious"),
            Bound("related", "related"),
            Bound(
                "occurred_at", "occurred_at", as_stated=lambda row: json_time(row["occurred_at"])
            ),
        ),
    ),
    # An imported count: what a step may take from it (lims.services.count_use), the file
    # it was read from (whose bytes audit verify also hashes: _altered_file), and the
    # step that took it.
    Entities(
        table="cell_counts",
        entity_type="count",
        born_in=frozenset({"count.import"}),
        rows=select(
            _count_code(col(CellCount.id)).label("id"),
            col(CellCount.sample),
            col(CellCount.analysed_at),
            col(CellCount.analysed_date_only),
            col(CellCount.viable_per_ml),
            col(CellCount.total_per_ml),
            col(CellCount.viability),
            col(CellCount.status),
            col(CountFile.sha256).label("file_sha256"),
            col(CellCount.used_by),
            col(CellCount.used_at),
            col(CellCount.suspension_ml),
            col(Passage.code).label("passage"),
            col(Culture.code).label("culture"),
            col(Lot.code).label("lot"),
            col(Aspirate.din).label("aspirate"),
            func.coalesce(
                col(Passage.harvested),
                col(Culture.cells_plated),
                col(Lot.harvested),
                col(Aspirate.tnc),
            ).label("step_cells"),
            col(Passage.viability).label("passage_viability"),
            col(Lot.viability).label("lot_viability"),
        )
        .join(CountFile, col(CountFile.id) == col(CellCount.file_id))
        .outerjoin(Passage, col(Passage.count_id) == col(CellCount.id))
        .outerjoin(Culture, col(Culture.count_id) == col(CellCount.id))
        .outerjoin(Lot, col(Lot.count_id) == col(CellCount.id))
        .outerjoin(Aspirate, col(Aspirate.count_id) == col(CellCount.id)),
        columns=(
            Bound("sample", "sample"),
            Bound(
                "analysed_at", "analysed_at", as_stated=lambda row: json_time(row["analysed_at"])
            ),
            Bound("analysed_date_only", "analysed_date_only"),
            Bound("viable_per_ml", "viable_per_ml"),
            Bound("total_per_ml", "total_per_ml"),
            Bound("viability", "viability"),
            Bound("status", "status"),
            Bound("count_files.sha256", "file_sha256", field="file_sha256"),
            # Which step took it, when and at what volume (count.use states them), and the
            # step naming it: a count is taken once, and no step's count_id is moved to
            # another count or given one by hand. Bound from the count's side, the passages
            # (a million at scale) need not be read.
            Bound("used_by", "used_by", before_stated=None),
            Bound(
                "used_at",
                "used_at",
                before_stated=None,
                as_stated=lambda row: json_time(row["used_at"]),
            ),
            Bound("suspension_ml", "suspension_ml", before_stated=None),
            Bound("count_id of its step", "used_by", before_stated=None, as_stated=_taken_by),
            # The numbers the step took from it: its cells (a passage's or lot's harvest, a
            # culture's cells plated, an aspirate's TNC) and, where it keeps one, viability.
            Bound("cells of its step", "cells", before_stated=None, field="step_cells"),
            Bound(
                "viability of its step",
                "step_viability",
                before_stated=None,
                as_stated=_step_viability,
            ),
        ),
    ),
    Entities(
        table="users",
        entity_type="user",
        born_in=frozenset({"user.create"}),
        rows=select(
            col(User.username).label("id"),
            col(User.role),
            col(User.active),
            col(User.full_name),
            col(User.password_set_by_admin),
        ),
        columns=(
            Bound("role", "role"),
            Bound("active", "active"),
            # Every signature and audit view prints it; the trail states it at creation.
            Bound("full_name", "full_name"),
            # Cleared by hand, an admin-typed password would no longer have to be changed.
            Bound("password_set_by_admin", "password_set_by_admin"),
        ),
    ),
    Sequenced(
        table="qc_results",
        parent_type="lot",
        actions=frozenset({"qc.record", "qc.retest", "qc.start"}),
        marker="test",
        rows=select(
            col(QCResult.id).label("id"),
            *_parent("lot", col(Lot.code)),
            col(QCResult.test),
            col(QCResult.value),
            col(QCResult.unit),
            col(QCResult.method),
            col(QCResult.tested_at),
            col(QCResult.reason),
            col(QCResult.recorded_by),
            col(QCResult.investigation_id),
            col(QCResult.qualifier),
            col(QCResult.pending),
            col(QCResult.expected_final_at),
        ).join(Lot, col(Lot.id) == col(QCResult.lot_id)),
        columns=(
            Bound("test", "test"),
            Bound("value", "value"),
            Bound("unit", "unit"),
            Bound("method", "method"),
            Bound("tested_at", "tested_at", as_stated=lambda row: json_time(row["tested_at"])),
            Bound("reason", "reason"),
            Bound("recorded_by", "recorded_by"),
            Bound("investigation_id", "investigation"),
            # A censored value's operator, which its value must read with (verdicts.recorded);
            # results recorded before 0009 had none.
            Bound("qualifier", "qualifier", before_stated=None),
            # Only qc.start states them: any other entry's result is final, expected at no time.
            Bound("pending", "pending", before_stated=False),
            Bound(
                "expected_final_at",
                "expected_final_at",
                before_stated=None,
                as_stated=lambda row: json_time(row["expected_final_at"]),
            ),
        ),
    ),
    Sequenced(
        table="signatures",
        parent_type="lot",
        actions=frozenset(
            {"lot.release", "lot.reject", "lot.recall", "lot.hold", "lot.unhold", "lot.complete"}
        ),
        marker="signature",
        rows=select(
            col(Signature.id).label("id"),
            *_parent("lot", col(Lot.code)),
            col(Signature.username),
            col(Signature.full_name),
            col(Signature.signed_at),
            col(Signature.meaning),
            col(Signature.record_hash),
        ).join(Lot, col(Lot.id) == col(Signature.lot_id)),
        columns=(
            Bound("username, full_name, signed_at", "signature", as_stated=_signature_said),
            Bound("meaning", "meaning"),
            Bound("record_hash", "record_hash"),
        ),
    ),
    Sequenced(
        table="signatures",
        parent_type="deviation",
        actions=frozenset({"deviation.close"}),
        marker="meaning",
        rows=select(
            col(Signature.id).label("id"),
            *_parent("deviation", cast(col(Signature.deviation_id), String)),
            col(Signature.meaning),
        ).where(col(Signature.deviation_id).is_not(None)),
        columns=(Bound("meaning", "meaning"),),
    ),
    # When a vial was given (vial.administered states it under "at"): which lots a suspected
    # adverse reaction may follow, and whether an event may follow the vial, are read from it.
    Sequenced(
        table="vials",
        parent_type="vial",
        actions=frozenset({"vial.administered"}),
        marker="at",
        rows=select(
            col(Vial.code).label("id"), *_parent("vial", col(Vial.code)), col(Vial.administered_at)
        ).where(col(Vial.administered_at).is_not(None)),
        columns=(
            Bound(
                "administered_at",
                "at",
                as_stated=lambda row: json_time(row["administered_at"]),
            ),
        ),
    ),
    Sequenced(
        table="lot_holds",
        parent_type="lot",
        actions=frozenset({"lot.hold", "lot.unhold"}),
        marker="hold_id",
        named_by="hold_id",
        rows=select(
            col(LotHold.id).label("id"), *_parent("lot", col(Lot.code)), col(LotHold.lifted_at)
        ).join(Lot, col(Lot.id) == col(LotHold.lot_id)),
        columns=(Bound("lifted_at", "lifted", as_stated=lambda row: row["lifted_at"] is not None),),
    ),
    # A storage location: its kind and grid decide what may be put in it, and where.
    Entities(
        table="storage_locations",
        entity_type="storage",
        born_in=frozenset({"storage.add"}),
        rows=select(
            col(StorageLocation.path).label("id"),
            col(StorageLocation.kind),
            col(StorageLocation.grid_rows),
            col(StorageLocation.grid_columns),
            col(_PARENT_LOCATION.path).label("parent_path"),
        ).outerjoin(_PARENT_LOCATION, col(_PARENT_LOCATION.id) == col(StorageLocation.parent_id)),
        columns=(
            Bound("kind", "kind"),
            Bound("grid_rows", "rows"),
            Bound("grid_columns", "columns"),
            Bound("parent_id", "parent", field="parent_path"),
        ),
    ),
    # A retained sample: whether it is still stored, of which lot, and in which position
    # (its storage_positions row, bound from the item's side: every entry placing, moving
    # or removing it states "position").
    Entities(
        table="retained_samples",
        entity_type="retained_sample",
        born_in=frozenset({"sample.retain"}),
        belongs_to=frozenset({"lot"}),
        rows=select(
            col(RetainedSample.code).label("id"),
            *_parent("lot", col(Lot.code)),
            col(RetainedSample.status),
            col(StorageLocation.path).label("box"),
            col(StoragePosition.grid_row),
            col(StoragePosition.grid_column),
        )
        .join(Lot, col(Lot.id) == col(RetainedSample.lot_id))
        .outerjoin(
            StoragePosition, col(StoragePosition.retained_sample_id) == col(RetainedSample.id)
        )
        .outerjoin(StorageLocation, col(StorageLocation.id) == col(StoragePosition.location_id)),
        columns=(
            Bound("status", "status"),
            Bound("lot_id", "lot", field="parent"),
            Bound("storage_positions", "position", as_stated=_place),
        ),
    ),
    *(_late_entries(entity_type) for entity_type in LATE_ENTRY_SUBJECTS),
    # The equipment register: a piece's status and what it is (which steps it may serve,
    # which counter a count file's serial names, whether it needs calibrating)...
    Entities(
        table="equipment",
        entity_type="equipment",
        born_in=frozenset({"equipment.add"}),
        rows=select(
            col(Equipment.code).label("id"),
            col(Equipment.status),
            col(Equipment.kind),
            col(Equipment.serial),
            col(Equipment.calibration_interval_days),
        ),
        columns=(
            Bound("status", "status"),
            Bound("kind", "kind"),
            Bound("serial", "serial"),
            Bound("calibration_interval_days", "calibration_interval_days"),
        ),
    ),
    # ...its calibrations, each named by the entry that recorded it: whether a step could use
    # the piece at its time is read from them...
    Sequenced(
        table="calibrations",
        parent_type="equipment",
        actions=frozenset({"equipment.calibrate"}),
        marker="calibration_id",
        named_by="calibration_id",
        rows=select(
            col(Calibration.id).label("id"),
            *_parent("equipment", col(Equipment.code)),
            col(Calibration.calibrated_at),
            col(Calibration.calibrated_date_only),
            col(Calibration.due_on),
            col(Calibration.due_at),
            col(Calibration.result),
        ).join(Equipment, col(Equipment.id) == col(Calibration.equipment_id)),
        columns=(
            Bound(
                "calibrated_at",
                "calibrated_at",
                as_stated=lambda row: json_time(row["calibrated_at"]),
            ),
            Bound("calibrated_date_only", "calibrated_date_only"),
            Bound("due_on", "due_on", as_stated=lambda row: row["due_on"].isoformat()),
            Bound("due_at", "due_at", as_stated=lambda row: json_time(row["due_at"])),
            Bound("result", "result"),
        ),
    ),
    # ...and which step used it under which calibration.
    *(_equipment_uses(entity_type) for entity_type in USE_SUBJECTS),
    # A shipment: whether vials may still be packed, sent, received or reported lost, where
    # they went, when each step was (the next must come after it), how the receiving site
    # found the temperature, and the logger file kept (whose bytes audit verify also hashes).
    Entities(
        table="shipments",
        entity_type="shipment",
        born_in=frozenset({"shipment.create"}),
        rows=select(
            _shipment_code(col(Shipment.id)).label("id"),
            col(Shipment.status),
            col(Shipment.site_code),
            col(Shipment.site_name),
            col(Shipment.site_address),
            col(Shipment.courier),
            col(Shipment.logger),
            col(Shipment.created_at),
            col(Shipment.dispatched_at),
            col(Shipment.received_at),
            col(Shipment.temperature_ok),
            col(LoggerFile.sha256).label("logger_file_sha256"),
        ).outerjoin(LoggerFile, col(LoggerFile.shipment_id) == col(Shipment.id)),
        columns=(
            Bound("status", "status"),
            Bound("site_code", "site"),
            # The consignee and the hand-over as made: what the batch record tracks the vials to.
            Bound("site_name", "site_name"),
            Bound("site_address", "site_address"),
            Bound("courier", "courier"),
            Bound("logger", "logger"),
            Bound("created_at", "created_at", as_stated=lambda row: json_time(row["created_at"])),
            Bound(
                "dispatched_at",
                "dispatched_at",
                before_stated=None,
                as_stated=lambda row: json_time(row["dispatched_at"]),
            ),
            Bound(
                "received_at",
                "received_at",
                before_stated=None,
                as_stated=lambda row: json_time(row["received_at"]),
            ),
            Bound("temperature_ok", "temperature_ok", before_stated=None),
            Bound(
                "logger_files.sha256",
                "logger_file_sha256",
                before_stated=None,
                field="logger_file_sha256",
            ),
        ),
    ),
    # Which shipment a vial is packed in, bound from the vial's side (shipment.add and
    # shipment.remove are entries about the vial, naming the row): a vial packed in a
    # shipment not yet dispatched goes to no patient, so a row deleted, moved to another
    # shipment or marked taken out by hand must not set it free.
    Sequenced(
        table="shipment_vials",
        parent_type="vial",
        actions=frozenset({"shipment.add", "shipment.remove"}),
        marker="packed_id",
        named_by="packed_id",
        rows=select(
            col(ShipmentVial.id).label("id"),
            *_parent("vial", col(Vial.code)),
            _shipment_code(col(ShipmentVial.shipment_id)).label("shipment_code"),
            col(ShipmentVial.removed_at),
        ).join(Vial, col(Vial.id) == col(ShipmentVial.vial_id)),
        columns=(
            Bound("shipment_id", "shipment", field="shipment_code"),
            Bound(
                "removed_at",
                "removed",
                before_stated=False,
                as_stated=lambda row: row["removed_at"] is not None,
            ),
        ),
    ),
)


# --- the trail, folded ------------------------------------------------------------------------


class _Trail:
    """What the trail states of the bound rows, built from its entries oldest first."""

    def __init__(self, bindings: tuple[Binding, ...]) -> None:
        self.stated: dict[Subject, dict[str, Any]] = {}
        self.born: dict[Subject, int] = {}  # each entity born on record: its first entry
        self.listing: set[Subject] = set()  # parents whose entry listed their children
        # (binding, parent id) -> (seq, new value) of each entry that recorded one of its rows
        self.recorded: dict[tuple[int, str], list[tuple[int, dict[str, Any]]]] = {}
        # (binding, parent id) -> row id -> (its first entry, what its entries last stated)
        self.named: dict[tuple[int, str], dict[str, tuple[int, dict[str, Any]]]] = {}
        self._keys: dict[str, set[str]] = {}
        self._births: dict[str, set[str]] = {}
        self._listings: dict[tuple[str, str], list[tuple[str, Listing]]] = {}
        self._sequences: dict[tuple[str, str], list[tuple[int, Sequenced]]] = {}
        for index, binding in enumerate(bindings):
            if isinstance(binding, Sequenced):
                for action in binding.actions:
                    routes = self._sequences.setdefault((binding.parent_type, action), [])
                    routes.append((index, binding))
                continue
            keys = self._keys.setdefault(binding.entity_type, set())
            keys.update(bound.key for bound in binding.columns)
            self._births.setdefault(binding.entity_type, set()).update(binding.born_in)
            if binding.listed_in is not None:
                listing = binding.listed_in
                routes_by = self._listings.setdefault((listing.parent_type, listing.action), [])
                routes_by.append((binding.entity_type, listing))
        self._needles = {
            entity_type: tuple(f'"{key}":' for key in keys)
            for entity_type, keys in self._keys.items()
        }

    @property
    def entity_types(self) -> set[str]:
        """Every entity type whose entries can say something of a bound row."""
        return {
            *self._keys,
            *(kind for kind, _ in self._listings),
            *(k for k, _ in self._sequences),
        }

    def add(
        self, seq: int, entity_type: str, entity_id: str, action: str, text: str | None
    ) -> None:
        subject = (entity_type, entity_id)
        if action in self._births.get(entity_type, ()):
            self.born.setdefault(subject, seq)
        if text is None:
            return
        listings = self._listings.get((entity_type, action), ())
        sequences = self._sequences.get((entity_type, action), ())
        needles = self._needles.get(entity_type, ())
        # Most entries state no bound key: they are not parsed at all.
        if not listings and not sequences and not any(needle in text for needle in needles):
            return
        new = json.loads(text)
        if not isinstance(new, dict):
            return
        keys = self._keys.get(entity_type, ())
        if any(key in new for key in keys):
            stated = self.stated.setdefault(subject, {})
            stated.update((key, new[key]) for key in keys if key in new)
        for child_type, listing in listings:
            children = new.get(listing.key)
            if not isinstance(children, list):
                continue
            self.listing.add(subject)
            for child_id in children:
                child = (child_type, str(child_id))
                self.born.setdefault(child, seq)
                stated = self.stated.setdefault(child, {})
                stated[listing.parent_key] = entity_id
                stated.update(
                    (mine, new[theirs]) for mine, theirs in listing.copied.items() if theirs in new
                )
        for index, binding in sequences:
            if binding.marker not in new:
                continue
            if binding.named_by is None:
                self.recorded.setdefault((index, entity_id), []).append((seq, new))
            else:
                rows = self.named.setdefault((index, entity_id), {})
                rows.setdefault(str(new.get(binding.named_by)), (seq, {}))[1].update(new)


# --- comparing rows with the trail -------------------------------------------------------------


def _first_disagreement(
    bindings: tuple[Binding, ...], trail: _Trail, rows: list[list[RowMapping]]
) -> Disagreement | None:
    for index, (binding, found) in enumerate(zip(bindings, rows, strict=True)):
        if isinstance(binding, Entities):
            disagreement = _entities_disagree(binding, trail, found)
        else:
            disagreement = _sequence_disagrees(index, binding, trail, found)
        if disagreement is not None:
            return disagreement
    return None


def _entities_disagree(
    binding: Entities, trail: _Trail, rows: list[RowMapping]
) -> Disagreement | None:
    present = set()
    for row in rows:
        entity_id = str(row["id"])
        subject = (binding.entity_type, entity_id)
        present.add(entity_id)
        if subject not in trail.born and not _born_before_listing(binding, trail, row):
            return Disagreement(
                table=binding.table,
                id=entity_id,
                column=None,
                detail="the trail does not record this row",
            )
        differs = _columns_differ(
            binding.table, entity_id, binding.columns, row, trail.stated.get(subject, {})
        )
        if differs is not None:
            return differs
    for (entity_type, entity_id), seq in sorted(trail.born.items(), key=lambda item: item[1]):
        if entity_type == binding.entity_type and entity_id not in present:
            return Disagreement(
                table=binding.table,
                id=entity_id,
                column=None,
                detail=f"the trail records this row (entry {seq}); the table has none",
            )
    return None


def _born_before_listing(binding: Entities, trail: _Trail, row: RowMapping) -> bool:
    """A listed row whose parent's entry lists no rows: an earlier lims did not list them."""
    if binding.listed_in is None:
        return False
    return (row["parent_type"], row["parent"]) not in trail.listing


def _sequence_disagrees(
    index: int, binding: Sequenced, trail: _Trail, rows: list[RowMapping]
) -> Disagreement | None:
    by_parent: dict[str, list[RowMapping]] = {}
    for row in rows:
        by_parent.setdefault(str(row["parent"]), []).append(row)
    if binding.named_by is not None:
        return _named_rows_disagree(index, binding, trail, by_parent)
    parents = by_parent.keys() | {parent for at, parent in trail.recorded if at == index}
    for parent in sorted(parents):
        found = by_parent.get(parent, [])
        entries = trail.recorded.get((index, parent), [])
        for row, (_, new) in zip(found, entries, strict=False):
            differs = _columns_differ(binding.table, str(row["id"]), binding.columns, row, new)
            if differs is not None:
                return differs
        if len(found) > len(entries):
            return Disagreement(
                table=binding.table,
                id=str(found[len(entries)]["id"]),
                column=None,
                detail="the trail does not record this row",
            )
        if len(entries) > len(found):
            seq = entries[len(found)][0]
            return Disagreement(
                table=binding.table,
                id=None,
                column=None,
                detail=(
                    f"entry {seq} about {binding.parent_type} {parent} records a row "
                    "the table lacks"
                ),
            )
    return None


def _named_rows_disagree(
    index: int, binding: Sequenced, trail: _Trail, by_parent: dict[str, list[RowMapping]]
) -> Disagreement | None:
    parents = by_parent.keys() | {parent for at, parent in trail.named if at == index}
    for parent in sorted(parents):
        named = trail.named.get((index, parent), {})
        found = by_parent.get(parent, [])
        for row in found:
            row_id = str(row["id"])
            if row_id not in named:
                return Disagreement(
                    table=binding.table,
                    id=row_id,
                    column=None,
                    detail="the trail does not record this row",
                )
            differs = _columns_differ(binding.table, row_id, binding.columns, row, named[row_id][1])
            if differs is not None:
                return differs
        present = {str(row["id"]) for row in found}
        for row_id, (seq, _) in sorted(named.items(), key=lambda item: item[1][0]):
            if row_id not in present:
                return Disagreement(
                    table=binding.table,
                    id=row_id,
                    column=None,
                    detail=f"the trail records this row (entry {seq}); the table has none",
                )
    return None


def _columns_differ(
    table: str, row_id: str, columns: tuple[Bound, ...], row: RowMapping, stated: Mapping[str, Any]
) -> Disagreement | None:
    for bound in columns:
        expected = stated.get(bound.key, bound.before_stated)
        if expected is NEVER_STATED:
            continue
        actual = bound.value(row)
        if actual != expected or isinstance(actual, bool) != isinstance(expected, bool):
            return Disagreement(
                table=table, id=row_id, column=bound.column, row_value=actual, trail_value=expected
            )
    return None


# --- the whole database, and the rows one command relies on ------------------------------------


def first_disagreement(
    engine: Engine, bindings: tuple[Binding, ...] = BINDINGS
) -> Disagreement | None:
    """The first bound row that is not what the trail states, walking the trail once.

    On a connection of its own, in one snapshot (repeatable read on PostgreSQL), so that a
    command committing meanwhile cannot make its rows and its entries look apart.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            trail = _Trail(bindings)
            rows = [list(connection.execute(_ordered(binding)).mappings()) for binding in bindings]
            for entry in _stream_entries(connection, trail.entity_types):
                trail.add(*entry)
            altered = _altered_file(connection)
    return _first_disagreement(bindings, trail, rows) or altered


# Files read a few at a time: each may be megabytes.
_FILES_AT_ONCE = 16


def _altered_file(connection: Connection) -> Disagreement | None:
    """The first kept file whose bytes no longer hash to its SHA-256: an instrument export
    (the trail binds its SHA-256 through each count read from it: cell_counts, file_sha256)
    or a temperature logger's (through its shipment: shipments, logger_file_sha256). Both
    tables in one query, read as a stream."""
    kept = [
        select(
            literal(name, String).label("kind"),
            table.c.id,
            table.c.sha256,
            table.c.content,
        )
        for name, table in (
            ("count_files", CountFile.__table__),  # type: ignore[attr-defined]
            ("logger_files", LoggerFile.__table__),  # type: ignore[attr-defined]
        )
    ]
    query = union_all(*kept).subquery()
    ordered = select(query).order_by(query.c.kind, query.c.id)
    found = connection.execution_options(stream_results=True, yield_per=_FILES_AT_ONCE)
    for row in found.execute(ordered):
        if hashlib.sha256(row.content).hexdigest() != row.sha256:
            return Disagreement(
                table=row.kind,
                id=str(row.id),
                column=None,
                detail="its content no longer hashes to its SHA-256: the file was changed",
            )
    return None


def _ordered(binding: Binding, subjects: set[Subject] | None = None) -> Select[*tuple[Any, ...]]:
    """A binding's rows by id: all of them, or those that are or belong to the subjects."""
    query = _subquery(binding)
    selected = select(query).order_by(query.c.id)
    if subjects is None:
        return selected
    by_type: dict[str, list[str]] = {}
    for entity_type, entity_id in subjects:
        by_type.setdefault(entity_type, []).append(entity_id)
    conditions: list[ColumnElement[bool]] = []
    if isinstance(binding, Entities) and binding.entity_type in by_type:
        conditions.append(query.c.id.in_(by_type[binding.entity_type]))
    conditions.extend(
        and_(query.c.parent_type == entity_type, query.c.parent.in_(by_type[entity_type]))
        for entity_type in sorted(_parents(binding) & by_type.keys())
    )
    return selected.where(or_(*conditions))


def _reaches(binding: Binding, subjects: set[Subject]) -> bool:
    """Whether any row of the binding can be or belong to one of the subjects."""
    types = {entity_type for entity_type, _ in subjects}
    is_one = isinstance(binding, Entities) and binding.entity_type in types
    return is_one or bool(_parents(binding) & types)


def _parents(binding: Binding) -> frozenset[str]:
    if isinstance(binding, Sequenced):
        return frozenset({binding.parent_type})
    return binding.belongs_to


_SUBQUERIES: dict[int, tuple[Binding, Subquery]] = {}


def _subquery(binding: Binding) -> Subquery:
    """Built once per declaration (kept by identity: declarations hold unhashable parts): a
    command that checks its rows asks for it a dozen times."""
    kept = _SUBQUERIES.get(id(binding))
    if kept is None or kept[0] is not binding:
        kept = _SUBQUERIES[id(binding)] = (binding, binding.rows.subquery())
    return kept[1]


def _stream_entries(
    connection: Connection, entity_types: Iterable[str]
) -> Iterator[tuple[int, str, str, str, str | None]]:
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    query = (
        select(
            table.c.seq, table.c.entity_type, table.c.entity_id, table.c.action, table.c.new_value
        )
        .where(table.c.entity_type.in_(sorted(entity_types)))
        .order_by(table.c.seq)
    )
    result = connection.execution_options(stream_results=True, yield_per=5000).execute(query)
    for row in result:
        yield row.seq, row.entity_type, row.entity_id, row.action, row.new_value


def verify(
    connection: Connection, on_progress: audit.ProgressCallback | None = None
) -> ChainVerification:
    """The chain verified (lims.audit.verify) and the first bound row that disagrees with it."""
    chain = audit.verify(connection, on_progress)
    return replace(chain, disagreement=first_disagreement(connection.engine))


def require_agreement(session: Session, subjects: Iterable[Subject]) -> None:
    """Refuse, saving nothing, unless the rows these subjects rely on agree with the trail.

    A subject brings the rows that belong to it (a lot: its vials, QC results, signatures
    and deviations) and the rows it belongs to (a vial: its lot; a lot: its culture), and
    only their entries are read. The refusal names table, id, column and both values: it
    goes to a logged-in user.
    """
    connection = session.connection()
    rows, scope = _rows_in_scope(connection, set(subjects))
    trail = _Trail(BINDINGS)
    for entry in _entries_about(connection, scope):
        trail.add(*entry)
    disagreement = _first_disagreement(BINDINGS, trail, rows)
    if disagreement is not None:
        raise RuleViolation(REFUSAL + disagreement.describe(values=True))


def _rows_in_scope(
    connection: Connection, scope: set[Subject]
) -> tuple[list[list[RowMapping]], set[Subject]]:
    """Every bound row of an entity in scope or belonging to one, and the scope grown to
    take in the entities these rows are and belong to, until it holds them all."""
    found: list[dict[Any, RowMapping]] = [{} for _ in BINDINGS]
    fresh = set(scope)
    while fresh:
        reached: set[Subject] = set()
        for binding, rows in zip(BINDINGS, found, strict=True):
            if not _reaches(binding, fresh):
                continue
            for row in connection.execute(_ordered(binding, fresh)).mappings():
                rows.setdefault(row["id"], row)
                if isinstance(binding, Entities):
                    reached.add((binding.entity_type, str(row["id"])))
                if "parent" in row and row["parent"] is not None:
                    reached.add((row["parent_type"], str(row["parent"])))
        fresh = reached - scope
        scope |= fresh
    return [sorted(rows.values(), key=lambda row: row["id"]) for rows in found], scope


def _entries_about(
    connection: Connection, subjects: set[Subject]
) -> Iterator[tuple[int, str, str, str, str | None]]:
    """The entries about the subjects, oldest first."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    by_type: dict[str, list[str]] = {}
    for entity_type, entity_id in subjects:
        by_type.setdefault(entity_type, []).append(entity_id)
    query = (
        select(
            table.c.seq, table.c.entity_type, table.c.entity_id, table.c.action, table.c.new_value
        )
        .where(
            or_(
                *(
                    and_(table.c.entity_type == entity_type, table.c.entity_id.in_(ids))
                    for entity_type, ids in by_type.items()
                )
            )
        )
        .order_by(table.c.seq)
    )
    for row in connection.execute(query):
        yield row.seq, row.entity_type, row.entity_id, row.action, row.new_value
