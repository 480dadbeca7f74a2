"""Censored numeric results, `<X` and `>X`, judged with no database at all.

A value beyond the method's range stands for every value it may be: `<X` for
[0, X) (no result is negative) and `>X` for (X, ∞). It passes only if all of them
pass, and when it does not, the reason says why beside the value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from lims.domain.spec import (
    Criterion,
    LotFacts,
    NumericCriterion,
    Qualifier,
    RecordedResult,
    ReleaseSpec,
    compact,
    doubt,
    evaluate,
    exact,
    passes,
    split_qualifier,
)

DEFAULT = TypeAdapter(ReleaseSpec).validate_python({})
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def censored(test: str, qualifier: Qualifier | None, number: float) -> RecordedResult:
    """A numeric result as the QC service records it: '<0.5' is the number 0.5, below it."""
    return RecordedResult(
        id=1,
        test=test,
        value=f"{qualifier or ''}{number:g}",
        number=number,
        unit=None,
        method=None,
        tested_at=NOW - timedelta(hours=1),
        reason=None,
        recorded_by="tom",
        qualifier=qualifier,
    )


def lot() -> LotFacts:
    return LotFacts(
        code="A999926000001-L1",
        status="quarantine",
        spec_version=1,
        expires_at=NOW + timedelta(days=2),
        now=NOW,
        zone=UTC,
        cells_per_vial=40_000_000,
        final_passage=2,
        deviations=(),
    )


def criterion(**bounds: Any) -> NumericCriterion:
    return NumericCriterion(description="an assay", unit="u", **bounds)


# --- examples QA reads ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "qualifier", "number", "verdict"),
    [
        ("endotoxin", "<", 0.5, "pass"),  # ≤ 7 EU/mL
        ("endotoxin", "<", 7, "pass"),  # below 7 is at most 7
        ("endotoxin", "<", 10, "fail"),  # may be 8
        ("endotoxin", ">", 0.5, "fail"),  # above any number may be above 7
        ("cd73", ">", 96, "pass"),  # ≥ 95 %
        ("cd73", ">", 95, "pass"),  # above 95 is at least 95
        ("cd73", ">", 94, "fail"),  # may be 94.5
        ("cd73", "<", 99.9, "fail"),  # may be 0
        ("viability", "<", 100, "fail"),  # a minimum above 0: below anything may be below it
        ("viability", ">", 99.5, "pass"),
        ("hla_dr", "<", 0.1, "pass"),  # ≤ 2 %
        ("hla_dr", "<", 2, "pass"),
        ("hla_dr", "<", 2.1, "fail"),
        ("hla_dr", ">", 0, "fail"),  # a maximum: above anything may be above it
    ],
)
def test_a_censored_value_is_judged_by_all_it_may_stand_for(
    test: str, qualifier: Qualifier, number: float, verdict: str
) -> None:
    recorded = [censored(test, qualifier, number)]
    judged = {v.test: v for v in evaluate(DEFAULT, recorded, lot()).criteria}
    assert judged[test].verdict == verdict
    assert judged[test].result == f"{qualifier}{number:g}"  # shown as typed


def test_a_failing_censored_value_says_why_in_the_blocking_reason() -> None:
    evaluation = evaluate(DEFAULT, [censored("endotoxin", "<", 10)], lot())
    assert [reason for reason in evaluation.blocking if reason.startswith("endotoxin")] == [
        "endotoxin failed: <10 EU/mL (spec ≤ 7 EU/mL): below 10 may still be above 7"
    ]


@pytest.mark.parametrize(
    ("bounds", "qualifier", "number", "why"),
    [
        ({"max": 7}, "<", 10, "below 10 may still be above 7"),
        ({"min": 70}, "<", 80, "below 80 may still be below 70"),
        ({"min": 70}, "<", 60, "below 60 is below 70"),
        ({"max": 2}, ">", 1, "above 1 may still be above 2"),
        ({"max": 2}, ">", 3, "above 3 is above 2"),
        ({"min": 95}, ">", 90, "above 90 may still be below 95"),
        (
            {"min": 1, "max": 5},
            ">",
            0.5,
            "above 0.5 may still be above 5; above 0.5 may still be below 1",
        ),
        (
            {"min": 1, "max": 5},
            "<",
            8,
            "below 8 may still be above 5; below 8 may still be below 1",
        ),
    ],
)
def test_the_reason_names_each_way_the_value_may_fall_outside(
    bounds: dict[str, float], qualifier: Qualifier, number: float, why: str
) -> None:
    assert doubt(criterion(**bounds), censored("x", qualifier, number)) == why


def test_a_plain_or_passing_value_has_no_doubt_to_tell() -> None:
    assert doubt(criterion(max=7), censored("x", None, 10)) is None
    assert doubt(criterion(max=7), censored("x", "<", 5)) is None
    categorical = DEFAULT["sterility"]
    assert doubt(categorical, censored("sterility", "<", 5)) is None


def test_a_censored_number_that_reads_as_none_never_passes() -> None:
    """A tampered row reads as no number (lims.services.verdicts.recorded): never a pass,
    even against a range every non-negative number meets."""
    everything = criterion(min=0)
    assert not passes(everything, censored("x", "<", float("nan")))
    assert passes(everything, censored("x", "<", 1))


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("<0.5", ("<", "0.5")),
        (">99.5", (">", "99.5")),
        ("0.5", (None, "0.5")),
        ("", (None, "")),
        ("<<1", ("<", "<1")),
        ("＜0.5", (None, "＜0.5")),  # a look-alike is no operator
        ("‹0.5", (None, "‹0.5")),
    ],
)
def test_the_operator_is_read_off_the_front_of_the_value(
    text: str, split: tuple[str | None, str]
) -> None:
    assert split_qualifier(text) == split


# --- every value it may stand for ---------------------------------------------------------------

bound_values = st.floats(min_value=-10, max_value=1000, allow_nan=False)


@st.composite
def ranges(draw: st.DrawFn) -> Criterion:
    low = draw(st.none() | bound_values)
    high = draw(st.none() | bound_values)
    assume(low is not None or high is not None)
    if low is not None and high is not None:
        low, high = min(low, high), max(low, high)
    return criterion(min=low, max=high)


positive_bounds = st.floats(min_value=0, max_value=2000, allow_nan=False, exclude_min=True)


@given(
    range_=ranges(), qualifier=st.sampled_from(["<", ">"]), bound=positive_bounds, data=st.data()
)
def test_a_censored_value_passes_only_if_every_value_it_may_stand_for_passes(
    range_: NumericCriterion, qualifier: Qualifier, bound: float, data: st.DataObject
) -> None:
    if not passes(range_, censored("x", qualifier, bound)):
        return
    stands_for = (
        st.floats(min_value=0, max_value=bound, exclude_max=True)
        if qualifier == "<"
        else st.floats(min_value=bound, exclude_min=True, allow_nan=False, allow_infinity=False)
    )
    for _ in range(5):
        value = data.draw(stands_for, label="a value it may stand for")
        assert passes(range_, censored("x", None, value)), value


def _outside(range_: NumericCriterion, value: Fraction) -> bool:
    low, high = range_.min, range_.max
    return (low is not None and value < Fraction(low)) or (
        high is not None and value > Fraction(high)
    )


@given(range_=ranges(), qualifier=st.sampled_from(["<", ">"]), bound=positive_bounds)
def test_a_censored_value_fails_only_if_some_value_it_may_stand_for_fails(
    range_: NumericCriterion, qualifier: Qualifier, bound: float
) -> None:
    """Conservative, not more: a refusal always has a value of the interval outside the range,
    found in exact arithmetic (between two neighbouring floats there are real numbers)."""
    if passes(range_, censored("x", qualifier, bound)):
        return
    x = Fraction(bound)
    top = max(x, Fraction(range_.max) if range_.max is not None else x)
    if qualifier == "<":
        candidates = [Fraction(0)]
        if range_.max is not None and Fraction(range_.max) < x:
            candidates.append((Fraction(range_.max) + x) / 2)
    else:
        candidates = [top + 1]
        if range_.min is not None and Fraction(range_.min) > x:
            candidates.append((Fraction(range_.min) + x) / 2)
    assert any(_outside(range_, value) for value in candidates)
    assert doubt(range_, censored("x", qualifier, bound))  # and the reason says why


@given(number=st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_a_number_is_written_as_compactly_as_it_reads_and_never_rounded(number: float) -> None:
    """A result's text is what it is judged by: rounded, 7.000001 would read as 7 and pass
    ≤ 7. Numbers of up to six significant digits read as they always did."""
    written = exact(number)
    assert float(written) == number
    assert written == compact(number) or float(compact(number)) != number
    assert "e+" not in written
