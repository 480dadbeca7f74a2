"""Junk in a bench command's numbers and times: exit 2, one line, nothing written.

The rule (issue: "hypothesis tests that feed junk into every numeric and date
option and show the command exits 2 with one line and the database is
unchanged"), for the commands a technician types at the bench:

    lims patient add      --birth-year --consent-date
    lims aspirate receive --collected-at --volume-ml --tnc --received-at --temperature-c
                          --material (and CSF's own volume range with --material csf)
    lims reagent add      --expires
    lims culture start    --mnc | --seeded, --vessels --area-cm2 --at
    lims passage log      --harvested --viability --seeded --vessels --area-cm2 --confluence --at
    lims passage correct  the same, each optional
    lims culture project  --target-cells (read-only, but it still parses what it is given)

Each lab here has a patient, an aspirate received days ago, a culture started
after receipt and two passages, so every command has a real target. An example
changes exactly one option to junk and keeps valid values everywhere else, so
the command can only refuse; every row of every table and the station's
session file are compared before and after (tests.support.junk.snapshot).

What counts as valid is restated from lims.domain.quantities and
lims.timeutil by small oracles (tests.support.oracles). They are generous on
purpose: anything lims might accept (e.g. "٣", "1_000", " 5 ", "1e-400" for a
percentage) is never fed as junk. Options are passed as --name=VALUE so junk such as "-1" or "--x"
reaches lims as a value instead of being taken for an option.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.domain.ids import CHECK_ALPHABET, check_character
from lims.timeutil import utcnow
from tests.support.junk import JUNK, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.oracles import (
    _TIME_FORMS,
    COUNT,
    PERCENT,
    REAGENT,
    TECH,
    Bench,
    Command,
    Kind,
    _ok,
    _refusal,
    _run,
    _typed,
    _without_nul,
    amount,
    between,
    day,
    drawn_junk,
    moment,
    refused_unchanged,
    whole,
)

PATIENT = "PT-0001"
NEW_PATIENT = "PT-0002"
VESSELS = (1, 10_000)
AREA_MAX_CM2 = 1_000_000
VOLUME_MAX_ML = 100  # aspirate.max_volume_ml
CSF_VOLUME_MAX_ML = 30  # aspirate.csf_max_volume_ml
MATERIALS = ("bone_marrow", "csf")  # lims.models.MATERIALS
TEMPERATURE_C = (2, 30)  # aspirate.min_temperature_c, aspirate.max_temperature_c
EARLIEST_BIRTH_YEAR = 1900
BIRTH_YEAR = 1960


# --- judging the refusal ---------------------------------------------------------------


def _names(line: str, field: str) -> bool:
    """lims: 'error: FIELD: must be ...'; Click: "Missing option '--FIELD'"."""
    if line.startswith(f"error: {field}: "):
        return "must" in line or "give an offset" in line  # it says what is allowed
    return f"'--{field}'" in line


def _assert_refused_and_unchanged(settings: Settings, args: tuple[str, ...], field: str) -> None:
    refused_unchanged(settings, args, field, _names)


# What was collected, exactly as lims names it: any other spelling is no material.
_NOT_MATERIALS = (
    "", " ", "CSF", "Csf", " csf", "csf ", "bone marrow", "bone-marrow", "BONE_MARROW",
    "marrow", "cerebrospinal fluid", "liquor", "csf\u200b", "ｃｓｆ", "csf,bone_marrow", "--json",
)  # fmt: skip
MATERIAL = Kind(
    lambda bench, text: text in MATERIALS,
    lambda bench: st.one_of(JUNK, st.sampled_from(_NOT_MATERIALS)).map(_without_nul),
    pinned=_NOT_MATERIALS,
)


# --- the lab every test starts from ---------------------------------------------------------


@pytest.fixture
def bench(lab: Lab) -> Bench:
    lab.add_user(TECH, "technician")
    lab.login(TECH)
    zone = lab.settings.tz
    now = utcnow().replace(microsecond=0)
    collected, received = now - timedelta(days=5), now - timedelta(days=5, hours=-2)
    started = now - timedelta(days=4)
    harvested = (now - timedelta(days=3), now - timedelta(days=1))
    _ok(
        "patient",
        "add",
        PATIENT,
        initials="AB",
        birth_year=str(BIRTH_YEAR),
        consent_date="2020-01-15",
    )
    _ok("reagent", "add", "MEM alpha", lot="2411A", expires=str(now.date() + timedelta(days=365)))
    aspirate = _ok(
        "aspirate",
        "receive",
        patient=PATIENT,
        collected_at=_typed(collected),
        received_at=_typed(received),
        volume_ml="30",
        tnc="6.1e8",
        temperature_c="18",
    )
    culture = _ok(
        "culture",
        "start",
        aspirate["din"],
        mnc="2.4e8",
        vessels="5",
        area_cm2="875",
        at=_typed(started),
        reagent=REAGENT,
    )
    first = _ok(
        "passage",
        "log",
        culture["culture_id"],
        harvested="2.9e7",
        viability="94",
        seeded="2.6e7",
        vessels="30",
        area_cm2="5250",
        at=_typed(harvested[0]),
    )
    second = _ok(
        "passage",
        "log",
        culture["culture_id"],
        harvested="1.2e8",
        viability="92",
        seeded="1e8",
        vessels="100",
        area_cm2="20000",
        at=_typed(harvested[1]),
    )
    return Bench(
        settings=lab.settings,
        zone=zone,
        din=aspirate["din"],
        din_check=aspirate["din_check"],
        culture=culture["culture_id"],
        passages=(first["passage_id"], second["passage_id"]),
        collected_at=collected,
        received_at=received,
        started_at=started,
        harvested_at=harvested,
    )


# --- the commands, their valid values, and the options under test ---------------------------


def _previous_passage(bench: Bench) -> datetime:
    return bench.harvested_at[-1]


PASSAGE_NUMBERS = {
    "harvested": COUNT,
    "viability": PERCENT,
    "seeded": COUNT,
    "vessels": whole(*VESSELS),
    "area-cm2": amount(AREA_MAX_CM2),
    "confluence": PERCENT,
}
COMMANDS: dict[str, Command] = {
    "patient add": Command(
        lambda bench: ("patient", "add", NEW_PATIENT),
        lambda bench: {
            "initials": "CD",
            "birth-year": "1958",
            "consent-date": "2021-03-01",
            "study": "MSC-01",
        },
        {
            # Generous by a year: near New Year the station's year may be ahead of UTC's.
            "birth-year": whole(EARLIEST_BIRTH_YEAR, utcnow().year + 1),
            "consent-date": day(lambda bench: date(1958, 1, 1), lambda bench: bench.today),
        },
    ),
    "aspirate receive": Command(
        lambda bench: ("aspirate", "receive"),
        lambda bench: {
            "patient": PATIENT,
            "collected-at": _typed(bench.collected_at),
            "received-at": _typed(bench.received_at),
            "volume-ml": "30",
            "tnc": "6.1e8",
            "temperature-c": "18",
        },
        {
            "collected-at": moment(),
            "received-at": moment(lower=lambda bench: bench.collected_at),
            "volume-ml": amount(VOLUME_MAX_ML),
            "tnc": COUNT,
            "temperature-c": between(*TEMPERATURE_C),
        },
    ),
    "aspirate receive --material csf": Command(
        lambda bench: ("aspirate", "receive"),
        lambda bench: {
            "patient": PATIENT,
            "material": "csf",
            "collected-at": _typed(bench.collected_at),
            "received-at": _typed(bench.received_at),
            "volume-ml": "10",
            "temperature-c": "4",
        },
        {
            "material": MATERIAL,
            "collected-at": moment(),
            "received-at": moment(lower=lambda bench: bench.collected_at),
            "volume-ml": amount(CSF_VOLUME_MAX_ML),
            "temperature-c": between(*TEMPERATURE_C),
        },
    ),
    "reagent add": Command(
        lambda bench: ("reagent", "add", "Trypsin"),
        lambda bench: {"lot": "T-0001", "expires": "2027-06-30", "supplier": "Gibco"},
        {"expires": day(lambda bench: date.min, lambda bench: date(9999, 12, 30))},
    ),
    "culture start": Command(
        lambda bench: ("culture", "start", bench.din),
        lambda bench: {"mnc": "2.4e8", "vessels": "5", "area-cm2": "875", "reagent": REAGENT},
        {
            "mnc": COUNT,
            "seeded": COUNT,
            "vessels": whole(*VESSELS),
            "area-cm2": amount(AREA_MAX_CM2),
            "at": moment(lower=lambda bench: bench.received_at),
        },
        drop={"seeded": ("mnc",)},
    ),
    "passage log": Command(
        lambda bench: ("passage", "log", bench.culture),
        lambda bench: {
            # P2 reseeded 1e8 cells: this harvest shows growth, and reseeds at 5,000/cm².
            "harvested": "3.2e8",
            "viability": "94",
            "seeded": "1e8",
            "vessels": "100",
            "area-cm2": "20000",
            "confluence": "85",
            "reagent": REAGENT,
        },
        {**PASSAGE_NUMBERS, "at": moment(lower=_previous_passage)},
    ),
    "passage correct": Command(
        # The first of two passages: a corrected time must fall between its neighbours.
        lambda bench: ("passage", "correct", bench.passages[0]),
        lambda bench: {"reason": "count sheet misread"},
        {
            **PASSAGE_NUMBERS,
            "at": moment(
                lower=lambda bench: bench.started_at, upper=lambda bench: bench.harvested_at[1]
            ),
        },
    ),
    "culture project": Command(
        lambda bench: ("culture", "project", bench.culture),
        lambda bench: {},
        {"target-cells": COUNT},
    ),
}


def _base_is_valid(bench: Bench, name: str) -> None:
    """The oracles agree that the values kept around the junk are valid."""
    command = COMMANDS[name]
    base = command.base(bench)
    for field, kind in command.fields.items():
        if field in base:
            assert kind.valid(bench, base[field]), (name, field)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(40)
@given(data=st.data())
def test_junk_in_a_number_or_time_is_refused_and_writes_nothing(
    bench: Bench, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    field, junk = drawn_junk(bench, command, data)
    _assert_refused_and_unchanged(bench.settings, command.args(bench, field, junk), field)


def test_pinned_junk_in_every_number_and_time_is_refused(bench: Bench) -> None:
    """Every option gets a catalogue of junk of its kind, so none of it depends on luck."""
    failures = []
    for name, command in COMMANDS.items():
        _base_is_valid(bench, name)
        for field, kind in command.fields.items():
            for junk in kind.pinned:
                if kind.valid(bench, junk):
                    continue
                try:
                    args = command.args(bench, field, junk)
                    _assert_refused_and_unchanged(bench.settings, args, field)
                except AssertionError as error:
                    failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def _relative_times(bench: Bench) -> list[tuple[str, str, str]]:
    """(command, field, junk) for times at, before or after the neighbouring steps, and ahead."""
    cases = []
    future = utcnow() + timedelta(hours=1)
    steps = {
        "aspirate receive": {
            "collected-at": (None, None),
            "received-at": (bench.collected_at, None),
        },
        "culture start": {"at": (bench.received_at, None)},
        "passage log": {"at": (bench.harvested_at[1], None)},
        "passage correct": {"at": (bench.started_at, bench.harvested_at[1])},
    }
    for name, fields in steps.items():
        for field, (low, high) in fields.items():
            moments = [future, future + timedelta(days=3650)]
            if low is not None:
                moments += [low, low - timedelta(seconds=1), low - timedelta(days=400)]
            if high is not None:
                moments += [high, high + timedelta(seconds=1)]
            for when in moments:
                cases += [(name, field, form(when, bench.zone)) for form in _TIME_FORMS[:4]]
    return cases


def test_times_in_the_future_or_not_after_the_step_before_are_refused(bench: Bench) -> None:
    failures = []
    for name, field, junk in _relative_times(bench):
        command, kind = COMMANDS[name], COMMANDS[name].fields[field]
        if kind.valid(bench, junk):  # a date alone may land after the step before
            continue
        try:
            _assert_refused_and_unchanged(bench.settings, command.args(bench, field, junk), field)
        except AssertionError as error:
            failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_dates_out_of_range_are_refused(bench: Bench) -> None:
    tomorrow = bench.today + timedelta(days=1)
    cases = [
        ("patient add", "consent-date", tomorrow.isoformat()),
        ("patient add", "consent-date", "1957-12-31"),  # before the birth year 1958
        ("patient add", "consent-date", "2026-02-30"),
        ("patient add", "birth-year", "1899"),
        ("reagent add", "expires", "9999-12-31"),  # its end is past the last day there is
        ("reagent add", "expires", "2027-02-29"),
    ]
    for name, field, junk in cases:
        assert not COMMANDS[name].fields[field].valid(bench, junk), junk
        _assert_refused_and_unchanged(
            bench.settings, COMMANDS[name].args(bench, field, junk), field
        )
    next_year = COMMANDS["patient add"].args(bench, "birth-year", str(bench.today.year + 1))
    _assert_refused_and_unchanged(bench.settings, next_year, "birth-year")


def test_a_nul_in_a_number_or_time_is_refused_cleanly(bench: Bench) -> None:
    """A NUL cannot come from a shell, but a program calling lims in-process can pass one."""
    failures = []
    for name, field, junk in [
        ("passage log", "harvested", "3.2e7\x00"),
        ("passage log", "viability", "\x0094"),
        ("aspirate receive", "volume-ml", "30\x00"),
        # CPython's datetime.fromisoformat reads "...T10:00\x00" as 10:00.
        ("aspirate receive", "received-at", _typed(bench.received_at) + "\x00"),
        ("culture start", "at", _typed(bench.harvested_at[1]) + "\x00"),
        ("reagent add", "expires", "2027-06-30\x00"),
        ("culture project", "target-cells", "1e9\x00"),
    ]:
        try:
            args = COMMANDS[name].args(bench, field, junk)
            _assert_refused_and_unchanged(bench.settings, args, field)
        except AssertionError as error:
            failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


# --- refusals that are not one junk value ----------------------------------------------------


def test_more_cells_seeded_than_harvested_is_refused(bench: Bench) -> None:
    log, correct = COMMANDS["passage log"], COMMANDS["passage correct"]
    for args in [
        log.args(bench, "seeded", "3.2000001e8"),  # harvested 3.2e8
        log.args(bench, "seeded", "1e15"),
        # P1 harvested 2.9e7 and reseeded 2.6e7.
        correct.args(bench, "seeded", "2.9000001e7"),
        correct.args(bench, "harvested", "2.5999999e7"),
    ]:
        _assert_refused_and_unchanged(bench.settings, args, "seeded")


def test_passage_correct_without_a_reason_is_refused(bench: Bench) -> None:
    args = ("passage", "correct", bench.passages[0], "--harvested=2.7e7")
    _assert_refused_and_unchanged(bench.settings, args, "reason")


def test_culture_start_needs_exactly_one_of_mnc_and_seeded(bench: Bench) -> None:
    plating = ("culture", "start", bench.din, "--vessels=5", "--area-cm2=875")
    for args in [(*plating, "--mnc=2.4e8", "--seeded=2e6"), plating]:
        before = snapshot(bench.settings)
        line = _refusal(_run(*args))
        assert line.startswith("error: mnc/seeded: "), line
        assert "--mnc" in line, line
        assert "--seeded" in line, line
        assert snapshot(bench.settings) == before, f"{args!r} changed the database"


def test_culture_start_refuses_a_din_with_the_wrong_check_character(bench: Bench) -> None:
    assert check_character(bench.din) == bench.din_check
    for wrong in [c for c in CHECK_ALPHABET if c != bench.din_check][::6]:
        for typed in (
            bench.din + wrong,
            f"{bench.din[:5]} {bench.din[5:7]} {bench.din[7:]} {wrong}",
        ):
            args = ("culture", "start", typed, "--mnc=2.4e8", "--vessels=5", "--area-cm2=875")
            before = snapshot(bench.settings)
            line = _refusal(_run(*args))
            assert line.startswith("error: din: check character"), line
            assert snapshot(bench.settings) == before, f"{args!r} changed the database"


def test_csf_is_neither_anticoagulated_nor_counted(bench: Bench) -> None:
    """An anticoagulant, TNC or count typed for CSF says the wrong material was chosen."""
    receive = COMMANDS["aspirate receive --material csf"]
    for option, value in (
        ("anticoagulant", "sodium heparin"),
        ("tnc", "6.1e8"),
        ("count", "CNT-000001"),
    ):
        typed = (f"--{name}={given}" for name, given in receive.base(bench).items())
        args = (*receive.words(bench), *typed, f"--{option}={value}")
        before = snapshot(bench.settings)
        line = _refusal(_run(*args))
        assert line.startswith(f"error: {option}: not for CSF"), line
        assert snapshot(bench.settings) == before, f"{args!r} changed the database"


def test_the_valid_values_are_accepted(bench: Bench) -> None:
    """The values kept valid around the junk really are: each command succeeds with them."""
    for name in (
        "patient add",
        "aspirate receive",
        "aspirate receive --material csf",
        "reagent add",
        "culture start",
        "passage log",
    ):
        command = COMMANDS[name]
        options = command.base(bench).items()
        args = (*command.words(bench), *(f"--{key}={value}" for key, value in options))
        ran = _run(*args)
        assert ran.exit_code == 0, (args, ran.stderr)
    harvested = _run(*COMMANDS["passage correct"].args(bench, "harvested", "2.7e7"))
    assert harvested.exit_code == 0, harvested.stderr
    projected = _run(*COMMANDS["culture project"].args(bench, "target-cells", "1e9"))
    assert projected.exit_code == 0, projected.stderr


# --- amounts too small to store ----------------------------------------------------------------


def test_an_amount_that_is_zero_once_stored_is_refused_as_bad_input(bench: Bench) -> None:
    """1e-400 is above 0 as typed, but 0.0 as a float: the rule "above 0" must still hold."""
    failures = []
    for name, field in [
        ("aspirate receive", "volume-ml"),
        ("aspirate receive --material csf", "volume-ml"),
        ("culture start", "area-cm2"),
        ("passage log", "area-cm2"),
        ("passage correct", "area-cm2"),
    ]:
        try:
            args = COMMANDS[name].args(bench, field, "1e-400")
            _assert_refused_and_unchanged(bench.settings, args, field)
        except AssertionError as error:
            failures.append(f"{name} --{field}=1e-400: {error}")
    assert not failures, "\n".join(failures)


def test_an_area_that_makes_the_seeding_density_infinite_is_refused(bench: Bench) -> None:
    """1e-320 cm² is a float above 0, but cells / area overflows to an infinite density."""
    failures = []
    for name in ("passage log", "passage correct"):
        try:
            args = COMMANDS[name].args(bench, "area-cm2", "1e-320")
            _assert_refused_and_unchanged(bench.settings, args, "area-cm2")
        except AssertionError as error:
            failures.append(f"{name} --area-cm2=1e-320: {error}")
    assert not failures, "\n".join(failures)
