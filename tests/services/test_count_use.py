"""Steps that take their numbers from an imported count (issue 14, item 2), through the services.

A passage, a lot, a culture's start and an aspirate's receipt may take their cells from a
count instead of typed numbers: viable (or total) cells/mL × the suspension's volume, the
viability as counted. A count is used by one step only, only when its instrument reported
it ok, and only by a step within counts.max_age_hours (default 12) of its analysis. Every
rule of the step still applies to the numbers; a refused step leaves its count unused.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from lims import db
from lims.domain.ids import CountId, CultureId
from lims.errors import BadInput, NotFound, RuleViolation
from lims.services import aspirates, cultures, lots, reports
from lims.timeutil import local_day_end, show_time
from lims.views import to_json
from tests.support.bench import RECEIVED, STARTED, Bench, day
from tests.support.counts import file_name_of, imported, sha256_of
from tests.support.lab import ON_POSTGRES

HARVEST = day(14)
# What the bench reseeds after every harvest here: five T175 flasks (PASSAGE's).
RESEED = {"seeded": 4_000_000, "vessels": 5, "area_cm2": 875, "reagents": ()}


def _counted_passage(bench: Bench, culture: str, code: str, ml: Any = 2, **values: Any) -> Any:
    return bench.run(
        cultures.log_passage,
        culture=culture,
        at=values.pop("at", HARVEST),
        count=code,
        suspension_ml=ml,
        **{**RESEED, **values},
    )


def _count_row(bench: Bench, code: str) -> Any:
    number = int(code.removeprefix("CNT-"))
    return bench.sql(
        "SELECT used_by, used_at, suspension_ml FROM cell_counts WHERE id = :id", id=number
    ).one()


def _entries(bench: Bench, action: str) -> list[Any]:
    return [entry for entry in bench.scenario.audit_trail() if entry.action == action]


# --- a passage takes its harvest from a count -------------------------------------------------


def test_a_passage_takes_its_harvest_from_a_count_and_uses_it_up(
    bench: Bench, growing: str
) -> None:
    code = imported(bench.scenario, 2.1e6, 95.4, at=HARVEST - timedelta(minutes=20))
    logged = _counted_passage(bench, growing, code, ml="2")
    assert (logged.harvested, logged.viability) == (4_200_000, 95.4)
    assert logged.count.count_id == code
    assert logged.count.suspension_ml == 2
    assert logged.count.file_sha256 == sha256_of(bench.scenario, code)
    assert to_json(logged)["count_id"] == code
    used_by, used_at, suspension = _count_row(bench, code)
    assert (used_by, suspension) == (f"passage {logged.passage_id}", 2)
    assert used_at is not None
    [use] = _entries(bench, "count.use")
    assert (use.entity_type, use.entity_id) == ("count", code)
    assert use.new["used_by"] == f"passage {logged.passage_id}"
    assert use.new["suspension_ml"] == 2
    log = _entries(bench, "passage.log")[-1]
    assert (log.new["count_id"], log.new["harvested"], log.new["viability"]) == (
        code,
        4_200_000,
        95.4,
    )
    assert bench.scenario.verify_trail().disagreement is None


def test_a_typed_passage_names_no_count(bench: Bench, growing: str) -> None:
    logged = bench.passage(growing, HARVEST)
    assert logged.count.typed
    assert to_json(logged)["count_id"] is None
    assert to_json(logged)["count"] is None
    assert "count_id" not in _entries(bench, "passage.log")[-1].new


def test_cells_from_a_count_are_exact_to_the_cell(bench: Bench, growing: str) -> None:
    # 750000.0 * 4.1 is 3074999.9999999995 in binary floating point.
    code = imported(bench.scenario, 0.75e6, 96, at=HARVEST)
    assert _counted_passage(bench, growing, code, ml="4.1", seeded=3_000_000).harvested == 3_075_000


def test_the_provenance_shows_the_volume_with_every_digit_the_cells_were_computed_from(
    bench: Bench, growing: str
) -> None:
    code = imported(bench.scenario, 2e4, 95, at=HARVEST)
    logged = _counted_passage(bench, growing, code, ml="1234.5678", seeded=20_000_000)
    assert logged.harvested == 24_691_356
    described = logged.count.described(bench.settings.tz)
    assert described.endswith("20,000 viable cells/mL × 1234.5678 mL")
    with pytest.raises(RuleViolation, match=r"× 1234\.5678 mL\)"):
        bench.run(cultures.correct_passage, passage=logged.passage_id, reason="x", viability=94)


def test_a_count_is_used_by_one_step_only(bench: Bench, growing: str) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    first = _counted_passage(bench, growing, code)
    other = bench.culture(bench.aspirate().din.code).summary.culture_id
    vehicle = bench.vehicle(HARVEST)
    before = bench.audit_actions()
    with pytest.raises(RuleViolation, match=f"already used by passage {first.passage_id}"):
        _counted_passage(bench, other, code)
    with pytest.raises(RuleViolation, match=f"already used by passage {first.passage_id}"):
        bench.run(
            lots.formulate,
            culture=other,
            count=code,
            suspension_ml=2,
            vials=1,
            cells_per_vial=1_000_000,
            volume_ml=2,
            at=HARVEST,
            **vehicle,
        )
    assert bench.audit_actions() == before


def test_a_count_taken_meanwhile_by_another_station_is_not_taken_twice(
    bench: Bench, growing: str
) -> None:
    """The guard itself: the count is read unused, and taken by another station before this
    step marks it (what two stations of a PostgreSQL deployment could do). Only the UPDATE that
    matches an unused count decides; the step is refused naming the one that took it."""
    if not ON_POSTGRES:
        pytest.skip("SQLite holds the write lock from BEGIN IMMEDIATE: no writer comes between")
    from sqlalchemy import event

    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    engine = db.engine_for(bench.settings)

    interleaved: list[str] = []

    def other_station_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CELL_COUNTS") and not interleaved:
            interleaved.append(statement)
            with engine.connect() as other, other.begin():
                other.execute(
                    text(
                        "UPDATE cell_counts SET used_by = 'lot X-L1', used_at = now(), "
                        "suspension_ml = 1 WHERE id = :id"
                    ),
                    {"id": int(code.removeprefix("CNT-"))},
                )

    event.listen(engine, "before_cursor_execute", other_station_first)
    try:
        with pytest.raises(RuleViolation, match="already used by lot X-L1"):
            _counted_passage(bench, growing, code)
    finally:
        event.remove(engine, "before_cursor_execute", other_station_first)
    assert interleaved, "the other station's update never came between"
    assert bench.read(cultures.show_culture, culture=growing).passages == []


def test_a_count_its_instrument_did_not_report_ok_is_refused_quoting_its_status(
    bench: Bench, growing: str
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST, status="Warning: too few cells")
    with pytest.raises(RuleViolation, match="reported 'Warning: too few cells'"):
        _counted_passage(bench, growing, code)
    assert _count_row(bench, code).used_by is None


@pytest.mark.parametrize(
    ("analysed", "side"),
    [
        (HARVEST - timedelta(hours=12, minutes=1), "after"),
        (HARVEST + timedelta(hours=12, minutes=1), "before"),
    ],
)
def test_a_count_further_than_max_age_hours_from_the_step_is_refused(
    bench: Bench, growing: str, analysed: datetime, side: str
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=analysed)
    zone = bench.settings.tz
    with pytest.raises(RuleViolation) as refused:
        _counted_passage(bench, growing, code)
    message = str(refused.value)
    assert f"analysed at {show_time(analysed, zone)}" in message
    assert f"the step at {show_time(HARVEST, zone)} is more than 12 h {side} it" in message
    assert "counts.max_age_hours" in message
    assert _count_row(bench, code).used_by is None


@pytest.mark.parametrize("hours", [-12, 12])
def test_a_count_exactly_max_age_hours_from_the_step_is_used(
    bench: Bench, growing: str, hours: int
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST + timedelta(hours=hours))
    assert _counted_passage(bench, growing, code).count.count_id == code


def test_the_sites_max_age_hours_decides(bench: Bench, growing: str) -> None:
    bench.lab.set_site(counts={"max_age_hours": 2})
    bench.lab.login("tom")
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST - timedelta(hours=3))
    with pytest.raises(RuleViolation, match="more than 2 h after it"):
        _counted_passage(bench, growing, code)


def test_a_count_of_a_day_only_is_used_from_12_h_before_that_day_to_12_h_after_it(
    bench: Bench, growing: str
) -> None:
    """NC-View gives the day of a count, not its time: the day at the station, widened by
    counts.max_age_hours on both sides."""
    zone = bench.settings.tz
    the_day = day(13).astimezone(zone).date()
    start = datetime.combine(the_day, time(), tzinfo=zone)
    end = local_day_end(the_day, zone)  # the next day's start, whatever a clock change did

    def counted_on(day_start: datetime) -> str:
        return imported(bench.scenario, 2.1e6, 95, at=day_start, date_only=True)

    def another_culture() -> str:
        return str(bench.culture(bench.aspirate().din.code).summary.culture_id)

    limit = timedelta(hours=12)
    _counted_passage(bench, growing, counted_on(start), at=end + limit)
    _counted_passage(bench, another_culture(), counted_on(end), at=end - limit)
    too_late, too_early = counted_on(start), counted_on(end)
    with pytest.raises(RuleViolation, match=r"\(its file gives the day only\); .* after it"):
        _counted_passage(bench, another_culture(), too_late, at=end + limit + timedelta(seconds=1))
    with pytest.raises(RuleViolation, match=r"\(its file gives the day only\); .* before it"):
        _counted_passage(bench, another_culture(), too_early, at=end - limit - timedelta(seconds=1))


# --- bad input and what is not found ------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("harvested", {"harvested": 4_000_000}),
        ("viability", {"viability": 95}),
        ("suspension-ml", {"suspension_ml": None}),
        ("suspension-ml", {"suspension_ml": "0"}),
        ("suspension-ml", {"suspension_ml": "5000.5"}),
        ("suspension-ml", {"suspension_ml": "nan"}),
        ("count", {"count": "CNT-42"}),
        ("count", {"count": "A999926000001-C1"}),
    ],
)
def test_a_passage_naming_a_count_badly_is_bad_input(
    bench: Bench, growing: str, field: str, values: dict[str, Any]
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(
            cultures.log_passage,
            culture=growing,
            at=HARVEST,
            **{"count": code, "suspension_ml": "2", **RESEED, **values},
        )
    assert refused.value.field == field
    assert bench.audit_actions() == before
    assert _count_row(bench, code).used_by is None


def test_a_passage_with_neither_typed_numbers_nor_a_count_says_both_ways(
    bench: Bench, growing: str
) -> None:
    for typed in ({}, {"harvested": 4_000_000}, {"viability": 95}):
        with pytest.raises(BadInput) as refused:
            bench.run(cultures.log_passage, culture=growing, at=HARVEST, **RESEED, **typed)
        assert "--harvested N --viability PCT" in str(refused.value)
        assert "--count CNT-… --suspension-ml V" in str(refused.value)
    with pytest.raises(BadInput, match=r"^suspension-ml: only with --count"):
        bench.run(
            cultures.log_passage,
            culture=growing,
            at=HARVEST,
            harvested=4e6,
            viability=95,
            suspension_ml=2,
            **RESEED,
        )


def test_a_count_that_does_not_exist_is_not_found(bench: Bench, growing: str) -> None:
    with pytest.raises(NotFound, match="no count CNT-999999"):
        _counted_passage(bench, growing, "CNT-999999")
    with pytest.raises(NotFound, match="no count CNT-9999999999"):
        _counted_passage(bench, growing, "cnt-9999999999")


# --- every rule of the step still applies --------------------------------------------------------


def test_a_counted_harvest_beyond_the_plausible_is_confirmed_as_unusual_or_refused(
    bench: Bench, growing: str
) -> None:
    # 1e8 viable cells off 875 cm² is 114,286 cells/cm²: above 100,000 (a typo, unless confirmed).
    code = imported(bench.scenario, 5e7, 97, at=HARVEST)
    with pytest.raises(BadInput, match="114,286 cells/cm²"):
        _counted_passage(bench, growing, code, ml=2)
    assert _count_row(bench, code).used_by is None  # nothing of the refused step stands
    logged = _counted_passage(
        bench, growing, code, ml=2, confirm_unusual=True, reason="dense confluent flasks"
    )
    assert logged.harvested == 100_000_000
    assert [flag.kind for flag in logged.flags] == ["unusual_count"]


def test_a_counted_viability_below_the_limit_is_flagged(bench: Bench, growing: str) -> None:
    code = imported(bench.scenario, 2.1e6, 71.5, at=HARVEST)
    assert [flag.kind for flag in _counted_passage(bench, growing, code).flags] == ["low_viability"]


def test_no_more_is_reseeded_than_the_count_says_was_harvested(bench: Bench, growing: str) -> None:
    code = imported(bench.scenario, 1e6, 95, at=HARVEST)
    with pytest.raises(BadInput, match="must not exceed the 2,000,000 cells harvested"):
        _counted_passage(bench, growing, code, seeded=4_000_000)
    assert _count_row(bench, code).used_by is None


def test_a_count_of_no_cell_at_this_volume_is_refused(bench: Bench, growing: str) -> None:
    code = imported(bench.scenario, 40.0, 95, at=HARVEST)
    with pytest.raises(RuleViolation, match=f"count {code} gives 0 viable cells"):
        _counted_passage(bench, growing, code, ml="0.01")


# --- corrections do not make the provenance lie ----------------------------------------------


def test_numbers_taken_from_a_count_are_not_retyped_by_a_correction(
    bench: Bench, growing: str
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    logged = _counted_passage(bench, growing, code)
    before = bench.audit_actions()
    for typed in ({"harvested": 4_100_000}, {"viability": 94}):
        with pytest.raises(RuleViolation) as refused:
            bench.run(
                cultures.correct_passage, passage=logged.passage_id, reason="recount", **typed
            )
        message = str(refused.value)
        assert f"came from count {code}" in message
        assert f"lims deviation open --culture {growing}" in message
    assert bench.audit_actions() == before
    corrected = bench.run(
        cultures.correct_passage, passage=logged.passage_id, reason="typo", seeded=3_000_000
    )
    assert corrected.passage.count.count_id == code
    moved = bench.run(
        cultures.correct_passage,
        passage=logged.passage_id,
        reason="clock",
        at=HARVEST + timedelta(hours=11),
    )
    assert moved.passage.harvested_at == HARVEST + timedelta(hours=11)
    with pytest.raises(RuleViolation, match="more than 12 h before it"):
        bench.run(
            cultures.correct_passage,
            passage=logged.passage_id,
            reason="clock",
            at=HARVEST - timedelta(hours=13),
        )


# --- a lot, a culture's start and an aspirate ---------------------------------------------------


def _formulate(bench: Bench, culture: str, **values: Any) -> Any:
    values = {"vials": 4, "cells_per_vial": 5_000_000, "volume_ml": 2, "at": day(20), **values}
    return bench.run(lots.formulate, culture=culture, **bench.vehicle(values["at"]), **values)


def test_a_lot_takes_its_final_harvest_from_a_count(bench: Bench, growing: str) -> None:
    bench.passage(growing, HARVEST)
    code = imported(bench.scenario, 1.1e6, 93.5, at=day(20) - timedelta(hours=1))
    lot = _formulate(bench, growing, count=code, suspension_ml=20)
    assert (lot.summary.harvested, lot.summary.viability) == (22_000_000, 93.5)
    assert lot.summary.count.count_id == code
    assert to_json(lot)["count"]["file_sha256"] == sha256_of(bench.scenario, code)
    assert _count_row(bench, code).used_by == f"lot {lot.summary.lot_id}"
    with pytest.raises(RuleViolation, match=f"came from count {code}.*--lot {lot.summary.lot_id}"):
        bench.run(lots.correct_lot, lot=lot.summary.lot_id, reason="recount", viability=90)
    corrected = bench.run(lots.correct_lot, lot=lot.summary.lot_id, reason="x", volume_ml=1.5)
    assert corrected.summary.count.count_id == code
    assert bench.scenario.verify_trail().disagreement is None


def test_vials_cannot_hold_more_cells_than_the_count_gives(bench: Bench, growing: str) -> None:
    bench.passage(growing, HARVEST)
    code = imported(bench.scenario, 1e6, 93, at=day(20))
    with pytest.raises(BadInput, match="more than the 10,000,000 viable cells harvested"):
        _formulate(bench, growing, count=code, suspension_ml=10, cells_per_vial=5_000_000)
    with pytest.raises(BadInput) as typed_too:
        _formulate(bench, growing, count=code, suspension_ml=10, harvested=1e7)
    assert typed_too.value.field == "harvested"
    assert _count_row(bench, code).used_by is None


@pytest.mark.parametrize("kind", ["primary", "seeded"])
def test_a_culture_starts_with_the_viable_cells_of_a_count(bench: Bench, kind: str) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    code = imported(bench.scenario, 4.8e7, 88, at=STARTED - timedelta(minutes=30))
    started = bench.culture(din, mnc=None, count=code, suspension_ml=5, kind=kind)
    assert (started.summary.kind, started.summary.cells_plated) == (kind, 240_000_000)
    assert started.summary.count.count_id == code
    assert to_json(started)["count_id"] == code
    assert _count_row(bench, code).used_by == f"culture {started.summary.culture_id}"
    assert bench.scenario.verify_trail().disagreement is None


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("kind", {"mnc": None}),
        ("kind", {"mnc": None, "kind": "split"}),
        ("mnc", {"kind": "primary"}),
        ("seeded", {"mnc": None, "seeded": 1e6, "kind": "seeded"}),
    ],
)
def test_a_culture_started_from_a_count_names_its_kind_and_no_typed_cells(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    code = imported(bench.scenario, 4.8e7, 88, at=STARTED)
    with pytest.raises(BadInput) as refused:
        bench.culture(din, count=code, suspension_ml=5, **values)
    assert refused.value.field == field
    with pytest.raises(BadInput, match=r"^kind: only with --count"):
        bench.culture(din, kind="primary")


def test_an_aspirate_takes_its_tnc_from_a_counts_total_cells(bench: Bench) -> None:
    bench.patient()
    code = imported(bench.scenario, 1.2e7, 91, total_per_ml=2.05e7, at=RECEIVED)
    received = bench.aspirate(tnc=None, count=code, suspension_ml=30)
    assert received.tnc == 615_000_000
    assert received.count.count_id == code
    assert _count_row(bench, code).used_by == f"aspirate {received.din.code}"
    shown = bench.read(aspirates.show_aspirate, din=received.din.code)
    assert to_json(shown)["count"]["total_per_ml"] == 2.05e7
    viable_only = imported(bench.scenario, 1.2e7, 91, at=RECEIVED)
    with pytest.raises(RuleViolation, match=f"count {viable_only} has no total cell density"):
        bench.aspirate(tnc=None, count=viable_only, suspension_ml=30)
    with pytest.raises(BadInput) as typed_too:
        bench.aspirate(count=viable_only, suspension_ml=30)  # the scenario types a TNC
    assert typed_too.value.field == "tnc"
    assert bench.scenario.verify_trail().disagreement is None


# --- bound to the trail ---------------------------------------------------------------------------

FREED = "used_by = NULL, used_at = NULL, suspension_ml = NULL"  # a used count made unused


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        (f"UPDATE cell_counts SET {FREED}", "used_by"),
        ("UPDATE cell_counts SET suspension_ml = 20", "suspension_ml"),
        ("UPDATE cell_counts SET used_by = 'passage elsewhere'", "used_by"),
        ("UPDATE passages SET count_id = NULL", "count_id of its step"),
        ("UPDATE passages SET harvested = harvested * 10", "cells of its step"),
        ("UPDATE passages SET viability = 99", "viability of its step"),
    ],
)
def test_a_count_or_its_step_edited_by_hand_disagrees_with_the_trail(
    bench: Bench, growing: str, statement: str, column: str
) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    _counted_passage(bench, growing, code)
    assert bench.scenario.verify_trail().disagreement is None
    bench.sql(statement)
    found = bench.scenario.verify_trail().disagreement
    assert (found.table, found.id, found.column) == ("cell_counts", code, column)


def test_a_step_moved_by_hand_to_another_count_disagrees_with_the_trail(
    bench: Bench, growing: str
) -> None:
    taken = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    logged = _counted_passage(bench, growing, taken)
    other = imported(bench.scenario, 2.5e6, 97, at=HARVEST)
    bench.sql("UPDATE passages SET count_id = :id", id=int(other.removeprefix("CNT-")))
    found = bench.scenario.verify_trail().disagreement
    assert (found.table, found.id, found.column) == ("cell_counts", taken, "count_id of its step")
    assert (found.row_value, found.trail_value) == (None, f"passage {logged.passage_id}")


def test_the_database_writes_a_counts_id_as_lims_does(bench: Bench) -> None:
    """The trail names a count CNT-…; the bound rows compute the same id in SQL."""
    from sqlalchemy import literal, select

    from lims.services import bindings
    from lims.uow import unit_of_work

    numbers = [1, 123, 999_999, 1_000_000, 2**31 - 1]
    with unit_of_work(bench.settings, write=False, authenticated=False) as uow:
        written = [
            uow.session.execute(select(bindings._count_code(literal(number)))).scalar_one()
            for number in numbers
        ]
    assert written == [CountId(number).code for number in numbers]


def test_a_count_freed_by_hand_is_not_taken_again(bench: Bench, growing: str) -> None:
    code = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    _counted_passage(bench, growing, code)
    bench.sql("UPDATE cell_counts SET used_by = NULL, used_at = NULL, suspension_ml = NULL")
    other = bench.culture(bench.aspirate().din.code).summary.culture_id
    with pytest.raises(
        RuleViolation, match=f"record disagrees with the audit trail: cell_counts {code} used_by"
    ):
        _counted_passage(bench, other, code)


@pytest.mark.parametrize(
    ("table", "step"),
    [("lots", "lot"), ("cultures", "culture"), ("aspirates", "aspirate")],
)
def test_a_step_given_a_count_by_hand_disagrees_with_the_trail(
    bench: Bench, growing: str, table: str, step: str
) -> None:
    unused = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    used = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    passage = _counted_passage(bench, growing, used).passage_id
    lot = _formulate(bench, growing, harvested=1e8, viability=93).summary.lot_id
    codes = {"lots": lot, "cultures": growing, "aspirates": CultureId.parse(growing).din.code}
    named_by = "din" if table == "aspirates" else "code"  # not the lot's CSF, an aspirate too
    for count, trail in ((unused, None), (used, f"passage {passage}")):
        bench.sql(
            f"UPDATE {table} SET count_id = :id WHERE {named_by} = :code",
            id=int(count.removeprefix("CNT-")),
            code=codes[table],
        )
        found = bench.scenario.verify_trail().disagreement
        shown = f"{step} {codes[table]}" if trail is None else f"{trail}; {step} {codes[table]}"
        assert (found.table, found.id, found.column) == (
            "cell_counts",
            count,
            "count_id of its step",
        )
        assert (found.row_value, found.trail_value) == (shown, trail)
        bench.sql(f"UPDATE {table} SET count_id = NULL")


# --- the batch record says where each number came from -------------------------------------------


def pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def test_the_batch_record_names_the_count_behind_each_number_and_what_was_typed(
    bench: Bench, tmp_path: Path
) -> None:
    bench.patient()
    tnc = imported(bench.scenario, 1.2e7, 91, total_per_ml=2.05e7, at=RECEIVED)
    din = bench.aspirate(tnc=None, count=tnc, suspension_ml=30).din.code
    plated = imported(bench.scenario, 4.8e7, 88, at=STARTED)
    culture = bench.culture(din, mnc=None, count=plated, suspension_ml=5, kind="primary")
    culture_id = culture.summary.culture_id
    first = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    _counted_passage(bench, culture_id, first, ml="2.5")
    bench.passage(culture_id, day(18), harvested=32_000_000, seeded=20_000_000, area_cm2=4000)
    final = imported(bench.scenario, 1.1e6, 93.5, at=day(20))
    lot = _formulate(bench, culture_id, count=final, suspension_ml=20).summary.lot_id
    report = bench.run(reports.write_batch_record, lot=lot, out=tmp_path / "batch.pdf")
    report.files.publish()
    text = pdf_text(tmp_path / "batch.pdf")
    for code, what in [
        (tnc, "20,500,000 total cells/mL × 30 mL"),
        (plated, "48,000,000 viable cells/mL × 5 mL"),
        (first, "2,100,000 viable cells/mL × 2.5 mL"),
        (final, "1,100,000 viable cells/mL × 20 mL"),
    ]:
        assert f"count {code}: Beckman Coulter Vi-CELL BLU S/N VB-20231234" in text, code
        assert f"file {file_name_of(bench.scenario, code)}" in text, code
        assert f"(SHA-256 {sha256_of(bench.scenario, code)})" in text, code  # in full
        assert what in text, code
    assert "P1 harvested and viability from count" in text
    assert "P2 harvested and viability from count" not in text
    # The passages' table names each harvest's count, or typed.
    assert f"5,250,000 95 {first}" in text
    assert "32,000,000 95 typed" in text
    # The lot's audit trail holds each count's import and its use.
    for code in (tnc, plated, first, final):
        assert text.count(f"count:{code}") == 2, code
    assert "count.import" in text
    assert "count.use" in text


def test_a_lot_of_a_split_culture_says_where_its_lineages_numbers_came_from(
    bench: Bench, tmp_path: Path
) -> None:
    """The first culture's start and the passage whose harvest seeded the split are steps of
    the lot's history too: their counts are named, and their import and use are in its trail."""
    bench.patient()
    plated = imported(bench.scenario, 4.8e7, 88, at=STARTED)
    din = bench.aspirate().din.code
    first = bench.culture(din, mnc=None, count=plated, suspension_ml=5, kind="primary")
    root = first.summary.culture_id
    harvest = imported(bench.scenario, 2.1e6, 95, at=HARVEST)
    _counted_passage(bench, root, harvest, ml="20")
    child = bench.run(
        cultures.split_culture,
        culture=root,
        seeded=4_000_000,
        vessels=5,
        area_cm2=875,
        at=HARVEST + timedelta(hours=1),
        reagents=(),
    ).summary.culture_id
    bench.passage(child, day(18), harvested=32_000_000, seeded=20_000_000, area_cm2=4000)
    lot = _formulate(bench, child, harvested=1e8, viability=93).summary.lot_id
    [ancestor] = bench.read(lots.show_lot, lot=lot).culture.lineage
    assert to_json(ancestor)["count_id"] == plated
    report = bench.run(reports.write_batch_record, lot=lot, out=tmp_path / "batch.pdf")
    report.files.publish()
    text = pdf_text(tmp_path / "batch.pdf")
    assert f"cells plated from count {plated}: Beckman Coulter Vi-CELL BLU" in text
    assert "48,000,000 viable cells/mL × 5 mL" in text
    for code in (plated, harvest):
        assert text.count(f"count:{code}") == 2, code
