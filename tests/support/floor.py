"""The QA floor of the bad-input tests: two lots, and a table of the commands that write on it.

The rule (DESIGN.md, "Rules that never bend"; issue 6): junk in any option or
argument of a command that writes exits 1-4 with one line on stderr that
starts "error: ", no traceback, and no change to the database.

Floor is the lab (the `floor` fixture of tests/cli/conftest.py). COMMANDS holds,
for each writing command after formulation, valid values and, per field, an
oracle of what it accepts and the junk to draw:

    lims deviation open | close        lims lot release | reject (password on stdin)
    lims qc record                      lims vial issue | administer | destroy
    lims label print                    lims report batch
    lims event record

Each area's module (tests/cli/test_bad_input_qa.py, _vials.py, _documents.py, _events.py)
runs junk_in_one_option_is_refused on its commands; tests/cli/test_free_text.py
feeds hostile text to every free-text field on the same floor.

An example changes exactly one value to junk and keeps valid values everywhere
else. Every row of every table and the station's session file are compared
before and after (tests.support.junk.snapshot). A refusal that is audited by
design (a wrong signature password: lims.errors.AuditedRefusal; a scan that
does not match: AuditedRuleViolation) may append audit entries and nothing
else: the comparison then allows exactly the appended entries (each of a
refusal's action), the chain's head, and a signer's failed-password count.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
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

from lims.config import AdministrationSettings, Settings
from lims.domain.payload import check_value
from lims.domain.spec import DEFAULT_SPEC
from lims.services.lots import MEANING_MAX
from lims.services.printing import LABEL_COUNT_MAX
from lims.uow import unit_of_work
from tests.support.bench import day
from tests.support.junk import (
    JUNK,
    Ran,
    _one_line_error,
    _run,
    _tables,
    _valid_text,
    fuzz,
    snapshot,
)
from tests.support.lab import PASSWORD, Lab
from tests.support.oracles import moment
from tests.support.quality import Quality
from tests.support.vials import scan_of

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
TEMPLATES = ("cryovial", "bag", "vial-70x50")  # shipped in labels/, and bag's older name
ROUTES = AdministrationSettings().routes  # the site's default administration.routes
EVENT_KINDS = ("adverse_event", "observation")
SEVERITIES = ("mild", "moderate", "severe", "life_threatening", "fatal")
RELATEDNESS = ("unrelated", "unlikely", "possible", "probable", "definite")
PRINTER = re.compile(r"[A-Za-z0-9_-]{1,127}")


# --- the lab every test starts from ---------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    """Lot `released` (L1, PT-0001): V01 released, V02 issued;
    lot `quarantine` (PT-0001): every QC result passing, releasable by rita;
    lot `deviating` (PT-0001): in quarantine, with an open deviation (on a released lot it
    would hold it)."""

    quality: Quality
    released: str
    quarantine: str
    deviating: str
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


def _label_count(value: str) -> bool:
    number = _whole(value)
    return number is not None and 0 <= number <= LABEL_COUNT_MAX and value.strip().isascii()


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
    # A lone surrogate has no UTF-8 bytes to compute a check value over: leave it out.
    field = field.encode("utf-8", "ignore").decode("utf-8")
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


# --- the commands, their valid values, and the fields under test ---------------------------


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
    """What the time oracles of tests.support.oracles read: the station's zone."""

    floor: Any
    zone: Any = EUROPE_ROME


def _at_after(floor: Floor, lower: datetime) -> Field:
    kind = moment(lower=lambda zoned: lower)
    zoned: Any = _Zoned(floor)
    return Field(lambda value: kind.valid(zoned, value), lambda floor: kind.junk(zoned))


def _at_past(floor: Floor) -> Field:
    kind = moment()
    zoned: Any = _Zoned(floor)
    return Field(lambda value: kind.valid(zoned, value), lambda floor: kind.junk(zoned))


def _qc_fields(floor: Floor) -> dict[str, Field]:
    return {
        "@lot": _lot_field(floor.quarantine, floor.released),  # a late result is welcome
        "@test": _field(lambda value: value in RECORDABLE, st.sampled_from(["cell_dose", "CD73"])),
        "method": _field(_free(SHORT_MAX)),
        "reason": _field(_free(LONG_MAX, multiline=True)),
    }


COMMANDS: dict[str, Command] = {
    "deviation open": Command(
        "tom",
        ("deviation", "open"),
        lambda floor: {
            "lot": floor.deviating,
            "criterion": "cd105",
            "description": "CD105 antibody lot near expiry",
        },
        lambda floor: {
            "lot": _lot_field(floor.deviating, floor.quarantine, floor.released),
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
    "lot hold": Command(
        "rita",
        ("lot", "hold"),
        lambda floor: {"@lot": floor.released, "reason": "incubator alarm under review"},
        lambda floor: {
            "@lot": _lot_field(floor.released, floor.quarantine),
            "reason": _field(_free(LONG_MAX, multiline=True)),
            "<password": _password(floor),
        },
        stdin=_password_line,
        audited=SIGNATURE_REFUSALS,
        flags=("--password-stdin",),
    ),
    "lot recall": Command(
        "rita",
        ("lot", "recall"),
        lambda floor: {"@lot": floor.released, "reason": "late endotoxin confirmed"},
        lambda floor: {
            "@lot": _lot_field(floor.released),
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
            "route": "intraspinal",
            "physician": "Dr A. Rossi",
        },
        lambda floor: {
            "@vial": _field(_code(floor.vial(2)), NEAR_CODES),
            "patient": _field(lambda value: value == PATIENT, st.sampled_from([OTHER, "PT-9999"])),
            "scan": Field(lambda value: value.strip() == floor.scan(floor.vial(2)), scans),
            "at": _at_after(floor, floor.issued_at),
            "route": _field(
                lambda value: value in ROUTES,
                st.sampled_from(["oral", "Intraspinal", "intraspinal ", "intra spinal", "iv"]),
            ),
            "physician": _field(_free(SHORT_MAX)),
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
                _label_directory,
                st.sampled_from(["lims.db", "labels\n", "\x1b[2J", "lims.db/labels"]),
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
            "template": _field(
                lambda value: value in TEMPLATES,
                st.sampled_from(["Cryovial", "bag.toml", "", " ", "../cryovial", "vial-70x50 "]),
            ),
        },
    ),
    "label reconcile": Command(
        "tom",
        ("label", "reconcile"),
        lambda floor: {"@lot": floor.released, "applied": "0", "destroyed": "0"},
        lambda floor: {
            "@lot": _lot_field(floor.released, floor.quarantine),
            "applied": _field(_label_count, st.sampled_from(["-1", "1e3", "10" * 12, "½"])),
            "destroyed": _field(_label_count, st.sampled_from(["-0.5", "NaN", "9" * 20, "٣"])),
        },
    ),
    # No vial of the floor was administered: every --vial is refused, and an event names none.
    "event record": Command(
        "tom",
        ("event", "record"),
        lambda floor: {
            "patient": PATIENT,
            "at": floor.issued_at.isoformat(),
            "kind": "adverse_event",
            "severity": "moderate",
            "related": "unlikely",
            "description": "headache after the lumbar puncture",
        },
        lambda floor: {
            "patient": _field(
                lambda value: value in (PATIENT, OTHER), st.sampled_from(["PT-9999", "pt-0001"])
            ),
            "vial": _field(lambda value: False, NEAR_CODES, st.sampled_from([floor.vial(2)])),
            "at": _at_past(floor),
            "kind": _field(
                lambda value: value in EVENT_KINDS,
                st.sampled_from(["adverse event", "AE", "Observation", "adverse_event "]),
            ),
            "severity": _field(
                # A fatal or life-threatening event needs --serious, which this one lacks.
                lambda value: value in SEVERITIES and value not in ("life_threatening", "fatal"),
                st.sampled_from(["grade 3", "Severe", "life-threatening", "3"]),
            ),
            "related": _field(
                lambda value: value in RELATEDNESS,
                st.sampled_from(["likely", "Possible", "possibly", "yes"]),
            ),
            "description": _field(_free(LONG_MAX, multiline=True)),
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


def _label_directory(value: str) -> bool:
    """What label print writes into: a directory, or a name to make one at (issue 12)."""
    if any(unicodedata.category(character) == "Cc" for character in value):
        return False
    path = Path(value)
    try:
        return _is_dir(path) or not any(
            parent.exists() and not parent.is_dir() for parent in (path, *path.parents)
        )
    except OSError:  # a name too long to make: refused as bad input
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


def _files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- the test each area runs on its commands ------------------------------------------------

# Each command's junk is tested in the module of its area; a command of a new area needs one.
AREAS = {
    "qa": ("deviation", "lot", "qc"),  # tests/cli/test_bad_input_qa.py
    "vials": ("vial",),  # tests/cli/test_bad_input_vials.py
    "documents": ("label", "report"),  # tests/cli/test_bad_input_documents.py
    "follow-up": ("event",),  # tests/cli/test_bad_input_events.py
}
assert {name.split()[0] for name in COMMANDS} == {word for area in AREAS.values() for word in area}


def commands_of(area: str) -> list[str]:
    """The names in COMMANDS of the commands of one area, sorted."""
    return sorted(name for name in COMMANDS if name.split()[0] in AREAS[area])


def junk_in_one_option_test(area: str) -> Callable[..., None]:
    """The fuzz test of one area: each of its writing commands, one field made junk."""

    @pytest.mark.parametrize("name", commands_of(area))
    @fuzz(15)
    @given(data=st.data())
    def test(floor: Floor, labels_dir: Path, name: str, data: st.DataObject) -> None:
        junk_in_one_option_is_refused(floor, labels_dir, name, data)

    return test


def junk_in_one_option_is_refused(
    floor: Floor, labels_dir: Path, name: str, data: st.DataObject
) -> None:
    """One field of COMMANDS[name] made junk: refused, and nothing written, file or row."""
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
