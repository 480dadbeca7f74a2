"""Junk in the equipment register's commands and in --equipment: exit 2, one line naming the
option, nothing written (issue 15, "Bad input").

    lims equipment add ID --kind --name --serial --location --calibration-interval-days
    lims equipment calibrate ID --at --due --certificate --result
    lims equipment out-of-service ID --reason
    lims equipment list --kind --due-within-days
    lims passage log CULTURE ... --equipment ID

The lab has a culture growing and BSC-01, a biosafety cabinet with no calibration interval
and none recorded. An example changes exactly one option to junk and keeps valid values
everywhere else, so the command can only refuse; every row of every table and the station's
session file are compared before and after. An id of the right form that names no piece is
not junk (not found, exit 3), nor is one already in the register (exit 1). The last test runs
each command with the valid values, so that they are known to be valid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain.equipment import CALIBRATION_RESULTS, EQUIPMENT_KINDS
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX
from lims.timeutil import utcnow
from tests.support.bench import Bench
from tests.support.equipment import add
from tests.support.junk import JUNK, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.oracles import Bench as Oracles
from tests.support.oracles import Kind, _refusal, _run, _without_nul, day, moment, whole

QA = "quinn"
ID_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")


@dataclass(frozen=True)
class Floor(Oracles):
    """The oracles' lab (its zone and times), with the register's BSC-01 and a culture."""

    calibrated_on: date  # the valid --at of `calibrate`: yesterday


def _floor(lab: Lab, user: str) -> Floor:
    bench = Bench(lab)
    lab.add_user(QA, "qa")
    lab.login("tom")
    bench.patient()
    aspirate = bench.aspirate()
    culture = bench.culture(aspirate.din.code)
    add(lab, "BSC-01", "biosafety_cabinet")
    lab.login(user)
    started = culture.summary.started_at
    today = utcnow().astimezone(lab.settings.tz).date()
    return Floor(
        settings=lab.settings,
        zone=lab.settings.tz,
        din=aspirate.din.code,
        din_check=aspirate.din.check,
        culture=culture.summary.culture_id,
        passages=("", ""),
        collected_at=aspirate.collected_at,
        received_at=aspirate.received_at,
        started_at=started,
        harvested_at=(started, started),
        calibrated_on=today - timedelta(days=1),
    )


@pytest.fixture
def register(lab: Lab) -> Floor:
    """QA at the station."""
    return lab.built("equipment register", lambda: _floor(lab, QA))


@pytest.fixture
def bench(lab: Lab) -> Floor:
    """The technician at the station."""
    return lab.built("equipment bench", lambda: _floor(lab, "tom"))


# --- what each option accepts ----------------------------------------------------------------


def _id_valid(floor: Floor, text: str) -> bool:
    """An id as lims reads one (lims.domain.ids.equipment_id): ASCII, blanks around it and
    letter case forgiven."""
    return text.isascii() and ID_PATTERN.fullmatch(text.strip().upper()) is not None


_NOT_IDS = (
    "", " ", "-BSC", ".01", "BSC 01", "BSC/01", "BSC:01", "X" * 33, "ＢＳＣ-01", "BSC\u201101",
    "BSC-01\u200b", "BSC-٠١", "'; DROP TABLE equipment; --", "😀",
)  # fmt: skip
EQUIPMENT_ID = Kind(
    _id_valid,
    lambda floor: st.one_of(
        JUNK,
        st.sampled_from(_NOT_IDS),
        st.text(st.sampled_from("BSC-01._ /:\u00a0é"), max_size=40),
    ).map(_without_nul),
    pinned=_NOT_IDS,
)


def _text_valid(max_length: int, *, trimmed: bool, multiline: bool = False) -> Callable:
    allowed = {"\n", "\t"} if multiline else set()

    def valid(floor: Floor, text: str) -> bool:
        return (
            bool(text.strip())
            and len(text) <= max_length
            and not (trimmed and text != text.strip())
            and not any(
                unicodedata.category(character) == "Cs"
                or (unicodedata.category(character) == "Cc" and character not in allowed)
                for character in text
            )
        )

    return valid


def text(max_length: int, *, trimmed: bool = False, multiline: bool = False) -> Kind:
    pinned = ("", " ", "\t", "a\x07", "x" * (max_length + 1), *((" x", "x ") if trimmed else ()))
    return Kind(
        _text_valid(max_length, trimmed=trimmed, multiline=multiline),
        lambda floor: st.one_of(JUNK, st.sampled_from(pinned)).map(_without_nul),
        pinned=pinned,
    )


def choice(values: tuple[str, ...]) -> Kind:
    near = tuple(
        variant
        for value in values[:3]
        for variant in (value.upper(), f" {value}", value.replace("_", "-"), value[:-1])
    )
    return Kind(
        lambda floor, text: text in values,
        lambda floor: st.one_of(JUNK, st.sampled_from(near)).map(_without_nul),
        pinned=("", *near),
    )


# --- the commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    words: Callable[[Floor], tuple[str, ...]]
    argument: str | None  # the option name of the positional argument, if any
    base: Callable[[Floor], dict[str, str]]
    fields: dict[str, Kind]

    def args(self, floor: Floor, field: str, junk: str) -> tuple[str, ...]:
        values = {**self.base(floor), field: junk}
        positional = values.pop(self.argument) if self.argument else None
        return (
            *self.words(floor),
            *(f"--{name}={value}" for name, value in values.items()),
            *(("--", positional) if positional is not None else ()),
        )


def _calibrated(floor: Floor) -> dict[str, str]:
    return {
        "equipment": "BSC-01",
        "at": floor.calibrated_on.isoformat(),
        "due": (floor.calibrated_on + timedelta(days=30)).isoformat(),
        "certificate": "C-2291",
        "result": "pass",
    }


REGISTER = {
    "equipment add": Command(
        lambda floor: ("equipment", "add"),
        "equipment",
        lambda floor: {
            "equipment": "INC-01",
            "kind": "incubator",
            "name": "Heracell 240i",
            "serial": "42178653",
            "location": "room 2.14",
            "calibration-interval-days": "365",
        },
        {
            "equipment": EQUIPMENT_ID,
            "kind": choice(EQUIPMENT_KINDS),
            "name": text(SHORT_TEXT_MAX),
            "serial": text(SHORT_TEXT_MAX, trimmed=True),
            "location": text(SHORT_TEXT_MAX, trimmed=True),
            "calibration-interval-days": whole(1, 3650),
        },
    ),
    "equipment calibrate": Command(
        lambda floor: ("equipment", "calibrate"),
        "equipment",
        _calibrated,
        {
            "equipment": EQUIPMENT_ID,
            "at": moment(),
            "due": day(
                lambda floor: floor.calibrated_on,  # type: ignore[attr-defined]
                lambda floor: floor.calibrated_on + timedelta(days=3650),  # type: ignore[attr-defined]
            ),
            "certificate": text(SHORT_TEXT_MAX, trimmed=True),
            "result": choice(CALIBRATION_RESULTS),
        },
    ),
    "equipment list": Command(
        lambda floor: ("equipment", "list"),
        None,
        lambda floor: {"kind": "incubator", "due-within-days": "30"},
        {"kind": choice(EQUIPMENT_KINDS), "due-within-days": whole(0, 3650)},
    ),
}
BENCH = {
    "passage log": Command(
        lambda floor: ("passage", "log"),
        "culture",
        lambda floor: {
            "culture": floor.culture,
            "harvested": "4e6",
            "viability": "95",
            "seeded": "4e6",
            "vessels": "5",
            "area-cm2": "875",
            "equipment": "BSC-01",
        },
        {"equipment": EQUIPMENT_ID},
    ),
    "equipment out-of-service": Command(
        lambda floor: ("equipment", "out-of-service"),
        "equipment",
        lambda floor: {"equipment": "BSC-01", "reason": "CO2 alarm"},
        {"equipment": EQUIPMENT_ID, "reason": text(LONG_TEXT_MAX, multiline=True)},
    ),
}


def _refused_and_unchanged(floor: Floor, args: tuple[str, ...], field: str) -> None:
    before = snapshot(floor.settings)
    line = _refusal(_run(*args))
    assert line.startswith(f"error: {field}: "), f"{line!r} does not name {field!r}"
    assert snapshot(floor.settings) == before, f"{args!r} changed the database"


def _junk_test(floor: Floor, commands: dict[str, Command], name: str, data: st.DataObject) -> None:
    command = commands[name]
    field = data.draw(st.sampled_from(sorted(command.fields)), label="field")
    kind = command.fields[field]
    junk = data.draw(
        kind.junk(floor).filter(lambda text: not kind.valid(floor, text)), label="junk"
    )
    _refused_and_unchanged(floor, command.args(floor, field, junk), field)


@pytest.mark.parametrize("name", sorted(REGISTER))
@fuzz(20)
@given(data=st.data())
def test_junk_in_a_register_command_is_refused_and_writes_nothing(
    register: Floor, name: str, data: st.DataObject
) -> None:
    _junk_test(register, REGISTER, name, data)


@pytest.mark.parametrize("name", sorted(BENCH))
@fuzz(15)
@given(data=st.data())
def test_junk_in_a_bench_command_or_its_equipment_is_refused_and_writes_nothing(
    bench: Floor, name: str, data: st.DataObject
) -> None:
    _junk_test(bench, BENCH, name, data)


def test_pinned_junk_in_every_option_is_refused(register: Floor) -> None:
    """Each option's catalogue of junk, so that none of it depends on luck."""
    failures = []
    for name, command in REGISTER.items():
        for field, kind in command.fields.items():
            for junk in kind.pinned:
                if kind.valid(register, junk):
                    continue
                try:
                    _refused_and_unchanged(register, command.args(register, field, junk), field)
                except AssertionError as error:
                    failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_the_values_around_the_junk_are_valid(register: Floor, lab: Lab) -> None:
    """Each command with its valid values: the passage first, while BSC-01 is the only piece
    the register holds (an incubator added would be required of it)."""
    commands = {**BENCH, **REGISTER}
    lab.login("tom")
    for name, command in commands.items():
        values = command.base(register)
        for field, kind in command.fields.items():
            assert kind.valid(register, values[field]), (name, field)
        field = next(iter(command.fields))
        ran = _run(*command.args(register, field, values[field]))
        assert ran.exit_code == 0, (name, ran.stderr)
        lab.login(QA)
