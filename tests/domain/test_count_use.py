"""A step's numbers from a count, in pure terms: the cells in a suspension, the age window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain import count_use
from lims.errors import BadInput, RuleViolation

ROME = ZoneInfo("Europe/Rome")


def test_cells_are_the_decimal_product_of_what_both_floats_print_as() -> None:
    # In binary floating point 750000.0 * 4.1 is 3074999.9999999995: one cell short, truncated.
    assert int(0.75e6 * 4.1) == 3_074_999
    assert count_use.cells_in(0.75e6, 4.1) == 3_075_000
    assert count_use.cells_in(0.75e6, 3.3) == 2_475_000
    assert count_use.cells_in(2.1e6, 2) == 4_200_000
    assert count_use.cells_in(1.234567e6, 0.1) == 123_457  # 123456.7


@pytest.mark.parametrize(
    ("per_ml", "ml", "cells"),
    [(0.5, 5.0, 2), (0.5, 7.0, 4), (1.5, 1.0, 2), (2.5, 1.0, 2), (1e6, 0.0000025, 2)],
)
def test_half_a_cell_rounds_to_the_even_one(per_ml: float, ml: float, cells: int) -> None:
    assert count_use.cells_in(per_ml, ml) == cells


@given(
    per_ml=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    ml=st.floats(min_value=0.01, max_value=5000, allow_nan=False),
)
def test_cells_are_never_more_than_half_a_cell_from_the_exact_product(
    per_ml: float, ml: float
) -> None:
    exact = Decimal(repr(per_ml)) * Decimal(repr(ml))
    assert abs(count_use.cells_in(per_ml, ml) - exact) <= Decimal("0.5")


def test_a_count_giving_no_cell_or_more_than_lims_records_is_refused() -> None:
    with pytest.raises(RuleViolation, match="CNT-000001 gives 0 viable cells"):
        count_use.require_cells("CNT-000001", "viable cells", 10.0, 0.01)
    with pytest.raises(RuleViolation, match="1e\\+15"):
        count_use.require_cells("CNT-000001", "viable cells", 1e12, 5000)
    assert count_use.require_cells("CNT-000001", "viable cells", 1e12, 1000) == 10**15


def test_only_a_count_reported_ok_is_used() -> None:
    count_use.require_ok("CNT-000001", "ok")
    with pytest.raises(RuleViolation, match="reported 'Dilution error'"):
        count_use.require_ok("CNT-000001", "Dilution error")


ANALYSED = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("hours", [-12, -11.99, 0, 5, 12])
def test_a_step_within_the_limit_before_or_after_the_count_may_use_it(hours: float) -> None:
    count_use.require_within(
        "CNT-000001",
        ANALYSED + timedelta(hours=hours),
        ANALYSED,
        date_only=False,
        max_age_hours=12,
        zone=ROME,
    )


@pytest.mark.parametrize(("hours", "side"), [(-12.01, "before"), (12.01, "after"), (-72, "before")])
def test_a_step_further_from_the_count_is_refused_naming_both_times_and_the_limit(
    hours: float, side: str
) -> None:
    with pytest.raises(RuleViolation) as refused:
        count_use.require_within(
            "CNT-000001",
            ANALYSED + timedelta(hours=hours),
            ANALYSED,
            date_only=False,
            max_age_hours=12,
            zone=ROME,
        )
    message = str(refused.value)
    assert "analysed at 2026-03-10 10:30:00+01:00" in message
    assert f"more than 12 h {side} it" in message
    assert "counts.max_age_hours" in message


def test_a_count_of_a_day_only_reaches_from_that_days_start_to_its_end_in_the_stations_zone() -> (
    None
):
    # NC-View gives the day: the count's time is the start of that day at the station.
    start = datetime(2026, 3, 10, tzinfo=ROME).astimezone(UTC)
    allowed = count_use.window(start, date_only=True, max_age_hours=12, zone=ROME)
    assert allowed.earliest == start - timedelta(hours=12)
    assert allowed.latest == datetime(2026, 3, 11, tzinfo=ROME).astimezone(UTC) + timedelta(
        hours=12
    )
    with pytest.raises(RuleViolation, match=r"on 2026-03-10 \(its file gives the day only\)"):
        count_use.require_within(
            "CNT-000001",
            allowed.latest + timedelta(seconds=1),
            start,
            date_only=True,
            max_age_hours=12,
            zone=ROME,
        )


def test_a_day_that_a_clock_change_shortens_still_ends_at_the_next_midnight() -> None:
    start = datetime(2026, 3, 29, tzinfo=ROME).astimezone(UTC)  # 23 hours long in Rome
    allowed = count_use.window(start, date_only=True, max_age_hours=1, zone=ROME)
    assert allowed.latest - allowed.earliest == timedelta(hours=25)


@pytest.mark.parametrize(
    ("count", "ml", "field"),
    [
        ("CNT-000001", None, "suspension-ml"),
        (None, "2", "suspension-ml"),
        ("CNT-1", "2", "count"),
        ("CNT-٠٠٠٠٠١", "2", "count"),
        ("CNT-000001", "0", "suspension-ml"),
        ("CNT-000001", "0.009", "suspension-ml"),
        ("CNT-000001", "5000.001", "suspension-ml"),
        ("CNT-000001", "nan", "suspension-ml"),
        ("CNT-000001", "inf", "suspension-ml"),
        ("CNT-000001", "2 mL", "suspension-ml"),
    ],
)
def test_a_count_is_named_with_a_sane_volume(count: str | None, ml: str | None, field: str) -> None:
    with pytest.raises(BadInput) as refused:
        count_use.requested(count, ml)
    assert refused.value.field == field


def test_a_count_named_as_typed_is_read_as_lims_writes_it() -> None:
    assert count_use.requested(" cnt-000042 ", "0.01") == count_use.CountRequest("CNT-000042", 0.01)
    assert count_use.requested(None, None) is None
    assert count_use.requested("CNT-000042", 5000).suspension_ml == 5000
