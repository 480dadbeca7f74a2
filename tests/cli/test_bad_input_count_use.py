"""Junk in the options that take a step's cells from a count: exit 2, one line, nothing written.

The rule of tests/cli/test_bad_input_bench.py, for the options of issue 14 item 2:

    lims passage log CULTURE  --count --suspension-ml
    lims lot formulate CULTURE --count --suspension-ml
    lims culture start DIN     --count --suspension-ml --kind
    lims aspirate receive      --count --suspension-ml

The lab has a patient, an aspirate, a culture with a passage three days ago, and a count
analysed an hour ago (1e7 viable and 1.2e7 total cells/mL) that every command here could
take. An example changes exactly one of these options to junk and keeps valid values
everywhere else, so the command can only refuse; every row of every table and the station's
session file are compared before and after. A count id of the right form that names no count
is not junk (it is not found, exit 3). The last test takes the count with the valid values,
so that the values around the junk are known to be valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.config import Settings
from lims.timeutil import utcnow
from tests.support.counts import imported
from tests.support.junk import JUNK, fuzz
from tests.support.lab import Lab
from tests.support.oracles import (
    COUNT_ID,
    TECH,
    Bench,
    Command,
    Kind,
    _ok,
    _typed,
    _without_nul,
    drawn_junk,
    refused_unchanged,
    within,
)

PATIENT = "PT-0001"
SUSPENSION_ML = (0.01, 5000)  # lims.domain.count_use.SUSPENSION_MIN_ML, SUSPENSION_MAX_ML
KINDS = ("primary", "seeded")
KIND = Kind(
    lambda lab, text: text in KINDS,
    lambda lab: st.one_of(
        JUNK, st.sampled_from(["Primary", " primary", "split", "mnc", "seeded ", ""])
    ).map(_without_nul),
    pinned=("Primary", " primary", "split", ""),
)


@dataclass(frozen=True)
class Counted(Bench):
    """The bench of the oracles with a fresh count (CNT-…) to take, and the patient's CSF
    for a lot formulated now."""

    count: str
    csf: str


def _counted(lab: Lab) -> Counted:
    lab.add_user(TECH, "technician")
    lab.login(TECH)
    now = utcnow().replace(microsecond=0)
    collected, received = now - timedelta(days=5), now - timedelta(days=5, hours=-2)
    started, harvested = now - timedelta(days=4), now - timedelta(days=3)
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
    passage = _ok(
        "passage",
        "log",
        culture,
        harvested="2.9e7",
        viability="94",
        seeded="2.6e7",
        vessels="30",
        area_cm2="5250",
        at=_typed(harvested),
    )["passage_id"]
    count = imported(lab.scenario, 1e7, 95, total_per_ml=1.2e7, at=now - timedelta(hours=1))
    csf = _ok(
        "aspirate",
        "receive",
        patient=PATIENT,
        material="csf",
        collected_at=_typed(now - timedelta(hours=3)),
        received_at=_typed(now - timedelta(hours=2)),
        volume_ml="10",
    )
    return Counted(
        settings=lab.settings,
        zone=lab.settings.tz,
        din=aspirate["din"],
        din_check=aspirate["din_check"],
        culture=culture,
        passages=(passage, passage),
        collected_at=collected,
        received_at=received,
        started_at=started,
        harvested_at=(harvested, harvested),
        count=count,
        csf=csf["din"],
    )


@pytest.fixture
def counted(lab: Lab) -> Counted:
    return lab.built("count use", lambda: _counted(lab))


def _taking(lab: Counted, ml: str = "20") -> dict[str, str]:
    return {"count": lab.count, "suspension-ml": ml}


TAKEN = {"count": COUNT_ID, "suspension-ml": within(*SUSPENSION_ML)}
COMMANDS = {
    # 1e7 viable cells/mL × 20 mL: 2e8 harvested, 2.94 doublings in 72 h off 5,250 cm².
    "passage log": Command(
        lambda lab: ("passage", "log", lab.culture),
        lambda lab: {**_taking(lab), "seeded": "2.6e7", "vessels": "30", "area-cm2": "5250"},
        TAKEN,
    ),
    "lot formulate": Command(
        lambda lab: ("lot", "formulate", lab.culture),
        lambda lab: {
            **_taking(lab),
            "vials": "4",
            "cells-per-vial": "5e7",
            "volume-ml": "2",
            "vehicle-din": lab.csf,
            "vehicle-ml": "8",
        },
        TAKEN,
    ),
    "culture start": Command(
        lambda lab: ("culture", "start", lab.din),
        lambda lab: {**_taking(lab), "kind": "primary", "vessels": "5", "area-cm2": "875"},
        {**TAKEN, "kind": KIND},
    ),
    # 1.2e7 total cells/mL × 20 mL: a TNC of 2.4e8.
    "aspirate receive": Command(
        lambda lab: ("aspirate", "receive"),
        lambda lab: {
            **_taking(lab),
            "patient": PATIENT,
            "collected-at": _typed(utcnow() - timedelta(hours=2)),
            "volume-ml": "30",
        },
        TAKEN,
    ),
}


def _names(line: str, field: str) -> bool:
    return line.startswith(f"error: {field}: ") and "must" in line


def _refused_and_unchanged(settings: Settings, args: tuple[str, ...], field: str) -> None:
    refused_unchanged(settings, args, field, _names)


@pytest.mark.parametrize("name", sorted(COMMANDS))
@fuzz(25)
@given(data=st.data())
def test_junk_in_a_count_its_volume_or_kind_is_refused_and_writes_nothing(
    counted: Counted, name: str, data: st.DataObject
) -> None:
    command = COMMANDS[name]
    field, junk = drawn_junk(counted, command, data)
    _refused_and_unchanged(counted.settings, command.args(counted, field, junk), field)


def test_pinned_junk_in_a_count_and_its_volume_is_refused(counted: Counted) -> None:
    """Every option gets its catalogue of junk in one command, so none of it depends on luck."""
    failures = []
    for name, field in [
        ("passage log", "count"),
        ("culture start", "suspension-ml"),
        ("culture start", "kind"),
    ]:
        command = COMMANDS[name]
        kind = command.fields[field]
        for junk in kind.pinned:
            if kind.valid(counted, junk):
                continue
            try:
                _refused_and_unchanged(counted.settings, command.args(counted, field, junk), field)
            except AssertionError as error:
                failures.append(f"{name} --{field}={junk!r}: {error}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_values_around_the_junk_take_the_count(counted: Counted, name: str) -> None:
    command = COMMANDS[name]
    words, base = command.words(counted), command.base(counted)
    for field, kind in command.fields.items():
        assert kind.valid(counted, base[field]), (name, field)
    done = _ok(*words, **{option.replace("-", "_"): value for option, value in base.items()})
    assert done["count_id"] == counted.count
