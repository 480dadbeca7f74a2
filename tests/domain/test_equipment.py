"""Whether a piece of equipment could be used at a time, how it stands against its
calibration, when a calibration is due, and which kinds a step must name
(lims.domain.equipment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain import equipment as rules
from lims.errors import BadInput
from lims.timeutil import local_day_end

ROME = ZoneInfo("Europe/Rome")
INCUBATOR = rules.Piece("INC-01", "incubator", 365)
UNCONTROLLED = rules.Piece("CEN-01", "centrifuge", None)


@dataclass(frozen=True)
class Cal:
    calibrated_at: datetime
    due_on: date
    due_at: datetime
    result: str = "pass"


def cal(on: date, due: date, result: str = "pass") -> Cal:
    start = datetime(on.year, on.month, on.day, tzinfo=ROME).astimezone(UTC)
    return Cal(start, due, local_day_end(due, ROME), result)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ROME).astimezone(UTC)


NOV_20 = date(2026, 11, 20)
DUE = date(2027, 11, 20)


def test_a_piece_never_under_calibration_control_needs_none() -> None:
    assert rules.unusable(UNCONTROLLED, [], at(NOV_20), step="passage log", zone=ROME) is None


def test_a_piece_with_an_interval_and_no_calibration_is_refused_by_name() -> None:
    refusal = rules.unusable(INCUBATOR, [], at(NOV_20), step="passage log", zone=ROME)
    assert refusal is not None
    assert refusal.startswith("incubator INC-01 has never been calibrated")
    assert "365 days" in refusal
    assert "lims equipment calibrate INC-01" in refusal


def test_a_calibration_recorded_puts_a_piece_without_interval_under_control() -> None:
    piece = rules.Piece("CEN-01", "centrifuge", None)
    calibrations = [cal(NOV_20, date(2026, 12, 1))]
    assert (
        rules.unusable(piece, calibrations, at(date(2026, 12, 1), 23), step="s", zone=ROME) is None
    )
    refusal = rules.unusable(piece, calibrations, at(date(2026, 12, 2), 0), step="s", zone=ROME)
    assert refusal is not None
    assert refusal.startswith("centrifuge CEN-01 was due for calibration on 2026-12-01")


def test_the_due_date_is_inclusive_in_the_zone_of_the_station_that_recorded_it() -> None:
    calibrations = [cal(NOV_20, DUE)]
    last_moment = local_day_end(DUE, ROME) - timedelta(microseconds=1)
    assert rules.unusable(INCUBATOR, calibrations, last_moment, step="s", zone=ROME) is None
    refusal = rules.unusable(
        INCUBATOR, calibrations, local_day_end(DUE, ROME), step="passage log", zone=ROME
    )
    assert refusal is not None
    assert refusal.startswith(
        "incubator INC-01 was due for calibration on 2027-11-20 (passage log dated 2027-11-21"
    )
    assert refusal.endswith(
        "calibrate it with `lims equipment calibrate INC-01 --at DATE --due DATE`"
    )


def test_a_step_before_the_first_calibration_is_refused() -> None:
    refusal = rules.unusable(
        INCUBATOR, [cal(NOV_20, DUE)], at(date(2026, 11, 19)), step="passage log", zone=ROME
    )
    assert refusal is not None
    assert "first calibrated on 2026-11-20, after the passage log dated 2026-11-19" in refusal


def test_a_failed_calibration_in_force_refuses_until_one_passes() -> None:
    calibrations = [cal(NOV_20, DUE), cal(date(2026, 12, 1), DUE, "fail")]
    refusal = rules.unusable(
        INCUBATOR, calibrations, at(date(2026, 12, 2)), step="passage log", zone=ROME
    )
    assert refusal is not None
    assert refusal.startswith("incubator INC-01 failed its calibration on 2026-12-01")
    assert "--result pass" in refusal
    # Before the failure the earlier pass was in force.
    assert (
        rules.unusable(INCUBATOR, calibrations, at(date(2026, 11, 30)), step="s", zone=ROME) is None
    )
    calibrations.append(cal(date(2026, 12, 3), DUE))
    assert (
        rules.unusable(INCUBATOR, calibrations, at(date(2026, 12, 4)), step="s", zone=ROME) is None
    )


def test_an_overdue_time_covered_by_no_later_calibration_says_so() -> None:
    calibrations = [cal(NOV_20, date(2026, 11, 30)), cal(date(2026, 12, 10), DUE)]
    refusal = rules.unusable(
        INCUBATOR, calibrations, at(date(2026, 12, 5)), step="passage log", zone=ROME
    )
    assert refusal is not None
    assert "was due for calibration on 2026-11-30" in refusal
    assert "a later calibration does not cover that time" in refusal


@given(
    calibrated=st.integers(min_value=0, max_value=400),
    length=st.integers(min_value=0, max_value=400),
    step=st.integers(min_value=-10, max_value=900),
    passed=st.booleans(),
)
def test_a_step_may_use_a_piece_exactly_within_a_passing_calibration(
    calibrated: int, length: int, step: int, passed: bool
) -> None:
    on = NOV_20 + timedelta(days=calibrated)
    calibration = cal(on, on + timedelta(days=length), "pass" if passed else "fail")
    when = at(NOV_20 + timedelta(days=step))
    allowed = passed and calibration.calibrated_at <= when < calibration.due_at
    refusal = rules.unusable(INCUBATOR, [calibration], when, step="s", zone=ROME)
    assert (refusal is None) is allowed


def test_standing_names_each_state() -> None:
    now = at(date(2027, 1, 10))

    def state(piece: rules.Piece, *calibrations: Cal, soon: int = 30) -> rules.Standing:
        return rules.standing(piece, list(calibrations), now, ROME, soon)

    assert state(UNCONTROLLED).state == rules.NOT_REQUIRED
    assert state(INCUBATOR).state == rules.NEVER_CALIBRATED
    assert state(INCUBATOR, cal(NOV_20, DUE)) == rules.Standing(
        rules.IN_CALIBRATION, DUE, (DUE - date(2027, 1, 10)).days
    )
    assert state(INCUBATOR, cal(NOV_20, date(2027, 1, 20))) == rules.Standing(
        rules.DUE_SOON, date(2027, 1, 20), 10
    )
    assert state(INCUBATOR, cal(NOV_20, date(2027, 1, 20)), soon=5).state == rules.IN_CALIBRATION
    assert state(INCUBATOR, cal(NOV_20, date(2027, 1, 10))).due_in_days == 0  # due today
    assert state(INCUBATOR, cal(NOV_20, date(2027, 1, 9))) == rules.Standing(
        rules.OVERDUE, date(2027, 1, 9), -1
    )
    assert state(INCUBATOR, cal(NOV_20, DUE, "fail")).state == rules.FAILED


@pytest.mark.parametrize(
    ("due", "interval", "expected"),
    [
        (None, 365, date(2027, 11, 20)),
        (date(2027, 6, 1), 365, date(2027, 6, 1)),
        (date(2027, 11, 20), 365, date(2027, 11, 20)),
        (NOV_20, None, NOV_20),  # due on its own day: covers that day
        (date(2036, 11, 17), None, date(2036, 11, 17)),
    ],
)
def test_a_due_date_as_given_or_from_the_interval(
    due: date | None, interval: int | None, expected: date
) -> None:
    assert rules.due_date(NOV_20, due, interval) == expected


@pytest.mark.parametrize(
    ("due", "interval", "words"),
    [
        (date(2026, 11, 19), 365, "must not be before the calibration's own date 2026-11-20"),
        (date(2027, 11, 21), 365, "at most 365 days after the calibration (its calibration"),
        (None, None, "required: the piece has no calibration interval"),
        (date(2036, 11, 18), None, "at most 3650 days after the calibration"),
    ],
)
def test_a_due_date_outside_what_is_allowed_is_bad_input(
    due: date | None, interval: int | None, words: str
) -> None:
    with pytest.raises(BadInput, match=r"^due: ") as refused:
        rules.due_date(NOV_20, due, interval)
    assert words in str(refused.value)


def test_only_kinds_the_register_holds_are_required() -> None:
    required = ["biosafety_cabinet", "incubator"]
    assert rules.missing_kinds(required, set(), []) == []
    assert rules.missing_kinds(required, {"incubator"}, []) == ["incubator"]
    assert rules.missing_kinds(required, {"incubator", "biosafety_cabinet"}, ["incubator"]) == [
        "biosafety_cabinet"
    ]
    assert rules.missing_kinds(required, {"incubator"}, ["incubator", "centrifuge"]) == []


def test_the_missing_kind_message_names_the_step_the_kinds_and_the_candidates() -> None:
    assert rules.missing_message("passage log", ["biosafety_cabinet"], ["BSC-01", "BSC-02"]) == (
        "passage log needs a biosafety_cabinet: name it with --equipment ID "
        "(in the register: BSC-01, BSC-02)"
    )
    assert rules.missing_message(
        "culture start", ["biosafety_cabinet", "incubator"], ["BSC-01", "INC-01"]
    ) == (
        "culture start needs a biosafety_cabinet and an incubator: name each with "
        "--equipment ID (in the register: BSC-01, INC-01)"
    )
