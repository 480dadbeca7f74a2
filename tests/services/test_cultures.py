"""Cultures and passages through the service: ids, growth, flags, corrections, projection.

Each rule has a test that fails when the rule is removed, including the
refusals: bad input (exit 2), unknown records (3), wrong role (4) and rules (1).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from lims import audit
from lims.errors import BadInput, NotFound, RuleViolation
from lims.services import aspirates, cultures, reagents
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.bench import NOW, RECEIVED, STARTED, Bench, day

# --- cultures ------------------------------------------------------------------------------


def test_cultures_are_numbered_within_their_aspirate(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    seeded = bench.culture(din, mnc=None, seeded=1_000_000)
    primary = bench.culture(din)
    assert seeded.summary.culture_id == f"{din}-C1"
    assert primary.summary.culture_id == f"{din}-C2"
    assert primary.summary.method == "density gradient (Percoll 1.073 g/mL)"
    assert (primary.summary.kind, seeded.summary.kind) == ("primary", "seeded")
    assert bench.read(aspirates.show_aspirate, din=din).cultures == [f"{din}-C1", f"{din}-C2"]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("mnc/seeded", {"mnc": None}),
        ("mnc/seeded", {"seeded": 1000}),
        ("mnc", {"mnc": 0}),
        ("vessels", {"vessels": 0}),
        ("vessels", {"vessels": "2.5"}),
        ("area-cm2", {"area_cm2": -1}),
        ("at", {"at": RECEIVED}),
        ("at", {"at": NOW + timedelta(hours=1)}),
    ],
)
def test_impossible_culture_starts_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    with pytest.raises(BadInput) as refused:
        bench.culture(din, **values)
    assert refused.value.field == field
    assert "culture.start" not in bench.audit_actions()


def test_a_culture_needs_a_known_aspirate(bench: Bench) -> None:
    with pytest.raises(NotFound):
        bench.culture("A9999 26 000042")


# --- passages and growth ----------------------------------------------------------------------


def test_growth_is_derived_from_the_counts(bench: Bench, growing: str) -> None:
    first = bench.passage(growing, day(14), harvested=4_000_000, seeded=4_000_000)
    assert first.passage_id == f"{growing}-P1"
    assert first.passage_number == 1
    assert first.population_doublings is None  # the first harvest of a primary culture
    assert first.cumulative_population_doublings == 0
    second = bench.passage(growing, day(17), harvested="3.2e7", seeded="16000000", area_cm2=3200)
    assert second.passage_number == 2
    assert second.population_doublings == pytest.approx(3.0)  # 4e6 -> 3.2e7
    assert second.fold_expansion == pytest.approx(8.0)
    assert second.doubling_time_hours == pytest.approx(24.0)  # 72 h / 3
    assert second.seeding_density_per_cm2 == pytest.approx(5000)
    third = bench.passage(growing, day(19), harvested=64_000_000, seeded=16_000_000, area_cm2=3200)
    assert third.population_doublings == pytest.approx(2.0)
    assert third.cumulative_population_doublings == pytest.approx(5.0)
    assert third.doubling_time_hours == pytest.approx(24.0)
    assert bench.audit_actions()[-1] == "passage.log"


def test_a_seeded_culture_counts_doublings_from_its_first_harvest(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    code = bench.culture(din, mnc=None, seeded=1_000_000, area_cm2=200).summary.culture_id
    first = bench.passage(
        code, STARTED + timedelta(hours=96), harvested=16_000_000, seeded=5_000_000, area_cm2=1000
    )
    assert first.population_doublings == pytest.approx(4.0)
    assert first.cumulative_population_doublings == pytest.approx(4.0)
    assert first.doubling_time_hours == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("harvested", {"harvested": 0}),
        ("harvested", {"harvested": "-3"}),
        ("harvested", {"harvested": "nan"}),
        ("harvested", {"harvested": "1.5"}),
        ("viability", {"viability": 140}),
        ("viability", {"viability": -0.1}),
        ("seeded", {"seeded": 5_000_000}),
        ("confluence", {"confluence": 101}),
        ("vessels", {"vessels": -1}),
        ("area-cm2", {"area_cm2": 0}),
    ],
)
def test_impossible_passages_are_refused_and_nothing_is_written(
    bench: Bench, growing: str, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.passage(growing, day(14), **values)
    assert refused.value.field == field
    assert bench.audit_actions() == before
    assert bench.read(cultures.show_culture, culture=growing).passages == []


def test_a_passage_must_come_after_the_step_before_it_and_not_in_the_future(
    bench: Bench, growing: str
) -> None:
    with pytest.raises(BadInput, match="after the start"):
        bench.passage(growing, STARTED)
    bench.passage(growing, day(14))
    with pytest.raises(BadInput, match="after passage"):
        bench.passage(growing, day(14))
    with pytest.raises(BadInput, match="future"):
        bench.passage(growing, utcnow() + timedelta(minutes=30))


def test_a_passage_needs_a_known_culture(bench: Bench) -> None:
    with pytest.raises(NotFound):
        bench.passage("A999926000001-C9", day(1))
    with pytest.raises(BadInput) as refused:
        bench.passage("C9", day(1))
    assert refused.value.field == "culture"


def test_a_culture_no_longer_active_takes_no_passages(bench: Bench, growing: str) -> None:
    bench.sql("UPDATE cultures SET status = 'formulated' WHERE code = :code", code=growing)
    with pytest.raises(RuleViolation, match="formulated"):
        bench.passage(growing, day(14))


def _open_deviation_kinds(bench: Bench, culture: str) -> list[str]:
    detail = bench.read(cultures.show_culture, culture=culture)
    return [d.kind for d in detail.deviations if d.status == "open"]


def test_a_passage_in_range_raises_no_flag(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    assert (
        bench.passage(
            growing, day(18), harvested=32_000_000, seeded=20_000_000, area_cm2=4000
        ).flags
        == []
    )
    assert _open_deviation_kinds(bench, growing) == []


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("low_viability", {"viability": 79.9}),
        ("seeding_density", {"seeded": 800_000}),  # 914 cells/cm² on 875 cm²
        ("seeding_density", {"area_cm2": 300}),  # 13,333 cells/cm²
    ],
)
def test_a_passage_outside_the_bench_limits_is_saved_flagged_and_opens_a_deviation(
    bench: Bench, growing: str, kind: str, values: dict[str, Any]
) -> None:
    logged = bench.passage(growing, day(14), **values)
    assert [flag.kind for flag in logged.flags] == [kind]
    assert _open_deviation_kinds(bench, growing) == [kind]
    assert bench.audit_actions()[-2:] == ["passage.log", "deviation.open"]


def test_a_harvest_without_growth_is_flagged(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    logged = bench.passage(growing, day(18), harvested=3_000_000, seeded=3_000_000, area_cm2=600)
    assert logged.population_doublings is not None
    assert logged.population_doublings < 0
    assert logged.doubling_time_hours is None
    assert [flag.kind for flag in logged.flags] == ["no_growth"]


def test_a_passage_above_the_maximum_is_flagged(bench: Bench, growing: str) -> None:
    bench.lab.set_site(expansion={"max_passage": 1})
    bench.lab.login("tom")
    bench.passage(growing, day(14))
    second = bench.run(
        cultures.log_passage,
        culture=growing,
        at=day(18),
        harvested=32_000_000,
        viability=95,
        seeded=20_000_000,
        vessels=5,
        area_cm2=4000,
    )
    assert [flag.kind for flag in second.flags] == ["passage_limit"]


# --- corrections -------------------------------------------------------------------------------


@pytest.fixture
def expanded(bench: Bench, growing: str) -> str:
    """The growing culture with three passages: PD null, 3 and 2."""
    bench.passage(growing, day(14), harvested=4_000_000, seeded=4_000_000)
    bench.passage(growing, day(17), harvested=32_000_000, seeded=16_000_000, area_cm2=3200)
    bench.passage(growing, day(19), harvested=64_000_000, seeded=16_000_000, area_cm2=3200)
    return growing


def test_a_correction_recomputes_the_passage_and_every_later_one(
    bench: Bench, expanded: str
) -> None:
    corrected = bench.run(
        cultures.correct_passage,
        passage=f"{expanded}-P2",
        reason="count sheet misread",
        seeded=8_000_000,
    )
    assert corrected.changed["seeded"] == (16_000_000, 8_000_000)
    assert corrected.recomputed == [f"{expanded}-P3"]
    detail = bench.read(cultures.show_culture, culture=expanded)
    third = detail.passages[2]
    assert third.population_doublings == pytest.approx(3.0)  # 8e6 -> 6.4e7
    assert third.cumulative_population_doublings == pytest.approx(6.0)
    assert detail.passages[1].corrections == 1
    assert detail.passages[1].seeding_density_per_cm2 == pytest.approx(2500)
    assert bench.audit_actions()[-2:] == ["passage.correct", "passage.recompute"]


def test_a_correction_keeps_the_old_values_and_the_reason_in_the_audit(
    bench: Bench, expanded: str
) -> None:
    bench.run(
        cultures.correct_passage, passage=f"{expanded}-P2", reason="recount", harvested="2.4e7"
    )
    with unit_of_work(bench.settings, write=False) as uow:
        entry = audit.entries(uow.session, entity_type="passage", entity_id=f"{expanded}-P2")[-1]
    assert entry.action == "passage.correct"
    assert entry.reason == "recount"
    assert entry.old["harvested"] == 32_000_000
    assert entry.new["harvested"] == 24_000_000
    assert entry.old["population_doublings"] == pytest.approx(3.0)
    assert entry.new["population_doublings"] == pytest.approx(math.log2(6))


def test_a_correction_that_breaks_a_limit_opens_a_deviation(bench: Bench, expanded: str) -> None:
    corrected = bench.run(
        cultures.correct_passage, passage=f"{expanded}-P3", reason="typo", viability=70
    )
    assert [flag.kind for flag in corrected.passage.flags] == ["low_viability"]
    assert _open_deviation_kinds(bench, expanded) == ["low_viability"]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("reason", {"reason": " ", "viability": 90}),
        ("correction", {"reason": "nothing"}),
        ("correction", {"reason": "same", "viability": 95}),
        ("seeded", {"reason": "x", "seeded": 40_000_000}),
        ("at", {"reason": "x", "at": day(19)}),
        ("at", {"reason": "x", "at": day(14)}),
        ("viability", {"reason": "x", "viability": 100.01}),
    ],
)
def test_corrections_that_cannot_stand_are_refused(
    bench: Bench, expanded: str, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(cultures.correct_passage, passage=f"{expanded}-P2", **values)
    assert refused.value.field == field
    assert bench.audit_actions() == before


def test_a_correction_needs_a_known_passage(bench: Bench, expanded: str) -> None:
    with pytest.raises(NotFound):
        bench.run(cultures.correct_passage, passage=f"{expanded}-P9", reason="x", viability=90)


# --- projection --------------------------------------------------------------------------------


def test_a_projection_needs_growth_to_project_from(bench: Bench, growing: str) -> None:
    with pytest.raises(RuleViolation, match="too little data"):
        bench.read(cultures.project_culture, culture=growing, target_cells=1e8)
    bench.passage(growing, day(14))
    with pytest.raises(RuleViolation, match="too little data"):
        bench.read(cultures.project_culture, culture=growing, target_cells=1e8)


def test_a_projection_follows_the_recent_doubling_time(bench: Bench, expanded: str) -> None:
    view = bench.read(cultures.project_culture, culture=expanded, target_cells="1.28e8")
    p = view
    assert p.cells_now == 16_000_000
    assert p.doubling_time_hours == pytest.approx(24.0)  # P2: 3 PD in 72 h, P3: 2 PD in 48 h
    assert p.doublings_per_passage == pytest.approx(2.5)
    assert p.doublings_needed == pytest.approx(3.0)
    assert p.passages_needed == 2
    assert p.expected_at == day(19) + timedelta(hours=72)
    assert view.final_passage_number == 5
    assert not view.exceeds_max_passage
    assert view.basis == [f"{expanded}-P2", f"{expanded}-P3"]
    assert any("5,000 cells/cm²" in line for line in view.assumptions)


# --- found in review ------------------------------------------------------------------------


def test_moving_a_passage_past_its_reagent_expiry_is_refused(bench: Bench, growing: str) -> None:
    zone = bench.settings.tz
    last_day = day(10).astimezone(zone).date()
    bench.run(reagents.add_reagent, name="TrypLE", lot="B1", expires=last_day)
    evening = datetime.combine(last_day, datetime.min.time(), tzinfo=zone) + timedelta(hours=20)
    bench.passage(growing, evening, reagents=["TrypLE:B1"])
    with pytest.raises(RuleViolation, match="expired"):
        bench.run(
            cultures.correct_passage,
            passage=f"{growing}-P1",
            reason="clock was wrong",
            at=evening + timedelta(hours=5),
        )


def test_a_correction_reports_each_new_flag_on_its_own_passage(bench: Bench, expanded: str) -> None:
    corrected = bench.run(
        cultures.correct_passage,
        passage=f"{expanded}-P2",
        reason="recount",
        harvested=80_000_000,
        seeded=70_000_000,  # more than P3 later harvested: P3 shows no growth
        area_cm2=14_000,
    )
    assert corrected.passage.flags == []  # P2 itself is still in range
    assert [(f.kind, f.description.split(":")[0]) for f in corrected.flagged_later] == [
        ("no_growth", f"{expanded}-P3")
    ]


def test_a_breach_already_on_record_is_not_flagged_again(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14), viability=70)
    bench.sql("UPDATE deviations SET status = 'closed'")
    corrected = bench.run(
        cultures.correct_passage, passage=f"{growing}-P1", reason="x", confluence=80
    )
    assert corrected.passage.flags == []
    assert _open_deviation_kinds(bench, growing) == []


def test_a_culture_that_stopped_growing_gets_no_projection(bench: Bench, expanded: str) -> None:
    bench.passage(expanded, day(22), harvested=16_000_000, seeded=16_000_000, area_cm2=3200)
    with pytest.raises(RuleViolation, match="not growing"):
        bench.read(cultures.project_culture, culture=expanded, target_cells="1e9")
