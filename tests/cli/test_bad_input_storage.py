"""Junk in the storage commands: exit 2, one line naming the field, nothing written.

    lims storage add PATH --kind --rows --columns --temperature-c     (as QA)
    lims sample retain LOT --count --into --at                        (as the technician)
    lims sample remove SAMPLE --reason
    lims storage move ITEM PATH:POSITION --reason

The lab is lot L1 of PT-0001 (tests.support.quality), a 9×9 box LN2-1/rack-3/box-07 and two
samples of the lot in it. An example changes exactly one value to junk and keeps valid
values everywhere else; every row of every table and the station's session file are
compared before and after. What the oracles accept is anything lims might take: a path or
id of the right form that names nothing is not junk (it is not found, exit 3), nor is a
position in another box. The last test runs each command with the valid values, so that
the values around the junk are known to be valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.domain.ids import BankVialId, LotId, RetainedSampleId
from lims.models import LONG_TEXT_MAX
from lims.services import samples
from tests.support.junk import JUNK, _run, _valid_text, fuzz, snapshot
from tests.support.lab import PASSWORD, Lab
from tests.support.oracles import (
    Kind,
    _refusal,
    _without_nul,
    moment,
    whole,
    with_arguments,
    within,
)
from tests.support.quality import LOT, Quality
from tests.support.storage import BOX, RACK, add_box

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_POSITION = re.compile(r"[A-Za-z][0-9]{1,2}")
ROWS = COLUMNS = 9


@dataclass(frozen=True)
class Kept:
    """The lab the oracles read: its zone, the lot and when it was formulated."""

    settings: Settings
    zone: tzinfo
    lot: str
    formulated_at: datetime

    def sample(self, number: int) -> str:
        return f"{self.lot}-R{number:02d}"


def _kept(lab: Lab) -> Kept:
    quality = Quality(lab)
    add_box(lab)
    lab.add_user("ann", "qa")
    lab.login("tom")
    quality.run(samples.retain_samples, lot=quality.lot_id, count=2, into=BOX)
    return Kept(lab.settings, lab.settings.tz, quality.lot_id, LOT["at"])


@pytest.fixture
def kept(lab: Lab) -> Kept:
    return lab.built("storage bad input", lambda: _kept(lab))


# --- the oracles ---------------------------------------------------------------------------------


def _path_valid(text: str, longest: int = 200) -> bool:
    path = text.strip()
    segments = path.split("/")
    return (
        bool(path)
        and len(path) <= longest
        and len(segments) <= 8
        and all(_SEGMENT.fullmatch(segment) for segment in segments)
    )


def _place_valid(kept: Kept, text: str) -> bool:
    """PATH[:POSITION]: any path of the right form (another one may exist, or not: exit 3), and
    in the box, a position within its grid."""
    path, separator, position = text.strip().partition(":")
    if not _path_valid(path):
        return False
    if not separator:
        return True
    typed = position.strip()
    if not typed:
        return False
    if path.strip().lower() != BOX.lower():
        return True
    match = _POSITION.fullmatch(typed)
    if match is None:
        return False
    return ord(typed[0].upper()) - ord("A") < ROWS and 1 <= int(typed[1:]) <= COLUMNS


_NOT_PLACES = (
    "", " ", ":", f"{BOX}:", f"{BOX}:J1", f"{BOX}:A10", f"{BOX}:A0", f"{BOX}:1A", f"{BOX}:AA1",
    f"{BOX}:A 1", f"{BOX}:Ä1", f"{BOX}/", f"/{BOX}", "LN2-1//box", "LN2 1", "-LN2",
    f"{BOX}:A1:B1", "ä", "/".join(["a"] * 9), f"{BOX}:A٣",
)  # fmt: skip
PLACE = Kind(
    _place_valid,
    lambda kept: st.one_of(
        JUNK,
        st.sampled_from(_NOT_PLACES),
        JUNK.map(lambda position: f"{BOX}:{position}"),
        st.text(st.sampled_from("ABIJZaz019:/ -"), max_size=6).map(lambda tail: BOX + tail),
    ).map(_without_nul),
    pinned=_NOT_PLACES,
)
_NOT_PATHS = ("", " ", "/", "LN2-1/", "/LN2-1", "a//b", "LN2 1", "-x", "a:b", "ä", "a" * 41)
NEW_PATH = Kind(
    lambda kept, text: _path_valid(text, longest=64),
    lambda kept: st.one_of(
        JUNK,
        st.sampled_from(_NOT_PATHS),
        st.just(f"{RACK}/" + "b" * 40),  # a storage path, too long for the trail
    ).map(_without_nul),
    pinned=(*_NOT_PATHS, "/".join(["a" * 20] * 4)),
)
KIND = Kind(
    lambda kept, text: text in ("tank", "freezer", "rack", "box", "shelf"),
    lambda kept: st.one_of(
        JUNK, st.sampled_from(["Box", " box", "box ", "boxes", "vial", "tube", "BOX", ""])
    ).map(_without_nul),
    pinned=("Box", " box", "vial", ""),
)


def chain_id(*kinds: type[LotId] | type[BankVialId] | type[RetainedSampleId]) -> Kind:
    """An id of one of these kinds as lims reads it: ASCII, blanks around and case forgiven."""

    def accepts(kept: Kept, text: str) -> bool:
        typed = text.strip().upper()
        return text.isascii() and any(kind.matches(typed) for kind in kinds)

    near = st.sampled_from(
        ["A999926000001-L1-V01", "A999926000001-L1-R", "A999926000001-C1", "A999926000001",
         "A999926000001-L1-R01x", "A999926000001-L1\u2011R01", "PT-0001", "ＡA999926000001-L1"]
    )  # fmt: skip
    return Kind(
        accepts, lambda kept: st.one_of(JUNK, near).map(_without_nul), pinned=("", "PT-0001")
    )


REASON = Kind(
    # A reason may run over lines (lims.validation.free_text, multiline): tabs and line feeds
    # are text in it, not junk.
    lambda kept, text: _valid_text(text.replace("\n", " ").replace("\t", " "), LONG_TEXT_MAX),
    lambda kept: JUNK,
    pinned=("", " ", "\t", "line\x07bell", "a" * (LONG_TEXT_MAX + 1)),
)


# --- the commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A command: its words, who runs it, its valid values ("@name" an argument) and the
    values under test."""

    words: tuple[str, ...]
    user: str
    base: Callable[[Kept], dict[str, str | None]]  # None: left out
    fields: dict[str, Kind]

    def args(self, kept: Kept, field: str | None = None, junk: str = "") -> tuple[str, ...]:
        return with_arguments(self.words, self.base(kept), field, junk)


COMMANDS = {
    "storage add": Command(
        ("storage", "add"),
        "ann",
        lambda kept: {
            "kind": "box",
            "rows": "9",
            "columns": "12",
            "temperature-c": "-190",
            "@path": f"{RACK}/box-08",
        },
        {
            "@path": NEW_PATH,
            "kind": KIND,
            "rows": whole(1, 26),
            "columns": whole(1, 99),
            "temperature-c": within(-200, 60),
        },
    ),
    "sample retain": Command(
        ("sample", "retain"),
        "tom",
        lambda kept: {"count": "2", "into": f"{BOX}:C1", "at": None, "@lot": kept.lot},
        {
            "@lot": chain_id(LotId),
            "count": whole(1, 100),
            "into": PLACE,
            "at": moment(lower=lambda kept: kept.formulated_at),
        },
    ),
    "sample remove": Command(
        ("sample", "remove"),
        "tom",
        lambda kept: {"reason": "sterility retest", "@sample": kept.sample(2)},
        {"@sample": chain_id(RetainedSampleId), "reason": REASON},
    ),
    "storage move": Command(
        ("storage", "move"),
        "tom",
        lambda kept: {"reason": "tidy", "@item": kept.sample(1), "@to": f"{BOX}:I9"},
        {"@item": chain_id(BankVialId, RetainedSampleId), "@to": PLACE, "reason": REASON},
    ),
}


def _refused_and_unchanged(kept: Kept, command: Command, field: str, junk: str) -> None:
    args = command.args(kept, field, junk)
    before = snapshot(kept.settings)
    line = _refusal(_run(*args))
    named = field.lstrip("@")
    assert line.startswith(f"error: {named}: "), (line, named)
    assert snapshot(kept.settings) == before, f"{args!r} changed the database"


def _as(kept: Kept, user: str) -> None:
    ran = _run("login", user, "--password-stdin", stdin=PASSWORD + "\n")
    assert ran.exit_code == 0, ran.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(15)
@given(data=st.data())
def test_junk_in_any_value_of_a_storage_command_is_refused_and_writes_nothing(
    kept: Kept, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    _as(kept, command.user)
    field = data.draw(st.sampled_from(sorted(command.fields)), label="field")
    kind = command.fields[field]
    junk = data.draw(kind.junk(kept).filter(lambda text: not kind.valid(kept, text)), label="junk")
    _refused_and_unchanged(kept, command, field, junk)


def test_pinned_junk_in_every_value_is_refused(kept: Kept) -> None:
    """Every value gets its catalogue of junk, so that none of it depends on luck."""
    failures = []
    for name, command in COMMANDS.items():
        _as(kept, command.user)
        for field, kind in command.fields.items():
            for junk in kind.pinned:
                if kind.valid(kept, junk):
                    continue
                try:
                    _refused_and_unchanged(kept, command, field, junk)
                except AssertionError as error:
                    failures.append(f"{name} {field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_values_around_the_junk_are_taken(kept: Kept, name: str) -> None:
    command = COMMANDS[name]
    _as(kept, command.user)
    base = command.base(kept)
    for field, kind in command.fields.items():
        value = base[field]
        assert value is None or kind.valid(kept, value), (name, field)
    args = command.args(kept)
    ran = _run(*args)
    assert ran.exit_code == 0, (args, ran.stderr)
