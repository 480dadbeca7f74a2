"""Junk in the shipment commands: refused in one line, nothing written but a scan's MISMATCH.

    lims ship create --to --courier --logger --at
    lims ship add SHP VIAL --scan             lims ship remove SHP VIAL --reason
    lims ship cancel SHP --reason             lims ship dispatch SHP --at
    lims ship receive SHP --scan --temperature-ok --logger-file --at
    lims ship lost SHP --reason

The lab is tests.support.shipments (lot L1 of PT-0001 released, sites OR-1 and HOSP-2), with
SHP-000001 open holding V01 and SHP-000002 dispatched holding V02. An example changes exactly
one value to junk and keeps valid values everywhere else (tests.support.floor's rule): exit
1-4 with one line on stderr naming the field when it is bad input (2), and every row of
every table as it was, bar the audit entry of a scan that did not match. What the oracles
accept is anything lims might take: an id or a site code of the right form is not junk
(it may name nothing, exit 3), nor is a file that exists. The last test runs each command
with the valid values, so that the values around the junk are known to be valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.domain.ids import ShipmentId, VialId
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX
from lims.services import shipments
from tests.support.floor import _refused_writing_nothing, crafted_scans
from tests.support.junk import JUNK, _run, _valid_text, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.oracles import Kind, _without_nul, moment, with_arguments
from tests.support.quality import Quality
from tests.support.shipments import shipping
from tests.support.vials import scan_of

OPEN, SENT = "SHP-000001", "SHP-000002"
SCAN_REFUSALS = ("shipment.add.refused", "shipment.receive.refused")


@dataclass(frozen=True)
class Kept:
    """The lab the oracles read: its zone, the lot, and when each shipment's last step was."""

    quality: Quality
    settings: Settings
    zone: tzinfo
    lot: str
    packed_at: datetime  # SHP-000001's vial
    dispatched_at: datetime  # SHP-000002

    def vial(self, number: int) -> str:
        return f"{self.lot}-V{number:02d}"

    def scan(self, vial: str) -> str:
        return scan_of(self.quality, vial)


def _kept(lab: Lab) -> Kept:
    quality = shipping(lab)
    lot = quality.lot_id
    made = [quality.run(shipments.create_shipment, to="OR-1", courier="porter") for _ in "ab"]
    for shipment, vial in zip(made, ("V01", "V02"), strict=True):
        packed = quality.run(
            shipments.add_vial,
            shipment=shipment.shipment_id,
            vial=f"{lot}-{vial}",
            scan=scan_of(quality, f"{lot}-{vial}"),
        )
    [first] = quality.read(shipments.show_shipment, shipment=OPEN).vials
    sent = quality.run(shipments.dispatch, shipment=SENT)
    assert packed.shipment_id == SENT
    assert sent.dispatched_at is not None
    return Kept(quality, lab.settings, lab.settings.tz, lot, first.added_at, sent.dispatched_at)


@pytest.fixture
def kept(lab: Lab) -> Kept:
    return lab.built("shipment bad input", lambda: _kept(lab))


# --- the oracles ---------------------------------------------------------------------------------


def _text(max_length: int, *, multiline: bool = False) -> Kind:
    def accepts(kept: Kept, text: str) -> bool:
        if multiline:
            text = text.replace("\n", " ").replace("\t", " ")
        return _valid_text(text, max_length)

    return Kind(
        accepts, lambda kept: JUNK, pinned=("", " ", "\t", "a\x07b", "x" * (max_length + 1))
    )


def _chain_id(kind: type[ShipmentId] | type[VialId], near: tuple[str, ...]) -> Kind:
    """An id as lims reads it: ASCII, blanks around it and letter case forgiven."""

    def accepts(kept: Kept, text: str) -> bool:
        return text.isascii() and kind.matches(text.strip().upper())

    return Kind(
        accepts, lambda kept: st.one_of(JUNK, st.sampled_from(near)).map(_without_nul), pinned=near
    )


_NOT_SHIPMENTS = (
    "", " ", "SHP-", "SHP-1", "SHP-00001", "SHP000001", "SHP-000001x", "CNT-000001",
    "SHP\u2011000001", "ＳＨＰ-000001", "SHP-٠٠٠٠٠١", "1", "A999926000001-L1-V01",
)  # fmt: skip
_NOT_VIALS = (
    "", " ", "A999926000001-L1", "A999926000001-L1-V1", "SHP-000001",
    "A999926000001-L1-V01\u200b", "O999926000001-L1-V01",
)  # fmt: skip
SHIPMENT = _chain_id(ShipmentId, _NOT_SHIPMENTS)
VIAL = _chain_id(VialId, _NOT_VIALS)

_SITE = re.compile(r"[A-Z0-9][A-Z0-9._-]*")
_NOT_SITES = ("", " ", "OR 1", "-OR", "OR/1", "ÖR-1", "A" * 17, "OR-1\x07", "ＯＲ-1")
TO = Kind(
    lambda kept, text: (
        text.isascii()
        and len(text.strip()) <= 16
        and _SITE.fullmatch(text.strip().upper()) is not None
    ),
    lambda kept: st.one_of(JUNK, st.sampled_from(_NOT_SITES)).map(_without_nul),
    pinned=_NOT_SITES,
)
TEMPERATURE = Kind(
    lambda kept, text: text in ("yes", "no"),
    lambda kept: st.one_of(
        JUNK, st.sampled_from(["Yes", "no ", "true", "1", "y", "ok", "out of range", ""])
    ).map(_without_nul),
    pinned=("Yes", "true", "1", ""),
)


def _a_file(kept: Kept, text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


LOGGER_FILE = Kind(
    _a_file,
    lambda kept: st.one_of(JUNK, st.sampled_from([".", "/", "home", "x" * 300])).map(_without_nul),
    pinned=(".", "/", "missing.csv", "x" * 300),
)


def _scan(vial: str) -> Kind:
    return Kind(
        lambda kept, text: text.strip() == kept.scan(kept.vial(int(vial[-2:]))),
        lambda kept: st.one_of(JUNK, crafted_scans(kept)),  # type: ignore[arg-type]
    )


# --- the commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command: its words, its valid values ("@name" an argument, None left out) and the
    values under test."""

    words: tuple[str, ...]
    base: Callable[[Kept], dict[str, str | None]]
    fields: dict[str, Kind]
    audited: tuple[str, ...] = ()

    def args(self, kept: Kept, field: str | None = None, junk: str = "") -> tuple[str, ...]:
        return with_arguments(self.words, self.base(kept), field, junk)


REASON = _text(LONG_TEXT_MAX, multiline=True)
COMMANDS = {
    "ship create": Command(
        ("ship", "create"),
        lambda kept: {"to": "OR-1", "courier": "porter", "logger": "TL-0042", "at": None},
        {
            "to": TO,
            "courier": _text(SHORT_TEXT_MAX),
            "logger": _text(SHORT_TEXT_MAX),
            "at": moment(),
        },
    ),
    "ship add": Command(
        ("ship", "add"),
        lambda kept: {"scan": kept.scan(kept.vial(3)), "@shipment": OPEN, "@vial": kept.vial(3)},
        {"@shipment": SHIPMENT, "@vial": VIAL, "scan": _scan("V03")},
        audited=SCAN_REFUSALS,
    ),
    "ship remove": Command(
        ("ship", "remove"),
        lambda kept: {"reason": "wrong vial", "@shipment": OPEN, "@vial": kept.vial(1)},
        {"@shipment": SHIPMENT, "@vial": VIAL, "reason": REASON},
    ),
    "ship cancel": Command(
        ("ship", "cancel"),
        lambda kept: {"reason": "postponed", "@shipment": OPEN},
        {"@shipment": SHIPMENT, "reason": REASON},
    ),
    "ship dispatch": Command(
        ("ship", "dispatch"),
        lambda kept: {"at": None, "@shipment": OPEN},
        {"@shipment": SHIPMENT, "at": moment(lower=lambda kept: kept.packed_at)},
    ),
    "ship receive": Command(
        ("ship", "receive"),
        lambda kept: {
            "scan": kept.scan(kept.vial(2)),
            "temperature-ok": "yes",
            "logger-file": None,
            "at": None,
            "@shipment": SENT,
        },
        {
            "@shipment": SHIPMENT,
            "scan": _scan("V02"),
            "temperature-ok": TEMPERATURE,
            "logger-file": LOGGER_FILE,
            "at": moment(lower=lambda kept: kept.dispatched_at),
        },
        audited=SCAN_REFUSALS,
    ),
    "ship lost": Command(
        ("ship", "lost"),
        lambda kept: {"reason": "courier lost the box", "@shipment": SENT},
        {"@shipment": SHIPMENT, "reason": REASON},
    ),
}


def _refused(kept: Kept, name: str, field: str, junk: str) -> None:
    command = COMMANDS[name]
    floor: Any = kept  # what the floor's judge reads of it: its settings
    _refused_writing_nothing(
        floor,
        command.args(kept, field, junk),
        field.lstrip("@"),
        junk,
        audited=command.audited,
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(15)
@given(data=st.data())
def test_junk_in_any_value_of_a_shipment_command_is_refused_and_writes_nothing(
    kept: Kept, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    field = data.draw(st.sampled_from(sorted(command.fields)), label="field")
    kind = command.fields[field]
    junk = data.draw(kind.junk(kept).filter(lambda text: not kind.valid(kept, text)), label="junk")
    _refused(kept, name, field, junk)


def test_pinned_junk_in_every_value_is_refused(kept: Kept) -> None:
    """Every value gets its catalogue of junk, so that none of it depends on luck."""
    for name, command in COMMANDS.items():
        for field, kind in command.fields.items():
            for junk in kind.pinned:
                assert not kind.valid(kept, junk), (name, field, junk)
                _refused(kept, name, field, junk)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_valid_values_around_the_junk_are_accepted(kept: Kept, name: str) -> None:
    command = COMMANDS[name]
    before = snapshot(kept.settings)
    ran = _run(*command.args(kept))
    assert ran.exit_code == 0, (name, ran.stderr)
    assert snapshot(kept.settings) != before
