"""Culture split, unusual counts and late entries from the shell: wiring, keys, exit codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lims.timeutil import utcnow
from tests.support.cli import invoke, ok, refused
from tests.support.lab import Lab

COLLECTED = (utcnow() - timedelta(days=30)).replace(microsecond=0)


def at(days: float) -> str:
    return (COLLECTED + timedelta(days=days)).isoformat()


def passage(culture: str, harvested: str, seeded: str) -> list[str]:
    """`lims passage log` of one harvest on day 14, reseeded on five T175 flasks."""
    return [
        "passage",
        "log",
        culture,
        "--harvested",
        harvested,
        "--viability",
        "95",
        "--seeded",
        seeded,
        "--vessels",
        "5",
        "--area-cm2",
        "875",
        "--at",
        at(14),
    ]


@pytest.fixture
def station(lab: Lab) -> Lab:
    lab.add_user("tom", "technician")
    lab.login("tom")
    return lab


@pytest.fixture
def din(station: Lab) -> str:
    ok(
        "patient",
        "add",
        "PT-0001",
        "--initials",
        "MR",
        "--birth-year",
        "1958",
        "--consent-date",
        "2020-01-15",
    )
    received = ok(
        "aspirate",
        "receive",
        "--patient",
        "PT-0001",
        "--collected-at",
        at(0),
        "--received-at",
        at(0.1),
        "--volume-ml",
        "30",
    )
    return str(received["din"])


@pytest.fixture
def culture(din: str) -> str:
    started = ok(
        "culture",
        "start",
        din,
        "--mnc",
        "2.4e8",
        "--vessels",
        "5",
        "--area-cm2",
        "875",
        "--at",
        at(0.2),
    )
    return str(started["culture_id"])


SPLIT = ("--seeded", "1e6", "--vessels", "1", "--area-cm2", "175", "--at", at(14.1))


def test_culture_split_and_the_refused_restart(din: str, culture: str) -> None:
    restart = invoke(
        "culture",
        "start",
        din,
        "--seeded",
        "1e7",
        "--vessels",
        "1",
        "--area-cm2",
        "175",
        "--at",
        at(14.1),
    )
    refused(restart, 1, "lims culture split")
    refused(invoke("culture", "split", culture, *SPLIT), 1, "no passage yet")
    ok(*passage(culture, "4e6", "3e6"))
    refused(invoke("culture", "split", culture, "--seeded", "2e6", *SPLIT[2:]), 2, "seeded")
    child = ok("culture", "split", culture, *SPLIT)
    assert child["culture_id"] == culture.replace("-C1", "-C2")
    assert (child["kind"], child["parent"], child["passage_count"]) == ("split", culture, 1)
    assert child["lineage"][0]["culture_id"] == culture
    assert "split from" in invoke("culture", "show", child["culture_id"]).stdout


def test_passage_log_refuses_counts_beyond_msc_unless_confirmed(culture: str) -> None:
    """3.1e8 cells off 875 cm² is above 100,000 cells/cm²."""
    typo = passage(culture, "3.1e8", "4e6")
    refused(invoke(*typo), 2, "harvested", "--confirm-unusual")
    refused(invoke(*typo, "--confirm-unusual"), 2, "reason")
    logged = ok(*typo, "--confirm-unusual", "--reason", "recounted")
    assert [flag["kind"] for flag in logged["flags"]] == ["unusual_count"]


def test_a_late_step_needs_late_reason_and_is_marked(station: Lab, culture: str) -> None:
    station.set_site(records={"late_entry_hours": 24})
    refused(invoke(*passage(culture, "4e6", "4e6")), 2, "late-reason")
    logged = ok(*passage(culture, "4e6", "4e6"), "--late-reason", "typed from the sheet")
    assert (logged["late_entry"], logged["late_reason"]) == (True, "typed from the sheet")
    assert "entered_at" in logged
    assert "late entry" in invoke("culture", "show", culture).stdout


def test_lists_and_the_patient_page_mark_late_entries(station: Lab, din: str) -> None:
    station.set_site(records={"late_entry_hours": 24})
    ok(
        *("culture", "start", din, "--mnc", "2.4e8", "--vessels", "5", "--area-cm2", "875"),
        *("--at", at(0.2), "--late-reason", "typed from the sheet"),
    )
    for command in (("culture", "list"), ("patient", "show", "PT-0001")):
        shown = invoke(*command)
        assert shown.exit_code == 0, shown.stderr
        assert "late entry" in shown.stdout, command
