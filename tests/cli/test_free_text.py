"""Hostile text in every free-text field: stored and shown exactly as typed, or refused.

The rule (DESIGN.md, "Rules that never bend"; issue 6): hostile text in a
free-text field is either stored and shown exactly as typed, or refused with
exit 2 and one line naming the field and what is allowed.

Each free-text field gets the same hostile values, and a consistent policy per
field is checked: one-line fields (names, methods, study, site, signature
meaning, a rejection reason, which is printed in the signature) refuse control
characters and newlines; multi-line fields (descriptions, resolutions,
correction and destruction reasons) keep newlines and tabs; identities
(reagent name and lot) refuse leading and trailing spaces; all refuse text over
their maximum, naming it. What is stored is compared with the JSON of the
command that shows it, with its table (every word; rich folds long cells across
lines) and with the audit trail. The lab is the QA floor (tests.support.floor).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from lims.services import vials
from lims.services.lots import MEANING_MAX
from lims.timeutil import utcnow
from tests.support.bench import day
from tests.support.floor import (
    COMMANDS,
    LONG_MAX,
    PATIENT,
    REAGENT_LOT_MAX,
    REAGENT_NAME_MAX,
    REJECT_REASON_MAX,
    SHORT_MAX,
    Floor,
    _free,
    _record_passing,
)
from tests.support.junk import Ran, _one_line_error, _run, _valid_text, snapshot
from tests.support.lab import PASSWORD
from tests.support.vials import add_lot

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
    args = (
        "patient", "add", "--initials=AB", "--birth-year=1960", "--consent-date=2020-01-15",
        f"--study={value}", "--", code,
    )  # fmt: skip
    show = ("patient", "show", code)
    return lambda: _run(*args), lambda ran: _shown(show, show, f"patient:{code}")


def _aspirate(option: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        args = (
            "aspirate", "receive", f"--patient={PATIENT}", f"--collected-at={day(1).isoformat()}",
            f"--received-at={(day(1) + timedelta(hours=2)).isoformat()}",
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


def _vial_physician(floor: Floor, value: str, n: int) -> Applied:
    """A vial issued for each value that may be accepted: V02 of the released lot (issued
    already), its V01, V03 and V04, then the quarantine lot's V01 and V02 once rita released
    it; a value refused is refused before any scan."""
    lot, number = {1: ("r", 1), 4: ("r", 3), 5: ("r", 4), 6: ("q", 1), 20: ("q", 2)}.get(
        n, ("r", 2)
    )
    quality = floor.quality
    if lot == "q" and number == 1:
        quality.scenario.release(floor.quarantine, signer="rita", password=PASSWORD)
        floor.as_user("tom")
    vial = floor.vial(number, floor.quarantine if lot == "q" else None)
    if (lot, number) != ("r", 2):
        quality.run(vials.issue, vial=vial, scan=floor.scan(vial), patient=PATIENT)
    args = (
        "vial", "administer", f"--physician={value}", f"--patient={PATIENT}",
        f"--scan={floor.scan(vial)}", "--", vial,
    )  # fmt: skip
    show = ("vial", "show", vial)
    return lambda: _run(*args), lambda ran: _shown(show, show, f"vial:{vial}")


def _event_description(floor: Floor, value: str, n: int) -> Applied:
    args = (
        "event", "record", f"--patient={PATIENT}", f"--at={utcnow().isoformat()}",
        "--kind=observation", f"--description={value}",
    )  # fmt: skip
    listed = ("event", "list", "--patient", PATIENT)
    return lambda: _run(*args), lambda ran: _shown(listed, listed, "event")


def _equipment(option: str) -> Callable[[Floor, str, int], Applied]:
    """A piece added by QA for each value (EQ-T0, EQ-T1, ...), OPTION hostile."""

    def apply(floor: Floor, value: str, n: int) -> Applied:
        code = f"EQ-T{n}"
        values = {"name": "spare centrifuge", option: value}
        args = (
            "equipment", "add", "--kind=centrifuge",
            *(f"--{name}={text}" for name, text in values.items()), "--", code,
        )  # fmt: skip
        show = ("equipment", "show", code)
        return lambda: _run(*args), lambda ran: _shown(show, show, f"equipment:{code}")

    return apply


def _equipment_added(floor: Floor, n: int) -> str:
    code = f"EQ-R{n}"
    ran = _run("equipment", "add", "--kind=other", "--name=old balance", "--", code)
    assert ran.exit_code == 0, ran.stderr
    return code


def _equipment_certificate(floor: Floor, value: str, n: int) -> Applied:
    code = _equipment_added(floor, n)
    at = utcnow().date()
    args = (
        "equipment", "calibrate", f"--at={at}", f"--due={at + timedelta(days=365)}",
        f"--certificate={value}", "--", code,
    )  # fmt: skip
    show = ("equipment", "show", code)
    return lambda: _run(*args), lambda ran: _shown(show, show, f"equipment:{code}")


def _equipment_retire(floor: Floor, value: str, n: int) -> Applied:
    code = _equipment_added(floor, n)
    args = ("equipment", "retire", f"--reason={value}", "--", code)
    return lambda: _run(*args), _trail_shown(f"equipment:{code}")


def _sites(floor: Floor) -> None:
    """OR-1, set by the admin once; QA is logged in again."""
    if "OR-1" in table("site", "show"):
        return
    floor.as_user("admin")
    sites = '[{"code": "OR-1", "name": "Theatre", "address": "1 Example Street"}]'
    ran = _run("site", "set", "sites", sites, "--reason", "shipping")
    assert ran.exit_code == 0, ran.stderr
    floor.as_user("tom")


def _ship_create(option: str) -> Callable[[Floor, str, int], Applied]:
    def apply(floor: Floor, value: str, n: int) -> Applied:
        _sites(floor)
        values = {"courier": "porter", option: value}
        args = ("ship", "create", "--to=OR-1", "--json", *(f"--{k}={v}" for k, v in values.items()))

        def shown(ran: Ran) -> Shown:
            made = json.loads(ran.stdout)["shipment_id"]
            show = ("ship", "show", made)
            return _shown(show, show, f"shipment:{made}")

        return lambda: _run(*args), shown

    return apply


def _ship_cancel(floor: Floor, value: str, n: int) -> Applied:
    _sites(floor)
    made = ok_json("ship", "create", "--to=OR-1", "--courier=porter")["shipment_id"]
    args = ("ship", "cancel", f"--reason={value}", "--", made)
    show = ("ship", "show", made)
    return lambda: _run(*args), lambda ran: _shown(show, show, f"shipment:{made}")


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
    "vial administer --physician": TextField(
        "physician", "line", SHORT_MAX, "tom", _vial_physician
    ),
    "event record --description": TextField(
        "description", "multiline", LONG_MAX, "tom", _event_description
    ),
    "equipment add --name": TextField("name", "line", SHORT_MAX, "rita", _equipment("name")),
    "equipment add --serial": TextField(
        "serial", "identity", SHORT_MAX, "rita", _equipment("serial")
    ),
    "equipment add --location": TextField(
        "location", "identity", SHORT_MAX, "rita", _equipment("location")
    ),
    "equipment calibrate --certificate": TextField(
        "certificate", "identity", SHORT_MAX, "rita", _equipment_certificate
    ),
    "equipment retire --reason": TextField(
        "reason", "multiline", LONG_MAX, "rita", _equipment_retire
    ),
    "ship create --courier": TextField(
        "courier", "line", SHORT_MAX, "tom", _ship_create("courier")
    ),
    "ship create --logger": TextField("logger", "line", SHORT_MAX, "tom", _ship_create("logger")),
    "ship cancel --reason": TextField("reason", "multiline", LONG_MAX, "tom", _ship_cancel),
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
