"""What a number or a time option accepts, restated generously, and junk just outside it.

The oracles restate lims.domain.quantities and lims.timeutil: anything lims
might accept (e.g. "٣", "1_000", " 5 ", "1e-400" for a percentage) is valid
here, so it is never fed as junk. A Kind pairs an oracle with the junk to
draw for one option; moment() and day() bound a time or a date by the lab's
own steps. Bench is the lab they read (its zone and its steps' times): a
patient, an aspirate, a culture and two passages, made through the CLI by
the test module's fixture. Commands run in this process through
tests.support.junk's runner. Shared by tests/cli/test_bad_input_bench.py,
tests/cli/test_bad_input_lots.py and the QA floor (tests.support.floor).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from lims.config import Settings
from lims.timeutil import utcnow
from tests.support.junk import JUNK, Ran, _run, snapshot
from tests.support.lab import TESTS_LATE_ENTRY_HOURS

TECH = "tom"
REAGENT = "MEM alpha:2411A"
COUNT_MAX = Decimal(10**15)
# A value within this of now might be valid by the time lims reads the clock: never junk.
CLOCK_MARGIN = timedelta(minutes=5)


# --- running a command and judging the refusal -----------------------------------------


def _ok(*words: str, **options: str) -> dict:
    """`lims WORDS --OPTION=VALUE... --json`, which must succeed; what it printed."""
    args = (*words, *(f"--{name.replace('_', '-')}={value}" for name, value in options.items()))
    ran = _run(*args, "--json")
    assert ran.exit_code == 0, (args, ran.stderr)
    return json.loads(ran.stdout)


def _refusal(ran: Ran) -> str:
    """The single line of a refusal for bad input: exit 2, nothing on stdout, no traceback."""
    assert "Traceback" not in ran.stdout + ran.stderr
    assert ran.exit_code == 2, (ran.exit_code, ran.stdout, ran.stderr)
    assert not ran.stdout, ran.stdout
    assert ran.stderr.endswith("\n"), repr(ran.stderr)
    line = ran.stderr[:-1]
    assert "\n" not in line, repr(ran.stderr)
    assert "\r" not in line, repr(ran.stderr)
    assert not any(ord(character) < 32 or ord(character) == 127 for character in line), repr(line)
    assert line.startswith("error: "), repr(line)
    return line


def refused_unchanged(
    settings: Settings,
    args: tuple[str, ...],
    field: str,
    names: Callable[[str, str], bool],
) -> None:
    """`lims ARGS` refused as bad input in one line that names(line, field) accepts, the
    database left as it was."""
    before = snapshot(settings)
    line = _refusal(_run(*args))
    assert names(line, field), f"{line!r} does not name {field!r}"
    assert snapshot(settings) == before, f"{args!r} changed the database"


# --- the lab the oracles read -----------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """A lab with one patient, aspirate, culture and two passages, a technician logged in."""

    settings: Settings
    zone: tzinfo
    din: str  # 13 characters, no check character
    din_check: str
    culture: str
    passages: tuple[str, str]
    collected_at: datetime
    received_at: datetime
    started_at: datetime
    harvested_at: tuple[datetime, datetime]

    @property
    def today(self) -> date:
        return utcnow().astimezone(self.zone).date()


def _typed(moment: datetime) -> str:
    return moment.isoformat()


# --- what is valid, restated: the oracles ---------------------------------------------------


def _number(text: str) -> Decimal | None:
    """The number lims reads: surrounding whitespace and digit-group underscores ignored."""
    try:
        number = Decimal(text.strip().replace("_", ""))
    except (ArithmeticError, ValueError):
        return None
    return number if number.is_finite() else None


def _whole(number: Decimal) -> bool:
    return number == number.to_integral_value()


def _moment(text: str, zone: tzinfo) -> datetime | None:
    """The instant an ISO 8601 time names; without an offset, the station's local time."""
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            early, late = parsed.replace(tzinfo=zone, fold=0), parsed.replace(tzinfo=zone, fold=1)
            if early.utcoffset() != late.utcoffset():
                return None  # skipped or repeated by a daylight-saving change
            parsed = early
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


Oracle = Callable[[Bench, str], bool]
Bound = Callable[[Bench], datetime | None]


@dataclass(frozen=True)
class Kind:
    """What an option accepts: an oracle (might lims accept this?) and junk to draw from."""

    valid: Oracle
    junk: Callable[[Bench], st.SearchStrategy[str]]
    pinned: tuple[str, ...] = ()  # junk every run tries, whatever hypothesis draws


def _without_nul(text: str) -> str:
    return text.replace("\x00", "")  # argv cannot carry NUL; one test passes it explicitly


_NOT_NUMBERS = (
    "", " ", "\t", "\n", "NaN", "nan", "-NaN", "sNaN", "inf", "-inf", "Infinity", "1e400",
    "-1e400", "1e999999999999999999999", "0x10", "1,000", "1 000", "1'000", "3,2e7", "3.2e7 cells",
    "1e", "e5", ".", "-", "+", "1..2", "1.2.3", "+-1", "--1", "½", "Ⅻ", "²", "true", "None",
    "null", "😀", "5😀", "\u202e5", "5\u200b", "5\x1b[2J", "\x07", "five", "1/2", "1e7\n2",
)  # fmt: skip
_NUMBER_TEXT = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**63 - 2, max_value=2**70).map(str),
    st.floats().map(str),
    st.floats().map(lambda number: f"{number:e}"),
    st.decimals().map(str),
    st.integers(min_value=16, max_value=10**6).map(lambda exponent: f"1e{exponent}"),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda whole: f"{whole}.5"),
    st.sampled_from(_NOT_NUMBERS),
    # A number with something stuck to it.
    st.tuples(
        st.sampled_from(["3.2e7", "50", "5", "1.5"]),
        st.sampled_from([" cells", "x", "%%", "\x0b\x00", "\u00a0%", "e", "e+", ",5", "😀", "°"]),
    ).map("".join),
)


# The catalogue every numeric option gets on every run; hypothesis draws from all of the above.
_PINNED_NOT_NUMBERS = (
    "", " ", "\t", "NaN", "-inf", "1e400", "1e999999999999999999999", "0x10", "1,000",
    "3.2e7 cells", "½", "😀", "\u202e5", "\x07", "five", "-", "1e7\n2",
)  # fmt: skip


def _numeric(
    valid: Callable[[Decimal], bool], pinned: tuple[str, ...], *near: st.SearchStrategy[str]
) -> Kind:
    def accepts(bench: Bench, text: str) -> bool:
        number = _number(text)
        return number is not None and valid(number)

    junk = st.one_of(JUNK, _NUMBER_TEXT, *near).map(_without_nul)
    return Kind(accepts, lambda bench: junk, pinned=(*_PINNED_NOT_NUMBERS, *pinned))


def _outside(low: float, high: float) -> st.SearchStrategy[str]:
    """Numbers just below low and just above high, typed several ways."""
    return st.one_of(
        st.floats(max_value=low, exclude_max=True, allow_nan=False).map(repr),
        st.floats(min_value=high, exclude_min=True, allow_nan=False).map(repr),
        st.sampled_from(
            [f"{low}", f"{high}"]  # the bounds themselves: valid unless the bound is open
            + [f"{low - step:g}" for step in (1, 0.5, 0.001)]
            + [f"{high + step:g}" for step in (1, 0.5, 0.001)]
            + [f"{Decimal(repr(float(high))) + Decimal('1e-9')}"]
        ),
    )


COUNT = _numeric(
    lambda number: 0 < number <= COUNT_MAX and _whole(number),
    ("0", "-1", "1.5", "1e16", "1000000000000001"),
    st.sampled_from(["0", "-0", "-1", "1.5", "0.5", "3.25e0", "1e16", "1000000000000001"]),
    st.sampled_from(["1e15", "1000000000000000"]).map(lambda text: text + ".5"),
)


def whole(low: int, high: int) -> Kind:
    return _numeric(
        lambda number: low <= number <= high and _whole(number),
        (str(low - 1), str(high + 1), f"{low}.5"),
        _outside(low, high),
        st.sampled_from([f"{low}.5", f"{high}.5", f"{high - 1}.0001"]),
    )


def _percent_valid(bench: Bench, text: str) -> bool:
    number = _number(text.strip().removesuffix("%"))
    return number is not None and 0 <= number <= 100


PERCENT = Kind(
    _percent_valid,
    lambda bench: st.one_of(
        JUNK,
        _NUMBER_TEXT,
        _outside(0, 100),
        _outside(0, 100).map(lambda text: text + "%"),
        st.sampled_from(["100.5", "-1", "101%", "%", "50%%", "% 50", "-0.0001", "1e400%"]),
    ).map(_without_nul),
    pinned=(*_PINNED_NOT_NUMBERS, "100.5", "-1", "101%", "%", "50%%", "-0.0001"),
)


def amount(high: float) -> Kind:
    """A positive measured amount up to high."""
    return _numeric(
        lambda number: 0 < number <= Decimal(repr(float(high))),
        ("0", "-0", "-1", f"{high}.001", f"{high * 10:g}"),
        _outside(0, high),
        st.sampled_from(["0", "-0", "0.0", "-0.1", "-1e-9"]),
    )


def within(low: float, high: float) -> Kind:
    """From low to high inclusive, each bound as lims reads it (0.01 is the decimal 0.01)."""
    lowest, highest = Decimal(repr(float(low))), Decimal(repr(float(high)))
    return _numeric(
        lambda number: lowest <= number <= highest,
        (f"{low / 2:g}", f"{high * 1.001:g}", "-1", "0" if low > 0 else "-0.001"),
        _outside(low, high),
    )


def _count_id_valid(bench: Bench, text: str) -> bool:
    """A count's id as lims reads one (lims.domain.ids.CountId): ASCII, blanks around it and
    letter case forgiven. One that names no count is not found (exit 3), not bad input."""
    return text.isascii() and re.fullmatch(r"CNT-[0-9]{6,10}", text.strip().upper()) is not None


_NOT_COUNT_IDS = (
    "", " ", "CNT-", "CNT-1", "CNT-12345", "CNT-00000000001", "CNT 000001", "CNT000001",
    "CNT-000001x", "CNT--000001", "CNT-0000 01", "CNT-０００００１", "CNT-٠٠٠٠٠١", "ＣＮＴ-000001",
    "CNT\u2011000001", "CNT-000001\u200b", "A999926000001-C1", "count 1", "1",
)  # fmt: skip
COUNT_ID = Kind(
    _count_id_valid,
    lambda bench: st.one_of(
        JUNK,
        st.sampled_from(_NOT_COUNT_IDS),
        st.text(st.sampled_from("CNT-0123456789 cnt_\u00a0"), max_size=16),
    ).map(_without_nul),
    pinned=_NOT_COUNT_IDS,
)


def _din_valid(bench: Bench, text: str) -> bool:
    """A DIN as lims reads one (lims.domain.ids.parse_din): ASCII, blanks anywhere and letter
    case forgiven, with or without a check character (of any value: lims checks it, which is
    still bad input, but never judged here). One that names no donation is not found (exit
    3), not bad input."""
    if not text.isascii():
        return False
    compact = "".join(text.split()).upper()
    return re.fullmatch(r"[A-NP-Z][0-9]{12}[0-9A-Z*]?", compact) is not None


_NOT_DINS = (
    "", " ", "A9999", "A999926", "A99992600000", "A9999-26-000001", "O999926000001",
    "1999926000001", "A999926000001-C1", "A999926000001-L1", "A999926000001XX", "A999926000001?",
    "Ａ999926000001", "A٩99926000001", "A999926000001\u200b", "A9999 26 000001 J K", "DIN 1",
    "CNT-000001",
)  # fmt: skip
DIN = Kind(
    _din_valid,
    lambda bench: st.one_of(
        JUNK,
        st.sampled_from(_NOT_DINS),
        st.text(st.sampled_from("A9 0-O*\u00a0"), max_size=18),
    ).map(_without_nul),
    pinned=_NOT_DINS,
)


def between(low: float, high: float) -> Kind:
    return _numeric(
        lambda number: low <= number <= high,
        (f"{low - 0.1:g}", f"{high + 0.1:g}", "-273.15", "1000"),
        _outside(low, high),
    )


# Times: each instant typed in the forms lims reads, and text that names no instant.
_TIME_FORMS: tuple[Callable[[datetime, tzinfo], str], ...] = (
    lambda moment, zone: moment.astimezone(UTC).isoformat(),
    lambda moment, zone: moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    lambda moment, zone: moment.astimezone(zone).isoformat(timespec="minutes"),
    lambda moment, zone: moment.astimezone(zone).replace(tzinfo=None).isoformat(),
    lambda moment, zone: moment.astimezone(zone).replace(tzinfo=None).isoformat(sep=" "),
    lambda moment, zone: moment.astimezone(timezone(timedelta(hours=-7))).isoformat(),
    lambda moment, zone: moment.astimezone(zone).date().isoformat(),
    lambda moment, zone: moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
)
_NOT_TIMES = (
    "", " ", "now", "today", "yesterday", "2026-02-30T10:00", "2025-02-29T10:00",
    "2026-13-01T10:00", "2026-00-10T10:00", "2026-04-31", "2026-01-01T24:00", "2026-01-01T10:60",
    "2026-01-01T10:00:61", "2026-01-01T10:00+25:00", "2026-01-01T10:00+01:00:00:00",
    "9999-12-31T23:00-05:00", "0001-01-01T00:00+01:00", "0001-01-01T00:10", "0000-01-01T10:00",
    "10000-01-01T00:00", "25/11/2026 14:30", "11/25/2026", "2026-11-25 2:30 PM", "14:30",
    "2026-11-25T14:30 CET", "2026-11-25T14:30Z+01:00", "2026-11-25T14:30:00.Z", "1764250000",
    "2026-11-25T14:30\u200b", "２０２６-11-25", "٢٠٢٦-11-25T10:00", "2026‐11‐25", "😀",
    "2026-03-29T02:30", "2026-10-25T02:30",  # skipped and repeated in Europe/Rome
)  # fmt: skip
_PINNED_NOT_TIMES = (
    "", " ", "now", "2026-02-30T10:00", "2026-13-01T10:00", "2026-01-01T24:00",
    "2026-01-01T10:60", "2026-01-01T10:00+25:00", "9999-12-31T23:00-05:00",
    "0001-01-01T00:00+01:00", "0000-01-01T10:00", "25/11/2026 14:30", "2026-11-25T14:30 CET",
    "1764250000", "２０２６-11-25", "😀", "2026-03-29T02:30", "2026-10-25T02:30",
)  # fmt: skip
_IMPOSSIBLE_TIMES = st.builds(
    lambda year, month, day, hour, minute: (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}"
    ),
    st.integers(2020, 2030),
    st.integers(0, 14),
    st.integers(0, 40),
    st.integers(0, 26),
    st.integers(0, 62),
)
_SECONDS_IN_A_CENTURY = 100 * 365 * 86_400
# How far before the step before a wrong time goes: a time older than the late-entry limit is
# refused for want of a late reason first, which names --late-reason rather than the time.
_EARLIEST_BEFORE_SECONDS = TESTS_LATE_ENTRY_HOURS * 3600 - 30 * 86_400


def _typed_as(moments: st.SearchStrategy[datetime], zone: tzinfo) -> st.SearchStrategy[str]:
    forms = st.sampled_from(_TIME_FORMS)
    return st.builds(lambda moment, form: form(moment, zone), moments, forms)


def _clock_plus(seconds: int) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def moment(lower: Bound = lambda bench: None, upper: Bound = lambda bench: None) -> Kind:
    """A time strictly after lower (the step before), strictly before upper, not in the future."""

    def accepts(bench: Bench, text: str) -> bool:
        when = _moment(text, bench.zone)
        if when is None or when > utcnow() + CLOCK_MARGIN:
            return False
        low, high = lower(bench), upper(bench)
        return (low is None or when > low) and (high is None or when < high)

    def junk(bench: Bench) -> st.SearchStrategy[str]:
        future = st.integers(3_600, _SECONDS_IN_A_CENTURY).map(_clock_plus)
        wrong = [future]
        low, high = lower(bench), upper(bench)
        if low is not None:  # at or before the step before
            offsets = st.integers(0, _EARLIEST_BEFORE_SECONDS)
            wrong.append(offsets.map(lambda seconds: low - timedelta(seconds=seconds)))
        if high is not None:  # at or after the step after
            offsets = st.integers(0, 86_400 * 2)
            wrong.append(offsets.map(lambda seconds: high + timedelta(seconds=seconds)))
        return st.one_of(
            JUNK.map(_without_nul),
            st.sampled_from(_NOT_TIMES),
            _IMPOSSIBLE_TIMES,
            _typed_as(st.one_of(wrong), bench.zone),
        )

    return Kind(accepts, junk, pinned=_PINNED_NOT_TIMES)


def day(lowest: Callable[[Bench], date], highest: Callable[[Bench], date]) -> Kind:
    """An ISO 8601 date from lowest to highest."""

    def accepts(bench: Bench, text: str) -> bool:
        typed = _day(text)
        return typed is not None and lowest(bench) <= typed <= highest(bench)

    def junk(bench: Bench) -> st.SearchStrategy[str]:
        low, high = lowest(bench), highest(bench)
        outside = st.one_of(
            *([st.dates(max_value=low - timedelta(days=1))] if low > date.min else []),
            *([st.dates(min_value=high + timedelta(days=1))] if high < date.max else []),
        )
        return st.one_of(
            JUNK.map(_without_nul),
            st.sampled_from(_NOT_TIMES),
            _IMPOSSIBLE_TIMES.map(lambda text: text[:10]),
            outside.map(date.isoformat),
            outside.map(lambda typed: typed.strftime("%Y%m%d")),
            st.datetimes().map(datetime.isoformat),  # a time where a date is asked for
        )

    pinned = (
        "", " ", "today", "2026-02-30", "2025-02-29", "2026-13-01", "2026-00-10",
        "2026-12-31T00:00", "31/12/2026", "2026-1-5", "20261", "10000-01-01", "9999-12-31",
        "٢٠٢٦-11-25", "😀",
    )  # fmt: skip
    return Kind(accepts, junk, pinned=pinned)


# --- a command and the options under test -------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command fed junk in one option at a time: its words (and positional argument),
    valid values for its options, and the kind of each option under test."""

    words: Callable[[Any], tuple[str, ...]]
    base: Callable[[Any], dict[str, str]]  # valid values for the other options
    fields: dict[str, Kind]
    drop: dict[str, tuple[str, ...]] | None = None  # options left out while one is junk

    def args(self, bench: Bench, field: str, junk: str) -> tuple[str, ...]:
        values = {**self.base(bench), field: junk}
        for other in (self.drop or {}).get(field, ()):
            values.pop(other)
        return (*self.words(bench), *(f"--{name}={value}" for name, value in values.items()))


def drawn_junk(bench: Bench, command: Command, data: st.DataObject) -> tuple[str, str]:
    """An option of the command, and junk of its kind that it must refuse."""
    field = data.draw(st.sampled_from(sorted(command.fields)), label="field")
    kind = command.fields[field]
    junk = data.draw(
        kind.junk(bench).filter(lambda text: not kind.valid(bench, text)), label="junk"
    )
    return field, junk


def with_arguments(
    words: tuple[str, ...], values: dict[str, str | None], field: str | None, junk: str
) -> tuple[str, ...]:
    """`lims WORDS` with VALUES, FIELD's replaced by JUNK: a name "@x" is a positional
    argument, given after "--"; a value None is left out."""
    if field is not None:
        values = {**values, field: junk}
    given = {name: value for name, value in values.items() if value is not None}
    options = [f"--{name}={value}" for name, value in given.items() if name[0] != "@"]
    arguments = [value for name, value in given.items() if name[0] == "@"]
    return (*words, *options, "--", *arguments)
