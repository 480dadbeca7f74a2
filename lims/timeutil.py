"""Times: stored and compared in UTC, typed and shown in the station's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from lims.errors import BadInput, shown

TIME_FORMS = "an ISO 8601 time such as 2026-11-25T14:30 or 2026-11-25T14:30+01:00"
DATE_FORMS = "an ISO 8601 date such as 2026-11-25"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: lims only handles times with a zone")
    return moment.astimezone(UTC)


def audit_timestamp(moment: datetime) -> str:
    """Fixed-width UTC text: sorts as it reads and hashes the same on every backend."""
    utc = as_utc(moment)
    # %Y is not zero-padded before year 1000 on every platform.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"


def parse_time(field: str, text: str, zone: tzinfo) -> datetime:
    """An ISO 8601 time; without an offset it is the station's local time."""
    if not text.isprintable():  # fromisoformat overlooks a trailing NUL
        raise BadInput(field, f"must be {TIME_FORMS} (got {shown(text)})")
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        return _localize(field, parsed, zone)
    except (ValueError, OverflowError):
        raise BadInput(field, f"must be {TIME_FORMS} (got {shown(text)})") from None


def parse_date_start(field: str, text: str, zone: tzinfo) -> datetime:
    """A date means its first moment in the station's zone; a full time is taken as is."""
    if not text.isprintable():
        raise BadInput(field, f"must be {DATE_FORMS} or {TIME_FORMS} (got {shown(text)})")
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return parse_time(field, text, zone)
    try:
        # fold=0 is the day's first moment even when a DST change skips or repeats midnight.
        return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise BadInput(field, f"must be a date within 0001-9999 (got {shown(text)})") from None


def _localize(field: str, wall: datetime, zone: tzinfo) -> datetime:
    # A wall-clock time that a DST change skips or repeats names no single moment.
    early = wall.replace(tzinfo=zone, fold=0)
    late = wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        typed = wall.isoformat(timespec="minutes")
        offsets = " or ".join(moment.isoformat(timespec="minutes") for moment in (early, late))
        raise BadInput(
            field,
            f"{typed} is skipped or repeated by a daylight-saving change in {zone}; "
            f"give an offset: {offsets}",
        )
    return early.astimezone(UTC)


def show_time(moment: datetime | None, zone: tzinfo) -> str:
    """Station-local time with its offset, to the second."""
    if moment is None:
        return "—"
    return as_utc(moment).astimezone(zone).isoformat(sep=" ", timespec="seconds")


def show_done(moment: datetime | None, by: str | None, zone: tzinfo) -> str | None:
    """When and by whom a step was done, as records show it; None when it was not."""
    return None if moment is None else f"{show_time(moment, zone)} by {by}"


def json_time(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def moment(field: str, value: str | datetime | None, zone: tzinfo, now: datetime) -> datetime:
    """When a step happened: typed text, an aware datetime from code, or None for now."""
    if value is None:
        return now
    if isinstance(value, datetime):
        return as_utc(value)
    return parse_time(field, value, zone)


def past_moment(field: str, value: str | datetime | None, zone: tzinfo, now: datetime) -> datetime:
    """When a step happened, which cannot be later than now."""
    return not_in_future(field, moment(field, value, zone, now), now, zone)


def calendar_date(field: str, value: str | date) -> date:
    if isinstance(value, date):
        return value
    if not value.isprintable():
        raise BadInput(field, f"must be {DATE_FORMS} (got {shown(value)})")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(field, f"must be {DATE_FORMS} (got {shown(value)})") from None


def not_in_future(field: str, when: datetime, now: datetime, zone: tzinfo) -> datetime:
    if when > now:
        raise BadInput(
            field,
            f"must not be in the future (got {show_time(when, zone)}, now {show_time(now, zone)})",
        )
    return when


def after(field: str, when: datetime, earlier: datetime, what: str, zone: tzinfo) -> datetime:
    """A step strictly after the one before it."""
    if when <= earlier:
        raise BadInput(
            field,
            f"must be after {what} at {show_time(earlier, zone)} (got {show_time(when, zone)})",
        )
    return when


def local_day_end(day: date, zone: tzinfo) -> datetime:
    """The first moment after a calendar day in the station's zone: when 'use by DAY' ends."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
