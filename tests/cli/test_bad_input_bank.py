"""Junk in the cell bank's options: exit 2, one line naming the option, nothing written.

The rule of tests/cli/test_bad_input_bench.py, for the commands that freeze, thaw and
discard bank vials:

    lims culture freeze CULTURE --cells-per-vial --vials --into --medium --at
    lims bank thaw BANK_VIAL    --viability --seeded --vessels --area-cm2 --at
    lims bank discard BANK_VIAL --reason --at

The lab has a patient, an aspirate, a culture with two passages (P2 harvested 1.2x10^8
cells a day ago and reseeded 10^8), box LN2-1/rack-3/box-07 (9 x 9) in a rack in a tank,
and one bank vial frozen from P2 into A1. An example changes exactly one option to junk
and keeps valid values everywhere else, so the command can only refuse; every row of
every table and the station's session file are compared before and after. A place
(--into) that lims might take is never junk: a well-formed path of no location is not
found (exit 3), and a free position in the box is no refusal at all.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.timeutil import utcnow
from tests.support.junk import JUNK, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.oracles import (
    COUNT,
    PERCENT,
    TECH,
    Bench,
    Command,
    Kind,
    _ok,
    _run,
    _typed,
    _without_nul,
    amount,
    drawn_junk,
    moment,
    refused_unchanged,
    whole,
)
from tests.support.storage import BOX, BOX_COLUMNS, BOX_ROWS, add_box

PATIENT = "PT-0001"
VIALS_MAX = 26 * 99  # one box at most: lims.services.bank.VIALS_MAX
VESSELS = (1, 10_000)
AREA_MAX_CM2 = 1_000_000
MEDIUM_MAX, REASON_MAX = 100, 2000  # SHORT_TEXT_MAX, LONG_TEXT_MAX


@dataclass(frozen=True)
class Banked(Bench):
    vial: str  # stored in BOX:A1
    frozen_at: datetime


@pytest.fixture
def banked(lab: Lab) -> Banked:
    lab.add_user(TECH, "technician")
    lab.login(TECH)
    now = utcnow().replace(microsecond=0)
    collected, received = now - timedelta(days=5), now - timedelta(days=5, hours=-2)
    started = now - timedelta(days=4)
    harvested = (now - timedelta(days=3), now - timedelta(days=1))
    frozen_at = harvested[1] + timedelta(hours=1)
    _ok("patient", "add", PATIENT, initials="AB", birth_year="1960", consent_date="2020-01-15")
    aspirate = _ok(
        "aspirate",
        "receive",
        patient=PATIENT,
        collected_at=_typed(collected),
        received_at=_typed(received),
        volume_ml="30",
    )
    culture = _ok(
        "culture",
        "start",
        aspirate["din"],
        mnc="2.4e8",
        vessels="5",
        area_cm2="875",
        at=_typed(started),
    )["culture_id"]
    passages = tuple(
        _ok(
            "passage",
            "log",
            culture,
            harvested=harvested_cells,
            viability="94",
            seeded=seeded,
            vessels=vessels,
            area_cm2=area,
            at=_typed(when),
        )["passage_id"]
        for harvested_cells, seeded, vessels, area, when in (
            ("2.9e7", "2.6e7", "30", "5250", harvested[0]),
            ("1.2e8", "1e8", "100", "20000", harvested[1]),
        )
    )
    add_box(lab)
    frozen = _ok(
        "culture",
        "freeze",
        culture,
        cells_per_vial="5e6",
        vials="1",
        into=f"{BOX}:A1",
        at=_typed(frozen_at),
    )
    return Banked(
        settings=lab.settings,
        zone=lab.settings.tz,
        din=aspirate["din"],
        din_check=aspirate["din_check"],
        culture=culture,
        passages=(passages[0], passages[1]),
        collected_at=collected,
        received_at=received,
        started_at=started,
        harvested_at=harvested,
        vial=frozen["bank_vials"][0]["bank_vial_id"],
        frozen_at=frozen_at,
    )


# --- what is valid, restated -----------------------------------------------------------------

_LEVEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_POSITION = re.compile(r"([A-Za-z])([0-9]{1,2})")
# The lab's locations by path, any letter case: only the box has positions.
_LOCATIONS = {BOX.lower(): "box", "ln2-1/rack-3": "rack", "ln2-1": "tank"}


def _place_valid(bench: Bench, text: str) -> bool:
    """PATH[:POSITION] that lims might take, or find no location at (exit 3)."""
    path, separator, position = text.strip().partition(":")
    path = path.strip()
    levels = path.split("/")
    if len(path) > 200 or len(levels) > 8 or not all(_LEVEL.fullmatch(level) for level in levels):
        return False
    if separator and not position.strip():
        return False
    kind = _LOCATIONS.get(path.lower())
    if kind is None:
        return True  # not found, or a location added since
    if kind != "box":
        return False
    if not separator:
        return True
    match = _POSITION.fullmatch(position.strip())
    return match is not None and (
        ord(match[1].upper()) - ord("A") < BOX_ROWS and 1 <= int(match[2]) <= BOX_COLUMNS
    )


_NOT_PLACES = (
    "", " ", f"{BOX}:", f"{BOX}: ", f"{BOX}:J1", f"{BOX}:A0", f"{BOX}:A10", f"{BOX}:AA1",
    f"{BOX}:1A", f"{BOX}:A 1", f"{BOX}:A-1", f"{BOX}:Ａ1", f"{BOX}:A１", f"{BOX}:A1:B2",
    "LN2-1", "LN2-1:A1", "ln2-1/RACK-3:A1", "/LN2-1", "LN2-1//box-07", f"{BOX}/",
    "LN2 1/box", "LN2-1/.box", "-LN2", "LN2-1/box-07\u200b", "😀", "a" * 41, "a/" * 8 + "a",
    ":A1",
)  # fmt: skip
PLACE = Kind(
    _place_valid,
    lambda bench: st.one_of(
        JUNK,
        st.sampled_from(_NOT_PLACES),
        st.text(max_size=4).map(lambda position: f"{BOX}:{position}"),
        st.text(st.sampled_from("ABab09/:-._ \u00a0"), max_size=12),
    ).map(_without_nul),
    pinned=_NOT_PLACES,
)


def _text(max_length: int, *, multiline: bool) -> Kind:
    """Free text: not blank, at most max_length, no control characters (a multi-line one
    keeps newlines and tabs)."""
    allowed = {"\n", "\t"} if multiline else set()

    def accepts(bench: Bench, text: str) -> bool:
        return (
            bool(text.strip())
            and len(text) <= max_length
            and not any(
                unicodedata.category(c) == "Cs"
                or (unicodedata.category(c) == "Cc" and c not in allowed)
                for c in text
            )
        )

    pinned = ("", " ", "\t", "\n", "a\x07", "\x1b[2J", "x" * (max_length + 1), "\udc80")
    return Kind(accepts, lambda bench: JUNK, pinned=pinned)


# --- the commands ----------------------------------------------------------------------------


def _after_last_harvest(bench: Bench) -> datetime:
    return bench.harvested_at[-1]


def _after_freezing(bench: Bench) -> datetime:
    assert isinstance(bench, Banked)
    return bench.frozen_at


COMMANDS: dict[str, Command] = {
    "culture freeze": Command(
        lambda bench: ("culture", "freeze", bench.culture),
        lambda bench: {
            "cells-per-vial": "1e6",
            "vials": "2",
            "into": f"{BOX}:B1",
            "medium": "CryoStor CS10",
            "at": _typed(bench.frozen_at + timedelta(hours=1)),
        },
        {
            "cells-per-vial": COUNT,
            "vials": whole(1, VIALS_MAX),
            "into": PLACE,
            "medium": _text(MEDIUM_MAX, multiline=False),
            "at": moment(lower=_after_last_harvest),
        },
    ),
    "bank thaw": Command(
        lambda bench: ("bank", "thaw", bench.vial),
        lambda bench: {
            "viability": "92",
            "seeded": "4e6",
            "vessels": "1",
            "area-cm2": "175",
            "at": _typed(bench.frozen_at + timedelta(hours=2)),
        },
        {
            "viability": PERCENT,
            "seeded": COUNT,
            "vessels": whole(*VESSELS),
            "area-cm2": amount(AREA_MAX_CM2),
            "at": moment(lower=_after_freezing),
        },
    ),
    "bank discard": Command(
        lambda bench: ("bank", "discard", bench.vial),
        lambda bench: {
            "reason": "cracked in the tank",
            "at": _typed(bench.frozen_at + timedelta(hours=2)),
        },
        {"reason": _text(REASON_MAX, multiline=True), "at": moment(lower=_after_freezing)},
    ),
}


def _names(line: str, field: str) -> bool:
    """lims: 'error: FIELD: must ...' (a time: '... give an offset'). A time before the
    lab's late-entry window (records.late_entry_hours) is refused for want of a late reason
    first, which names --late-reason: hypothesis finds such times among numbers."""
    if field == "at" and line.startswith("error: late-reason: required for a late entry"):
        return True
    return line.startswith(f"error: {field}: ") and ("must" in line or "give an offset" in line)


def _assert_refused_and_unchanged(settings: Settings, args: tuple[str, ...], field: str) -> None:
    refused_unchanged(settings, args, field, _names)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(15)
@given(data=st.data())
def test_junk_in_an_option_is_refused_and_writes_nothing(
    banked: Banked, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    field, junk = drawn_junk(banked, command, data)
    _assert_refused_and_unchanged(banked.settings, command.args(banked, field, junk), field)


def test_pinned_junk_in_every_option_is_refused(banked: Banked) -> None:
    """Every option gets a catalogue of junk of its kind, so none of it depends on luck."""
    failures = []
    for name, command in COMMANDS.items():
        base = command.base(banked)
        for field, kind in command.fields.items():
            assert kind.valid(banked, base[field]), (name, field)
            for junk in kind.pinned:
                if kind.valid(banked, junk):
                    continue
                try:
                    args = command.args(banked, field, junk)
                    _assert_refused_and_unchanged(banked.settings, args, field)
                except AssertionError as error:
                    failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


def test_a_place_lims_might_take_is_not_bad_input(banked: Banked) -> None:
    """The oracle's other side: a path of no location is not found, a position taken or
    too near the box's end is refused by a rule, and none of them writes anything."""
    for place, code in (
        ("LN2-9/box-1:A1", 3),
        ("ln2-1/rack-3/BOX-07:a1", 1),  # A1 holds the lab's vial
        (f"{BOX}:I9", 1),  # two vials from I9 on: the box ends
    ):
        assert _place_valid(banked, place)
        args = COMMANDS["culture freeze"].args(banked, "into", place)
        before = snapshot(banked.settings)
        ran = _run(*args)
        assert ran.exit_code == code, (place, ran.stderr)
        assert snapshot(banked.settings) == before
