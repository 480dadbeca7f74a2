"""Which equipment a step used: checked before the step writes, kept with it.

A step that names equipment (`--equipment ID`, repeatable) calls `usable` once its time is
known and before it writes anything. Each piece must be in the register (exit 3), and the
step must name every kind the site requires of it (equipment.required), where the register
holds a piece of that kind that is not retired (exit 2); each piece named must be in
service (its lifecycle's "use") and within calibration at the step's time
(lims.domain.equipment), else exit 1. Once the step's record exists, `record` keeps one
equipment_uses row per piece, with the calibration in force at the step's time, each
stated by an `equipment.use` entry about the step's record (bound:
lims.services.bindings), in the step's transaction; the step's own entry states the
pieces' ids (`stated`).

An imported count is a use, at its analysis time, of the cell counter whose serial its file
gives (`for_counts`), and a step that took a count's numbers used that counter through it:
`affected` follows a count to the step that took it, `equipment_of_lot` takes in the counts
a lot's steps took.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import and_, false, func, or_
from sqlmodel import Session, col, select

from lims import audit
from lims.audit import Subject
from lims.config import Settings
from lims.domain import equipment as rules
from lims.domain.cell_counting import CountReading
from lims.domain.ids import CountId, equipment_id
from lims.domain.states import EQUIPMENT, VIAL
from lims.errors import BadInput, RuleViolation
from lims.models import (
    Aspirate,
    AuditEntry,
    BankVial,
    Calibration,
    CellCount,
    CountFile,
    Culture,
    Equipment,
    EquipmentUse,
    Lot,
    Passage,
    QCResult,
    Vial,
)
from lims.services import lookup
from lims.timeutil import audit_timestamp, json_time, show_time, utcnow
from lims.uow import UnitOfWork
from lims.views import from_record
from lims.views.equipment import CalibrationView, EquipmentUseView

FIELD = "equipment"
ACTION = "equipment.use"  # a use recorded, stated about the step's record
MOVED = "equipment.use_moved"  # its step moved in time (a passage's harvest corrected)
# The states a piece is no longer in the register in (retired): named by no step, required
# of none.
GONE = tuple(name for name, state in EQUIPMENT.states.items() if state.locked)


@dataclass(frozen=True)
class Used:
    """A piece a step used, and the calibration in force at the step's time (None: the
    piece needed none)."""

    piece: Equipment
    calibration: Calibration | None


@dataclass(frozen=True)
class Named:
    """The pieces a step named, each usable at the step's time `at`."""

    at: datetime
    used: tuple[Used, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [use.piece.code for use in self.used]


def piece_rules(piece: Equipment) -> rules.Piece:
    return rules.Piece(piece.code, piece.kind, piece.calibration_interval_days)


def calibrations_of(session: Session, piece: Equipment) -> list[Calibration]:
    """The piece's calibrations, oldest first."""
    return list(
        session.exec(
            select(Calibration)
            .where(col(Calibration.equipment_id) == piece.id)
            .order_by(col(Calibration.calibrated_at), col(Calibration.id))
        ).all()
    )


def _calibration_at(
    session: Session, zone: tzinfo, piece: Equipment, at: datetime, step: str
) -> Calibration | None:
    """The calibration the piece was used under at `at`; refused unless it allowed the use."""
    calibrations = calibrations_of(session, piece)
    refused = rules.unusable(piece_rules(piece), calibrations, at, step=step, zone=zone)
    if refused is not None:
        raise RuleViolation(refused)
    if not rules.under_control(piece_rules(piece), calibrations):
        return None
    return rules.in_force(calibrations, at)


# The entries that change a piece's status: its status at a time is the one the first of
# them after that time left (lims.services.transitions states it as "old").
STATUS_CHANGES = tuple(
    EQUIPMENT.audit_action(action) for action in ("take_out_of_service", "return", "retire")
)


def _status_at(session: Session, piece: Equipment, at: datetime) -> str:
    """The piece's status at `at`: a step dated in the past is judged by it too."""
    left = session.exec(
        select(AuditEntry.old_value)
        .where(
            col(AuditEntry.entity_type) == "equipment",
            col(AuditEntry.entity_id) == piece.code,
            col(AuditEntry.action).in_(STATUS_CHANGES),
            col(AuditEntry.at) > audit_timestamp(at),
        )
        .order_by(col(AuditEntry.seq))
    ).first()
    return piece.status if left is None else str(json.loads(left)["status"])


def _require_usable(
    session: Session, zone: tzinfo, piece: Equipment, at: datetime, step: str
) -> Calibration | None:
    """The piece as it stands (in service), in service at `at` too, and its calibration at
    `at`, for `step` (words: "passage log"): the calibration it is used under."""
    EQUIPMENT.check("use", code=piece.code, status=piece.status)
    return _in_service_then(session, zone, piece, at, step)


def _in_service_then(
    session: Session, zone: tzinfo, piece: Equipment, at: datetime, step: str
) -> Calibration | None:
    """The piece's calibration at `at`, refused unless it was in service then too."""
    then = _status_at(session, piece, at)
    try:
        EQUIPMENT.check("use", code=piece.code, status=then)
    except RuleViolation:
        raise RuleViolation(
            f"{piece_rules(piece).label} was {then.replace('_', ' ')} at the {step} dated "
            f"{show_time(at, zone)}: no step may use it while it is out of service"
        ) from None
    return _calibration_at(session, zone, piece, at, step)


def _typed(equipment: Sequence[str]) -> list[str]:
    """The ids a step names, each well formed and named once."""
    codes: list[str] = []
    for typed in equipment:
        code = equipment_id(typed, FIELD)
        if code in codes:
            raise BadInput(FIELD, f"{code} is named twice")
        codes.append(code)
    return codes


def _require_kinds(session: Session, settings: Settings, step: str, named: Collection[str]) -> None:
    """The step names every kind the site requires of it that the register holds."""
    required = settings.equipment.required.get(step, [])
    if not required:
        return
    # Which kinds are required follows from every piece's kind and status: a piece retired
    # or made another kind by hand must not excuse the step.
    register = session.exec(select(Equipment).order_by(col(Equipment.code))).all()
    if register:
        _require_agreement(session, register)
    held = session.exec(
        select(Equipment.code, Equipment.kind)
        .where(col(Equipment.kind).in_(required), col(Equipment.status).not_in(GONE))
        .order_by(col(Equipment.code))
    ).all()
    missing = rules.missing_kinds(required, {kind for _, kind in held}, named)
    if missing:
        candidates = [code for code, kind in held if kind in missing]
        raise BadInput(
            FIELD, rules.missing_message(rules.EQUIPMENT_STEPS[step], missing, candidates)
        )


def _require_agreement(session: Session, pieces: Iterable[Equipment]) -> None:
    # Only a step that names equipment reads the trail: a plain step's cold start does not
    # load the bindings.
    from lims.services import bindings

    bindings.require_agreement(session, [("equipment", piece.code) for piece in pieces])


def usable(uow: UnitOfWork, *, step: str, equipment: Sequence[str], at: datetime) -> Named:
    """The pieces a step (a key of lims.domain.equipment.EQUIPMENT_STEPS) dated `at` names,
    checked: refused unless each could be used then and the site's required kinds are named."""
    session, settings = uow.session, uow.settings
    pieces = [lookup.equipment(session, code, FIELD) for code in _typed(equipment)]
    _require_kinds(session, settings, step, {piece.kind for piece in pieces})
    if not pieces:
        return Named(at)
    _require_agreement(session, pieces)
    words = rules.EQUIPMENT_STEPS[step]
    return Named(
        at,
        tuple(
            Used(piece, _require_usable(session, settings.tz, piece, at, words)) for piece in pieces
        ),
    )


def for_counts(
    uow: UnitOfWork, *, equipment: Sequence[str], readings: Sequence[CountReading]
) -> list[Named]:
    """For each reading of an imported file, the pieces it used at its analysis time: those
    named, and the cell counter in the register (not retired) whose serial the file gives."""
    session, settings = uow.session, uow.settings
    named = [lookup.equipment(session, code, FIELD) for code in _typed(equipment)]
    counters = _counters(session, {reading.serial for reading in readings if reading.serial})
    kinds = {piece.kind for piece in named} | {piece.kind for piece in counters.values()}
    _require_kinds(session, settings, "count_import", kinds)
    if not named and not counters:
        return [Named(reading.analysed_at) for reading in readings]
    _require_agreement(session, [*named, *counters.values()])
    found = []
    for reading in readings:
        pieces = list(named)
        counter = counters.get(_serial_key(reading.serial)) if reading.serial else None
        if counter is not None and all(piece.id != counter.id for piece in pieces):
            pieces.append(counter)
        words = f"count import of sample {reading.sample!r}"
        at = reading.analysed_at
        found.append(
            Named(
                at,
                tuple(
                    Used(piece, _require_usable(session, settings.tz, piece, at, words))
                    for piece in pieces
                ),
            )
        )
    return found


def _serial_key(serial: str) -> str:
    return serial.strip().upper()


def _counters(session: Session, serials: set[str]) -> dict[str, Equipment]:
    """The register's cell counters (not retired) with these serials, by serial as matched."""
    if not serials:
        return {}
    wanted = {_serial_key(serial) for serial in serials}
    found = session.exec(
        select(Equipment).where(
            col(Equipment.kind) == rules.CELL_COUNTER,
            col(Equipment.status).not_in(GONE),
            func.upper(col(Equipment.serial)).in_(wanted),
        )
    ).all()
    return {_serial_key(piece.serial or ""): piece for piece in found}


def stated(named: Named) -> dict[str, Any]:
    """What a step's own entry states of the equipment it used: nothing when it named none."""
    return {FIELD: named.codes} if named.used else {}


def record(
    session: Session,
    named: Named,
    *,
    action: str,
    subject: Subject,
    culture: Culture | None,
    lot: Lot | None,
    by: str,
) -> None:
    """Keep the uses of a step `action` that made `subject` (its record, now saved), each
    with its entry about that record, in the step's transaction."""
    entity_type, entity_id = subject
    assert entity_type in rules.USE_SUBJECTS, entity_type
    now = utcnow()
    for used in named.used:
        assert used.piece.id is not None
        use = EquipmentUse(
            equipment_id=used.piece.id,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            culture_id=None if culture is None else culture.id,
            lot_id=None if lot is None else lot.id,
            used_at=named.at,
            calibration_id=None if used.calibration is None else used.calibration.id,
            recorded_at=now,
        )
        session.add(use)
        session.flush()
        audit.record_about(
            session,
            subject,
            ACTION,
            by=by,
            new={
                "use_id": use.id,
                FIELD: used.piece.code,
                "step": action,
                "step_at": json_time(named.at),
                "calibration_id": use.calibration_id,
                "on_culture": None if culture is None else culture.code,
                "on_lot": None if lot is None else lot.code,
            },
        )


def move(uow: UnitOfWork, subject: Subject, at: datetime, *, step: str, by: str) -> None:
    """A step moved in time (a passage's harvest corrected): each piece it used must have
    been in service and within calibration at the new time (a piece taken out of service
    since does not make the step wrong), and its uses say so, with the calibration then."""
    session, zone = uow.session, uow.settings.tz
    entity_type, entity_id = subject
    uses = session.exec(
        select(EquipmentUse)
        .where(
            col(EquipmentUse.entity_type) == entity_type,
            col(EquipmentUse.entity_id) == entity_id,
        )
        .order_by(col(EquipmentUse.id))
    ).all()
    if not uses:
        return
    pieces = {use.id: session.get(Equipment, use.equipment_id) for use in uses}
    _require_agreement(session, [piece for piece in pieces.values() if piece is not None])
    for use in uses:
        piece = pieces[use.id]
        assert piece is not None
        calibration = _in_service_then(session, zone, piece, at, rules.EQUIPMENT_STEPS[step])
        use.used_at = at
        use.calibration_id = None if calibration is None else calibration.id
        session.add(use)
        audit.record_about(
            session,
            subject,
            MOVED,
            by=by,
            new={
                "use_id": use.id,
                "step_at": json_time(at),
                "calibration_id": use.calibration_id,
            },
        )
    session.flush()


# --- what used a piece, and what its product reached --------------------------------------


def calibration_view(calibration: Calibration) -> CalibrationView:
    return from_record(CalibrationView, calibration)


def views(session: Session, uses: Sequence[EquipmentUse]) -> list[EquipmentUseView]:
    """The uses as shown, in the order given: the piece, the step, who recorded it, and the
    calibration it was used under."""
    if not uses:
        return []
    pieces = _by_id(session, Equipment, {use.equipment_id for use in uses})
    calibrations = _by_id(
        session, Calibration, {use.calibration_id for use in uses if use.calibration_id}
    )
    cultures = _codes(session, Culture, {use.culture_id for use in uses if use.culture_id})
    lots = _codes(session, Lot, {use.lot_id for use in uses if use.lot_id})
    recorders, taken = _recorders(session, uses)
    shown = []
    for use in uses:
        piece = pieces[use.equipment_id]
        calibration = calibrations.get(use.calibration_id) if use.calibration_id else None
        shown.append(
            EquipmentUseView(
                equipment_id=piece.code,
                kind=piece.kind,
                name=piece.name,
                serial=piece.serial,
                action=use.action,
                record_type=use.entity_type,
                record=use.entity_id,
                culture_id=cultures.get(use.culture_id) if use.culture_id else None,
                lot_id=lots.get(use.lot_id) if use.lot_id else None,
                count_taken_by=taken.get(use.entity_id) if use.entity_type == "count" else None,
                used_at=use.used_at,
                recorded_by=recorders.get((use.entity_type, use.entity_id)),
                calibration=None if calibration is None else calibration_view(calibration),
            )
        )
    return shown


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(model).where(col(model.id).in_(ids)))}


def _codes(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.exec(select(model.id, model.code).where(col(model.id).in_(ids))).all())


def _recorders(
    session: Session, uses: Sequence[EquipmentUse]
) -> tuple[dict[tuple[str, str], str], dict[str, str | None]]:
    """Who recorded each use's step, by (record type, record id), and for each count the step
    that took its numbers."""
    wanted: dict[str, set[str]] = {}
    for use in uses:
        wanted.setdefault(use.entity_type, set()).add(use.entity_id)
    who: dict[tuple[str, str], str] = {}
    for entity_type, model in (("culture", Culture), ("passage", Passage), ("lot", Lot)):
        if entity_type in wanted:
            rows = session.exec(
                select(model.code, model.recorded_by).where(
                    col(model.code).in_(wanted[entity_type])
                )
            ).all()
            who.update(((entity_type, code), by) for code, by in rows)
    if "qc_result" in wanted:
        results = session.exec(
            select(QCResult).where(
                col(QCResult.id).in_({int(entity_id) for entity_id in wanted["qc_result"]})
            )
        ).all()
        who.update((("qc_result", str(result.id)), result.recorded_by) for result in results)
    taken: dict[str, str | None] = {}
    if "count" in wanted:
        numbers = {CountId.read(code, "count").number for code in wanted["count"]}
        counted = session.exec(
            select(CellCount.id, CellCount.used_by, CountFile.imported_by)
            .join(CountFile, col(CountFile.id) == col(CellCount.file_id))
            .where(col(CellCount.id).in_(numbers))
        ).all()
        for number, used_by, imported_by in counted:
            assert number is not None
            code = CountId(number).code
            who[("count", code)] = imported_by
            taken[code] = used_by
    return who, taken


def stated_users(session: Session, piece: Equipment) -> set[Subject]:
    """The records whose trail states they used the piece (an `equipment.use` entry each)."""
    entries = session.exec(
        select(AuditEntry.entity_type, AuditEntry.entity_id, AuditEntry.new_value).where(
            col(AuditEntry.action) == ACTION
        )
    ).all()
    return {
        (entity_type, entity_id)
        for entity_type, entity_id, new in entries
        if new is not None and json.loads(new).get(FIELD) == piece.code
    }


def uses_of(
    session: Session, piece: Equipment, *, since: datetime | None = None
) -> list[EquipmentUse]:
    """The piece's uses by the time of their step, oldest first; only those at or after
    `since` when it is given."""
    query = select(EquipmentUse).where(col(EquipmentUse.equipment_id) == piece.id)
    if since is not None:
        query = query.where(col(EquipmentUse.used_at) >= since)
    return list(session.exec(query.order_by(col(EquipmentUse.used_at), col(EquipmentUse.id))).all())


@dataclass(frozen=True)
class Affected:
    """What uses of a piece reached: lots (a vial of each not yet administered or
    destroyed), and cultures with no lot."""

    lots: list[Lot]
    cultures: list[Culture]


def affected(session: Session, uses: Sequence[EquipmentUse]) -> Affected:
    """The lots and cultures whose product went through these uses: a lot whose formulation
    or QC used the piece, or formulated from a culture whose steps used it or from one
    split (however far down) from that culture's harvests at or after the use. A count's use
    is the use of the step that took its numbers."""
    lots: dict[int, Lot] = {}
    reached: dict[int, datetime] = {}  # culture id -> its product went through from then on
    for use in uses:
        for culture_id, lot_id, since in _steps_through(session, use):
            if lot_id is not None:
                found = session.get(Lot, lot_id)
                assert found is not None
                lots[lot_id] = found
            elif culture_id is not None and (
                culture_id not in reached or since < reached[culture_id]
            ):
                reached[culture_id] = since
    frontier = list(reached.items())
    while frontier:
        culture_id, since = frontier.pop()
        children = session.exec(
            select(Culture)
            .join(Passage, col(Passage.id) == col(Culture.source_passage_id))
            .where(col(Culture.parent_id) == culture_id, col(Passage.harvested_at) >= since)
        ).all()
        for child in children:
            assert child.id is not None
            if child.id not in reached or child.started_at < reached[child.id]:
                reached[child.id] = child.started_at
                frontier.append((child.id, child.started_at))
    with_lots: set[int] = set()
    if reached:
        for lot in session.exec(select(Lot).where(col(Lot.culture_id).in_(reached))).all():
            assert lot.id is not None
            lots[lot.id] = lot
            with_lots.add(lot.culture_id)
    cultures = [culture for culture in _by_id(session, Culture, set(reached) - with_lots).values()]
    return Affected(
        lots=sorted(
            (lot for lot in lots.values() if not _all_vials_gone(session, lot)),
            key=lambda lot: lot.code,
        ),
        cultures=sorted(cultures, key=lambda culture: culture.code),
    )


def _all_vials_gone(session: Session, lot: Lot) -> bool:
    """Every vial of the lot administered or destroyed: nothing of it is left to hold back."""
    statuses = session.exec(select(Vial.status).where(col(Vial.lot_id) == lot.id)).all()
    return bool(statuses) and all(VIAL.locked(status) for status in statuses)


def _steps_through(
    session: Session, use: EquipmentUse
) -> list[tuple[int | None, int | None, datetime]]:
    """(culture id, lot id, since) of the step a use was: the count's taker for a count."""
    if use.entity_type != "count":
        return [(use.culture_id, use.lot_id, use.used_at)]
    number = CountId.read(use.entity_id, "count").number
    passage = session.exec(select(Passage).where(col(Passage.count_id) == number)).first()
    if passage is not None:
        return [(passage.culture_id, None, passage.harvested_at)]
    culture = session.exec(select(Culture).where(col(Culture.count_id) == number)).first()
    if culture is not None:
        return [(culture.id, None, culture.started_at)]
    lot = session.exec(select(Lot).where(col(Lot.count_id) == number)).first()
    if lot is not None:
        return [(None, lot.id, lot.formulated_at)]
    aspirate = session.exec(select(Aspirate).where(col(Aspirate.count_id) == number)).first()
    if aspirate is None:
        return []  # no step has taken its numbers
    started = session.exec(select(Culture).where(col(Culture.aspirate_id) == aspirate.id)).all()
    return [(culture.id, None, culture.started_at) for culture in started]


def equipment_of_lot(session: Session, lot: Lot) -> list[EquipmentUseView]:
    """Every piece a lot's product went through, step by step, oldest first: the starts and
    passages of its culture and of the cultures it descends from (up to the harvest it was
    split from), the counts those steps, the lot and its aspirate took, and the lot's own
    formulation and QC, and the freezing of any bank vial a culture of it was thawed from."""
    culture = session.get(Culture, lot.culture_id)
    assert culture is not None
    lineage: list[tuple[Culture, datetime | None]] = [(culture, None)]
    child = culture
    while child.parent_id is not None:
        parent = session.get(Culture, child.parent_id)
        source = session.get(Passage, child.source_passage_id)
        assert parent is not None
        assert source is not None
        lineage.append((parent, source.harvested_at))
        child = parent
    passages = [
        passage
        for ancestor, until in lineage
        for passage in session.exec(
            select(Passage).where(col(Passage.culture_id) == ancestor.id)
        ).all()
        if until is None or passage.harvested_at <= until
    ]
    aspirate = session.get(Aspirate, lot.aspirate_id)
    assert aspirate is not None
    counted = {
        count_id
        for count_id in (
            lot.count_id,
            aspirate.count_id,
            *(ancestor.count_id for ancestor, _ in lineage),
            *(passage.count_id for passage in passages),
        )
        if count_id is not None
    }
    # A thawed culture's cells went through the freezing of the bank vial it was thawed from.
    thawed_from = session.exec(
        select(BankVial.code).where(
            col(BankVial.thawed_into_id).in_([ancestor.id for ancestor, _ in lineage])
        )
    ).all()
    steps = [
        ("culture", [ancestor.code for ancestor, _ in lineage]),
        ("passage", [passage.code for passage in passages]),
        ("count", [CountId(number).code for number in counted]),
        ("bank_vial", list(thawed_from)),
    ]
    uses = session.exec(
        select(EquipmentUse)
        .where(
            or_(
                col(EquipmentUse.lot_id) == lot.id,
                *(
                    and_(
                        col(EquipmentUse.entity_type) == entity_type,
                        col(EquipmentUse.entity_id).in_(codes),
                    )
                    if codes
                    else false()
                    for entity_type, codes in steps
                ),
            )
        )
        .order_by(col(EquipmentUse.used_at), col(EquipmentUse.id))
    ).all()
    return views(session, uses)
