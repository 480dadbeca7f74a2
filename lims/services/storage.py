"""Storage: the register of locations (tanks, freezers, racks, shelves and the boxes in them),
what each holds, and the items kept in box positions (bank vials, retained samples):
moving them and finding them by id, donation or patient.

Where an item is comes from lims.services.placement; how an item is shown, wherever it is
shown (a box, `storage find`, `sample list`, the bank commands, `lot show`, `patient
show`), from items() here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, or_, select

from lims import audit
from lims.config import Settings
from lims.domain import ids, quantities, storage
from lims.domain.states import BANK_VIAL, RETAINED_SAMPLE, Lifecycle
from lims.errors import BadInput, NotFound, RuleViolation, shown
from lims.models import (
    LONG_TEXT_MAX,
    Aspirate,
    BankVial,
    Culture,
    Lot,
    Patient,
    RetainedSample,
    StorageLocation,
    StoragePosition,
)
from lims.services import bindings, late_entries, lookup, placement
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.storage import LocationDetail, LocationView, Moved, StoredItem

# What the trail calls a location: entity type "storage", id its path.
ENTITY_TYPE = "storage"
ITEM_FORMS = (
    f"a bank vial id such as {ids.BankVialId.example} or a retained sample id such as "
    f"{ids.RetainedSampleId.example}"
)


# --- the register of locations ----------------------------------------------------------------


def _grid(
    kind: str, rows: str | int | None, columns: str | int | None
) -> tuple[int | None, int | None]:
    """A box's rows and columns, both required; any other kind has no positions of its own."""
    given = {"rows": rows, "columns": columns}
    if kind != storage.BOX:
        for name, value in given.items():
            if value is not None:
                raise BadInput(
                    name,
                    f"must be left out for a {kind}: only a box has positions (got {shown(value)})",
                )
        return None, None
    if rows is None or columns is None:
        raise BadInput(
            "rows" if rows is None else "columns",
            f"must be given for a box: --rows 1-{storage.BOX_ROWS_MAX} and --columns "
            f"1-{storage.BOX_COLUMNS_MAX}",
        )
    return (
        quantities.whole_number("rows", rows, low=1, high=storage.BOX_ROWS_MAX),
        quantities.whole_number("columns", columns, low=1, high=storage.BOX_COLUMNS_MAX),
    )


def add_location(
    uow: UnitOfWork,
    *,
    path: str,
    kind: str,
    rows: str | int | None = None,
    columns: str | int | None = None,
    temperature_c: str | float | None = None,
) -> LocationView:
    """Add a location to the register, inside the location its path names (which must exist),
    or at the top. Nothing goes inside a box but the items in its positions."""
    session = uow.session
    actor = uow.require("keep_registers")
    typed = storage.storage_path(path)
    if len(typed) > storage.NEW_PATH_MAX:
        raise BadInput(
            "path",
            f"must be at most {storage.NEW_PATH_MAX} characters: the audit trail names a "
            f"location by its path (got {len(typed)})",
        )
    choice("kind", kind, storage.STORAGE_KINDS)
    grid_rows, grid_columns = _grid(kind, rows, columns)
    temperature = (
        None
        if temperature_c is None
        else quantities.within(
            "temperature-c",
            temperature_c,
            unit="°C",
            low=storage.TEMPERATURE_MIN_C,
            high=storage.TEMPERATURE_MAX_C,
        )
    )
    parent = _parent(session, typed)
    full = storage.child_path(None if parent is None else parent.path, storage.path_name(typed))
    existing = session.exec(
        select(StorageLocation.path).where(
            func.lower(col(StorageLocation.path)) == storage.path_key(full)
        )
    ).first()
    if existing == full:
        raise RuleViolation(f"storage location {full} already exists")
    if existing is not None:
        raise RuleViolation(
            f"storage location {existing} already exists: {full} differs from it only in "
            "letter case, which no reader of a label sees"
        )
    now = utcnow()
    location = StorageLocation(
        path=full,
        parent_id=None if parent is None else parent.id,
        kind=kind,
        grid_rows=grid_rows,
        grid_columns=grid_columns,
        temperature_c=temperature,
        added_at=now,
        added_by=actor.username,
    )
    new = {
        "kind": kind,
        "rows": grid_rows,
        "columns": grid_columns,
        "temperature_c": temperature,
        "parent": None if parent is None else parent.path,
    }
    audit.record_created(
        session, location, (ENTITY_TYPE, full), "storage.add", by=actor.username, new=new
    )
    [view] = _location_views(session, [location])
    return view


def _parent(session: Session, path: str) -> StorageLocation | None:
    """The location a new one goes inside: it must exist, and must not be a box."""
    above = storage.parent_path(path)
    if above is None:
        return None
    try:
        parent = lookup.storage_location(session, above)
    except NotFound:
        raise NotFound(
            f"no storage location {above} to put {storage.path_name(path)} in: add it first"
        ) from None
    bindings.require_agreement(session, [(ENTITY_TYPE, parent.path)])  # its kind decides
    if parent.kind == storage.BOX:
        raise RuleViolation(
            f"{parent.path} is a box: nothing goes inside a box but the items in its positions"
        )
    return parent


def _location_views(session: Session, wanted: Sequence[StorageLocation]) -> list[LocationView]:
    """Each location with the capacity and occupancy of the boxes at or under it."""
    inside: dict[int | None, list[StorageLocation]] = {}
    for location in session.exec(select(StorageLocation)).all():
        inside.setdefault(location.parent_id, []).append(location)
    held = dict(
        session.exec(
            select(StoragePosition.location_id, func.count()).group_by(
                col(StoragePosition.location_id)
            )
        ).all()
    )
    totals: dict[int | None, tuple[int, int]] = {}

    def total(location: StorageLocation) -> tuple[int, int]:
        if location.id not in totals:
            capacity = (location.grid_rows or 0) * (location.grid_columns or 0)
            occupied = held.get(location.id or 0, 0)
            for child in inside.get(location.id, []):
                child_capacity, child_occupied = total(child)
                capacity, occupied = capacity + child_capacity, occupied + child_occupied
            totals[location.id] = capacity, occupied
        return totals[location.id]

    return [
        from_record(
            LocationView,
            location,
            rows=location.grid_rows,
            columns=location.grid_columns,
            capacity=total(location)[0],
            occupied=total(location)[1],
        )
        for location in wanted
    ]


def _by_path(locations: Sequence[StorageLocation]) -> list[StorageLocation]:
    return sorted(locations, key=lambda location: storage.path_key(location.path))


def show_location(uow: UnitOfWork, *, path: str) -> LocationDetail:
    """A location and what it holds: a box its items by position, any other its children."""
    session = uow.session
    uow.require("read_records")
    location = lookup.storage_location(session, path)
    children = session.exec(
        select(StorageLocation).where(col(StorageLocation.parent_id) == location.id)
    ).all()
    held = _items(session, vials=_in_box(location), samples=_in_box(location))
    [view] = _location_views(session, [location])
    return LocationDetail(
        location=view,
        positions=[item.view for item in sorted(held, key=lambda item: item.at or ORIGIN)],
        children=_location_views(session, _by_path(children)),
    )


def list_locations(uow: UnitOfWork) -> list[LocationView]:
    session = uow.session
    uow.require("read_records")
    return _location_views(session, _by_path(session.exec(select(StorageLocation)).all()))


def _in_box(location: StorageLocation) -> ColumnElement[bool]:
    return col(StoragePosition.location_id) == location.id


# --- the items kept: bank vials and retained samples, as every command shows them ----------------

ORIGIN = storage.Position(0, 0)  # sorts before every position: an item out of storage has none
Item = BankVial | RetainedSample


class _Found(NamedTuple):
    view: StoredItem
    at: storage.Position | None  # its position in its box, while stored
    order: tuple[int, int, int]  # bank vials, then samples; by culture or lot, then number


def _positions(
    session: Session, found: Sequence[StoragePosition | None]
) -> dict[int, tuple[str, storage.Position]]:
    """Each position row's box path and position, by the row's id."""
    rows = [row for row in found if row is not None]
    paths = dict(
        session.exec(
            select(StorageLocation.id, StorageLocation.path).where(
                col(StorageLocation.id).in_({row.location_id for row in rows})
            )
        ).all()
    )
    return {
        row.id or 0: (paths[row.location_id], storage.Position(row.grid_row, row.grid_column))
        for row in rows
    }


def _view(
    record: Item,
    lifecycle: Lifecycle,
    *,
    patient: str,
    culture: str,
    lot: str | None,
    cells: int | None,
    stored_at: datetime,
    held: StoragePosition | None,
    places: dict[int, tuple[str, storage.Position]],
    late: set[str],
) -> _Found:
    path, at = places[held.id or 0] if held is not None else (None, None)
    view = StoredItem(
        item=record.code,
        item_kind=lifecycle.entity_type,
        short=ids.after_din(record.code),
        status=record.status,
        patient=patient,
        culture_id=culture,
        lot_id=lot,
        cells=cells,
        place=None if path is None or at is None else storage.place_label(path, at),
        path=path,
        position=None if at is None else at.label,
        placed_at=None if held is None else held.placed_at,
        stored_at=stored_at,
        stored_by=record.recorded_by,
        ended_at=record.ended_at,
        ended_by=record.ended_by,
        end_reason=record.end_reason,
        late_entry=record.code in late,
    )
    if isinstance(record, BankVial):
        return _Found(view, at, (0, record.culture_id, record.number))
    return _Found(view, at, (1, record.lot_id, record.number))


def _items(
    session: Session,
    *,
    vials: ColumnElement[bool] | None = None,
    samples: ColumnElement[bool] | None = None,
    stored_only: bool = False,
) -> list[_Found]:
    """The bank vials and retained samples meeting the conditions (on their own columns,
    their culture's or lot's, their patient's or their position's), each with its position."""
    stored = col(StoragePosition.id).is_not(None) if stored_only else None
    found_vials = (
        session.exec(
            select(BankVial, Culture.code, Patient.code, StoragePosition)
            .join(Culture, col(Culture.id) == col(BankVial.culture_id))
            .join(Aspirate, col(Aspirate.id) == col(Culture.aspirate_id))
            .join(Patient, col(Patient.id) == col(Aspirate.patient_id))
            .outerjoin(StoragePosition, col(StoragePosition.bank_vial_id) == col(BankVial.id))
            .where(vials, *(() if stored is None else (stored,)))
        ).all()
        if vials is not None
        else []
    )
    found_samples = (
        session.exec(
            select(RetainedSample, Lot, Patient.code, StoragePosition)
            .join(Lot, col(Lot.id) == col(RetainedSample.lot_id))
            .join(Patient, col(Patient.id) == col(Lot.patient_id))
            .outerjoin(
                StoragePosition, col(StoragePosition.retained_sample_id) == col(RetainedSample.id)
            )
            .where(samples, *(() if stored is None else (stored,)))
        ).all()
        if samples is not None
        else []
    )
    places = _positions(
        session, [row[3] for row in found_vials] + [row[3] for row in found_samples]
    )
    cultures = dict(
        session.exec(
            select(Culture.id, Culture.code).where(
                col(Culture.id).in_({lot.culture_id for _, lot, _, _ in found_samples})
            )
        ).all()
    )
    late = {
        code
        for entity_type, codes in (
            (BANK_VIAL.entity_type, [vial.code for vial, *_ in found_vials]),
            (RETAINED_SAMPLE.entity_type, [sample.code for sample, *_ in found_samples]),
        )
        for code in late_entries.marks(session, entity_type, codes)
    }
    return [
        _view(
            vial,
            BANK_VIAL,
            patient=patient,
            culture=culture,
            lot=None,
            cells=vial.cells,
            stored_at=vial.frozen_at,
            held=held,
            places=places,
            late=late,
        )
        for vial, culture, patient, held in found_vials
    ] + [
        _view(
            sample,
            RETAINED_SAMPLE,
            patient=patient,
            culture=cultures[lot.culture_id],
            lot=lot.code,
            cells=None,
            stored_at=sample.retained_at,
            held=held,
            places=places,
            late=late,
        )
        for sample, lot, patient, held in found_samples
    ]


def items(
    session: Session,
    *,
    vials: ColumnElement[bool] | None = None,
    samples: ColumnElement[bool] | None = None,
    stored_only: bool = False,
) -> list[StoredItem]:
    """The bank vials and retained samples meeting the conditions (see _items): bank vials
    first, each culture's and lot's in the order they were numbered."""
    found = _items(session, vials=vials, samples=samples, stored_only=stored_only)
    return [item.view for item in sorted(found, key=lambda item: item.order)]


def item_view(session: Session, record: Item) -> StoredItem:
    """One bank vial or retained sample as every command shows it."""
    if isinstance(record, BankVial):
        [view] = items(session, vials=col(BankVial.id) == record.id)
    else:
        [view] = items(session, samples=col(RetainedSample.id) == record.id)
    return view


def samples_of_lot(session: Session, lot: Lot) -> list[StoredItem]:
    """Every retained sample of a lot, stored or removed."""
    return items(session, samples=col(RetainedSample.lot_id) == lot.id)


def of_lot(session: Session, lot: Lot, lineage: Sequence[int]) -> list[StoredItem]:
    """What was put in storage from a lot's making, stored or not any more: bank vials frozen
    from the cultures of its lineage (ids) and the lot's retained samples."""
    return items(
        session,
        vials=col(BankVial.culture_id).in_(lineage),
        samples=col(RetainedSample.lot_id) == lot.id,
    )


def stored_of_patient(session: Session, patient: Patient) -> list[StoredItem]:
    """Every item of a patient's in storage now: bank vials of their cultures, retained
    samples of their lots."""
    return items(
        session,
        vials=col(Aspirate.patient_id) == patient.id,
        samples=col(Lot.patient_id) == patient.id,
        stored_only=True,
    )


# --- finding items: by id, donation or patient -----------------------------------------------


@dataclass
class _Scope:
    """What a search covers: items of these cultures (bank vials) and lots (retained
    samples), and these items themselves."""

    cultures: set[int | None] = field(default_factory=set)
    lots: set[int | None] = field(default_factory=set)
    vials: set[int | None] = field(default_factory=set)
    samples: set[int | None] = field(default_factory=set)


def _searched(session: Session, settings: Settings, text: str, field_name: str) -> _Scope:
    """What the argument names: an id lims could read it as, or else a patient's code."""
    scope = _Scope()
    kind = ids.reads_as_lims_id(text)
    if kind is None:
        patient = lookup.patient(session, settings, text, field_name)
        scope.cultures.update(
            session.exec(
                select(Culture.id)
                .join(Aspirate, col(Aspirate.id) == col(Culture.aspirate_id))
                .where(col(Aspirate.patient_id) == patient.id)
            ).all()
        )
        scope.lots.update(
            session.exec(select(Lot.id).where(col(Lot.patient_id) == patient.id)).all()
        )
    elif kind == "DIN":
        aspirate = lookup.aspirate(session, text, field_name)
        scope.cultures.update(
            session.exec(select(Culture.id).where(col(Culture.aspirate_id) == aspirate.id)).all()
        )
    elif kind == ids.CultureId.kind:
        scope.cultures.add(lookup.culture(session, text, field_name).id)
    elif kind == ids.PassageId.kind:
        # Its harvest: what was frozen from it, and the cultures split from it.
        passage = lookup.passage(session, text, field_name)
        scope.vials.update(
            session.exec(select(BankVial.id).where(col(BankVial.passage_id) == passage.id)).all()
        )
        scope.cultures.update(
            session.exec(
                select(Culture.id).where(col(Culture.source_passage_id) == passage.id)
            ).all()
        )
    elif kind == ids.LotId.kind:
        scope.lots.add(lookup.lot(session, text, field_name).id)
    elif kind == ids.BankVialId.kind:
        scope.vials.add(lookup.bank_vial(session, text, field_name).id)
    elif kind == ids.RetainedSampleId.kind:
        scope.samples.add(lookup.retained_sample(session, text, field_name).id)
    else:
        raise BadInput(
            field_name,
            f"must be a bank vial, retained sample, culture, passage, lot, DIN or patient code: "
            f"a {kind} is not kept in storage (got {shown(text)})",
        )
    return _derived(session, scope)


def _derived(session: Session, scope: _Scope) -> _Scope:
    """The scope with what derives from it: the cultures thawed from its bank vials, every
    culture split or thawed from its cultures, and their lots."""
    if scope.vials:
        scope.cultures.update(
            session.exec(
                select(BankVial.thawed_into_id).where(
                    col(BankVial.id).in_(scope.vials), col(BankVial.thawed_into_id).is_not(None)
                )
            ).all()
        )
    fresh = set(scope.cultures)
    while fresh:
        fresh = (
            set(session.exec(select(Culture.id).where(col(Culture.parent_id).in_(fresh))).all())
            - scope.cultures
        )
        scope.cultures |= fresh
    if scope.cultures:
        scope.lots.update(
            session.exec(select(Lot.id).where(col(Lot.culture_id).in_(scope.cultures))).all()
        )
    return scope


def find_items(uow: UnitOfWork, *, item: str, all_items: bool = False) -> list[StoredItem]:
    """The items in storage of what the argument names and of what derives from it (with
    all_items, those that left storage too)."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    scope = _searched(session, settings, item, "item")
    return items(
        session,
        vials=or_(col(BankVial.culture_id).in_(scope.cultures), col(BankVial.id).in_(scope.vials)),
        samples=or_(
            col(RetainedSample.lot_id).in_(scope.lots),
            col(RetainedSample.id).in_(scope.samples),
        ),
        stored_only=not all_items,
    )


# --- moving an item ---------------------------------------------------------------------------


def stored_item(session: Session, text: str, field_name: str) -> tuple[Item, Lifecycle]:
    """The bank vial or retained sample an id names, with its lifecycle."""
    for kind, find, lifecycle in (
        (ids.BankVialId, lookup.bank_vial, BANK_VIAL),
        (ids.RetainedSampleId, lookup.retained_sample, RETAINED_SAMPLE),
    ):
        try:
            kind.read(text, field_name)
        except BadInput:
            continue
        found: Item = find(session, text, field_name)
        return found, lifecycle
    raise BadInput(field_name, f"must be {ITEM_FORMS} (got {shown(text)})")


def move_item(uow: UnitOfWork, *, item: str, to: str, reason: str) -> Moved:
    """Move a stored item to a free position: PATH:POSITION, or PATH for the box's first free
    one. Refused while its record or the box's disagrees with the trail."""
    session = uow.session
    actor = uow.require("record_bench_work")
    path, start = storage.split_place(to, "to")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found, lifecycle = stored_item(session, item, "item")
    box = lookup.storage_location(session, path, "to")
    # Where the item is, whether it is stored, and the box's grid decide the move: they
    # must be what the trail says.
    bindings.require_agreement(
        session, [(lifecycle.entity_type, found.code), (ENTITY_TYPE, box.path)]
    )
    rows, columns = placement.require_box(box, "to")
    if start is not None:
        storage.position(start, rows, columns, "to")
    lifecycle.check("move", code=found.code, status=found.status)
    before = placement.label(placement.where(session, found))
    if before is None:
        raise RuleViolation(f"{lifecycle.kind} {found.code} has no position on record")
    [at] = placement.positions(session, box, start, 1, "to")
    placement.move(session, found, box, at, by=actor.username, when=utcnow())
    audit.record_about(
        session,
        (lifecycle.entity_type, found.code),
        "storage.move",
        by=actor.username,
        old={"position": before},
        new={"position": storage.place_label(box.path, at)},
        reason=reason,
    )
    return Moved(item=item_view(session, found), moved_from=before)
