"""The cell bank: cells of a culture's latest harvest frozen into bank vials kept in a box,
each thawed into a child culture that carries the lineage on, or discarded.

Frozen cells are drawn from the harvest as a split culture's are: what the parent
reseeded, what its split children were plated with and what was frozen cannot exceed it
(lims.domain.lineage). A culture thawed from a vial is seeded from the vial's cells,
which the harvest already gave, so it draws nothing more from it.

Each vial is an entity of the trail (bank_vial, its code), born in its own
bank_vial.freeze entry, which states what it holds and the position it was put in; its
thaw, discard or move states its status and position (None once it has left storage).
The freeze's culture.freeze entry lists the vials, so that the culture's history holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims import audit
from lims.domain import ids, lineage, quantities, storage
from lims.domain.states import BANK_VIAL, CULTURE
from lims.errors import RuleViolation
from lims.models import (
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    Aspirate,
    BankVial,
    Culture,
    Passage,
    Patient,
    StorageLocation,
    StoragePosition,
)
from lims.services import (
    bindings,
    consent,
    cultures,
    equipment_use,
    late_entries,
    lookup,
    placement,
    records,
)
from lims.services import deviations as deviation_rules
from lims.services import reagents as reagent_rules
from lims.services.aspirates import din_of
from lims.services.transitions import change_status
from lims.timeutil import after, past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views.bank import BankVialView, FreezeView
from lims.views.bench import CultureDetail

ENTITY = BANK_VIAL.entity_type  # bank_vial
FREEZE = "bank_vial.freeze"
# One freeze fills positions of one box: never more than a box holds.
VIALS_MAX = storage.BOX_ROWS_MAX * storage.BOX_COLUMNS_MAX
LOW_VIABILITY = "low_viability"  # the deviation a passage of low viability opens too


# --- reading --------------------------------------------------------------------------------


def _positions(session: Session, vials: Sequence[BankVial]) -> dict[int, str]:
    """Where each stored vial is, PATH:POSITION, by the vial's id."""
    rows = session.exec(
        select(
            StoragePosition.bank_vial_id,
            StorageLocation.path,
            StoragePosition.grid_row,
            StoragePosition.grid_column,
        )
        .join(StorageLocation, col(StorageLocation.id) == col(StoragePosition.location_id))
        .where(col(StoragePosition.bank_vial_id).in_([vial.id for vial in vials]))
    ).all()
    return {
        vial_id: storage.place_label(path, storage.Position(row, column))
        for vial_id, path, row, column in rows
        if vial_id is not None
    }


def bank_vial_views(session: Session, vials: Sequence[BankVial]) -> list[BankVialView]:
    """The vials as shown, each with its culture's patient, the harvest it holds, where it
    is or what became of it, and its late-entry mark."""
    if not vials:
        return []
    culture_ids = {vial.culture_id for vial in vials} | {
        vial.thawed_into_id for vial in vials if vial.thawed_into_id is not None
    }
    by_id = {
        culture.id: culture
        for culture in session.exec(select(Culture).where(col(Culture.id).in_(culture_ids))).all()
    }
    patients = dict(
        session.exec(
            select(Aspirate.id, Patient.code)
            .join(Patient, col(Patient.id) == col(Aspirate.patient_id))
            .where(col(Aspirate.id).in_({culture.aspirate_id for culture in by_id.values()}))
        ).all()
    )
    harvests = {
        passage.id: passage
        for passage in session.exec(
            select(Passage).where(col(Passage.id).in_({vial.passage_id for vial in vials}))
        ).all()
    }
    positions = _positions(session, vials)
    marks = late_entries.marks(session, ENTITY, [vial.code for vial in vials])
    views = []
    for vial in vials:
        culture, harvest = by_id[vial.culture_id], harvests[vial.passage_id]
        late = marks.get(vial.code, [])
        thawed_into = None if vial.thawed_into_id is None else by_id[vial.thawed_into_id].code
        views.append(
            BankVialView(
                bank_vial_id=vial.code,
                culture_id=culture.code,
                patient=patients[culture.aspirate_id],
                passage_id=harvest.code,
                passage_number=harvest.number,
                cumulative_population_doublings=harvest.cumulative_population_doublings,
                cells=vial.cells,
                medium=vial.medium,
                frozen_at=vial.frozen_at,
                recorded_by=vial.recorded_by,
                status=vial.status,
                position=None if vial.id is None else positions.get(vial.id),
                thawed_into=thawed_into,
                thaw_viability=vial.thaw_viability,
                ended_at=vial.ended_at,
                ended_by=vial.ended_by,
                end_reason=vial.end_reason,
                late_entry=bool(late),
                late_entries=late,
            )
        )
    return views


def list_bank_vials(
    uow: UnitOfWork, *, culture: str | None = None, include_ended: bool = False
) -> list[BankVialView]:
    """Bank vials by id: those still stored, or every one (`include_ended`); of one culture."""
    session = uow.session
    uow.require("read_records")
    query = select(BankVial)
    if culture is not None:
        query = query.where(col(BankVial.culture_id) == lookup.culture(session, culture).id)
    if not include_ended:
        # Still in storage: what may still be moved.
        query = query.where(col(BankVial.status).in_(BANK_VIAL.action("move").sources))
    return bank_vial_views(session, session.exec(query.order_by(col(BankVial.code))).all())


def show_bank_vial(uow: UnitOfWork, *, bank_vial: str) -> BankVialView:
    session = uow.session
    uow.require("read_records")
    [view] = bank_vial_views(session, [lookup.bank_vial(session, bank_vial)])
    return view


# --- freezing -------------------------------------------------------------------------------


def freeze(
    uow: UnitOfWork,
    *,
    culture: str,
    cells_per_vial: str | int,
    vials: str | int,
    into: str,
    medium: str | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    equipment: Sequence[str] = (),
) -> FreezeView:
    """Freeze cells harvested at the culture's latest passage into `vials` bank vials of
    `cells_per_vial` cells each, put in the box `into` names: from its position on in
    row-major order (each one free), or in the box's first free positions."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    cells = quantities.cell_count("cells-per-vial", cells_per_vial)
    count = quantities.whole_number("vials", vials, low=1, high=VIALS_MAX)
    kept_in = None if medium is None else free_text("medium", medium, max_length=SHORT_TEXT_MAX)
    path, start = storage.split_place(into, "into")
    zone = settings.tz
    now = utcnow()
    frozen_at = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, frozen_at, now, late_reason)
    parent = lookup.culture(session, culture)
    box = lookup.storage_location(session, path, "into")
    # The box's grid decides where the vials go: it must be what the trail says.
    bindings.require_agreement(session, [("storage", box.path)])
    places = placement.positions(session, box, start, count, "into")
    consent.require_in_force_for_culture(session, zone, parent, "culture freeze")
    CULTURE.check("freeze", code=parent.code, status=parent.status)
    passages = cultures.passages_of(session, parent)
    if not passages:
        raise RuleViolation(
            f"culture {parent.code} has no passage yet: cells are frozen from a harvest; log "
            "the harvest with `lims passage log` first"
        )
    source = passages[-1]
    after("at", frozen_at, source.harvested_at, f"the harvest of {source.code}", zone)
    children, frozen = cultures.harvest_shares(session, source)
    # What the harvest already gave decides what is left of it.
    given = [("culture", child.code) for child in children]
    given += [(ENTITY, vial.code) for vial in frozen]
    if given:
        bindings.require_agreement(session, given)
    left = lineage.left_to_split(
        source.harvested,
        source.seeded,
        [child.cells_plated for child in children],
        [vial.cells for vial in frozen],
    )
    total = count * cells
    if total > left:
        shares = "".join(f", {share}" for share in cultures.shares_described(children, frozen))
        raise RuleViolation(
            f"cannot freeze {count} × {cells:,} = {total:,} cells from the harvest of "
            f"{source.code}: {left:,} of its cells are left ({source.harvested:,} harvested, "
            f"{source.seeded:,} reseeded in {parent.code}{shares})"
        )
    used = equipment_use.usable(uow, step="culture_freeze", equipment=equipment, at=frozen_at)

    assert parent.id is not None
    assert source.id is not None
    last = session.exec(
        select(func.max(BankVial.number)).where(col(BankVial.culture_id) == parent.id)
    ).one()
    made = [
        BankVial(
            code=identity.code,
            culture_id=parent.id,
            passage_id=source.id,
            number=identity.number,
            cells=cells,
            medium=kept_in,
            frozen_at=frozen_at,
            recorded_at=now,
            recorded_by=actor.username,
        )
        for identity in ids.bank_vial_ids(ids.CultureId.parse(parent.code), last, count)
    ]
    session.add_all(made)
    session.flush()
    placement.place(session, box, made, places, by=actor.username, when=frozen_at)
    audit.record_about(
        session,
        ("culture", parent.code),
        CULTURE.audit_action("freeze"),
        by=actor.username,
        new={
            "passage": source.code,
            "cells_per_vial": cells,
            "medium": kept_in,
            "frozen_at": frozen_at,
            "into": box.path,
            "bank_vials": [vial.code for vial in made],
            **equipment_use.stated(used),
        },
    )
    for vial, place in zip(made, places, strict=True):
        audit.record_about(
            session,
            (ENTITY, vial.code),
            FREEZE,
            by=actor.username,
            new={
                "culture": parent.code,
                "passage": source.code,
                "cells": cells,
                "medium": kept_in,
                "frozen_at": frozen_at,
                "status": vial.status,
                "position": storage.place_label(box.path, place),
            },
        )
        late_entries.record(
            session,
            late,
            action=FREEZE,
            subject=(ENTITY, vial.code),
            at=frozen_at,
            entered_at=now,
            by=actor.username,
        )
        # Each vial went through the cabinet (and freezer) named: a use per vial, as a
        # use belongs to one record and a culture may be frozen from again.
        equipment_use.record(
            session,
            used,
            action=CULTURE.audit_action("freeze"),
            subject=(ENTITY, vial.code),
            culture=parent,
            lot=None,
            by=actor.username,
        )
    return FreezeView(
        culture_id=parent.code,
        passage_id=source.code,
        frozen_at=frozen_at,
        cells_per_vial=cells,
        cells=total,
        into=box.path,
        left_in_harvest=left - total,
        bank_vials=bank_vial_views(session, made),
    )


# --- thawing and discarding -----------------------------------------------------------------


def _relied_on(session: Session, bank_vial: str) -> BankVial:
    """The vial, once its row is found to agree with the trail."""
    vial = lookup.bank_vial(session, bank_vial)
    bindings.require_agreement(session, [(ENTITY, vial.code)])
    return vial


def thaw(
    uow: UnitOfWork,
    *,
    bank_vial: str,
    viability: str | float,
    seeded: str | int,
    vessels: str | int,
    area_cm2: str | float,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    reagents: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> CultureDetail:
    """Thaw a stored bank vial and seed a child culture from its cells.

    The child carries on the passage number and cumulative PD of the harvest the vial was
    frozen from, as a split culture does; a post-thaw viability below
    expansion.viability_flag_below_percent opens a deviation on it.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    thaw_viability = quantities.percentage("viability", viability)
    cells = quantities.cell_count("seeded", seeded)
    vessel_count, area = cultures.plating("", vessels, area_cm2)
    zone = settings.tz
    now = utcnow()
    started = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, started, now, late_reason)
    vial = _relied_on(session, bank_vial)
    parent = session.get(Culture, vial.culture_id)
    assert parent is not None
    consent.require_in_force_for_culture(session, zone, parent, "bank thaw")
    BANK_VIAL.check("thaw", code=vial.code, status=vial.status)
    if cells > vial.cells:
        raise RuleViolation(
            f"bank vial {vial.code} holds {vial.cells:,} cells: no more can be seeded from it "
            f"(got --seeded {cells:,})"
        )
    after("at", started, vial.frozen_at, f"the freezing of bank vial {vial.code}", zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, started)
    used = equipment_use.usable(uow, step="bank_thaw", equipment=equipment, at=started)

    source = session.get(Passage, vial.passage_id)
    aspirate = session.get(Aspirate, parent.aspirate_id)
    assert source is not None
    assert aspirate is not None
    assert aspirate.id is not None
    identity = ids.next_culture(
        din_of(aspirate),
        session.exec(
            select(func.max(Culture.number)).where(col(Culture.aspirate_id) == aspirate.id)
        ).one(),
    )
    plated: dict[str, Any] = {
        "kind": cultures.THAWED,
        "cells_plated": cells,
        "vessels": vessel_count,
        "area_cm2": area,
        "method": f"thawed from bank vial {vial.code}",
        "started_at": started,
    }
    child = Culture(
        code=identity.code,
        aspirate_id=aspirate.id,
        number=identity.number,
        parent_id=parent.id,
        source_passage_id=source.id,
        **plated,
    )
    records.create(
        session,
        child,
        "culture.thaw",
        by=actor,
        at=now,
        new={
            "din": din_of(aspirate).with_check,
            "parent": parent.code,
            "source_passage": source.code,
            "bank_vial": vial.code,
            "passage_number": source.number,
            "cumulative_population_doublings": source.cumulative_population_doublings,
            "thaw_viability": thaw_viability,
            **plated,
            "reagents": [f"{lot.name}:{lot.lot}" for lot in lots],
            **equipment_use.stated(used),
        },
        late_reason=late,
        stated_at=started,
    )
    assert child.id is not None
    cultures.record_materials(session, lots, used, "culture.thaw", child, by=actor.username)
    placement.vacate(session, vial)
    vial.thawed_into_id, vial.thaw_viability = child.id, thaw_viability
    vial.ended_at, vial.ended_by = started, actor.username
    change_status(
        session,
        BANK_VIAL,
        vial,
        "thaw",
        by=actor.username,
        new={
            "thawed_into": child.code,
            "thaw_viability": thaw_viability,
            "position": None,
            "ended_at": started,
        },
    )
    limit = settings.expansion.viability_flag_below_percent
    if thaw_viability < limit:
        deviation_rules.open_on_culture(
            session,
            actor,
            culture_id=child.id,
            culture_code=child.code,
            passage_id=None,
            passage_code=None,
            kind=LOW_VIABILITY,
            description=f"{child.code}: viability {thaw_viability:g} % after thawing bank vial "
            f"{vial.code} is below {limit:g} %",
        )
    session.flush()
    return cultures.culture_detail(session, child)


def discard(
    uow: UnitOfWork,
    *,
    bank_vial: str,
    reason: str,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> BankVialView:
    """Take a stored bank vial out of the bank for good; its position is freed."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    now = utcnow()
    when = past_moment("at", at, settings.tz, now)
    late = late_entries.reason_for(uow, when, now, late_reason)
    vial = _relied_on(session, bank_vial)
    BANK_VIAL.check("discard", code=vial.code, status=vial.status)
    after("at", when, vial.frozen_at, f"the freezing of bank vial {vial.code}", settings.tz)
    placement.vacate(session, vial)
    vial.ended_at, vial.ended_by, vial.end_reason = when, actor.username, reason
    change_status(
        session,
        BANK_VIAL,
        vial,
        "discard",
        by=actor.username,
        new={"position": None, "ended_at": when},
        reason=reason,
    )
    late_entries.record(
        session,
        late,
        action=BANK_VIAL.audit_action("discard"),
        subject=(ENTITY, vial.code),
        at=when,
        entered_at=now,
        by=actor.username,
    )
    session.flush()
    [view] = bank_vial_views(session, [vial])
    return view
