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
from lims.domain import growth, ids, lineage, quantities
from lims.domain.count_use import not_typed, requested, taken_by, typed_unless_counted
from lims.domain.states import CULTURE, DEVIATION, LOT, expired
from lims.errors import BadInput, RuleViolation
from lims.models import (
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    Aspirate,
    BankVial,
    Culture,
    Deviation,
    Lot,
    Passage,
    Patient,
    ReagentLot,
)
from lims.services import (
    consent,
    count_use,
    counts,
    equipment_use,
    late_entries,
    lookup,
    records,
)
from lims.services import deviations as deviation_rules
from lims.services import reagents as reagent_rules
from lims.services.aspirates import din_of, require_marrow
from lims.timeutil import after, json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.bench import (
    AncestorView,
    Correction,
    CultureDetail,
    CultureSummary,
    Flag,
    PassageView,
    ProjectionView,
    SisterLot,
    ThawSource,
)
from lims.views.counts import CountSource
from lims.views.records import LateEntryView

PRIMARY, SEEDED = "primary", "seeded"
STARTED_KINDS = (PRIMARY, SEEDED)  # what `culture start` begins; a split is its own command
SPLIT, THAWED = "split", "thawed"  # from a harvest; from a bank vial frozen from a harvest
PRIMARY_METHOD = "density gradient (Percoll 1.073 g/mL)"
SEEDED_METHOD = "seeded from counted cells"
UNUSUAL_HINT = "if the count is right, give --confirm-unusual --reason TEXT"
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
# What a passage takes from a count, when it takes one (passage log --count).
COUNTED_FIELDS = ("harvested", "viability")
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


def inheritance(session: Session, culture: Culture) -> lineage.Inheritance:
    """What a split culture carries on from its source passage; a fresh start for others."""
    if culture.source_passage_id is None:
        return lineage.FRESH_START
    source = session.get(Passage, culture.source_passage_id)
    assert source is not None
    return lineage.Inheritance(source.number, source.cumulative_population_doublings)


def split_from(session: Session, passage: Passage) -> list[Culture]:
    """The cultures seeded from this passage's harvest: split from it, or thawed from a bank
    vial it was frozen in."""
    return list(
        session.exec(
            select(Culture)
            .where(col(Culture.source_passage_id) == passage.id)
            .order_by(col(Culture.number))
        ).all()
    )


def harvest_shares(session: Session, passage: Passage) -> tuple[list[Culture], list[BankVial]]:
    """What this passage's harvest gave besides the parent's reseeding: the cultures split
    from it and the bank vials frozen from it. A culture thawed from one of those vials is
    not among them: its cells were drawn from the harvest when they were frozen."""
    children = [child for child in split_from(session, passage) if child.kind != THAWED]
    frozen = session.exec(
        select(BankVial).where(col(BankVial.passage_id) == passage.id).order_by(col(BankVial.id))
    ).all()
    return children, list(frozen)


def shares_described(children: Sequence[Culture], frozen: Sequence[BankVial]) -> list[str]:
    """Each share of a harvest as a refusal names it: 10,000,000 into A999926000001-C2,
    8,000,000 frozen in 2 bank vials."""
    described = [f"{child.cells_plated:,} into {child.code}" for child in children]
    if frozen:
        vials = "bank vial" if len(frozen) == 1 else "bank vials"
        described.append(f"{sum(v.cells for v in frozen):,} frozen in {len(frozen)} {vials}")
    return described


def final_passage_number(session: Session, culture: Culture, passages: Sequence[Passage]) -> int:
    """The culture's latest passage number, counting those of the cultures it came from."""
    return lineage.last_passage_number([p.number for p in passages], inheritance(session, culture))


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


def plating(field_prefix: str, vessels: str | int, area_cm2: str | float) -> tuple[int, float]:
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
    culture: Culture, inherited: lineage.Inheritance, passages: Sequence[Passage], first: int
) -> list[dict[str, tuple[Any, Any]]]:
    """Recompute the derived values of passages[first:]; for each, what changed (old, new)."""
    derived = growth.kinetics(
        culture.kind == "primary",
        growth.Plating(culture.started_at, culture.cells_plated),
        [growth.Harvest(p.harvested_at, p.harvested, p.seeded, p.area_cm2) for p in passages],
        inherited.cumulative_population_doublings,
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
    passage: Passage,
    culture_code: str,
    reagents: list[str],
    flags: list[Flag],
    source: CountSource,
    late: Sequence[LateEntryView] = (),
) -> PassageView:
    return from_record(
        PassageView,
        passage,
        passage_id=passage.code,
        culture_id=culture_code,
        passage_number=passage.number,
        reagents=reagents,
        flags=flags,
        count=source,
        late_entry=bool(late),
        entered_at=passage.recorded_at,
        late_reason=late[0].reason if late else None,
    )


def _unusual(
    settings: Settings, culture: Culture, passages: Sequence[Passage], first: int
) -> dict[int, list[str]]:
    """Why the counts of passages[first:] are beyond what MSC reach, by index; each
    harvest judged against the growth area it came off."""
    limits = settings.expansion
    areas = growth.harvested_areas(culture.area_cm2, [p.area_cm2 for p in passages])
    found = {}
    for index in range(first, len(passages)):
        passage = passages[index]
        reasons = growth.implausible(
            harvested=passage.harvested,
            harvested_area_cm2=areas[index],
            doubling_time_hours=passage.doubling_time_hours,
            max_harvest_density_per_cm2=limits.max_harvest_density_per_cm2,
            min_doubling_time_hours=limits.min_doubling_time_hours,
        )
        if reasons:
            found[index] = reasons
    return found


def _confirmation(confirm_unusual: bool, reason: str | None) -> str | None:
    """The reason an unusual passage is confirmed with; neither is given without the other."""
    if reason is not None and not confirm_unusual:
        raise BadInput("reason", "only with --confirm-unusual: why counts beyond the limits stand")
    if not confirm_unusual:
        return None
    if reason is None:
        raise BadInput("reason", "required with --confirm-unusual: why the counts are right")
    return free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)


def _require_confirmed(field: str, unusual: dict[str, list[str]], confirmed: str | None) -> None:
    """Counts beyond the plausibility limits stand only when confirmed as unusual."""
    if unusual and confirmed is None:
        raise BadInput(
            field,
            "; ".join(f"{code}: {', '.join(reasons)}" for code, reasons in unusual.items())
            + f"; {UNUSUAL_HINT}",
        )
    if confirmed is not None and not unusual:
        raise BadInput(
            "confirm-unusual",
            "only for a passage beyond expansion.max_harvest_density_per_cm2 or "
            "expansion.min_doubling_time_hours; the counts are within both",
        )


def _open_unusual(
    session: Session,
    actor: Actor,
    culture: Culture,
    passage: Passage,
    reasons: list[str],
    confirmed: str,
) -> Flag:
    """The deviation a passage confirmed as unusual opens, for QA to review."""
    assert culture.id is not None
    assert passage.id is not None
    description = f"{passage.code}: {'; '.join(reasons)}; confirmed as unusual: {confirmed}"
    deviation = deviation_rules.open_on_culture(
        session,
        actor,
        culture_id=culture.id,
        culture_code=culture.code,
        passage_id=passage.id,
        passage_code=passage.code,
        kind=growth.UNUSUAL_COUNT,
        description=description,
    )
    return Flag(
        kind=growth.UNUSUAL_COUNT, description=description, deviation_id=deviation.deviation_id
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
    count: str | None = None,
    suspension_ml: str | float | None = None,
    kind: str | None = None,
    vessels: str | int,
    area_cm2: str | float,
    method: str | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    reagents: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> CultureDetail:
    """Plate cells from an aspirate: a primary culture (--mnc) or one seeded from known cells
    (--seeded), or either (`kind`) with the viable cells of an imported count (`count`, with
    the mL the counted cells are suspended in), which the culture then uses up."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    request = requested(count, suspension_ml)
    not_typed(request, mnc=mnc, seeded=seeded)
    cells = None
    if request is not None:
        if kind is None:
            raise BadInput("kind", f"required with --count: {' or '.join(STARTED_KINDS)}")
        primary = choice("kind", kind, STARTED_KINDS) == PRIMARY
    else:
        if kind is not None:
            raise BadInput(
                "kind",
                "only with --count: --mnc N starts a primary culture, --seeded N a seeded one",
            )
        if (mnc is None) == (seeded is None):
            raise BadInput(
                "mnc/seeded",
                "give exactly one: --mnc N (mononuclear cells plated: a primary culture) "
                "or --seeded N (counted cells plated), or take them from an imported count "
                "with --count CNT-… --suspension-ml V --kind primary|seeded",
            )
        primary = mnc is not None
        cells = quantities.cell_count("mnc" if primary else "seeded", mnc if primary else seeded)  # type: ignore[arg-type]
    vessel_count, area = plating("", vessels, area_cm2)
    method = free_text(
        "method",
        method if method is not None else (PRIMARY_METHOD if primary else SEEDED_METHOD),
        max_length=SHORT_TEXT_MAX,
    )
    zone = settings.tz
    now = utcnow()
    started = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, started, now, late_reason)
    aspirate = lookup.aspirate(session, din)
    require_marrow(aspirate)
    consent.require_in_force(session, zone, aspirate.patient_id, "culture start")
    donation = din_of(aspirate)
    after("at", started, aspirate.received_at, f"receipt of aspirate {donation.display}", zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, started)
    used = equipment_use.usable(uow, step="culture_start", equipment=equipment, at=started)

    assert aspirate.id is not None
    if not primary:
        _refuse_restart(session, aspirate.id, donation.display)
    identity = ids.next_culture(
        donation,
        session.exec(
            select(func.max(Culture.number)).where(col(Culture.aspirate_id) == aspirate.id)
        ).one(),
    )
    counted = None
    if request is not None:
        counted = count_use.take(
            uow, request, at=started, used_by=taken_by("culture", identity.code)
        )
        cells = counted.viable_cells
    plated: dict[str, Any] = {
        "kind": PRIMARY if primary else SEEDED,
        "cells_plated": cells,
        "vessels": vessel_count,
        "area_cm2": area,
        "method": method,
        "started_at": started,
    }
    culture = Culture(
        code=identity.code,
        aspirate_id=aspirate.id,
        number=identity.number,
        **plated,
        count_id=None if counted is None else counted.count_id,
    )
    reagent_labels = [f"{lot.name}:{lot.lot}" for lot in lots]
    new = {
        "din": donation.with_check,
        **plated,
        "reagents": reagent_labels,
        **count_use.stated(counted),
        **equipment_use.stated(used),
    }
    records.create(
        session,
        culture,
        "culture.start",
        by=actor,
        at=now,
        new=new,
        late_reason=late,
        stated_at=started,
    )
    record_materials(session, lots, used, "culture.start", culture, by=actor.username)
    return culture_detail(session, culture)


def _refuse_restart(session: Session, aspirate_id: int, donation: str) -> None:
    """Counted cells of an aspirate that has a culture came from that culture: a fresh
    seeded start would drop its passages and doublings (and dodge the passage limit)."""
    existing = session.exec(
        select(Culture.code)
        .where(col(Culture.aspirate_id) == aspirate_id)
        .order_by(col(Culture.number))
    ).all()
    if existing:
        raise RuleViolation(
            f"aspirate {donation} already has culture {', '.join(existing)}: cells from a "
            "culture's harvest keep its passage count and doublings; use `lims culture split "
            "CULTURE --seeded N --vessels K --area-cm2 A`"
        )


def split_culture(
    uow: UnitOfWork,
    *,
    culture: str,
    seeded: str | int,
    vessels: str | int,
    area_cm2: str | float,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    reagents: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> CultureDetail:
    """Start a child culture from cells harvested at the parent's latest passage.

    The child carries on the parent's passage number and cumulative PD; what the parent
    reseeded and what its children were seeded with cannot exceed that harvest.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    cells = quantities.cell_count("seeded", seeded)
    vessel_count, area = plating("", vessels, area_cm2)
    zone = settings.tz
    now = utcnow()
    started = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, started, now, late_reason)
    parent = lookup.culture(session, culture)
    consent.require_in_force_for_culture(session, zone, parent, "culture split")
    CULTURE.check("split", code=parent.code, status=parent.status)
    earlier = passages_of(session, parent)
    if not earlier:
        raise RuleViolation(
            f"culture {parent.code} has no passage yet: a split takes cells harvested at a "
            "passage; log the harvest with `lims passage log` first"
        )
    source = earlier[-1]
    after("at", started, source.harvested_at, f"the harvest of {source.code}", zone)
    siblings, frozen = harvest_shares(session, source)
    left = lineage.left_to_split(
        source.harvested,
        source.seeded,
        [child.cells_plated for child in siblings],
        [vial.cells for vial in frozen],
    )
    if cells > left:
        others = "".join(f", {share}" for share in shares_described(siblings, frozen))
        raise BadInput(
            "seeded",
            f"must not exceed the {left:,} cells of {source.code}'s harvest not yet reseeded "
            f"({source.harvested:,} harvested, {source.seeded:,} reseeded in {parent.code}"
            f"{others}; got {cells:,})",
        )
    lots = reagent_rules.usable_lots(session, settings, reagents, started)
    used = equipment_use.usable(uow, step="culture_split", equipment=equipment, at=started)

    aspirate = session.get(Aspirate, parent.aspirate_id)
    assert aspirate is not None
    assert aspirate.id is not None
    identity = ids.next_culture(
        din_of(aspirate),
        session.exec(
            select(func.max(Culture.number)).where(col(Culture.aspirate_id) == aspirate.id)
        ).one(),
    )
    plated: dict[str, Any] = {
        "kind": SPLIT,
        "cells_plated": cells,
        "vessels": vessel_count,
        "area_cm2": area,
        "method": f"split from the harvest of {source.code}",
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
    new = {
        "din": din_of(aspirate).with_check,
        "parent": parent.code,
        "source_passage": source.code,
        "passage_number": source.number,
        "cumulative_population_doublings": source.cumulative_population_doublings,
        **plated,
        "reagents": [f"{lot.name}:{lot.lot}" for lot in lots],
        **equipment_use.stated(used),
    }
    records.create(
        session,
        child,
        "culture.split",
        by=actor,
        at=now,
        new=new,
        late_reason=late,
        stated_at=started,
    )
    record_materials(session, lots, used, "culture.split", child, by=actor.username)
    return culture_detail(session, child)


def record_materials(
    session: Session,
    lots: Sequence[ReagentLot],
    used: equipment_use.Named,
    action: str,
    culture: Culture,
    passage: Passage | None = None,
    *,
    by: str,
) -> None:
    """The reagent lots and equipment that step `action` on `culture` (at `passage`, when it
    made one) used, kept in the step's transaction once its record is saved."""
    assert culture.id is not None
    reagent_rules.record_uses(session, lots, culture.id, None if passage is None else passage.id)
    subject = ("culture", culture.code) if passage is None else ("passage", passage.code)
    equipment_use.record(
        session, used, action=action, subject=subject, culture=culture, lot=None, by=by
    )


def log_passage(
    uow: UnitOfWork,
    *,
    culture: str,
    seeded: str | int,
    vessels: str | int,
    area_cm2: str | float,
    harvested: str | int | None = None,
    viability: str | float | None = None,
    count: str | None = None,
    suspension_ml: str | float | None = None,
    confluence: str | float | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    confirm_unusual: bool = False,
    reason: str | None = None,
    reagents: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> PassageView:
    """Harvest the cells plated at the previous step and reseed some of them.

    The viable cells harvested and their viability are typed, or taken from an imported
    count (`count`, with the mL the counted cells are suspended in), which the passage then
    uses up. Counts beyond the plausibility limits (expansion.max_harvest_density_per_cm2,
    expansion.min_doubling_time_hours) are taken for a typo unless confirmed as unusual
    with a reason, which opens a deviation, wherever they came from.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    request = requested(count, suspension_ml)
    not_typed(request, harvested=harvested, viability=viability)
    typed_unless_counted(
        request, "--harvested N --viability PCT", harvested=harvested, viability=viability
    )
    values = _typed_values(harvested, viability, seeded, vessels, area_cm2, confluence)
    if request is None:
        _reseeded_from_harvest(values["harvested"], values["seeded"])
    confirmed = _confirmation(confirm_unusual, reason)
    zone = settings.tz
    now = utcnow()
    harvested_at = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, harvested_at, now, late_reason)
    parent = lookup.culture(session, culture)
    consent.require_in_force_for_culture(session, zone, parent, "passage log")
    CULTURE.check("log_passage", code=parent.code, status=parent.status)
    earlier = passages_of(session, parent)
    after_previous_step(parent, earlier, harvested_at, zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, harvested_at)
    used = equipment_use.usable(uow, step="passage_log", equipment=equipment, at=harvested_at)

    inherited = inheritance(session, parent)
    identity = ids.next_passage(
        ids.CultureId.parse(parent.code),
        lineage.last_passage_number([p.number for p in earlier], inherited),
    )
    counted = None
    if request is not None:
        counted = count_use.take(
            uow, request, at=harvested_at, used_by=taken_by("passage", identity.code)
        )
        values |= {"harvested": counted.viable_cells, "viability": counted.viability}
        _reseeded_from_harvest(values["harvested"], values["seeded"])
    assert parent.id is not None
    passage = Passage(
        code=identity.code,
        culture_id=parent.id,
        number=identity.number,
        harvested_at=harvested_at,
        **values,
        cumulative_population_doublings=0.0,
        seeding_density_per_cm2=0.0,
        count_id=None if counted is None else counted.count_id,
    )
    logged = [*earlier, passage]
    _apply_kinetics(parent, inherited, logged, len(earlier))
    unusual = _unusual(settings, parent, logged, len(earlier))
    _require_confirmed("harvested", {logged[i].code: r for i, r in unusual.items()}, confirmed)
    labels = [f"{lot.name}:{lot.lot}" for lot in lots]
    new = {
        **_record(passage, TYPED_FIELDS + DERIVED_FIELDS),
        "reagents": labels,
        **count_use.stated(counted),
        **equipment_use.stated(used),
    }
    records.create(
        session,
        passage,
        "passage.log",
        by=actor,
        at=now,
        new=new,
        late_reason=late,
        stated_at=harvested_at,
    )
    record_materials(session, lots, used, "passage.log", parent, passage, by=actor.username)
    flags = _open_flags(session, settings, actor, parent, passage, known=set())
    for reasons in unusual.values():
        assert confirmed is not None
        flags.append(_open_unusual(session, actor, parent, passage, reasons, confirmed))
    marks = late_entries.marks(session, "passage", [passage.code])
    [source] = counts.sources(session, [passage.count_id])
    return _passage_view(passage, parent.code, labels, flags, source, marks.get(passage.code, []))


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
    confirm_unusual: bool = False,
    late_reason: str | None = None,
) -> Correction:
    """Correct what was typed for a passage; its derived values and all later ones follow,
    those of the cultures split from them included. Counts beyond the plausibility limits
    stand only when confirmed as unusual (the correction's reason says why), each time they
    are corrected. A harvest time corrected to more than records.late_entry_hours before
    now makes the passage a late entry, with `late_reason`, unless it is one already."""
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
    late = None
    if "harvested_at" in typed and not late_entries.marks(session, "passage", [target.code]):
        late = late_entries.reason_for(uow, typed["harvested_at"], now, late_reason)
    elif late_reason is not None:
        raise BadInput(
            "late-reason",
            "only with an --at that makes a passage not yet marked a late entry",
        )
    culture = session.get(Culture, target.culture_id)
    assert culture is not None
    assert culture.id is not None
    count_use.require_kept(
        uow,
        target.count_id,
        step=f"passage {target.code}",
        retyped=[name for name in COUNTED_FIELDS if name in typed],
        at=typed.get("harvested_at"),
        remedy=f"open a deviation on the culture for QA to review: lims deviation open "
        f"--culture {culture.code} --description TEXT",
    )
    # A correction makes nothing: a withdrawn patient's records stay correctable, as their
    # lots' (lot correct) and their own (patient correct) do.
    _require_correctable(session, culture)
    passages = passages_of(session, culture)
    index = next(i for i, p in enumerate(passages) if p.id == target.id)
    descendants = _descendants(session, passages[index:])
    for descendant in descendants:
        _require_correctable(session, descendant)
    _reseeded_from_harvest(
        typed.get("harvested", target.harvested), typed.get("seeded", target.seeded)
    )
    children, frozen = harvest_shares(session, target)
    _within_shared_harvest(
        target.code,
        typed.get("harvested", target.harvested),
        typed.get("seeded", target.seeded),
        children,
        frozen,
    )
    if "harvested_at" in typed:
        when = typed["harvested_at"]
        after_previous_step(culture, passages[:index], when, zone)
        for child in children:
            if when >= child.started_at:
                raise BadInput(
                    "at",
                    f"must be before {child.code} was seeded from its harvest at "
                    f"{show_time(child.started_at, zone)}",
                )
        for vial in frozen:
            if when >= vial.frozen_at:
                raise BadInput(
                    "at",
                    f"must be before bank vial {vial.code} was frozen from its harvest at "
                    f"{show_time(vial.frozen_at, zone)}",
                )
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
    if "harvested_at" in changed_typed:
        equipment_use.move(
            uow,
            ("passage", target.code),
            changed_typed["harvested_at"],
            step="passage_log",
            by=actor.username,
        )

    old_typed = _record(target, list(changed_typed))
    for name, value in changed_typed.items():
        setattr(target, name, value)
    target.corrections += 1
    changes = _apply_kinetics(culture, inheritance(session, culture), passages, index)
    # A breach already on record (open or closed by QA) is not raised again, except counts
    # beyond the plausibility limits typed now: the corrected passage's must be confirmed
    # whatever an earlier confirmation said of other numbers.
    known = deviation_rules.kinds_by_passage(session, culture.id)
    unusual = {
        at_index: reasons
        for at_index, reasons in _unusual(settings, culture, passages, index).items()
        if at_index == index or (passages[at_index].id, growth.UNUSUAL_COUNT) not in known
    }
    confirmed = reason if confirm_unusual else None
    _require_confirmed("correction", {passages[i].code: r for i, r in unusual.items()}, confirmed)
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
    late_entries.record(
        session,
        late,
        action="passage.correct",
        subject=("passage", target.code),
        at=target.harvested_at,
        entered_at=now,
        by=actor.username,
    )
    recomputed += _recompute(
        session, descendants, f"derived from {target.code}, corrected: {reason}", actor.username
    )
    session.flush()
    opened = {
        affected.code: _open_flags(session, settings, actor, culture, affected, known)
        for affected in passages[index:]
    }
    for at_index, reasons in unusual.items():
        assert confirmed is not None
        affected = passages[at_index]
        opened[affected.code].append(
            _open_unusual(session, actor, culture, affected, reasons, confirmed)
        )
    uses = reagent_rules.uses_by_step(session, culture.id)
    marks = late_entries.marks(session, "passage", [target.code])
    [source] = counts.sources(session, [target.count_id])
    view = _passage_view(
        target,
        culture.code,
        uses.get(target.id, []),
        opened.pop(target.code),
        source,
        marks.get(target.code, []),
    )
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


def _descendants(session: Session, passages: Sequence[Passage]) -> list[Culture]:
    """Every culture split from these passages' harvests, or further down from those."""
    found = []
    for passage in passages:
        for child in split_from(session, passage):
            found.append(child)
            found += _descendants(session, passages_of(session, child))
    return found


def _recompute(session: Session, cultures: Sequence[Culture], why: str, by: str) -> list[str]:
    """Recompute the kinetics of these cultures (parents first) from what they inherit; the
    passages whose derived values moved, each with its entry in the trail."""
    recomputed = []
    for culture in cultures:
        passages = passages_of(session, culture)
        changes = _apply_kinetics(culture, inheritance(session, culture), passages, 0)
        for passage, changed in zip(passages, changes, strict=True):
            if changed:
                recomputed.append(passage.code)
                audit.record_changes(
                    session,
                    ("passage", passage.code),
                    "passage.recompute",
                    changed,
                    by=by,
                    reason=why,
                )
        session.add_all(passages)
    return recomputed


def _within_shared_harvest(
    code: str,
    harvested: int,
    seeded: int,
    children: Sequence[Culture],
    frozen: Sequence[BankVial],
) -> None:
    """A harvest that seeded children or was frozen covers what the parent reseeded, what
    the children got and what the bank vials hold."""
    if lineage.overdrawn(
        harvested, seeded, [child.cells_plated for child in children], [v.cells for v in frozen]
    ):
        shares = ", ".join(shares_described(children, frozen))
        raise BadInput(
            "harvested",
            f"the {harvested:,} cells harvested at {code} must cover the {seeded:,} reseeded "
            f"and those split off or frozen ({shares})",
        )


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


def culture_summaries(session: Session, cultures: Sequence[Culture]) -> list[CultureSummary]:
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
    late = late_entries.marks(session, "culture", [culture.code for culture in cultures])
    sources = counts.sources(session, [culture.count_id for culture in cultures])
    summaries = []
    for culture, source in zip(cultures, sources, strict=True):
        aspirate, patient = origins[culture.aspirate_id]
        passages, cumulative = latest.get(culture.id) or _before_any_passage(session, culture)
        marks = late.get(culture.code, [])
        summaries.append(
            from_record(
                CultureSummary,
                culture,
                culture_id=culture.code,
                din=din_of(aspirate),
                patient=patient,
                count=source,
                passages=passages,
                cumulative_population_doublings=cumulative,
                open_deviations=open_counts.get(culture.id, 0),
                late_entry=bool(marks),
                entered_at=culture.recorded_at,
                late_reason=marks[0].reason if marks else None,
            )
        )
    return summaries


def _before_any_passage(session: Session, culture: Culture) -> tuple[int, float | None]:
    """Passage number and cumulative PD of a culture yet to be harvested: a split culture's
    are those it inherits, a fresh one has none."""
    if culture.source_passage_id is None:
        return 0, None
    inherited = inheritance(session, culture)
    return inherited.passage_number, inherited.cumulative_population_doublings


def _passage_views(session: Session, culture: Culture) -> list[PassageView]:
    """A culture's passages as shown, each with its flags, reagents and late-entry mark."""
    assert culture.id is not None
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
    late = late_entries.marks(session, "passage", [passage.code for passage in passages])
    sources = counts.sources(session, [passage.count_id for passage in passages])
    return [
        _passage_view(
            passage,
            culture.code,
            uses.get(passage.id, []),
            flags.get(passage.id, []),
            source,
            late.get(passage.code, []),
        )
        for passage, source in zip(passages, sources, strict=True)
    ]


def ancestors(session: Session, culture: Culture) -> list[tuple[Culture, Passage]]:
    """The cultures this one descends from, the first first, each with the passage whose
    harvest seeded the next one down."""
    found = []
    child = culture
    while child.parent_id is not None:
        parent = session.get(Culture, child.parent_id)
        source = session.get(Passage, child.source_passage_id)
        assert parent is not None
        assert source is not None
        found.append((parent, source))
        child = parent
    return found[::-1]


def _family(session: Session, root: Culture) -> list[Culture]:
    """The first culture of a lineage and every culture split from it, however far down."""
    family = [root]
    parents = [root.id]
    while parents:
        children = session.exec(
            select(Culture).where(col(Culture.parent_id).in_(parents)).order_by(col(Culture.id))
        ).all()
        family += children
        parents = [child.id for child in children]
    return family


def sister_lots(
    session: Session, culture: Culture, lineage_of: Sequence[tuple[Culture, Passage]]
) -> list[SisterLot]:
    """Lots made from the other cultures of its lineage, with their status as shown."""
    root = lineage_of[0][0] if lineage_of else culture
    others = {c.id: c.code for c in _family(session, root) if c.id != culture.id}
    if not others:
        return []
    now = utcnow()
    lots = session.exec(
        select(Lot).where(col(Lot.culture_id).in_(list(others))).order_by(col(Lot.code))
    ).all()
    return [
        SisterLot(
            lot_id=lot.code,
            culture_id=others[lot.culture_id],
            status=LOT.shown(lot.status, expired=expired(lot.expires_at, now)),
        )
        for lot in lots
    ]


def thawed_from(session: Session, culture: Culture) -> BankVial | None:
    """The bank vial a thawed culture was started from; None for any other culture (and for
    a thawed one whose vial no longer names it, which `audit verify` reports)."""
    if culture.kind != THAWED:
        return None
    return session.exec(select(BankVial).where(col(BankVial.thawed_into_id) == culture.id)).first()


def _thaw_source(session: Session, culture: Culture) -> ThawSource | None:
    vial = thawed_from(session, culture)
    if vial is None:
        return None
    frozen = session.get(Passage, vial.passage_id)
    assert frozen is not None
    return ThawSource(
        bank_vial_id=vial.code,
        passage_id=frozen.code,
        passage_number=frozen.number,
        frozen_at=vial.frozen_at,
        frozen_by=vial.recorded_by,
        cells=vial.cells,
        thawed_at=culture.started_at,
        thaw_viability=vial.thaw_viability,
    )


def culture_detail(session: Session, culture: Culture) -> CultureDetail:
    assert culture.id is not None
    [summary] = culture_summaries(session, [culture])
    uses = reagent_rules.uses_by_step(session, culture.id)
    lineage_of = ancestors(session, culture)
    children = session.exec(
        select(Culture.code).where(col(Culture.parent_id) == culture.id).order_by(col(Culture.id))
    ).all()
    source = session.get(Passage, culture.source_passage_id) if culture.source_passage_id else None
    # The culture each ancestor's harvest seeded: the next ancestor down, the last this one.
    seeded = [ancestor for ancestor, _ in lineage_of[1:]] + [culture] if lineage_of else []
    return CultureDetail(
        summary=summary,
        reagents=uses.get(None, []),
        passages=_passage_views(session, culture),
        deviations=deviation_rules.on_culture(session, culture),
        parent=lineage_of[-1][0].code if lineage_of else None,
        source_passage=source.code if source is not None else None,
        thawed_from=_thaw_source(session, culture),
        children=list(children),
        lineage=[
            from_record(
                AncestorView,
                ancestor,
                culture_id=ancestor.code,
                count=source,
                split_at=passage.code,
                bank_vial=None if vial is None else vial.code,
                passages=_passage_views(session, ancestor),
                deviations=deviation_rules.on_culture(session, ancestor),
            )
            for (ancestor, passage), source, vial in zip(
                lineage_of,
                counts.sources(session, [ancestor.count_id for ancestor, _ in lineage_of]),
                [thawed_from(session, down) for down in seeded],
                strict=True,
            )
        ],
        sister_lots=sister_lots(session, culture, lineage_of),
    )


def show_culture(uow: UnitOfWork, *, culture: str) -> CultureDetail:
    session = uow.session
    uow.require("read_records")
    return culture_detail(session, lookup.culture(session, culture))


def list_cultures(uow: UnitOfWork) -> list[CultureSummary]:
    session = uow.session
    uow.require("read_records")
    cultures = session.exec(select(Culture).order_by(col(Culture.code))).all()
    return culture_summaries(session, cultures)


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
