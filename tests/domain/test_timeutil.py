"""Times are stored in UTC, typed in the station's zone, and shown with their offset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lims.errors import BadInput
from lims.timeutil import as_utc, audit_timestamp, parse_date_start, parse_time, show_time

ROME = ZoneInfo("Europe/Rome")
AUDIT_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def instant(moment: datetime) -> datetime:
    """The UTC wall time of an aware datetime, worked out without lims."""
    offset = moment.utcoffset()
    assert offset is not None
    return moment.replace(tzinfo=None, fold=0) - offset


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T14:30Z", utc(2026, 1, 15, 14, 30)),
        ("2026-01-15T14:30+00:00", utc(2026, 1, 15, 14, 30)),
        ("2026-01-15T14:30+01:00", utc(2026, 1, 15, 13, 30)),
        ("2026-07-15T14:30-05:00", utc(2026, 7, 15, 19, 30)),
        ("2026-03-29T02:30+01:00", utc(2026, 3, 29, 1, 30)),
    ],
)
def test_a_time_with_an_offset_is_that_instant_in_utc(text: str, expected: datetime) -> None:
    parsed = parse_time("received_at", text, ROME)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15T14:30", utc(2026, 1, 15, 13, 30)),
        ("2026-07-15T14:30", utc(2026, 7, 15, 12, 30)),
        ("2026-03-29T03:30", utc(2026, 3, 29, 1, 30)),
        ("2026-10-25T03:30", utc(2026, 10, 25, 2, 30)),
    ],
    ids=["winter-plus-one", "summer-plus-two", "after-spring-change", "after-autumn-change"],
)
def test_a_time_without_an_offset_is_local_to_the_station_zone(
    text: str, expected: datetime
) -> None:
    parsed = parse_time("received_at", text, ROME)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_the_same_wall_time_means_different_instants_in_different_zones() -> None:
    assert parse_time("received_at", "2026-01-15T14:30", ZoneInfo("UTC")) == utc(
        2026, 1, 15, 14, 30
    )
    assert parse_time("received_at", "2026-01-15T14:30", ZoneInfo("Asia/Tokyo")) == utc(
        2026, 1, 15, 5, 30
    )


@pytest.mark.parametrize(
    "text",
    ["", "   ", "tomorrow", "14:30", "2026-13-01T10:00", "25/11/2026 14:30", "2026-11-25T25:00"],
)
def test_text_that_is_not_a_time_is_bad_input_naming_the_field(text: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_time("received_at", text, ROME)
    assert refused.value.field == "received_at"
    assert refused.value.message.startswith("received_at: ")
    assert "ISO 8601" in refused.value.message
    assert "\n" not in refused.value.message


@pytest.mark.parametrize(
    ("text", "change"),
    [("2026-03-29T02:30", "skipped"), ("2026-10-25T02:30", "repeated")],
)
def test_a_wall_time_that_a_dst_change_skips_or_repeats_is_refused(text: str, change: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_time("received_at", text, ROME)
    assert refused.value.field == "received_at"
    assert change in refused.value.message
    assert "offset" in refused.value.message


def test_a_repeated_wall_time_is_accepted_once_an_offset_names_the_instant() -> None:
    assert parse_time("received_at", "2026-10-25T02:30+02:00", ROME) == utc(2026, 10, 25, 0, 30)
    assert parse_time("received_at", "2026-10-25T02:30+01:00", ROME) == utc(2026, 10, 25, 1, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-15", utc(2026, 1, 14, 23, 0)),
        ("2026-07-15", utc(2026, 7, 14, 22, 0)),
        ("2026-03-29", utc(2026, 3, 28, 23, 0)),
        ("2026-10-25", utc(2026, 10, 24, 22, 0)),
    ],
)
def test_a_date_starts_at_local_midnight(text: str, expected: datetime) -> None:
    assert parse_date_start("since", text, ROME) == expected


def test_a_full_time_given_where_a_date_is_expected_is_taken_as_is() -> None:
    assert parse_date_start("since", "2026-01-15T14:30", ROME) == utc(2026, 1, 15, 13, 30)
    assert parse_date_start("since", "2026-01-15T14:30Z", ROME) == utc(2026, 1, 15, 14, 30)


def test_a_date_start_that_is_not_a_date_is_bad_input_naming_the_field() -> None:
    with pytest.raises(BadInput) as refused:
        parse_date_start("since", "last week", ROME)
    assert refused.value.field == "since"


@pytest.mark.parametrize(
    ("zone", "day", "first_moment"),
    [
        ("America/Santiago", "2026-09-06", utc(2026, 9, 6, 4, 0)),
        ("America/Havana", "2026-11-01", utc(2026, 11, 1, 4, 0)),
    ],
    ids=["midnight-skipped", "midnight-repeated"],
)
def test_a_date_whose_midnight_a_dst_change_skips_or_repeats_starts_at_its_first_moment(
    zone: str, day: str, first_moment: datetime
) -> None:
    assert parse_date_start("since", day, ZoneInfo(zone)) == first_moment


@pytest.mark.parametrize(
    ("moment", "shown"),
    [
        (utc(2026, 1, 15, 13, 30), "2026-01-15 14:30:00+01:00"),
        (utc(2026, 7, 15, 12, 30, 5, 999), "2026-07-15 14:30:05+02:00"),
        (
            datetime(2026, 7, 15, 9, 30, tzinfo=ZoneInfo("America/New_York")),
            "2026-07-15 15:30:00+02:00",
        ),
    ],
)
def test_show_time_is_station_local_with_its_offset(moment: datetime, shown: str) -> None:
    assert show_time(moment, ROME) == shown


def test_show_time_of_nothing_is_a_dash() -> None:
    assert show_time(None, ROME) == "—"


def test_audit_timestamp_is_utc_text_to_the_microsecond_ending_in_z() -> None:
    moment = datetime(2026, 7, 15, 14, 30, 0, 5, tzinfo=ROME)
    assert audit_timestamp(moment) == "2026-07-15T12:30:00.000005Z"
    assert audit_timestamp(utc(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"


def test_as_utc_converts_an_aware_time() -> None:
    converted = as_utc(datetime(2026, 1, 15, 14, 30, tzinfo=ROME))
    assert converted == utc(2026, 1, 15, 13, 30)
    assert converted.tzinfo is UTC


@pytest.mark.parametrize("use", [as_utc, audit_timestamp, lambda moment: show_time(moment, ROME)])
def test_a_naive_datetime_is_refused(use: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        use(datetime(2026, 1, 15, 14, 30))


aware_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones()
)


@given(aware_moments)
@example(utc(999, 12, 31, 23, 59))
@example(utc(2026, 1, 2, 3, 4, 5))
def test_audit_timestamp_is_fixed_width_and_reads_back_as_the_same_instant(
    moment: datetime,
) -> None:
    stamp = audit_timestamp(moment)
    assert len(stamp) == len("2026-01-02T03:04:05.000000Z")
    assert stamp.endswith("Z")
    assert datetime.strptime(stamp, AUDIT_TIMESTAMP_FORMAT) == instant(moment)


@given(aware_moments, aware_moments)
@example(utc(999, 12, 31, 23, 59), utc(2026, 1, 1))
@example(
    datetime(2026, 10, 25, 2, 30, tzinfo=ROME, fold=0),
    datetime(2026, 10, 25, 2, 10, tzinfo=ROME, fold=1),
)
def test_audit_timestamps_sort_as_the_instants_they_record(
    first: datetime, second: datetime
) -> None:
    assert (audit_timestamp(first) < audit_timestamp(second)) == (instant(first) < instant(second))
    assert (audit_timestamp(first) == audit_timestamp(second)) == (
        instant(first) == instant(second)
    )


def parsed_or_refused(
    parse: Callable[[str, str, tzinfo], datetime], text: str
) -> datetime | BadInput:
    try:
        return parse("received_at", text, ROME)
    except BadInput as refused:
        return refused


@given(st.text())
@example("2026-02-30T10:00")
@example("2026-11-25T14:30+25:00")
@example("\x00")
def test_any_text_is_a_utc_time_or_bad_input(text: str) -> None:
    for parse in (parse_time, parse_date_start):
        result = parsed_or_refused(parse, text)
        if isinstance(result, BadInput):
            assert result.field == "received_at"
        else:
            assert result.utcoffset() == timedelta(0)


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=st.one_of(st.none(), offsets, st.timezones())))
@example(datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-1))))
@example(datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))))
@example(datetime(1, 1, 1, 0, 0))
def test_any_iso_time_typed_is_that_instant_or_bad_input(moment: datetime) -> None:
    result = parsed_or_refused(parse_time, moment.isoformat())
    if isinstance(result, BadInput):
        assert result.field == "received_at"
    elif moment.tzinfo is None:
        assert result.utcoffset() == timedelta(0)
        assert result.astimezone(ROME).replace(tzinfo=None) == moment
    else:
        assert result.utcoffset() == timedelta(0)
        assert instant(result) == instant(moment)
