"""Bad input in the QA, vial, label and report commands, and hostile text in every free-text field.

The rule (DESIGN.md, "Rules that never bend"; issue 6): junk in any option or
argument of a command that writes exits 1-4 with one line on stderr that
starts "error: ", no traceback, and no change to the database; hostile text
in a free-text field is either stored and shown exactly as typed, or refused
with exit 2 and one line naming the field and what is allowed.

Part (a) closes the gaps left by tests/test_bad_input.py,
tests/test_bench_bad_input.py and tests/test_release_bad_input.py:

    lims deviation open | close        lims lot release | reject (password on stdin)
    lims qc record, every test kind     lims vial issue | administer | destroy
    lims label print                    lims report batch
    lims scan (junk lines on stdin)     lims logout

An example changes exactly one value to junk and keeps valid values everywhere
else. Every row of every table and the station's session file are compared
before and after (tests.test_bad_input.snapshot). A refusal that is audited by
design (a wrong signature password: lims.errors.AuditedRefusal; a scan that
does not match: AuditedRuleViolation) may append audit entries and nothing
else: the comparison then allows exactly the appended entries (each of a
refusal's action), the chain's head, and a signer's failed-password count.

Part (b) feeds each free-text field the same hostile values and checks a
consistent policy per field: one-line fields (names, methods, study, site,
signature meaning, a rejection reason, which is printed in the signature)
refuse control characters and newlines; multi-line fields (descriptions,
resolutions, correction and destruction reasons) keep newlines and tabs;
identities (reagent name and lot) refuse leading and trailing spaces; all
refuse text over their maximum, naming it. What is stored is compared with the
JSON of the command that shows it, with its table (every word; rich folds long
cells across lines) and with the audit trail.
"""

from __future__ import annotations

import io
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from lims.config import Settings
from lims.domain.payload import check_value
from lims.domain.spec import DEFAULT_SPEC
from lims.services import deviations, vials
from lims.services.lots import MEANING_MAX
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support import PASSWORD, Lab
from tests.test_bad_input import (
    JUNK,
    Ran,
    _one_line_error,
    _run,
    _tables,
    _valid_text,
    fuzz,
    snapshot,
)
from tests.test_bench import day
from tests.test_bench_bad_input import moment
from tests.test_release import Quality
from tests.test_vials import add_lot, scan_of

PATIENT = "PT-0001"
OTHER = "PT-0002"
LONG_MAX = 2000  # lims.models.LONG_TEXT_MAX: descriptions, resolutions, reasons
SHORT_MAX = 100  # lims.models.SHORT_TEXT_MAX: names, methods, study, site
REJECT_REASON_MAX = MEANING_MAX - len("rejected: ")  # printed in the signature's meaning
REAGENT_NAME_MAX, REAGENT_LOT_MAX = 40, 20  # "NAME:LOT" is the audit's entity id (64)
RECORDABLE = [test for test, entry in DEFAULT_SPEC.items() if entry["kind"] != "derived"]
CATEGORICAL = {
    test: entry["values"] for test, entry in DEFAULT_SPEC.items() if entry["kind"] == "categorical"
}
FORMATS = ("pdf", "png", "svg", "zpl")
PRINTER = re.compile(r"[A-Za-z0-9_-]{1,127}")


# --- the lab every test starts from ---------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """Lot `released` (L1, PT-0001): V01 released, V02 issued, an open deviation on it;
    lot `quarantine` (PT-0001): every QC result passing, releasable by rita."""

    quality: Quality
    released: str
    quarantine: str
    deviation: int
    issued_at: datetime

    def as_user(self, user: str) -> None:
        """Log user in at this station."""
        self.lab.login(user)

    @property
    def settings(self) -> Settings:
        return self.quality.settings

    @property
    def lab(self) -> Lab:
        return self.quality.lab

    def vial(self, number: int, lot: str | None = None) -> str:
        return f"{lot or self.released}-V{number:02d}"

    def scan(self, vial: str) -> str:
        return scan_of(self.quality, vial)


def _record_passing(quality: Quality, lot: str) -> None:
    kept, quality.lot_id = quality.lot_id, lot
    try:
        quality.record_passing()
    finally:
        quality.lot_id = kept


@pytest.fixture
def floor(lab: Lab) -> Floor:
    quality = Quality(lab)
    quality.patient(OTHER)
    quality.record_passing()
    quality.release()
    lab.login("tom")
    released = quality.lot_id
    quarantine = add_lot(quality, PATIENT)
    _record_passing(quality, quarantine)
    opened = quality.run(
        deviations.open_deviation, lot=released, description="label smudged on V04"
    )
    vial = f"{released}-V02"
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)
    return Floor(quality, released, quarantine, opened.deviation_id, utcnow())


# --- judging: one line, and nothing written but an audited refusal --------------------------


def _names(line: str, field: str, junk: str) -> bool:
    """The refusal names the field (lims or Click), or the token Click could not place."""
    if line.startswith(f"error: {field}: "):
        return True
    if f"'--{field}'" in line or f"'{field.upper()}'" in line:
        return True
    if "unexpected extra argument" in line:  # a command that takes no argument
        return True
    return junk.startswith("-") and "No such option" in line


def _column(settings: Settings, table: str, column: str) -> int:
    [found] = [t for t in _tables(settings) if t.name == table]
    return [c.name for c in found.columns].index(column)


def _appended_refusals(
    settings: Settings, before: dict[str, Any], after: dict[str, Any], actions: tuple[str, ...]
) -> list[tuple[Any, ...]]:
    """What an audited refusal may change: entries appended, the head, failed-password counts."""
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed <= {"audit_entries", "audit_head", "users"}, f"changed {sorted(changed)}"
    old, new = set(before["audit_entries"]), set(after["audit_entries"])
    assert old <= new, "an audit entry was edited or removed"
    seq, action = (
        _column(settings, "audit_entries", "seq"),
        _column(settings, "audit_entries", "action"),
    )
    appended = sorted(new - old, key=lambda row: row[seq])
    if appended:
        assert min(row[seq] for row in appended) > max(row[seq] for row in old), "not appended"
    for row in appended:
        assert row[action] in actions, f"audit entry {row[action]!r} on a refusal"
    if "users" in changed:
        failed = _column(settings, "users", "failed_logins")

        def without_count(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            return sorted((row[:failed] + row[failed + 1 :] for row in rows), key=repr)

        assert without_count(before["users"]) == without_count(after["users"])
    assert ("audit_head" in changed) == bool(appended)
    return appended


def _forgive_signers(settings: Settings) -> None:
    """A wrong signature password counts towards the lockout; each example starts afresh."""
    with unit_of_work(settings, authenticated=False) as uow:
        uow.session.execute(text("UPDATE users SET failed_logins = 0"))


SIGNATURE_REFUSALS = ("signature.failed",)
SCAN_REFUSALS = ("vial.verify", "vial.issued.refused", "vial.administered.refused")


def _refused_writing_nothing(
    floor: Floor,
    args: tuple[str, ...],
    field: str,
    junk: str,
    *,
    stdin: str | None = None,
    audited: tuple[str, ...] = (),
) -> Ran:
    settings = floor.settings
    before = snapshot(settings)
    ran = _run(*args, stdin=stdin)
    line = _one_line_error(ran, exit_codes=(1, 2, 3, 4))
    if ran.exit_code == 2:
        assert _names(line, field, junk), f"{line!r} does not name {field!r}"
    after = snapshot(settings)
    if after != before:
        assert audited, f"{args!r} changed the database ({line})"
        assert ran.exit_code in (1, 4), f"{args!r} changed the database ({line})"
        assert _appended_refusals(settings, before, after, audited), line
        _forgive_signers(settings)
    return ran


# --- what is valid: generous oracles, so nothing lims might accept is fed as junk ----------


def _free(max_length: int, *, multiline: bool = False) -> Callable[[str], bool]:
    def valid(value: str) -> bool:
        if multiline:
            value = value.replace("\n", " ").replace("\t", " ")
        return _valid_text(value, max_length)

    return valid


def _code(*known: str) -> Callable[[str], bool]:
    return lambda value: value.strip().upper() in known


def _whole(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip().replace("_", ""))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and number == number.to_integral_value() else None


def _any_valid_patient(value: str) -> bool:
    """A code lims would look up (and then answer MISMATCH, audited): left to the audit rule."""
    return re.fullmatch(r"[A-Z0-9-]{3,32}", value) is not None


JUNK_TEXT = JUNK  # "--" before positionals and --name=VALUE let any junk through as a value
NEAR_CODES = st.sampled_from(
    [
        "A999926000001-L9", "A999926000001-L1 ", "a999926000001-l1", "A999926000001-L0",
        "A999926000001-L1-V01", "A999926000001", "A999926000001-C1", "A999926000001-L1\u200b",
        "A999926000001-L1-V99", "A999926000001-L1-V1", "O999926000001-L1-V01", "PT-0001",
        "A999926000001-L1; DROP TABLE lots; --", "A999926000001-L1\n",
    ]
)  # fmt: skip


@st.composite
def crafted_scans(draw: st.DrawFn, floor: Floor) -> str:
    """Payloads with a correct check value around fields that are junk, or a real label changed."""
    real = floor.scan(floor.vial(1))
    parts = real.split("/")
    which = draw(st.integers(0, 4))
    field = draw(st.one_of(JUNK, st.sampled_from(["\x1b[2J", "x" * 200, "A" * 41, "", "PT-0002"])))
    if "/" in field or "\n" in field or "\r" in field:
        field = field.replace("/", "").replace("\n", "").replace("\r", "")
    parts[which] = field
    body = "/".join(parts[:5])
    return draw(
        st.sampled_from(
            [
                f"{body}/{check_value(body)}",
                real[:-1] + ("0" if real[-1] != "0" else "1"),
                real[: draw(st.integers(0, len(real) - 1))],
                real.lower(),
                f" {real} ",
            ]
        )
    )


def scans(floor: Floor) -> st.SearchStrategy[str]:
    return st.one_of(JUNK, crafted_scans(floor))


# --- part (a): the commands, their valid values, and the fields under test -----------------


@dataclass(frozen=True)
class Field:
    valid: Callable[[str], bool]
    junk: Callable[[Floor], st.SearchStrategy[str]]


def _field(valid: Callable[[str], bool], *extra: st.SearchStrategy[str]) -> Field:
    return Field(valid, lambda floor: st.one_of(JUNK_TEXT, *extra))


@dataclass(frozen=True)
class Command:
    user: str
    words: tuple[str, ...]  # the command
    base: Callable[[Floor], dict[str, str]]  # "@NAME" keys are positionals, in order
    fields: Callable[[Floor], dict[str, Field]]
    stdin: Callable[[Floor, dict[str, str]], str | None] = lambda floor, values: None
    audited: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def args(self, floor: Floor, field: str | None = None, junk: str = "") -> tuple[str, ...]:
        values = self.base(floor)
        if field is not None:
            values[field] = junk
        positionals = [value for name, value in values.items() if name.startswith("@")]
        options = [f"--{name}={value}" for name, value in values.items() if name[0] not in "@<"]
        return (*self.words, *options, *self.flags, "--", *positionals)

    def input(self, floor: Floor, field: str | None = None, junk: str = "") -> str | None:
        values = self.base(floor)
        if field is not None:
            values[field] = junk
        return self.stdin(floor, values)


def _password_line(floor: Floor, values: dict[str, str]) -> str:
    return values.get("<password", PASSWORD) + "\n"


PASSWORD_JUNK = JUNK.map(lambda junk: re.sub("[\r\n\ud800-\udfff\x00]", "", junk))


def _password(floor: Floor) -> Field:
    return Field(lambda value: value == PASSWORD, lambda floor: PASSWORD_JUNK)


def _lot_field(*lots_: str) -> Field:
    return _field(_code(*lots_), NEAR_CODES)


EUROPE_ROME = ZoneInfo("Europe/Rome")  # LIMS_TIMEZONE in tests/conftest.py


@dataclass(frozen=True)
class _Zoned:
    """What the time oracles of tests/test_bench_bad_input.py read: the station's zone."""

    floor: Any
    zone: Any = EUROPE_ROME


def _at_after(floor: Floor, lower: datetime) -> Field:
    kind = moment(lower=lambda zoned: lower)
    zoned: Any = _Zoned(floor)
    return Field(lambda value: kind.valid(zoned, value), lambda floor: kind.junk(zoned))


def _qc_fields(floor: Floor) -> dict[str, Field]:
    return {
        "@lot": _lot_field(floor.quarantine),
        "@test": _field(lambda value: value in RECORDABLE, st.sampled_from(["cell_dose", "CD73"])),
        "method": _field(_free(SHORT_MAX)),
        "reason": _field(_free(LONG_MAX, multiline=True)),
    }


COMMANDS: dict[str, Command] = {
    "deviation open": Command(
        "tom",
        ("deviation", "open"),
        lambda floor: {
            "lot": floor.released,
            "criterion": "cd105",
            "description": "CD105 antibody lot near expiry",
        },
        lambda floor: {
            "lot": _lot_field(floor.quarantine, floor.released),
            "criterion": _field(lambda value: value in DEFAULT_SPEC, st.sampled_from(["CD105"])),
            "description": _field(_free(LONG_MAX, multiline=True)),
        },
    ),
    "deviation close": Command(
        "rita",
        ("deviation", "close"),
        lambda floor: {"@id": str(floor.deviation), "resolution": "relabelled; no impact"},
        lambda floor: {
            "@id": _field(
                lambda value: _whole(value) == floor.deviation,
                st.sampled_from(["0", "-1", "2", "1.5", "2147483648", "1e3", "one"]),
            ),
            "resolution": _field(_free(LONG_MAX, multiline=True)),
            "<password": _password(floor),
        },
        stdin=_password_line,
        audited=SIGNATURE_REFUSALS,
        flags=("--password-stdin",),
    ),
    "lot release": Command(
        "rita",
        ("lot", "release"),
        lambda floor: {"@lot": floor.quarantine, "meaning": "approved for release"},
        lambda floor: {
            "@lot": _lot_field(floor.quarantine),
            "meaning": _field(_free(MEANING_MAX)),
            "<password": _password(floor),
        },
        stdin=_password_line,
        audited=SIGNATURE_REFUSALS,
        flags=("--password-stdin",),
    ),
    "lot reject": Command(
        "rita",
        ("lot", "reject"),
        lambda floor: {"@lot": floor.quarantine, "reason": "sterility positive on day 7"},
        lambda floor: {
            "@lot": _lot_field(floor.quarantine),
            "reason": _field(_free(REJECT_REASON_MAX)),
            "<password": _password(floor),
        },
        stdin=_password_line,
        audited=SIGNATURE_REFUSALS,
        flags=("--password-stdin",),
    ),
    "qc record categorical": Command(
        "tom",
        ("qc", "record"),
        lambda floor: {
            "@lot": floor.quarantine,
            "@test": "sterility",
            "@value": "negative",
            "method": "BacT/ALERT 14 d",
            "reason": "retest per SOP-QC-12",
        },
        lambda floor: {
            **_qc_fields(floor),
            "@value": _field(
                lambda value: value.strip().lower() in ("negative", "positive"),
                st.sampled_from(["neg", "negativ", "Negative!", "normal", "0", "nègative", "-"]),
            ),
            "unit": _field(lambda value: False, st.sampled_from(["", " ", "%", "none"])),
        },
    ),
    "qc record numeric": Command(
        "tom",
        ("qc", "record"),
        lambda floor: {
            "@lot": floor.quarantine,
            "@test": "cd73",
            "@value": "99",
            "unit": "%",
            "method": "flow cytometry",
            "reason": "retest per SOP-QC-12",
            "at": (day(27) + timedelta(hours=1)).isoformat(),
        },
        lambda floor: {
            **_qc_fields(floor),
            "at": _at_after(floor, day(26)),
        },
    ),
    "vial issue": Command(
        "tom",
        ("vial", "issue"),
        lambda floor: {
            "@vial": floor.vial(1),
            "patient": PATIENT,
            "scan": floor.scan(floor.vial(1)),
        },
        lambda floor: {
            "@vial": _field(_code(floor.vial(1)), NEAR_CODES),
            "patient": _field(lambda value: value == PATIENT, st.sampled_from([OTHER, "PT-9999"])),
            "scan": Field(lambda value: value.strip() == floor.scan(floor.vial(1)), scans),
        },
        audited=SCAN_REFUSALS,
    ),
    "vial administer": Command(
        "tom",
        ("vial", "administer"),
        lambda floor: {
            "@vial": floor.vial(2),
            "patient": PATIENT,
            "scan": floor.scan(floor.vial(2)),
        },
        lambda floor: {
            "@vial": _field(_code(floor.vial(2)), NEAR_CODES),
            "patient": _field(lambda value: value == PATIENT, st.sampled_from([OTHER, "PT-9999"])),
            "scan": Field(lambda value: value.strip() == floor.scan(floor.vial(2)), scans),
            "at": _at_after(floor, floor.issued_at),
        },
        audited=SCAN_REFUSALS,
    ),
    "vial destroy": Command(
        "tom",
        ("vial", "destroy"),
        lambda floor: {"@vial": floor.vial(3), "reason": "cracked during thaw"},
        lambda floor: {
            "@vial": _field(_code(floor.vial(3), floor.vial(1)), NEAR_CODES),
            "reason": _field(_free(LONG_MAX, multiline=True)),
        },
    ),
    "label print": Command(
        "tom",
        ("label", "print"),
        lambda floor: {"@lot": floor.released, "format": "zpl", "out": "labels"},
        lambda floor: {
            "@lot": _lot_field(floor.released, floor.quarantine),
            "format": _field(lambda value: value in FORMATS, st.sampled_from(["PDF", "zpl "])),
            "out": _field(
                lambda value: _is_dir(Path(value)),
                st.sampled_from(["labels/nowhere", "lims.db", "labels\n", "\x1b[2J"]),
            ),
            "vial": _field(
                _code(*(floor.vial(n) for n in (1, 2, 3, 4))),
                NEAR_CODES,
                st.sampled_from([f"{floor.quarantine}-V01"]),
            ),
            "printer": _field(
                lambda value: PRINTER.fullmatch(value) is not None,
                st.sampled_from(["zébra", "zebra 1", "x" * 128, "zebra/1", "-", "١"]),
            ),
        },
    ),
    "report batch": Command(
        "tom",
        ("report", "batch"),
        lambda floor: {"@lot": floor.released, "out": "batch.pdf"},
        lambda floor: {
            "@lot": _lot_field(floor.released, floor.quarantine),
            "out": Field(
                _writable_file,
                lambda floor: st.one_of(
                    st.sampled_from([".", "labels", "/", "~", "x" * 300, "\x07bell/x.pdf"]),
                    JUNK.map(lambda junk: "nowhere/" + junk),
                    JUNK.map(lambda junk: junk + "/x.pdf"),
                    JUNK.map(lambda junk: junk.replace("/", "") + "x" * 255),
                ),
            ),
        },
    ),
}


def _is_dir(path: Path) -> bool:
    try:
        return path.expanduser().is_dir()
    except (OSError, RuntimeError):  # too long a name; ~name of no user
        return False


def _writable_file(value: str) -> bool:
    try:
        target = Path(value).expanduser()
    except RuntimeError:
        return False
    return (
        not _is_dir(target)
        and _is_dir(target.parent)
        and 0 < len(os.fsencode(target.name)) <= 255
        and "\x00" not in value
    )


@pytest.fixture
def labels_dir(floor: Floor) -> Path:
    out = Path("labels")
    out.mkdir()
    return out


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(15)
@given(data=st.data())
def test_junk_in_any_option_of_a_writing_command_is_refused_and_writes_nothing(
    floor: Floor, labels_dir: Path, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    floor.as_user(command.user)
    fields = command.fields(floor)
    field = data.draw(st.sampled_from(sorted(fields)), label="field")
    kind = fields[field]
    junk = data.draw(kind.junk(floor).filter(lambda value: not kind.valid(value)), label="junk")
    files = _files(labels_dir), _files(Path("."))
    _refused_writing_nothing(
        floor,
        command.args(floor, field, junk),
        field.lstrip("@<"),
        junk,
        stdin=command.input(floor, field, junk),
        audited=command.audited,
    )
    assert (_files(labels_dir), _files(Path("."))) == files, "a refused command wrote a file"


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


# --- the scanner loop: each junk line is answered, none stops it ---------------------------


def _typeable(line: str) -> str:
    """What a scanner can type into UTF-8 standard input: no NUL, no lone surrogate."""
    return re.sub("[\x00\ud800-\udfff]", "", line)


def _scan_lines(text_in: str) -> list[str]:
    """The lines `lims scan` reads (universal newlines), as it strips them; blanks skipped."""
    return [line.strip() for line in io.StringIO(text_in, newline=None) if line.strip()]


@fuzz(15)
@given(data=st.data())
def test_scan_answers_every_junk_line_and_carries_on(floor: Floor, data: st.DataObject) -> None:
    settings = floor.settings
    junk = data.draw(
        st.lists(scans(floor).map(_typeable), min_size=1, max_size=4),
        label="lines",
    )
    good = floor.scan(floor.vial(1))
    lines = [line for line in junk if line.strip() != good]
    typed = "\n".join([*lines, good]) + "\n"
    expected = _scan_lines(typed)
    before = snapshot(settings)
    ran = _run("scan", "--patient", PATIENT, stdin=typed)
    assert "Traceback" not in ran.stdout + ran.stderr
    assert ran.exit_code == (1 if len(expected) > 1 else 0), (ran.stdout, ran.stderr)
    answers = [
        line
        for line in ran.stdout.splitlines()
        if line.startswith(("MATCH", "MISMATCH", "UNREADABLE"))
    ]
    assert len(answers) == len(expected), (expected, ran.stdout)
    assert answers[-1].startswith("MATCH "), answers[-1]
    assert all(not answer.startswith("MATCH ") for answer in answers[:-1]), answers
    assert f"{len(expected)} scanned: 1 MATCH, {len(expected) - 1} MISMATCH" in ran.stdout
    for line in ran.stdout.splitlines():
        assert not [c for c in line if unicodedata.category(c) == "Cc"], repr(line)
    appended = _appended_refusals(settings, before, snapshot(settings), ("vial.verify",))
    assert len(appended) <= len(expected)


@pytest.mark.parametrize(
    "payload",
    [
        "LIMS1/\x1b[2J\x1b[H/A9999260000018/PT-0001/203001010000/{check}",
        "LIMS1/{long}/A9999260000018/PT-0001/203001010000/{check}",
        "LIMS1/A999926000001-L1-V01/A9999260000018/PT\x07-0001/203001010000/{check}",
    ],
)
def test_a_crafted_scan_with_a_valid_check_value_is_unreadable_not_stored(
    floor: Floor, payload: str
) -> None:
    """A forged label's junk id must not reach the terminal raw or an audit entity id (64)."""
    body = payload.rsplit("/", 1)[0].replace("{long}", "V" * 100)
    scanned = f"{body}/{check_value(body)}"
    before = snapshot(floor.settings)
    ran = _run("scan", "--patient", PATIENT, stdin=scanned + "\n")
    assert ran.exit_code == 1, (ran.stdout, ran.stderr)
    assert "UNREADABLE scan: " in ran.stdout, ran.stdout
    assert "\x1b" not in ran.stdout, repr(ran.stdout)
    assert "\x07" not in ran.stdout, repr(ran.stdout)
    assert snapshot(floor.settings) == before
    issued = _run("vial", "issue", floor.vial(1), "--patient", PATIENT, "--scan", scanned)
    line = _one_line_error(issued)
    assert line.startswith("error: scan: "), line
    assert snapshot(floor.settings) == before


@pytest.mark.parametrize("patient", ["", "pt-0001", "PT 0001", "\x1b[2J", "x" * 40, "--json"])
def test_scan_refuses_a_junk_patient_before_reading_a_line(floor: Floor, patient: str) -> None:
    before = snapshot(floor.settings)
    for stdin in ("", floor.scan(floor.vial(1)) + "\n"):
        ran = _run("scan", f"--patient={patient}", stdin=stdin)
        line = _one_line_error(ran)
        assert line.startswith("error: patient: must be"), line
    assert snapshot(floor.settings) == before


def test_logout_with_junk_arguments_is_refused_and_keeps_the_session(floor: Floor) -> None:
    failures = []
    for args in (("x",), ("--json",), ("--all",), ("tom",), ("--", "--help"), ("\x1b[2J",)):
        try:
            _refused_writing_nothing(floor, ("logout", *args), "logout", args[-1])
        except AssertionError as error:
            failures.append(f"logout {args!r}: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("printer", ["zébra", "١٢", "x" * 128])
def test_a_printer_name_that_is_not_a_cups_queue_is_refused_before_printing(
    floor: Floor, labels_dir: Path, printer: str
) -> None:
    """`isalnum` let non-ASCII and over-long names through: labels were written and audited,
    then lp failed with exit 1."""
    args = (
        "label",
        "print",
        floor.released,
        "--format=zpl",
        "--out=labels",
        f"--printer={printer}",
    )
    before = snapshot(floor.settings)
    line = _one_line_error(_run(*args))
    assert line.startswith("error: printer: must be"), line
    assert snapshot(floor.settings) == before
    assert _files(labels_dir) == []


@pytest.mark.parametrize(
    ("words", "out"),
    [
        (("label", "print", "{lot}", "--format=zpl"), "nowhere\x1b[2J\n"),
        (("report", "batch", "{lot}"), "\x07dir\x1b[31m/x.pdf"),
        (("report", "batch", "{lot}"), "labels"),
        (("label", "print", "{lot}", "--format=zpl"), "x" * 300),  # OSError: name too long
        (("report", "batch", "{lot}"), "x" * 300 + "/x.pdf"),
        (("label", "print", "{lot}", "--format=zpl"), "~no-such-user-here"),  # RuntimeError
        (("report", "batch", "{lot}"), "~no-such-user-here/x.pdf"),
    ],
)
def test_a_junk_path_is_quoted_in_the_refusal(
    floor: Floor, labels_dir: Path, words: tuple[str, ...], out: str
) -> None:
    """The path typed is shown escaped: no newline or escape sequence reaches the terminal."""
    args = tuple(word.replace("{lot}", floor.released) for word in words)
    before = snapshot(floor.settings)
    line = _one_line_error(_run(*args, f"--out={out}"))
    assert _names(line, "out", out), line
    assert snapshot(floor.settings) == before


# --- part (b): hostile text in every free-text field ---------------------------------------

HOSTILE = {
    "quotes": 'O\'Brien "quoted"',
    "sql": "'; DROP TABLE patients; --",
    "long": "long " + "x" * 9_995,
    "control": "\x07bell\x1b[31m",
    "rtl": "\u202eright-to-left\u202c",
    "emoji": "emoji 🧫💉",
    "padded": "  padded value  ",
    "newline": "first line\nsecond line",
}
assert len(HOSTILE["long"]) == 10_000


@dataclass(frozen=True)
class Shown:
    """Where an accepted value must appear: JSON, a table's text, the audit trail's JSON."""

    as_json: Any
    table: str
    trail: Any


@dataclass(frozen=True)
class TextField:
    field: str
    policy: str  # "line", "identity" (one line, no outer spaces) or "multiline"
    max_length: int
    user: str
    apply: Callable[[Floor, str, int], Applied]
    in_table: Callable[[str], str] = lambda value: value  # how a table prints it

    def accepts(self, value: str) -> bool:
        if self.policy == "multiline":
            return _free(self.max_length, multiline=True)(value)
        if self.policy == "identity" and value != value.strip():
            return False
        return _valid_text(value, self.max_length)


def ok_json(*args: str, stdin: str | None = None) -> Any:
    at = args.index("--") if "--" in args else len(args)
    ran = _run(*args[:at], "--json", *args[at:], stdin=stdin)
    assert ran.exit_code == 0, (args, ran.stderr)
    return json.loads(ran.stdout)


def table(*args: str) -> str:
    ran = _run(*args)
    assert ran.exit_code == 0, (args, ran.stderr)
    return ran.stdout


def trail(entity: str) -> Any:
    return ok_json("audit", "log", "--entity", entity)


def _shown(json_args: tuple[str, ...], table_args: tuple[str, ...], entity: str) -> Shown:
    return Shown(ok_json(*json_args), table(*table_args), trail(entity))


Applied = tuple[Callable[[], Ran], Callable[[Ran], Shown]]


def _patient_study(floor: Floor, value: str, n: int) -> Applied:
    code = f"PT-1{n:03d}"
    args = ("patient", "add", "--initials=AB", "--birth-year=1960", f"--study={value}", "--", code)
    show = ("patient", "show", code)
    return lambda: _run(*args), lambda ran: _shown(show, show, f"patient:{code}")


def _aspirate(option: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        args = (
            "aspirate", "receive", f"--patient={PATIENT}", f"--collected-at={day(1).isoformat()}",
            "--volume-ml=30", f"--{option}={value}", "--json",
        )  # fmt: skip

        def shown(ran: Ran) -> Shown:
            din = json.loads(ran.stdout)["din"]
            return _shown(("aspirate", "show", din), ("aspirate", "show", din), f"aspirate:{din}")

        return lambda: _run(*args), shown

    return apply


def _reagent(field: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        name, lot, supplier = "Trypsin", f"T-{n}", "Gibco"
        if field == "name":
            name = value
        elif field == "lot":
            lot = value
        else:
            supplier = value
        args = (
            "reagent", "add", f"--lot={lot}", "--expires=2030-01-01", f"--supplier={supplier}",
            "--", name,
        )  # fmt: skip
        listed = ("reagent", "list")
        return lambda: _run(*args), lambda ran: _shown(listed, listed, f"reagent_lot:{name}:{lot}")

    return apply


def _new_aspirate(days_ago: float = 3) -> str:
    collected = utcnow().replace(microsecond=0) - timedelta(days=days_ago)
    received = (collected + timedelta(hours=2)).isoformat()
    return str(
        ok_json(
            "aspirate", "receive", f"--patient={PATIENT}", "--volume-ml=30",
            f"--collected-at={collected.isoformat()}", f"--received-at={received}",
        )["din"]
    )  # fmt: skip


def _culture_method(floor: Floor, value: str, n: int) -> Applied:
    din = _new_aspirate()
    args = ("culture", "start", "--mnc=2.4e8", "--vessels=5", "--area-cm2=875", f"--method={value}")

    def shown(ran: Ran) -> Shown:
        culture = json.loads(ran.stdout)["culture_id"]
        show = ("culture", "show", culture)
        return _shown(show, show, f"culture:{culture}")

    return lambda: _run(*args, "--json", "--", din), shown


def _growing_culture() -> tuple[str, str]:
    """A culture started two days ago with one passage: (culture, passage)."""
    now = utcnow().replace(microsecond=0)
    din = _new_aspirate()
    culture = ok_json(
        "culture", "start", "--mnc=2.4e8", "--vessels=5", "--area-cm2=875",
        f"--at={(now - timedelta(days=2)).isoformat()}", "--", din,
    )["culture_id"]  # fmt: skip
    passage = ok_json(
        "passage", "log", "--harvested=2.9e7", "--viability=94", "--seeded=2.6e7", "--vessels=30",
        "--area-cm2=5250", f"--at={(now - timedelta(days=1)).isoformat()}", "--", culture,
    )["passage_id"]  # fmt: skip
    return str(culture), str(passage)


def _trail_shown(entity: str) -> Callable[[Ran], Shown]:
    log = ("audit", "log", "--entity", entity)
    return lambda ran: _shown(log, log, entity)


def _passage_reason(floor: Floor, value: str, n: int) -> Applied:
    _, passage = _growing_culture()
    args = ("passage", "correct", "--viability=93", f"--reason={value}", "--", passage)
    return lambda: _run(*args), _trail_shown(f"passage:{passage}")


def _fresh_lot(floor: Floor) -> str:
    floor.as_user("tom")
    return add_lot(floor.quality, PATIENT)


def _lot_shown(ran: Ran) -> Shown:
    lot = json.loads(ran.stdout)["lot_id"]
    return _shown(("lot", "show", lot), ("lot", "show", lot), f"lot:{lot}")


def _lot_formulate_vehicle(floor: Floor, value: str, n: int) -> Applied:
    culture, _ = _growing_culture()
    args = (
        "lot", "formulate", "--harvested=2.6e7", "--viability=93", "--vials=2",
        "--cells-per-vial=5e6", "--volume-ml=2", f"--vehicle={value}", "--json", "--", culture,
    )  # fmt: skip
    return lambda: _run(*args), _lot_shown


def _lot_correct(option: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        lot = floor.quarantine
        if option == "vehicle":
            args = (f"--vehicle={value}", "--reason=vehicle mistyped")
            return lambda: _run("lot", "correct", *args, "--json", "--", lot), _lot_shown
        args = (f"--viability={80 + n % 10}.{n}", f"--reason={value}")
        return lambda: _run("lot", "correct", *args, "--", lot), _trail_shown(f"lot:{lot}")

    return apply


def _signed(args: tuple[str, ...], lot: str) -> Callable[[], Ran]:
    return lambda: _run(*args, "--json", "--password-stdin", "--", lot, stdin=PASSWORD + "\n")


def _release_meaning(floor: Floor, value: str, n: int) -> Applied:
    lot = floor.quarantine
    if _valid_text(value, MEANING_MAX):
        lot = _fresh_lot(floor)
        _record_passing(floor.quality, lot)
    floor.as_user("rita")
    return _signed(("lot", "release", f"--meaning={value}"), lot), _lot_shown


def _reject_reason(floor: Floor, value: str, n: int) -> Applied:
    lot = _fresh_lot(floor) if _valid_text(value, REJECT_REASON_MAX) else floor.quarantine
    floor.as_user("rita")
    return _signed(("lot", "reject", f"--reason={value}"), lot), _lot_shown


def _qc(option: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        lot = floor.quarantine
        reason = value if option == "reason" else "retest per SOP-QC-12"
        method = value if option == "method" else "flow cytometry"
        args = ("qc", "record", f"--method={method}", f"--reason={reason}", "--", lot, "cd90", "98")
        log = ("audit", "log", "--entity", f"lot:{lot}")
        return lambda: _run(*args), lambda ran: _shown(("qc", "show", lot), log, f"lot:{lot}")

    return apply


def _deviation_description(floor: Floor, value: str, n: int) -> Applied:
    args = ("deviation", "open", f"--lot={floor.released}", f"--description={value}")
    listed = ("deviation", "list")
    return lambda: _run(*args), lambda ran: _shown(listed, listed, "deviation")


def _deviation_resolution(floor: Floor, value: str, n: int) -> Applied:
    opened = ok_json("deviation", "open", f"--lot={floor.released}", "--description=smudge")
    number = str(opened["deviation_id"])
    floor.as_user("rita")
    args = ("deviation", "close", f"--resolution={value}", "--password-stdin", "--", number)
    listed = ("deviation", "list")
    return (
        lambda: _run(*args, stdin=PASSWORD + "\n"),
        lambda ran: _shown(listed, listed, f"deviation:{number}"),
    )


def _vial_destroy(floor: Floor, value: str, n: int) -> Applied:
    # A vial for each value that may be accepted: the quarantine lot's, then the released
    # lot's (V01 released, V02 issued, V03, V04); 20 and 21 test the maximum.
    lot, number = {4: ("r", 1), 5: ("r", 3), 6: ("r", 4), 7: ("r", 2), 20: ("q", 3)}.get(
        n, ("q", 1 + n % 4)
    )
    vial = floor.vial(number, floor.quarantine if lot == "q" else None)
    args = ("vial", "destroy", f"--reason={value}", "--", vial)
    return lambda: _run(*args), _trail_shown(f"vial:{vial}")


TEXT_FIELDS: dict[str, TextField] = {
    "patient add --study": TextField("study", "line", SHORT_MAX, "tom", _patient_study),
    "aspirate receive --site": TextField("site", "line", SHORT_MAX, "tom", _aspirate("site")),
    "aspirate receive --anticoagulant": TextField(
        "anticoagulant", "line", SHORT_MAX, "tom", _aspirate("anticoagulant")
    ),
    "reagent add NAME": TextField("name", "identity", REAGENT_NAME_MAX, "tom", _reagent("name")),
    "reagent add --lot": TextField("lot", "identity", REAGENT_LOT_MAX, "tom", _reagent("lot")),
    "reagent add --supplier": TextField("supplier", "line", SHORT_MAX, "tom", _reagent("supplier")),
    "culture start --method": TextField("method", "line", SHORT_MAX, "tom", _culture_method),
    "passage correct --reason": TextField("reason", "multiline", LONG_MAX, "tom", _passage_reason),
    "lot formulate --vehicle": TextField(
        "vehicle", "line", SHORT_MAX, "tom", _lot_formulate_vehicle
    ),
    "lot correct --vehicle": TextField(
        "vehicle", "line", SHORT_MAX, "tom", _lot_correct("vehicle")
    ),
    "lot correct --reason": TextField(
        "reason", "multiline", LONG_MAX, "tom", _lot_correct("reason")
    ),
    "lot release --meaning": TextField("meaning", "line", MEANING_MAX, "rita", _release_meaning),
    "lot reject --reason": TextField("reason", "line", REJECT_REASON_MAX, "rita", _reject_reason),
    # No table shows a QC method but the audit trail's, as JSON.
    "qc record --method": TextField(
        "method",
        "line",
        SHORT_MAX,
        "tom",
        _qc("method"),
        lambda value: json.dumps(value, ensure_ascii=False)[1:-1],
    ),
    "qc record --reason": TextField("reason", "multiline", LONG_MAX, "tom", _qc("reason")),
    "deviation open --description": TextField(
        "description", "multiline", LONG_MAX, "tom", _deviation_description
    ),
    "deviation close --resolution": TextField(
        "resolution", "multiline", LONG_MAX, "rita", _deviation_resolution
    ),
    "vial destroy --reason": TextField("reason", "multiline", LONG_MAX, "tom", _vial_destroy),
}


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value


def _in_trail(value: str, entries: Any) -> bool:
    """value is a whole value in an entry, or one side of a NAME:LOT entity id."""
    leaves = list(_leaves(entries))
    return value in leaves or any(
        leaf.startswith(f"{value}:") or leaf.endswith(f":{value}") for leaf in leaves
    )


def _words_in_table(value: str, shown: str) -> list[str]:
    """The words of value missing from a table (rich folds a cell's words onto more lines)."""
    return [word for word in value.split() if word not in shown]


@pytest.mark.parametrize("name", sorted(TEXT_FIELDS))
def test_hostile_text_is_stored_verbatim_or_refused_naming_the_field(
    floor: Floor, name: str
) -> None:
    target = TEXT_FIELDS[name]
    failures = []
    for n, (label, value) in enumerate(HOSTILE.items()):
        floor.as_user(target.user)
        run, shown = target.apply(floor, value, n)
        before = snapshot(floor.settings)
        ran = run()
        try:
            assert "Traceback" not in ran.stdout + ran.stderr
            if target.accepts(value):
                assert ran.exit_code == 0, (ran.exit_code, ran.stderr)
                floor.as_user("tom")
                seen = shown(ran)
                shown_as = list(_leaves(seen.as_json))
                assert value in shown_as or f"rejected: {value}" in shown_as, "not in the JSON"
                missing = _words_in_table(target.in_table(value), seen.table)
                assert not missing, f"the table lacks {missing!r}"
                raw = [c for c in seen.table if unicodedata.category(c) == "Cc" and c != "\n"]
                assert not raw, f"control characters {raw!r} reach the terminal"
                assert _in_trail(value, seen.trail), "not verbatim in the audit trail"
            else:
                line = _one_line_error(ran)
                assert line.startswith(f"error: {target.field}: must "), line
                if label == "long":
                    assert f"at most {target.max_length} characters" in line, line
                assert snapshot(floor.settings) == before, "a refusal changed the database"
        except AssertionError as error:
            failures.append(f"{label}: {error}")
    # The limit named in the refusal is the one enforced, on every backend: at it, stored.
    for n, value in ((20, "é" * target.max_length), (21, "é" * (target.max_length + 1))):
        floor.as_user(target.user)
        run, _ = target.apply(floor, value, n)
        before = snapshot(floor.settings)
        ran = run()
        if len(value) <= target.max_length and ran.exit_code != 0:
            failures.append(f"{len(value)} characters refused: {ran.stderr}")
        elif len(value) > target.max_length:
            line = _one_line_error(ran)
            assert line.startswith(f"error: {target.field}: must be at most {target.max_length} ")
            assert snapshot(floor.settings) == before
    assert not failures, f"{name}:\n" + "\n".join(failures)


def test_an_empty_release_meaning_is_refused_not_replaced_by_the_default(floor: Floor) -> None:
    """`--meaning ""` released the lot as "approved for release": empty text was not refused."""
    floor.as_user("rita")
    args = COMMANDS["lot release"].args(floor, "meaning", "")
    before = snapshot(floor.settings)
    line = _one_line_error(_run(*args, stdin=PASSWORD + "\n"))
    assert line.startswith("error: meaning: must not be empty"), line
    assert snapshot(floor.settings) == before
