"""`lims event record` and `lims event list` as the clinic's follow-up uses them (issue 13),
and the follow-up in `lims patient show`.

Exit codes: 0 recorded, 1 a rule (a vial not given to that patient, or not before the
event), 2 bad input (unknown kind, severity or relation; no severity for an adverse event;
a grade on an observation; a time in the future), 3 an unknown patient or vial, 4 the
admin. The lab is tests.support.quality.Quality: rita releases lot L1, tom gives V01 to
PT-0001; PT-0002 is registered too.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given as given_examples
from hypothesis import strategies as st

from lims.scenario import PATIENT_CODE
from lims.timeutil import utcnow
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.junk import JUNK, _run, fuzz, snapshot
from tests.support.lab import Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import give

OTHER = "PT-0002"
EVENT_KEYS = [
    "event_id",
    "patient",
    "vial_id",
    "lot_id",
    "kind",
    "severity",
    "serious",
    "related",
    "description",
    "occurred_at",
    "recorded_at",
    "recorded_by",
    "deviations",
    "expedited_report_may_be_due",
]
EXPEDITED = "an expedited safety report may be due (21 CFR 312.32; EU Regulation 536/2014)"


@pytest.fixture
def given(lab: Lab) -> Quality:
    def build() -> Quality:
        quality = Quality(lab)
        quality.patient(OTHER)
        released_lot(quality)
        give(quality, f"{quality.lot_id}-V01", route="intraspinal", physician="Dr Rossi")
        return quality

    return lab.built("events-given-cli", build)


def _now() -> str:
    return utcnow().isoformat()


def record(*options: str, patient: str = PATIENT_CODE, at: str | None = None) -> Invocation:
    return invoke(
        "event", "record", "--patient", patient, "--at", at or _now(), "--description",
        "fever", *options,
    )  # fmt: skip


ADVERSE = ("--kind", "adverse_event", "--severity", "severe")


def test_event_record_prints_the_event_as_json(given: Quality) -> None:
    vial = f"{given.lot_id}-V01"
    ran = record(*ADVERSE, "--vial", vial, "--related", "unlikely", "--json")
    assert ran.exit_code == 0, ran.stderr
    event = json.loads(ran.stdout)
    assert list(event) == EVENT_KEYS
    assert {key: event[key] for key in EVENT_KEYS if not key.endswith("_at")} == {
        "event_id": event["event_id"],
        "patient": PATIENT_CODE,
        "vial_id": vial,
        "lot_id": given.lot_id,
        "kind": "adverse_event",
        "severity": "severe",
        "serious": False,
        "related": "unlikely",
        "description": "fever",
        "recorded_by": "tom",
        "deviations": [],
        "expedited_report_may_be_due": False,
    }
    assert ok("event", "list", "--patient", PATIENT_CODE) == [event]
    assert ok("event", "list", "--lot", given.lot_id) == [event]
    assert ok("event", "list") == [event]
    assert ok("patient", "show", PATIENT_CODE)["events"] == [event]
    assert ok("patient", "show", OTHER)["events"] == []


def test_a_suspected_serious_reaction_says_a_report_may_be_due_and_opens_a_deviation(
    given: Quality,
) -> None:
    vial = f"{given.lot_id}-V01"
    ran = record(*ADVERSE, "--vial", vial, "--serious", "--related", "possible")
    assert ran.exit_code == 0, ran.stderr
    text = " ".join(ran.stdout.split())
    assert "SERIOUS ADVERSE EVENT, relation to the product possible" in text
    assert EXPEDITED in text
    [deviation] = [d for d in ok("deviation", "list") if d["kind"] == "adverse_event"]
    assert f"critical deviation {deviation['deviation_id']} opened" in text
    assert (deviation["severity"], deviation["subject"]) == ("critical", given.lot_id)
    [event] = ok("event", "list")
    assert event["deviations"] == [deviation["deviation_id"]]
    assert event["expedited_report_may_be_due"] is True
    assert deviation["event_id"] == event["event_id"]
    lot = ok("lot", "show", given.lot_id)
    assert lot["on_hold"] is True
    shown = invoke("patient", "show", PATIENT_CODE)
    assert shown.exit_code == 0, shown.stderr
    assert "Follow-up" in shown.stdout
    assert "SERIOUS" in shown.stdout


def test_a_plain_event_says_nothing_of_a_report(given: Quality) -> None:
    ran = record("--kind", "observation")
    assert ran.exit_code == 0, ran.stderr
    assert "expedited" not in ran.stdout
    assert "Event 1 recorded" in ran.stdout


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (("--kind", "adverse_event"), "severity"),
        (("--kind", "adverse-event", "--severity", "mild"), "kind"),
        (("--kind", "adverse_event", "--severity", "grade3"), "severity"),
        ((*ADVERSE, "--related", "maybe"), "related"),
        (("--kind", "observation", "--serious"), "serious"),
        (("--kind", "observation", "--severity", "mild"), "severity"),
        (("--kind", "observation", "--related", "possible"), "related"),
        ((*ADVERSE, "--description", "a\x1b[2Jb"), "description"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    given: Quality, options: tuple[str, ...], field: str
) -> None:
    before = snapshot(given.settings)
    refused(record(*options), 2, f"error: {field}: must")
    assert snapshot(given.settings) == before


def test_a_time_in_the_future_exits_2(given: Quality) -> None:
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    refused(record(*ADVERSE, at=tomorrow), 2, "at: must not be in the future")


def test_a_vial_not_given_to_that_patient_before_the_event_exits_1(given: Quality) -> None:
    before = snapshot(given.settings)
    first, second = f"{given.lot_id}-V01", f"{given.lot_id}-V02"
    refused(record(*ADVERSE, "--vial", first, patient=OTHER), 1, f"vial {first} is patient")
    refused(record(*ADVERSE, "--vial", second), 1, f"vial {second} is released")
    earlier = (utcnow() - timedelta(hours=1)).isoformat()
    refused(record(*ADVERSE, "--vial", first, at=earlier), 1, f"is before vial {first} was")
    assert snapshot(given.settings) == before


def test_an_unknown_patient_or_vial_exits_3_and_the_admin_4(given: Quality) -> None:
    refused(record(*ADVERSE, patient="PT-9999"), 3, "PT-9999")
    refused(record(*ADVERSE, "--vial", f"{given.lot_id}-V09"), 3, f"{given.lot_id}-V09")
    refused(invoke("event", "list", "--lot", "A999926999999-L1"), 3, "A999926999999-L1")
    given.lab.login("admin")
    refused(record(*ADVERSE), 4)
    assert ok("event", "list") == []


def test_the_table_of_events_lists_each_one(given: Quality) -> None:
    record(*ADVERSE, "--vial", f"{given.lot_id}-V01")
    record("--kind", "observation")
    listed = invoke("event", "list", "--patient", PATIENT_CODE)
    assert listed.exit_code == 0, listed.stderr
    assert "Follow-up events" in listed.stdout
    assert "adverse_event" in listed.stdout
    assert "observation" in listed.stdout
    assert f"{given.lot_id}-V01" in listed.stdout


CHOICES = {
    "kind": ("adverse_event", "observation"),
    "severity": ("mild", "moderate", "severe", "life_threatening", "fatal"),
    "related": ("unrelated", "unlikely", "possible", "probable", "definite"),
}


@fuzz(20)
@given_examples(
    option=st.sampled_from(sorted(CHOICES)),
    typed=st.one_of(
        JUNK,
        st.sampled_from(CHOICES["severity"] + CHOICES["related"]).map(str.upper),
        st.sampled_from(CHOICES["kind"]).map(lambda value: f" {value}"),
    ),
)
def test_any_other_kind_severity_or_relation_exits_2_writing_nothing(
    given: Quality, option: str, typed: str
) -> None:
    if typed in CHOICES[option]:
        return
    values: dict[str, Any] = {"kind": "adverse_event", "severity": "mild", option: typed}
    before = snapshot(given.settings)
    ran = _run(
        "event", "record", f"--patient={PATIENT_CODE}", f"--at={_now()}", "--description=fever",
        *(f"--{name}={value}" for name, value in values.items()),
    )  # fmt: skip
    assert ran.exit_code == 2, (ran.stdout, ran.stderr)
    assert ran.stderr.startswith(f"error: {option}: must be one of {', '.join(CHOICES[option])}")
    assert snapshot(given.settings) == before
