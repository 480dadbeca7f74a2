"""Junk in the commands QA signs and records with: deviations, release, rejection, holds,
recall, QC results.

On the QA floor (tests.support.floor), any option or argument may be junk, not
only a number or a time (those: tests/cli/test_bad_input_lots.py):

    lims deviation open | close
    lims lot release | reject | hold | recall (the password on stdin)
    lims qc record, every test kind the default specification records

A refusal is one line and writes nothing but what an audited refusal (a wrong
signature password) appends. Each command also succeeds with the valid values
around the junk, so the junk is what refuses it.
"""

from __future__ import annotations

from pathlib import Path

from lims.domain.spec import DEFAULT_SPEC
from tests.support.floor import (
    CATEGORICAL,
    COMMANDS,
    PATIENT,
    RECORDABLE,
    SHORT_MAX,
    Floor,
    _refused_writing_nothing,
    junk_in_one_option_test,
)
from tests.support.junk import _run
from tests.support.lab import PASSWORD
from tests.support.vials import add_lot

test_junk_in_any_option_of_a_writing_command_is_refused_and_writes_nothing = (
    junk_in_one_option_test("qa")
)


def test_the_valid_values_around_the_junk_are_accepted(floor: Floor, labels_dir: Path) -> None:
    """Each command succeeds with its base values, so junk in one field is what refuses it."""
    for name in [
        "deviation open",
        "qc record categorical",
        "qc record numeric",
        "label print",
        "report batch",
        "vial destroy",
        "vial issue",
        "vial administer",
        "deviation close",
        "lot release",
        "lot hold",
        "lot recall",
    ]:
        command = COMMANDS[name]
        floor.as_user(command.user)
        for field, kind in command.fields(floor).items():
            value = command.base(floor).get(field)
            if value is not None:
                assert kind.valid(value), (name, field, value)
        ran = _run(*command.args(floor), stdin=command.input(floor))
        assert ran.exit_code == 0, (name, ran.stdout, ran.stderr)
    floor.as_user("rita")
    fresh = add_lot(floor.quality, PATIENT)
    floor.as_user("rita")
    args = COMMANDS["lot reject"].args(floor)
    ran = _run(*args[:-1], fresh, stdin=PASSWORD + "\n")
    assert ran.exit_code == 0, ran.stderr


# Every test the default specification records, junk in its value, unit and method.
def _qc_args(floor: Floor, test: str, value: str, *options: str) -> tuple[str, ...]:
    return (
        "qc",
        "record",
        *options,
        "--reason=retest per SOP",
        "--",
        floor.quarantine,
        test,
        value,
    )


VALUE_JUNK = (
    "",
    " ",
    "NaN",
    "-1",
    "1e400",
    "positive\x00",
    "negativ",
    "½",
    "😀",
    "--json",
    "5 cells",
)


def test_every_test_kind_refuses_junk_values_units_and_methods(floor: Floor) -> None:
    failures = []
    for test in RECORDABLE:
        entry = DEFAULT_SPEC[test]
        vocabulary = CATEGORICAL.get(test)
        good = vocabulary[0] if vocabulary else ("0.5" if test == "endotoxin" else "50")
        cases: list[tuple[str, tuple[str, ...], str]] = []
        for junk in VALUE_JUNK:
            if vocabulary and junk.strip().lower() in vocabulary:
                continue
            cases.append(("value", _qc_args(floor, test, junk), junk))
        unit_junk = ["", "percent", "EU/kg", "\u202e%"] if entry.get("unit") else ["%", "none"]
        for junk in unit_junk:
            cases.append(("unit", _qc_args(floor, test, good, f"--unit={junk}"), junk))
        for junk in ("", " ", "x" * (SHORT_MAX + 1), "BacT\nALERT", "\x1b[31mred"):
            cases.append(("method", _qc_args(floor, test, good, f"--method={junk}"), junk))
        for field, args, junk in cases:
            try:
                _refused_writing_nothing(floor, args, field, junk)
            except AssertionError as error:
                failures.append(f"{test} {field}={junk!r}: {error}")
        ran = _run(*_qc_args(floor, test, good))
        if ran.exit_code != 0:
            failures.append(f"{test} {good!r} was refused: {ran.stderr}")
    assert not failures, "\n".join(failures)
