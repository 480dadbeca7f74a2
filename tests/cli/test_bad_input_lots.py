"""Junk in the numbers and times of QA's commands: exit 2, one line, nothing written.

The rule of tests/cli/test_bad_input_bench.py, for the commands of issue 4 that
take numbers and times:

    lims lot formulate CULTURE --harvested --viability --vials --cells-per-vial
                               --volume-ml --vehicle-din --vehicle-ml --shelf-life-hours --at
    lims lot correct LOT --harvested --viability --cells-per-vial --volume-ml
                         --vehicle-din --vehicle-ml
    lims qc record LOT TEST VALUE --unit --at    (VALUE of a numeric test, or <X / >X)

The lab has a patient, an aspirate, a culture formulated into a lot days ago in the
patient's CSF (the target of `qc record` and `lot correct`) and a second culture with two
passages, not yet formulated (the target of `lot formulate`), with CSF received for it.
An example changes exactly one value to junk and keeps valid values everywhere else, so
the command can only refuse; every row of every table and the station's session file are
compared before and after. The oracles for what is valid are those of
tests.support.oracles: generous, so nothing lims might accept is fed as junk. Options are
passed as --name=VALUE and VALUE after "--", so junk such as "-1" or "--x" reaches lims as
a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.timeutil import utcnow
from tests.support.junk import JUNK, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.oracles import (
    COUNT,
    DIN,
    PERCENT,
    REAGENT,
    TECH,
    Bench,
    Kind,
    _number,
    _ok,
    _outside,
    _refusal,
    _run,
    _typed,
    _without_nul,
    moment,
    whole,
    within,
)

PATIENT = "PT-0001"
VIALS_MAX = 1000  # lims.services.lots.VIALS_MAX
VOLUME_ML = (0.01, 1000)  # the smallest measurable and VIAL_VOLUME_MAX_ML
SHELF_LIFE_HOURS = (1, 24 * 365)  # SHELF_LIFE_MAX_HOURS
ENDOTOXIN_EU_PER_ML = (0, 1e12)  # what lims reads as a physical amount of endotoxin
VEHICLE_ML = (0.01, 30)  # what a syringe measures, and aspirate.csf_max_volume_ml


@dataclass(frozen=True)
class Lots(Bench):
    """Bench.culture is the culture still to formulate; lot was formulated from another."""

    lot: str
    formulated_at: datetime
    csf: str  # the DIN of the CSF received for the culture still to formulate


@pytest.fixture
def lots(lab: Lab) -> Lots:
    return lab.built("bad input lots", lambda: _lots(lab))


def _lots(lab: Lab) -> Lots:
    lab.add_user(TECH, "technician")
    lab.login(TECH)
    now = utcnow().replace(microsecond=0)
    collected, received = now - timedelta(days=5), now - timedelta(days=5, hours=-2)
    started = now - timedelta(days=4)
    formulated = now - timedelta(days=1, hours=12)
    _ok("patient", "add", PATIENT, initials="AB", birth_year="1960", consent_date="2020-01-15")
    _ok("reagent", "add", "MEM alpha", lot="2411A", expires=str(now.date() + timedelta(days=365)))
    aspirate = _ok(
        "aspirate",
        "receive",
        patient=PATIENT,
        collected_at=_typed(collected),
        received_at=_typed(received),
        volume_ml="30",
    )

    def grow(harvests: tuple[datetime, datetime]) -> tuple[str, tuple[str, str]]:
        culture = _ok(
            "culture",
            "start",
            aspirate["din"],
            mnc="2.4e8",
            vessels="5",
            area_cm2="875",
            at=_typed(started),
        )["culture_id"]
        first = _ok(
            "passage",
            "log",
            culture,
            harvested="2.9e7",
            viability="94",
            seeded="2.6e7",
            vessels="30",
            area_cm2="5250",
            at=_typed(harvests[0]),
        )
        second = _ok(
            "passage",
            "log",
            culture,
            harvested="1.2e8",
            viability="92",
            seeded="1e8",
            vessels="100",
            area_cm2="20000",
            at=_typed(harvests[1]),
        )
        return culture, (first["passage_id"], second["passage_id"])

    def csf(collected: datetime) -> str:
        return str(
            _ok(
                "aspirate",
                "receive",
                patient=PATIENT,
                material="csf",
                collected_at=_typed(collected),
                received_at=_typed(collected + timedelta(hours=1)),
                volume_ml="10",
            )["din"]
        )

    formulated_culture, _ = grow((now - timedelta(days=3, hours=12), now - timedelta(days=2)))
    lot = _ok(
        "lot",
        "formulate",
        formulated_culture,
        harvested="4e8",
        viability="93",
        vials="4",
        cells_per_vial="5e7",
        volume_ml="2",
        vehicle_din=csf(formulated - timedelta(hours=3)),
        vehicle_ml="8",
        shelf_life_hours="2000",
        at=_typed(formulated),
    )["lot_id"]
    harvested = (now - timedelta(days=3, hours=-1), now - timedelta(days=1))
    culture, passages = grow(harvested)
    # Collected after the last harvest, so every time the formulation is refused for names
    # that harvest, and within vehicle.max_age_hours of the time the valid values name.
    vehicle = csf(harvested[-1] + timedelta(hours=6))
    return Lots(
        settings=lab.settings,
        zone=lab.settings.tz,
        din=aspirate["din"],
        din_check=aspirate["din_check"],
        culture=culture,
        passages=passages,
        collected_at=collected,
        received_at=received,
        started_at=started,
        harvested_at=harvested,
        lot=lot,
        formulated_at=formulated,
        csf=vehicle,
    )


# --- judging a refusal -----------------------------------------------------------------------


def _names(line: str, field: str) -> bool:
    """lims: 'error: FIELD: ...' saying what is allowed, or which check character a DIN
    should have; Click: "... '--FIELD' ..."."""
    if line.startswith(f"error: {field}: "):
        return any(
            word in line for word in ("must", "give an offset", "recorded in", "check character")
        )
    return f"'--{field}'" in line


def _assert_refused_and_unchanged(settings: Settings, args: tuple[str, ...], field: str) -> None:
    before = snapshot(settings)
    line = _refusal(_run(*args))
    assert _names(line, field), f"{line!r} does not name {field!r}"
    assert snapshot(settings) == before, f"{args!r} changed the database"


# --- what is valid, beyond the oracles of tests.support.oracles -------------------------------


# --- a numeric result beyond the method's range: <X, >X ------------------------------------------

# An operator, or what may pass for one, before a bound, or what may pass for one.
_OPERATORS = (
    "<", ">", "<<", "<>", "><", "< ", "<=", ">=", "≤", "≥", "‹", "›", "＜", "＞", "﹤", "﹥",
    "<\u200b", "\u202e<", "\u00a0<", "\u3000<",
)  # fmt: skip
_BOUNDS = (
    "", " ", "0", "-0", "-1", "0.5", "1e-400", "inf", "nan", "abc", "100", "100.5", "99.99999",
    "1e13", "0.5 EU/mL", "<1", "0.5%", "0.5%%", "0.5\u00a0",
)  # fmt: skip
_CENSORED_NEAR = st.tuples(
    st.sampled_from(_OPERATORS), st.one_of(st.sampled_from(_BOUNDS), _outside(0, 100))
).map("".join)
_CENSORED_PINNED = (
    "<", ">", "<<1", "<>1", "< abc", "<-1", "<inf", ">nan", "<0", "<1e-400", "<=0.5", "≤0.5",
    "‹0.5", "＜0.5", "﹤0.5", ">100", ">99.99999999999999999", "<100.5", "<1e13",
)  # fmt: skip


def censored(plain: Kind, *, percent: bool) -> Kind:
    """A plain value, or <X or >X typed in ASCII with X a plain value as lims reads it (every
    digit, as a float): <X above 0, and a percentage's >X below 100."""

    def accepts(lots: Bench, text: str) -> bool:
        if plain.valid(lots, text):
            return True
        typed = text.strip()
        if not text.isascii() or not typed.startswith(("<", ">")):
            return False
        if not plain.valid(lots, typed[1:]):
            return False
        number = _number(typed[1:].strip().removesuffix("%") if percent else typed[1:])
        assert number is not None  # plain.valid read it
        bound = float(number)
        return bound > 0 if typed[0] == "<" else not percent or bound < 100

    return Kind(
        accepts,
        lambda lots: st.one_of(plain.junk(lots), _CENSORED_NEAR.map(_without_nul)),
        pinned=(*plain.pinned, *_CENSORED_PINNED),
    )


# --- the units a numeric test is recorded in --------------------------------------------------


def unit(expected: str) -> Kind:
    """The specification's unit, in any case and with surrounding whitespace."""

    def accepts(lots: Bench, text: str) -> bool:
        return text.strip().lower() == expected.lower()

    near = st.sampled_from(
        [
            "", " ", "percent", "pct", "％", "%%", "% ", "EU", "EU/L", "EU/kg", "EU/ mL",
            "EU per mL", "IU/mL", "cells/vial", "mL", "°", "%\u200b", "\u202e%", "eu/ml\x07",
            "--json",
        ]
    )  # fmt: skip
    pinned = ("", " ", "percent", "％", "EU/kg", "EU/ mL", "%\u200b", "\u202e%", "--json")
    return Kind(accepts, lambda lots: st.one_of(JUNK, near).map(_without_nul), pinned=pinned)


# --- the commands, their valid values, and the options under test -------------------------------


@dataclass(frozen=True)
class Command:
    words: Callable[[Lots], tuple[str, ...]]
    base: Callable[[Lots], dict[str, str]]  # valid values; "value" is the positional VALUE
    fields: dict[str, Kind]

    def args(self, lots: Lots, field: str, junk: str | None = None) -> tuple[str, ...]:
        values = self.base(lots)
        if junk is not None:
            values[field] = junk
        positional = values.pop("value", None)
        options = tuple(f"--{name}={value}" for name, value in values.items())
        return (
            *self.words(lots),
            *options,
            *(("--", positional) if positional is not None else ()),
        )


def _after_formulation(lots: Bench) -> datetime:
    assert isinstance(lots, Lots)
    return lots.formulated_at


def _after_last_passage(lots: Bench) -> datetime:
    return lots.harvested_at[-1]


def _qc_record(test: str, value: str, spec_unit: str, value_kind: Kind) -> Command:
    return Command(
        lambda lots: ("qc", "record", lots.lot, test),
        lambda lots: {
            "unit": spec_unit,
            "method": "as validated",
            "at": _typed(lots.formulated_at + timedelta(hours=20)),
            "value": value,
        },
        {"value": value_kind, "unit": unit(spec_unit), "at": moment(lower=_after_formulation)},
    )


COMMANDS: dict[str, Command] = {
    "lot formulate": Command(
        lambda lots: ("lot", "formulate", lots.culture),
        lambda lots: {
            "harvested": "4e8",
            "viability": "93",
            "vials": "4",
            "cells-per-vial": "5e7",
            "volume-ml": "2",
            "vehicle-din": lots.csf,
            "vehicle-ml": "8",
            "shelf-life-hours": "48",
            "at": _typed(lots.harvested_at[-1] + timedelta(hours=12)),
            "reagent": REAGENT,
        },
        {
            "harvested": COUNT,
            "viability": PERCENT,
            "vials": whole(1, VIALS_MAX),
            "cells-per-vial": COUNT,
            "volume-ml": within(*VOLUME_ML),
            "vehicle-din": DIN,
            "vehicle-ml": within(*VEHICLE_ML),
            "shelf-life-hours": within(*SHELF_LIFE_HOURS),
            "at": moment(lower=_after_last_passage),
        },
    ),
    "lot correct": Command(
        lambda lots: ("lot", "correct", lots.lot),
        lambda lots: {"reason": "count sheet misread"},
        {
            "harvested": COUNT,
            "viability": PERCENT,
            "cells-per-vial": COUNT,
            "volume-ml": within(*VOLUME_ML),
            "vehicle-din": DIN,
            "vehicle-ml": within(*VEHICLE_ML),
        },
    ),
    "qc record viability": _qc_record("viability", "92", "%", censored(PERCENT, percent=True)),
    "qc record endotoxin": _qc_record(
        "endotoxin", "0.5", "EU/mL", censored(within(*ENDOTOXIN_EU_PER_ML), percent=False)
    ),
}
CASES = [(name, field) for name, command in COMMANDS.items() for field in command.fields]


@pytest.mark.parametrize(("name", "field"), CASES)
@fuzz(25)
@given(data=st.data())
def test_junk_in_a_number_or_time_is_refused_and_writes_nothing(
    lots: Lots, name: str, field: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    kind = command.fields[field]
    junk = data.draw(kind.junk(lots).filter(lambda text: not kind.valid(lots, text)), label="junk")
    _assert_refused_and_unchanged(lots.settings, command.args(lots, field, junk), field)


def test_pinned_junk_in_every_number_and_time_is_refused(lots: Lots) -> None:
    """Every option gets a catalogue of junk of its kind, so none of it depends on luck."""
    failures = []
    for name, command in COMMANDS.items():
        base = command.base(lots)
        for field, kind in command.fields.items():
            if field in base:
                assert kind.valid(lots, base[field]), (name, field)  # the oracle agrees
            for junk in kind.pinned:
                if kind.valid(lots, junk):
                    continue
                try:
                    _assert_refused_and_unchanged(
                        lots.settings, command.args(lots, field, junk), field
                    )
                except AssertionError as error:
                    failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_numbers_just_outside_their_range_are_refused(lots: Lots) -> None:
    failures = []
    for name, field, junk in [
        ("lot formulate", "harvested", "1000000000000000.5"),
        ("lot formulate", "harvested", "1000000000000001"),
        ("lot formulate", "viability", "100.0001"),
        ("lot formulate", "vials", "0"),
        ("lot formulate", "vials", str(VIALS_MAX + 1)),
        ("lot formulate", "vials", "2.5"),
        ("lot formulate", "cells-per-vial", "0"),
        ("lot formulate", "cells-per-vial", "50000000.5"),
        ("lot formulate", "volume-ml", "0"),
        ("lot formulate", "volume-ml", "0.0099"),
        ("lot formulate", "volume-ml", "1000.001"),
        ("lot formulate", "shelf-life-hours", "0.5"),
        ("lot formulate", "shelf-life-hours", str(SHELF_LIFE_HOURS[1] + 1)),
        ("lot formulate", "shelf-life-hours", "-48"),
        ("lot formulate", "vehicle-ml", "0"),
        ("lot formulate", "vehicle-ml", "0.0099"),
        ("lot formulate", "vehicle-ml", "30.001"),
        ("lot correct", "vehicle-ml", "-8"),
        ("lot correct", "harvested", "0"),
        ("lot correct", "viability", "-1"),
        ("lot correct", "cells-per-vial", "1e16"),
        ("lot correct", "volume-ml", "0.001"),
        ("qc record viability", "value", "-0.1"),
        ("qc record viability", "value", "100.1%"),
        ("qc record endotoxin", "value", "-0.5"),
        ("qc record endotoxin", "value", "1e13"),
        ("qc record endotoxin", "value", "0.5 EU/mL"),
        ("qc record endotoxin", "value", "<0"),
        ("qc record endotoxin", "value", "<1e13"),
        ("qc record viability", "value", ">100"),
        ("qc record viability", "value", ">99.99999999999999999"),
        ("qc record viability", "value", "<100.1"),
    ]:
        command = COMMANDS[name]
        assert not command.fields[field].valid(lots, junk), (name, field, junk)
        try:
            _assert_refused_and_unchanged(lots.settings, command.args(lots, field, junk), field)
        except AssertionError as error:
            failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_times_in_the_future_or_not_after_the_step_before_are_refused(lots: Lots) -> None:
    future = utcnow() + timedelta(hours=1)
    cases = {
        "lot formulate": lots.harvested_at[-1],
        "qc record viability": lots.formulated_at,
        "qc record endotoxin": lots.formulated_at,
    }
    forms: tuple[Callable[[datetime], str], ...] = (
        lambda when: when.astimezone(UTC).isoformat(),
        lambda when: when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        lambda when: when.astimezone(lots.zone).replace(tzinfo=None).isoformat(),
        lambda when: when.astimezone(timezone(timedelta(hours=-7))).isoformat(),
    )
    failures = []
    for name, earlier in cases.items():
        command = COMMANDS[name]
        for when in (
            future,
            future + timedelta(days=3650),
            earlier,
            earlier - timedelta(seconds=1),
            earlier - timedelta(days=400),
        ):
            for form in forms:
                junk = form(when)
                assert not command.fields["at"].valid(lots, junk), (name, junk)
                try:
                    _assert_refused_and_unchanged(
                        lots.settings, command.args(lots, "at", junk), "at"
                    )
                except AssertionError as error:
                    failures.append(f"{name} --at={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_a_nul_in_a_number_or_time_is_refused_cleanly(lots: Lots) -> None:
    """A NUL cannot come from a shell, but a program calling lims in-process can pass one."""
    failures = []
    for name, field, junk in [
        ("lot formulate", "harvested", "4e8\x00"),
        ("lot formulate", "viability", "\x0093"),
        ("lot formulate", "volume-ml", "2\x00"),
        # CPython's datetime.fromisoformat reads "...T10:00\x00" as 10:00.
        ("lot formulate", "at", _typed(lots.harvested_at[-1] + timedelta(hours=12)) + "\x00"),
        ("lot correct", "cells-per-vial", "5e7\x00"),
        ("qc record viability", "value", "92\x00"),
        ("qc record viability", "unit", "%\x00"),
        ("qc record endotoxin", "at", _typed(lots.formulated_at + timedelta(hours=1)) + "\x00"),
    ]:
        try:
            args = COMMANDS[name].args(lots, field, junk)
            _assert_refused_and_unchanged(lots.settings, args, field)
        except AssertionError as error:
            failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_the_valid_values_are_accepted(lots: Lots) -> None:
    """The values kept valid around the junk really are: each command succeeds with them."""
    for args in (
        COMMANDS["qc record viability"].args(lots, ""),
        COMMANDS["qc record endotoxin"].args(lots, ""),
        COMMANDS["lot correct"].args(lots, "harvested", "4.1e8"),
        COMMANDS["lot formulate"].args(lots, ""),
    ):
        ran = _run(*args)
        assert ran.exit_code == 0, (args, ran.stderr)
