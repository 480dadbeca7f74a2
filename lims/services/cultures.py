"""Cultures and their passages: what technicians log at the bench, with growth derived.

Every number a technician types is checked before anything is written; every
growth value is derived from the counts (lims.domain.growth) and recomputed
for later passages when an earlier one is corrected. A passage that breaks a
bench limit is saved but flagged, with a deviation opened on its culture.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims import audit
from lims.auth import Actor
from lims.config import ExpansionSettings, Settings
from lims.domain import growth, ids, quantities
from lims.domain.states import CULTURE, DEVIATION, LOT
from lims.errors import BadInput, RuleViolation
from lims.models import (
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    Aspirate,
    Culture,
    Deviation,
    Lot,
    Passage,
    Patient,
)
from lims.services import consent, lookup, records
from lims.services import deviations as deviation_rules
from lims.services import reagents as reagent_rules
from lims.services.aspirates import din_of
from lims.timeutil import after, json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views import from_record
from lims.views.bench import (
    Correction,
    CultureDetail,
    CultureSummary,
    Flag,
    PassageView,
    ProjectionView,
)

PRIMARY_METHOD = "density gradient (Percoll 1.073 g/mL)"
SEEDED_METHOD = "seeded from counted cells"
VESSELS_MAX = 10_000
AREA_MIN_CM2 = 0.01  # below a 1536-well plate well
AREA_MAX_CM2 = 1_000_000.0  # 100 m²: more than any expansion platform
TYPED_FIELDS = (
    "harvested_at",
    "harvested",
    "viability",
    "seeded",
    "vessels",
    "area_cm2",
    "confluence",
)
DERIVED_FIELDS = (
    "population_doublings",
    "cumulative_population_doublings",
    "doubling_time_hours",
    "fold_expansion",
    "seeding_density_per_cm2",
)


# --- lookups ---------------------------------------------------------------------------


def passages_of(session: Session, culture: Culture) -> list[Passage]:
    return list(
        session.exec(
            select(Passage)
            .where(col(Passage.culture_id) == culture.id)
            .order_by(col(Passage.number))
        ).all()
    )


def _require_correctable(session: Session, culture: Culture) -> None:
    """Passages stay correctable until QA signs the lot made from them."""
    if not CULTURE.locked(culture.status):
        return
    lot = session.exec(select(Lot).where(col(Lot.culture_id) == culture.id)).first()
    if lot is None or LOT.locked(lot.status):
        state = f"lot {lot.code} is {lot.status}" if lot is not None else f"it is {culture.status}"
        raise RuleViolation(f"culture {culture.code} is locked: {state}")


# --- rules ---------------------------------------------------------------------------


def bench_flags(
    limits: ExpansionSettings,
    *,
    passage_code: str,
    number: int,
    viability: float,
    seeding_density: float,
    population_doublings: float | None,
) -> list[tuple[str, str]]:
    """The bench limits a passage breaks, as (kind, description): saved, but flagged."""
    flags = []
    if viability < limits.viability_flag_below_percent:
        flags.append(
            (
                "low_viability",
                f"{passage_code}: viability {viability:g} % is below "
                f"{limits.viability_flag_below_percent:g} %",
            )
        )
    low, high = limits.seeding_density_min_per_cm2, limits.seeding_density_max_per_cm2
    if not low <= seeding_density <= high:
        flags.append(
            (
                "seeding_density",
                f"{passage_code}: reseeded at {seeding_density:,.0f} cells/cm², "
                f"outside {low:,.0f}-{high:,.0f}",
            )
        )
    if number > limits.max_passage:
        flags.append(
            (
                "passage_limit",
                f"{passage_code}: passage {number} is above the maximum of {limits.max_passage}",
            )
        )
    if population_doublings is not None and population_doublings <= 0:
        flags.append(
            (
                "no_growth",
                f"{passage_code}: harvest without growth "
                f"(population doublings {population_doublings:.2f})",
            )
        )
    return flags


def _plating(field_prefix: str, vessels: str | int, area_cm2: str | float) -> tuple[int, float]:
    return (
        quantities.whole_number(f"{field_prefix}vessels", vessels, low=1, high=VESSELS_MAX),
        quantities.positive(
            f"{field_prefix}area-cm2",
            area_cm2,
            unit="cm²",
            smallest=AREA_MIN_CM2,
            high=AREA_MAX_CM2,
        ),
    )


def _open_flags(
    session: Session,
    settings: Settings,
    actor: Actor,
    culture: Culture,
    passage: Passage,
    known: set[tuple[int | None, str]],
) -> list[Flag]:
    assert culture.id is not None
    assert passage.id is not None
    opened = []
    for kind, description in bench_flags(
        settings.expansion,
        passage_code=passage.code,
        number=passage.number,
        viability=passage.viability,
        seeding_density=passage.seeding_density_per_cm2,
        population_doublings=passage.population_doublings,
    ):
        if (passage.id, kind) in known:
            continue
        deviation = deviation_rules.open_on_culture(
            session,
            actor,
            culture_id=culture.id,
            culture_code=culture.code,
            passage_id=passage.id,
            passage_code=passage.code,
            kind=kind,
            description=description,
        )
        opened.append(Flag(kind=kind, description=description, deviation_id=deviation.deviation_id))
    return opened


def _apply_kinetics(
    culture: Culture, passages: Sequence[Passage], first: int
) -> list[dict[str, tuple[Any, Any]]]:
    """Recompute the derived values of passages[first:]; for each, what changed (old, new)."""
    derived = growth.kinetics(
        culture.kind == "primary",
        growth.Plating(culture.started_at, culture.cells_plated),
        [growth.Harvest(p.harvested_at, p.harvested, p.seeded, p.area_cm2) for p in passages],
    )
    changes = []
    for passage, values in zip(passages[first:], derived[first:], strict=True):
        changed = {}
        for name in DERIVED_FIELDS:
            old, new = getattr(passage, name), getattr(values, name)
            if old != new:
                changed[name] = (old, new)
                setattr(passage, name, new)
        changes.append(changed)
    return changes


def _passage_view(
    passage: Passage, culture_code: str, reagents: list[str], flags: list[Flag]
) -> PassageView:
    return from_record(
        PassageView,
        passage,
        passage_id=passage.code,
        culture_id=culture_code,
        passage_number=passage.number,
        reagents=reagents,
        flags=flags,
    )


def _record(passage: Passage, names: Sequence[str]) -> dict[str, Any]:
    return {
        name: json_time(value) if isinstance(value, datetime) else value
        for name in names
        for value in [getattr(passage, name)]
    }


# --- commands ------------------------------------------------------------------------


def start_culture(
    uow: UnitOfWork,
    *,
    din: str,
    mnc: str | int | None = None,
    seeded: str | int | None = None,
    vessels: str | int,
    area_cm2: str | float,
    method: str | None = None,
    at: str | datetime | None = None,
    reagents: Sequence[str] = (),
) -> CultureDetail:
    """Plate cells from an aspirate: a primary culture (--mnc) or one seeded from known cells."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    if (mnc is None) == (seeded is None):
        raise BadInput(
            "mnc/seeded",
            "give exactly one: --mnc N (mononuclear cells plated: a primary culture) "
            "or --seeded N (counted cells plated)",
        )
    primary = mnc is not None
    cells = quantities.cell_count("mnc" if primary else "seeded", mnc if primary else seeded)  # type: ignore[arg-type]
    vessel_count, area = _plating("", vessels, area_cm2)
    method = free_text(
        "method",
        method if method is not None else (PRIMARY_METHOD if primary else SEEDED_METHOD),
        max_length=SHORT_TEXT_MAX,
    )
    zone = settings.tz
    now = utcnow()
    started = past_moment("at", at, zone, now)
    aspirate = lookup.aspirate(session, din)
    consent.require_in_force(session, zone, aspirate.patient_id, "culture start")
    donation = din_of(aspirate)
    after("at", started, aspirate.received_at, f"receipt of aspirate {donation.display}", zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, started)

    assert aspirate.id is not None
    identity = ids.next_culture(
        donation,
        session.exec(
            select(func.max(Culture.number)).where(col(Culture.aspirate_id) == aspirate.id)
        ).one(),
    )
    plated: dict[str, Any] = {
        "kind": "primary" if primary else "seeded",
        "cells_plated": cells,
        "vessels": vessel_count,
        "area_cm2": area,
        "method": method,
        "started_at": started,
    }
    culture = Culture(code=identity.code, aspirate_id=aspirate.id, number=identity.number, **plated)
    reagent_labels = [f"{lot.name}:{lot.lot}" for lot in lots]
    new = {"din": donation.with_check, **plated, "reagents": reagent_labels}
    records.create(session, culture, "culture.start", by=actor, at=now, new=new)
    assert culture.id is not None
    reagent_rules.record_uses(session, lots, culture.id, None)
    return culture_detail(session, culture)


def log_passage(
    uow: UnitOfWork,
    *,
    culture: str,
    harvested: str | int,
    viability: str | float,
    seeded: str | int,
    vessels: str | int,
    area_cm2: str | float,
    confluence: str | float | None = None,
    at: str | datetime | None = None,
    reagents: Sequence[str] = (),
) -> PassageView:
    """Harvest the cells plated at the previous step and reseed some of them."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    values = _typed_values(harvested, viability, seeded, vessels, area_cm2, confluence)
    _reseeded_from_harvest(values["harvested"], values["seeded"])
    zone = settings.tz
    now = utcnow()
    harvested_at = past_moment("at", at, zone, now)
    parent = lookup.culture(session, culture)
    consent.require_in_force_for_culture(session, zone, parent, "passage log")
    CULTURE.check("log_passage", code=parent.code, status=parent.status)
    earlier = passages_of(session, parent)
    after_previous_step(parent, earlier, harvested_at, zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, harvested_at)

    identity = ids.next_passage(
        ids.CultureId.parse(parent.code), earlier[-1].number if earlier else None
    )
    assert parent.id is not None
    passage = Passage(
        code=identity.code,
        culture_id=parent.id,
        number=identity.number,
        harvested_at=harvested_at,
        **values,
        cumulative_population_doublings=0.0,
        seeding_density_per_cm2=0.0,
    )
    _apply_kinetics(parent, [*earlier, passage], len(earlier))
    labels = [f"{lot.name}:{lot.lot}" for lot in lots]
    new = {**_record(passage, TYPED_FIELDS + DERIVED_FIELDS), "reagents": labels}
    records.create(session, passage, "passage.log", by=actor, at=now, new=new)
    assert passage.id is not None
    reagent_rules.record_uses(session, lots, parent.id, passage.id)
    flags = _open_flags(session, settings, actor, parent, passage, known=set())
    return _passage_view(passage, parent.code, labels, flags)


def correct_passage(
    uow: UnitOfWork,
    *,
    passage: str,
    reason: str,
    harvested: str | int | None = None,
    viability: str | float | None = None,
    seeded: str | int | None = None,
    vessels: str | int | None = None,
    area_cm2: str | float | None = None,
    confluence: str | float | None = None,
    at: str | datetime | None = None,
) -> Correction:
    """Correct what was typed for a passage; its derived values and all later ones follow."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    zone = settings.tz
    now = utcnow()
    typed = _typed_values(harvested, viability, seeded, vessels, area_cm2, confluence)
    if at is not None:
        typed["harvested_at"] = past_moment("at", at, zone, now)
    if not typed:
        raise BadInput(
            "correction",
            "name at least one value to correct: --harvested, --viability, --seeded, "
            "--vessels, --area-cm2, --confluence or --at",
        )
    target = lookup.passage(session, passage)
    culture = session.get(Culture, target.culture_id)
    assert culture is not None
    assert culture.id is not None
    consent.require_in_force_for_culture(session, zone, culture, "passage correction")
    _require_correctable(session, culture)
    passages = passages_of(session, culture)
    index = next(i for i, p in enumerate(passages) if p.id == target.id)
    _reseeded_from_harvest(
        typed.get("harvested", target.harvested), typed.get("seeded", target.seeded)
    )
    if "harvested_at" in typed:
        when = typed["harvested_at"]
        after_previous_step(culture, passages[:index], when, zone)
        if index + 1 < len(passages) and when >= passages[index + 1].harvested_at:
            following = passages[index + 1]
            raise BadInput(
                "at",
                f"must be before the next passage {following.code} at "
                f"{show_time(following.harvested_at, zone)}",
            )
        reagent_rules.refuse_expired(settings, reagent_rules.lots_used(session, target), when)
    changed_typed = {name: value for name, value in typed.items() if getattr(target, name) != value}
    if not changed_typed:
        raise BadInput("correction", f"every value given is already what {target.code} holds")

    old_typed = _record(target, list(changed_typed))
    for name, value in changed_typed.items():
        setattr(target, name, value)
    target.corrections += 1
    changes = _apply_kinetics(culture, passages, index)
    changed = {name: (old_typed[name], _record(target, [name])[name]) for name in changed_typed}
    changed.update(changes[0])
    # The corrected passage's entry, then one for each later passage whose kinetics moved.
    entries = [(target.code, "passage.correct", changed, reason)]
    recomputed = []
    for later, later_changes in zip(passages[index + 1 :], changes[1:], strict=True):
        if later_changes:
            recomputed.append(later.code)
            derived = f"derived from {target.code}, corrected: {reason}"
            entries.append((later.code, "passage.recompute", later_changes, derived))
    for code, action, values, why in entries:
        audit.record_changes(
            session, ("passage", code), action, values, by=actor.username, reason=why
        )
    session.add_all(passages)
    session.flush()
    # A breach already on record (open or closed by QA) is not raised again.
    known = deviation_rules.kinds_by_passage(session, culture.id)
    opened = {
        affected.code: _open_flags(session, settings, actor, culture, affected, known)
        for affected in passages[index:]
    }
    uses = reagent_rules.uses_by_step(session, culture.id)
    view = _passage_view(target, culture.code, uses.get(target.id, []), opened.pop(target.code))
    return Correction(
        passage=view,
        changed=changed,
        recomputed=recomputed,
        flagged_later=[flag for flags in opened.values() for flag in flags],
    )


def _typed_values(
    harvested: str | int | None,
    viability: str | float | None,
    seeded: str | int | None,
    vessels: str | int | None,
    area_cm2: str | float | None,
    confluence: str | float | None,
) -> dict[str, Any]:
    """The passage values given, each checked; a value not given is left out."""
    checks: dict[str, tuple[Any, Any]] = {
        "harvested": (harvested, lambda v: quantities.cell_count("harvested", v)),
        "viability": (viability, lambda v: quantities.percentage("viability", v)),
        "seeded": (seeded, lambda v: quantities.cell_count("seeded", v)),
        "vessels": (
            vessels,
            lambda v: quantities.whole_number("vessels", v, low=1, high=VESSELS_MAX),
        ),
        "area_cm2": (
            area_cm2,
            lambda v: quantities.positive(
                "area-cm2", v, unit="cm²", smallest=AREA_MIN_CM2, high=AREA_MAX_CM2
            ),
        ),
        "confluence": (confluence, lambda v: quantities.percentage("confluence", v)),
    }
    return {name: check(value) for name, (value, check) in checks.items() if value is not None}


def _reseeded_from_harvest(harvested: int, seeded: int) -> None:
    if seeded > harvested:
        raise BadInput(
            "seeded", f"must not exceed the {harvested:,} cells harvested (got {seeded:,})"
        )


def after_previous_step(
    culture: Culture, earlier: Sequence[Passage], when: datetime, zone: tzinfo
) -> None:
    """A step at `when` must follow the culture's last earlier passage, or else its start."""
    if earlier:
        after("at", when, earlier[-1].harvested_at, f"passage {earlier[-1].code}", zone)
    else:
        after("at", when, culture.started_at, f"the start of {culture.code}", zone)


# --- reading -------------------------------------------------------------------------


def _summaries(session: Session, cultures: Sequence[Culture]) -> list[CultureSummary]:
    if not cultures:
        return []
    ids = [culture.id for culture in cultures]
    last = (
        select(Passage.culture_id, func.max(Passage.number).label("number"))
        .where(col(Passage.culture_id).in_(ids))
        .group_by(col(Passage.culture_id))
        .subquery()
    )
    latest: dict[int | None, tuple[int, float | None]] = {
        culture_id: (number, cumulative)
        for culture_id, number, cumulative in session.exec(
            select(
                Passage.culture_id, Passage.number, Passage.cumulative_population_doublings
            ).join(
                last,
                (col(Passage.culture_id) == last.c.culture_id)
                & (col(Passage.number) == last.c.number),
            )
        ).all()
    }
    open_counts = dict(
        session.exec(
            select(Deviation.culture_id, func.count())
            .where(
                col(Deviation.culture_id).in_(ids),
                col(Deviation.status).in_(DEVIATION.pending_states()),
            )
            .group_by(col(Deviation.culture_id))
        ).all()
    )
    origins = {
        aspirate.id: (aspirate, code)
        for aspirate, code in session.exec(
            select(Aspirate, Patient.code)
            .join(Patient, col(Patient.id) == col(Aspirate.patient_id))
            .where(col(Aspirate.id).in_({culture.aspirate_id for culture in cultures}))
        ).all()
    }
    summaries = []
    for culture in cultures:
        aspirate, patient = origins[culture.aspirate_id]
        passages, cumulative = latest.get(culture.id, (0, None))
        summaries.append(
            from_record(
                CultureSummary,
                culture,
                culture_id=culture.code,
                din=din_of(aspirate),
                patient=patient,
                passages=passages,
                cumulative_population_doublings=cumulative,
                open_deviations=open_counts.get(culture.id, 0),
            )
        )
    return summaries


def culture_detail(session: Session, culture: Culture) -> CultureDetail:
    assert culture.id is not None
    [summary] = _summaries(session, [culture])
    passages = passages_of(session, culture)
    uses = reagent_rules.uses_by_step(session, culture.id)
    deviations = session.exec(
        select(Deviation).where(col(Deviation.culture_id) == culture.id).order_by(col(Deviation.id))
    ).all()
    flags: dict[int | None, list[Flag]] = {}
    for deviation in deviations:
        assert deviation.id is not None
        flags.setdefault(deviation.passage_id, []).append(
            from_record(Flag, deviation, deviation_id=deviation.id)
        )
    return CultureDetail(
        summary=summary,
        reagents=uses.get(None, []),
        passages=[
            _passage_view(
                passage, culture.code, uses.get(passage.id, []), flags.get(passage.id, [])
            )
            for passage in passages
        ],
        deviations=deviation_rules.on_culture(session, culture),
    )


def show_culture(uow: UnitOfWork, *, culture: str) -> CultureDetail:
    session = uow.session
    uow.require("read_records")
    return culture_detail(session, lookup.culture(session, culture))


def list_cultures(uow: UnitOfWork) -> list[CultureSummary]:
    session = uow.session
    uow.require("read_records")
    cultures = session.exec(select(Culture).order_by(col(Culture.code))).all()
    return _summaries(session, cultures)


# --- projection ----------------------------------------------------------------------


def project_culture(uow: UnitOfWork, *, culture: str, target_cells: str | int) -> ProjectionView:
    """When the culture should reach the target dose, from its recent doubling times."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    target = quantities.cell_count("target-cells", target_cells)
    found = lookup.culture(session, culture)
    CULTURE.check("project", code=found.code, status=found.status)
    passages = passages_of(session, found)
    recent: list[tuple[Passage, float, float]] = []  # passage, doublings, hours
    plated_at = found.started_at
    for passage in passages:
        if passage.population_doublings is not None:
            hours = (passage.harvested_at - plated_at).total_seconds() / growth.SECONDS_PER_HOUR
            recent.append((passage, passage.population_doublings, hours))
        plated_at = passage.harvested_at
    recent = recent[-growth.RECENT_PASSAGES :]
    if not recent:
        needs = (
            "two harvests (the first has no doublings)" if found.kind == "primary" else "a harvest"
        )
        raise RuleViolation(
            f"too little data to project {found.code}: no passage with population doublings "
            f"yet; a {found.kind} culture needs {needs}"
        )
    last = passages[-1]
    try:
        projection = growth.project(
            growth.Plating(last.harvested_at, last.seeded),
            [(doublings, hours) for _, doublings, hours in recent],
            target_cells=target,
            reseeding_density_per_cm2=settings.expansion.reseeding_density_per_cm2,
        )
    except growth.NoProjection as refusal:
        basis = ", ".join(f"{p.code} PD {d:.2f}" for p, d, _ in recent)
        raise RuleViolation(f"no projection for {found.code}: {refusal} ({basis})") from None
    final_passage = last.number + projection.passages_needed
    return from_record(
        ProjectionView,
        projection,
        culture_id=found.code,
        seeded_at=projection.since,
        final_passage_number=final_passage,
        exceeds_max_passage=final_passage > settings.expansion.max_passage,
        reseeding_density_per_cm2=settings.expansion.reseeding_density_per_cm2,
        basis=[passage.code for passage, _, _ in recent],
        max_passage=settings.expansion.max_passage,
    )
