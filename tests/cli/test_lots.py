"""QA's side from the shell: lots, QC against the spec, deviations, release, batch record.

One test per rule of issue 4, each through the CLI and each written so that it
fails when its rule is removed: wherever a command is refused, the same
command succeeds once the one thing the rule is about is put right.

The lab: tom (technician) does the bench work and records QC; quinn and rita
(QA) sign. A culture is started ten days ago, passaged twice, and formulated
two days ago with a shelf life long enough that the lot has not expired.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.staging import StagedFiles
from lims.timeutil import utcnow
from tests.support.cli import Invocation, csf_vehicle, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING

COLLECTED = (utcnow() - timedelta(days=10)).replace(microsecond=0)
PATIENT = "PT-0001"
OTHER_PATIENT = "PT-0002"  # added first, so the recipient is not just "the first patient"
SHELF_LIFE = "2000"  # hours: a lot formulated two days ago is still in date
SIGNED_RELEASE = "approved for release"


def at(days: float) -> str:
    return (COLLECTED + timedelta(days=days)).isoformat()


def signed(lab: Lab, user: str, *args: str, password: str = PASSWORD) -> Invocation:
    """`lims ARGS --password-stdin` as USER, the password typed again on stdin."""
    lab.login(user)
    return invoke(*args, "--password-stdin", input=password + "\n")


def release(lab: Lab, user: str, lot: str, password: str = PASSWORD) -> Invocation:
    return signed(lab, user, "lot", "release", lot, password=password)


def record_passing(lab: Lab, lot: str, *, user: str = "tom", skip: tuple[str, ...] = ()) -> None:
    lab.login(user)
    for test, value in PASSING.items():
        if test not in skip:
            ok("qc", "record", lot, test, value)


def audit_actions(lab: Lab, entity: str) -> list[str]:
    lab.login("tom")
    return [entry["action"] for entry in ok("audit", "log", "--entity", entity)]


def lot_status(lab: Lab, lot: str) -> str:
    lab.login("tom")
    return str(ok("lot", "show", lot)["status"])


def criterion(lab: Lab, lot: str, test: str) -> dict[str, Any]:
    lab.login("tom")
    [found] = [c for c in ok("qc", "show", lot)["criteria"] if c["test"] == test]
    return dict(found)


def passage(culture: str, harvested: str, seeded: str, area: str, when: float) -> Any:
    return ok(
        "passage",
        "log",
        culture,
        "--harvested",
        harvested,
        "--viability",
        "94",
        "--seeded",
        seeded,
        "--vessels",
        "10",
        "--area-cm2",
        area,
        "--at",
        at(when),
    )


def grow(din: str, *, growing: bool = True) -> str:
    """A culture on this aspirate with two passages; without growth at the second if asked."""
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
    culture = str(started["culture_id"])
    passage(culture, "2.9e7", "2.6e7", "5250", 4)
    if growing:
        passage(culture, "1.2e8", "1e8", "20000", 7)
    else:  # fewer cells harvested than were seeded at P1: population doublings below 0
        passage(culture, "2e7", "1e7", "2000", 7)
    return culture


def formulate(culture: str, *extra: str, when: float = 8, shelf_life: str = SHELF_LIFE) -> Any:
    return ok(*formulate_args(culture, *extra, when=when, shelf_life=shelf_life))


def formulate_args(
    culture: str,
    *extra: str,
    harvested: str = "4e8",
    when: float = 8,
    shelf_life: str = SHELF_LIFE,
) -> tuple[str, ...]:
    """The formulation's arguments, suspended in the patient's CSF received for it."""
    return (
        *formulation_of(culture, harvested=harvested, when=when, shelf_life=shelf_life),
        *csf_vehicle(PATIENT, COLLECTED + timedelta(days=when)),
        *extra,
    )


def formulation_of(
    culture: str, *, harvested: str = "4e8", when: float = 8, shelf_life: str = SHELF_LIFE
) -> tuple[str, ...]:
    """A formulation's arguments less its vehicle."""
    return (
        "lot",
        "formulate",
        culture,
        "--harvested",
        harvested,
        "--viability",
        "93",
        "--vials",
        "4",
        "--cells-per-vial",
        "5e7",
        "--volume-ml",
        "2",
        "--shelf-life-hours",
        shelf_life,
        "--at",
        at(when),
    )


@pytest.fixture
def station(lab: Lab) -> Lab:
    lab.add_user("tom", "technician")
    lab.add_user("quinn", "qa")
    lab.add_user("rita", "qa")
    lab.login("tom")
    return lab


@pytest.fixture
def din(station: Lab) -> str:
    ok(
        "patient",
        "add",
        OTHER_PATIENT,
        "--initials",
        "ZZ",
        "--birth-year",
        "1970",
        "--consent-date",
        "2020-01-15",
    )
    ok(
        "patient",
        "add",
        PATIENT,
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
        PATIENT,
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
    return grow(din)


@pytest.fixture
def lot(culture: str) -> str:
    return str(formulate(culture)["lot_id"])


@pytest.fixture
def passing_lot(station: Lab, lot: str) -> str:
    """A lot with every required result passing, recorded by tom."""
    record_passing(station, lot)
    return lot


# --- formulation ---------------------------------------------------------------------------


def test_formulate_gives_the_lot_its_vials_and_the_aspirates_patient(
    station: Lab, culture: str
) -> None:
    formulated = formulate(culture)
    lot = formulated["lot_id"]
    assert lot.endswith("-L1")
    assert formulated["vials"] == [f"{lot}-V01", f"{lot}-V02", f"{lot}-V03", f"{lot}-V04"]
    assert formulated["status"] == "quarantine"
    assert formulated["patient"] == PATIENT
    shown = ok("lot", "show", lot)
    assert (shown["status"], shown["patient"], shown["culture_id"]) == (
        "quarantine",
        PATIENT,
        culture,
    )
    assert shown["vials"] == formulated["vials"]
    assert {vial["status"] for vial in shown["vial_states"]} == {"quarantine"}


def test_formulate_refuses_more_cells_in_vials_than_were_harvested(
    station: Lab, culture: str
) -> None:
    # 4 vials × 5e7 cells is 2e8.
    refused(invoke(*formulate_args(culture, harvested="1.99e8")), 2, "cells-per-vial")
    assert ok("lot", "list") == []
    assert ok(*formulate_args(culture, harvested="2e8"))["status"] == "quarantine"


def test_formulate_refuses_a_culture_already_formulated(station: Lab, culture: str) -> None:
    lot = formulate(culture)["lot_id"]
    refused(invoke(*formulate_args(culture, when=9)), 1, culture, "already formulated", lot)
    assert [summary["lot_id"] for summary in ok("lot", "list")] == [lot]


def test_formulate_refuses_a_time_not_after_the_last_passage(station: Lab, culture: str) -> None:
    refused(invoke(*formulate_args(culture, when=6.5)), 2, "at", "after")
    refused(invoke(*formulate_args(culture, when=7)), 2, "at", "after")
    assert ok("lot", "list") == []
    formulate(culture, when=7.01)


def test_formulate_refuses_a_culture_with_an_open_no_growth_deviation(
    station: Lab, din: str
) -> None:
    culture = grow(din, growing=False)
    [deviation] = ok("deviation", "list", "--open")
    assert (deviation["kind"], deviation["subject"]) == ("no_growth", culture)
    refused(invoke(*formulate_args(culture)), 1, culture, "block formulation")
    assert ok("lot", "list") == []
    closed = signed(
        station,
        "quinn",
        "deviation",
        "close",
        str(deviation["deviation_id"]),
        "--resolution",
        "slow donor; reviewed, no impact",
    )
    assert closed.exit_code == 0, closed.stderr
    station.login("tom")
    assert formulate(culture)["status"] == "quarantine"


def test_formulate_names_the_patients_csf_and_refuses_what_is_not_theirs(
    station: Lab, culture: str
) -> None:
    when = COLLECTED + timedelta(days=8)
    own = csf_vehicle(PATIENT, when)
    strangers = csf_vehicle(OTHER_PATIENT, when)
    base = formulation_of(culture)
    refused(invoke(*base), 2, "vehicle-din: required")
    refused(invoke(*base, "--vehicle", "saline"), 2, "vehicle-din", "allow_non_autologous")
    refused(invoke(*base, *own[:2]), 2, "vehicle-ml: required with --vehicle-din")
    refused(invoke(*base, *own, "--vehicle", "saline"), 2, "vehicle: not with --vehicle-din")
    refused(invoke(*base, "--vehicle-din", "A9999-26", "--vehicle-ml", "8"), 2, "vehicle-din")
    refused(invoke(*base, "--vehicle-din", "A999926999999", "--vehicle-ml", "8"), 3, "DIN")
    refused(invoke(*base, *strangers), 1, f"{OTHER_PATIENT}'s, not {PATIENT}'s")
    refused(invoke(*base, *own[:3], "10.5"), 1, "has 10 mL left")
    assert ok("lot", "list") == []
    formulated = ok(*base, *own)
    lot = formulated["lot_id"]
    assert (formulated["vehicle"], formulated["vehicle_din"], formulated["vehicle_ml"]) == (
        "autologous CSF",
        own[1],
        8,
    )
    assert ok("lot", "show", lot)["vehicle_din"] == own[1]
    donation = ok("aspirate", "show", own[1])
    assert (donation["volume_left_ml"], donation["drawn_by"]) == (
        2,
        [{"lot_id": lot, "vehicle_ml": 8}],
    )
    text = " ".join(invoke("lot", "show", lot).stdout.split())
    assert f"8 mL of CSF DIN {donation['din_display']}" in text
    moved = csf_vehicle(PATIENT, when)
    corrected = ok("lot", "correct", lot, *moved[:2], "--reason", "second tube was used")
    assert (corrected["vehicle_din"], corrected["vehicle_ml"]) == (moved[1], 8)
    assert ok("aspirate", "show", own[1])["volume_left_ml"] == 10


# --- QC results ----------------------------------------------------------------------------


def test_qc_record_refuses_an_unknown_test(station: Lab, lot: str) -> None:
    refused(invoke("qc", "record", lot, "cd200", "99"), 2, "test", "cd105")
    assert criterion(station, lot, "cd105")["verdict"] == "missing"


def test_qc_record_refuses_a_percentage_outside_0_to_100(station: Lab, lot: str) -> None:
    refused(invoke("qc", "record", lot, "viability", "100.5"), 2, "value")
    refused(invoke("qc", "record", lot, "cd45", "--", "-1"), 2, "value")
    assert criterion(station, lot, "viability")["results"] == []
    assert criterion(station, lot, "cd45")["results"] == []
    ok("qc", "record", lot, "viability", "100")
    ok("qc", "record", lot, "cd45", "0")


def test_qc_record_refuses_a_value_outside_the_vocabulary(station: Lab, lot: str) -> None:
    refused(invoke("qc", "record", lot, "sterility", "maybe"), 2, "value", "negative")
    refused(invoke("qc", "record", lot, "karyotype", "46,XY"), 2, "value", "normal")
    assert criterion(station, lot, "sterility")["verdict"] == "missing"
    assert ok("qc", "record", lot, "sterility", "negative")["verdict"] == "pass"


def test_qc_record_refuses_a_derived_test(station: Lab, lot: str) -> None:
    refused(invoke("qc", "record", lot, "cell_dose", "5e7"), 2, "test", "cell_dose")
    refused(invoke("qc", "record", lot, "final_passage", "2"), 2, "test")
    assert "qc.record" not in audit_actions(station, f"lot:{lot}")


def test_a_retest_needs_a_reason_and_both_results_are_kept(station: Lab, lot: str) -> None:
    ok("qc", "record", lot, "viability", "75")
    assert criterion(station, lot, "viability")["verdict"] == "pass"
    refused(invoke("qc", "record", lot, "viability", "85"), 2, "reason", "retest")
    assert len(criterion(station, lot, "viability")["results"]) == 1
    ok("qc", "record", lot, "viability", "85", "--reason", "first count on a clumped sample")
    viability = criterion(station, lot, "viability")
    assert (viability["result"], viability["verdict"]) == ("85", "pass")
    assert [(r["value"], r["status"]) for r in viability["results"]] == [
        ("75", "superseded"),
        ("85", "valid"),
    ]
    assert viability["results"][1]["reason"] == "first count on a clumped sample"
    actions = audit_actions(station, f"lot:{lot}")
    assert actions.count("qc.record") == 1
    assert actions.count("qc.retest") == 1


def test_qc_show_gives_each_criterion_and_names_what_is_missing(station: Lab, lot: str) -> None:
    ok("qc", "record", lot, "viability", "92")
    ok("qc", "record", lot, "cd105", "90")
    shown = ok("qc", "show", lot)
    assert set(shown) >= {"criteria", "releasable", "blocking"}
    assert shown["releasable"] is False
    by_test = {c["test"]: c for c in shown["criteria"]}
    for entry in shown["criteria"]:
        assert set(entry) >= {"test", "spec", "result", "verdict"}
        assert entry["verdict"] in ("pass", "fail", "missing")
    assert set(by_test) >= {*PASSING, "karyotype", "cell_dose", "final_passage"}
    assert (by_test["viability"]["verdict"], by_test["viability"]["result"]) == ("pass", "92")
    assert by_test["viability"]["spec"] == "≥ 70 %"
    assert by_test["cd105"]["verdict"] == "fail"
    assert by_test["sterility"]["verdict"] == "missing"
    assert by_test["cell_dose"]["verdict"] == "pass"  # read off the lot: 5e7 cells per vial
    assert by_test["final_passage"]["verdict"] == "pass"
    blocking = " | ".join(shown["blocking"])
    for test in PASSING:
        if test == "viability":
            continue
        assert test in blocking, (test, shown["blocking"])
    assert "viability" not in blocking
    assert "karyotype" not in blocking  # not required by default
    # Every test but viability, and the OOS deviation the CD105 result opened.
    assert len(shown["blocking"]) == len(PASSING)
    assert shown["blocking"][-1].startswith("deviation 1 open: cd105 out of specification: 90 %")


def test_qc_show_is_releasable_once_every_required_result_passes(station: Lab, lot: str) -> None:
    record_passing(station, lot, skip=("hla_dr",))
    shown = ok("qc", "show", lot)
    assert shown["releasable"] is False
    assert len(shown["blocking"]) == 1
    assert "hla_dr" in shown["blocking"][0]
    ok("qc", "record", lot, "hla_dr", "1.5")
    shown = ok("qc", "show", lot)
    assert (shown["releasable"], shown["blocking"]) == (True, [])


# --- release -------------------------------------------------------------------------------


def test_a_technician_cannot_release(station: Lab, passing_lot: str) -> None:
    refused(release(station, "tom", passing_lot), 4)
    assert lot_status(station, passing_lot) == "quarantine"


def test_a_wrong_password_refuses_the_signature_and_is_audited(
    station: Lab, passing_lot: str
) -> None:
    refused(release(station, "rita", passing_lot, password="wrong horse battery"), 4, "password")
    assert lot_status(station, passing_lot) == "quarantine"
    assert "signature.failed" in audit_actions(station, "user:rita")
    assert release(station, "rita", passing_lot).exit_code == 0


def test_a_qa_reviewer_who_recorded_a_qc_result_cannot_release(station: Lab, lot: str) -> None:
    record_passing(station, lot, skip=("cd90",))
    station.login("quinn")
    ok("qc", "record", lot, "cd90", PASSING["cd90"])
    refused(release(station, "quinn", lot), 1, "quinn", "cd90")
    assert lot_status(station, lot) == "quarantine"
    assert release(station, "rita", lot).exit_code == 0


def test_a_qa_reviewer_who_corrected_the_formulation_cannot_release(
    station: Lab, passing_lot: str
) -> None:
    station.login("quinn")
    ok("lot", "correct", passing_lot, "--viability", "92.5", "--reason", "count sheet misread")
    refused(release(station, "quinn", passing_lot), 1, "quinn", "corrected")
    assert lot_status(station, passing_lot) == "quarantine"
    assert release(station, "rita", passing_lot).exit_code == 0


def test_release_is_refused_with_every_blocking_reason_named(station: Lab, lot: str) -> None:
    record_passing(station, lot, skip=("sterility", "mycoplasma"))
    ok("qc", "record", lot, "endotoxin", "9", "--reason", "repeat on a fresh sample")
    blocking = ok("qc", "show", lot)["blocking"]
    assert len(blocking) == 4  # and the OOS deviation endotoxin opened
    line = refused(release(station, "rita", lot), 1, "sterility", "mycoplasma", "endotoxin")
    for reason in blocking:
        assert reason in line
    assert lot_status(station, lot) == "quarantine"


def test_an_independent_qa_reviewer_releases_a_passing_lot(station: Lab, passing_lot: str) -> None:
    released = release(station, "rita", passing_lot)
    assert released.exit_code == 0, released.stderr
    station.login("tom")
    shown = ok("lot", "show", passing_lot)
    assert shown["status"] == "released"
    [signature] = shown["signatures"]
    assert signature["username"] == "rita"
    assert signature["full_name"] == "Rita Tester"
    manifestation = signature["manifestation"]
    assert "Rita Tester" in manifestation
    assert "(rita)" in manifestation
    assert SIGNED_RELEASE in manifestation
    assert signature["linked"] is True
    assert signature["record_unchanged"] is True
    assert {vial["status"] for vial in shown["vial_states"]} == {"released"}
    assert "lot.release" in audit_actions(station, f"lot:{passing_lot}")
    table = invoke("lot", "show", passing_lot)
    assert "Signed by Rita Tester (rita)" in table.stdout


def test_a_released_lot_is_locked(station: Lab, culture: str, passing_lot: str) -> None:
    station.login("tom")
    passages = ok("culture", "show", culture)["passages"]
    first = passages[0]["passage_id"]
    # Before release, the record is still open to QC results and corrections.
    ok("qc", "record", passing_lot, "karyotype", "normal")
    ok("passage", "correct", first, "--confluence", "80", "--reason", "sheet misread")
    ok("lot", "correct", passing_lot, "--volume-ml", "2.1", "--reason", "fill log misread")
    assert release(station, "rita", passing_lot).exit_code == 0
    station.login("tom")
    # A late QC result is still recorded (a failing one would hold the lot).
    ok("qc", "record", passing_lot, "karyotype", "normal", "--reason", "repeat")
    refused(
        invoke("passage", "correct", first, "--confluence", "85", "--reason", "sheet misread"),
        1,
        "locked",
    )
    refused(
        invoke("lot", "correct", passing_lot, "--volume-ml", "2.2", "--reason", "fill log"),
        1,
        "locked",
    )
    refused(release(station, "quinn", passing_lot), 1, "released")
    shown = ok("lot", "show", passing_lot)
    assert len(shown["signatures"]) == 1
    assert shown["signatures"][0]["record_unchanged"] is True  # a late result is not signed
    assert shown["volume_ml"] == 2.1
    assert len(criterion(station, passing_lot, "karyotype")["results"]) == 2


# --- rejection -----------------------------------------------------------------------------


def test_reject_needs_a_reason(station: Lab, lot: str) -> None:
    refused(signed(station, "rita", "lot", "reject", lot), 2, "--reason")
    assert lot_status(station, lot) == "quarantine"


def test_reject_is_for_qa_only(station: Lab, lot: str) -> None:
    refused(signed(station, "tom", "lot", "reject", lot, "--reason", "sterility positive"), 4)
    assert lot_status(station, lot) == "quarantine"


def test_reject_with_a_wrong_password_is_refused(station: Lab, lot: str) -> None:
    wrong = signed(
        station, "rita", "lot", "reject", lot, "--reason", "mix-up", password="not my password"
    )
    refused(wrong, 4, "password")
    assert lot_status(station, lot) == "quarantine"
    assert "signature.failed" in audit_actions(station, "user:rita")


def test_qa_rejects_a_lot(station: Lab, lot: str) -> None:
    station.login("tom")
    ok("qc", "record", lot, "sterility", "positive")
    rejected = signed(station, "rita", "lot", "reject", lot, "--reason", "sterility positive")
    assert rejected.exit_code == 0, rejected.stderr
    station.login("tom")
    shown = ok("lot", "show", lot)
    assert shown["status"] == "rejected"
    [signature] = shown["signatures"]
    assert signature["username"] == "rita"
    assert "sterility positive" in signature["manifestation"]
    assert "lot.reject" in audit_actions(station, f"lot:{lot}")
    refused(release(station, "quinn", lot), 1, "rejected")
    station.login("tom")
    refused(invoke("qc", "record", lot, "cd73", "99"), 1, "rejected")


# --- deviations ----------------------------------------------------------------------------


def open_deviation(lab: Lab, lot: str, *extra: str, user: str = "tom") -> int:
    lab.login(user)
    opened = ok("deviation", "open", "--lot", lot, *extra)
    assert opened["status"] == "open"
    return int(opened["deviation_id"])


def close(lab: Lab, deviation: int, *extra: str, user: str = "quinn") -> Invocation:
    return signed(
        lab, user, "deviation", "close", str(deviation), "--resolution", "reviewed", *extra
    )


def test_an_open_deviation_is_listed_and_blocks_release_until_qa_closes_it(
    station: Lab, passing_lot: str
) -> None:
    number = open_deviation(
        station,
        passing_lot,
        "--criterion",
        "cd105",
        "--description",
        "CD105 antibody lot near expiry",
    )
    [listed] = ok("deviation", "list", "--open")
    assert listed["deviation_id"] == number
    assert (listed["subject"], listed["criterion"]) == (passing_lot, "cd105")
    assert listed["description"] == "CD105 antibody lot near expiry"
    refused(release(station, "rita", passing_lot), 1, f"deviation {number}", "antibody")
    assert lot_status(station, passing_lot) == "quarantine"

    refused(close(station, number, user="tom"), 4)
    station.login("tom")
    assert [d["deviation_id"] for d in ok("deviation", "list", "--open")] == [number]

    closed = close(station, number)
    assert closed.exit_code == 0, closed.stderr
    station.login("tom")
    assert ok("deviation", "list", "--open") == []
    [everything] = ok("deviation", "list")
    assert (everything["status"], everything["closed_by"]) == ("closed", "quinn")
    assert release(station, "rita", passing_lot).exit_code == 0


def test_a_deviation_is_opened_with_a_severity_shown_in_the_list(
    station: Lab, passing_lot: str
) -> None:
    station.login("tom")
    opened = ok(
        "deviation",
        "open",
        "--lot",
        passing_lot,
        "--description",
        "door ajar",
        "--severity",
        "minor",
    )
    assert opened["severity"] == "minor"
    listed = invoke("deviation", "list")
    assert listed.exit_code == 0
    assert "manual (minor)" in listed.stdout
    refused(
        invoke(
            "deviation", "open", "--lot", passing_lot, "--description", "x", "--severity", "low"
        ),
        2,
        "severity: must be one of minor, major, critical",
    )


def test_a_deviation_on_the_culture_blocks_release(
    station: Lab, culture: str, passing_lot: str
) -> None:
    station.login("tom")
    opened = ok("deviation", "open", "--culture", culture, "--description", "incubator alarm")
    refused(release(station, "rita", passing_lot), 1, f"deviation {opened['deviation_id']}")
    assert close(station, int(opened["deviation_id"])).exit_code == 0
    assert release(station, "rita", passing_lot).exit_code == 0


def test_a_confirmed_failure_waived_at_the_physicians_request_releases_showing_it(
    station: Lab, lot: str
) -> None:
    record_passing(station, lot, skip=("cd105",))
    ok("qc", "record", lot, "cd105", "90")
    number = criterion(station, lot, "cd105")["results"][0]["deviation_id"]
    refused(release(station, "rita", lot), 1, "cd105", f"deviation {number}")
    closed = close(
        station, number, "--confirm", "--waive", "--physician-request", "Dr Rossi, 2026-12-01"
    )
    assert closed.exit_code == 0, closed.stderr
    cd105 = criterion(station, lot, "cd105")
    assert (cd105["verdict"], cd105["waived_by_deviation"]) == ("fail", number)
    assert ok("qc", "show", lot)["releasable"] is True
    refused(release(station, "quinn", lot), 1, "quinn waived a failure", "another QA")
    assert release(station, "rita", lot).exit_code == 0
    cd105 = criterion(station, lot, "cd105")
    assert (cd105["verdict"], cd105["waived_by_deviation"]) == ("fail", number)
    assert lot_status(station, lot) == "released"


@pytest.mark.parametrize(("test", "value"), [("sterility", "positive"), ("endotoxin", "10")])
def test_a_safety_failure_can_never_be_waived(
    station: Lab, lot: str, test: str, value: str
) -> None:
    record_passing(station, lot, skip=(test,))
    ok("qc", "record", lot, test, value)
    [opened] = ok("deviation", "list", "--open")
    number = opened["deviation_id"]
    waive = ("--confirm", "--waive", "--physician-request", "Dr Rossi")
    refused(close(station, number, *waive), 1, test, "never be waived")
    station.login("tom")
    [still_open] = ok("deviation", "list", "--open")
    assert (still_open["deviation_id"], still_open["waived"]) == (number, False)
    refused(release(station, "rita", lot), 1, f"{test} failed")
    # Confirmed without a waiver, the failure itself still blocks.
    assert close(station, number, "--confirm").exit_code == 0
    assert criterion(station, lot, test)["waived_by_deviation"] is None
    refused(release(station, "rita", lot), 1, f"{test} failed")
    assert lot_status(station, lot) == "quarantine"


def test_a_manual_deviation_waives_nothing(station: Lab, lot: str) -> None:
    record_passing(station, lot)
    number = open_deviation(station, lot, "--criterion", "cd73", "--description", "no CD73 kit")
    refused(close(station, number, "--waive"), 2, "waive", "--confirm")
    waive = ("--confirm", "--waive", "--physician-request", "Dr Rossi")
    refused(close(station, number, *waive), 1, "not an out-of-specification result")
    assert close(station, number).exit_code == 0  # closed, but nothing waived
    assert criterion(station, lot, "cd73")["waived_by_deviation"] is None


# --- lists, expiry, batch record -----------------------------------------------------------


def test_lot_list_filters_by_status(station: Lab, din: str) -> None:
    first = formulate(grow(din))["lot_id"]
    second = formulate(grow(din))["lot_id"]
    record_passing(station, first)
    assert release(station, "rita", first).exit_code == 0
    station.login("tom")
    assert [s["lot_id"] for s in ok("lot", "list")] == [first, second]
    assert [s["lot_id"] for s in ok("lot", "list", "--status", "quarantine")] == [second]
    assert [s["lot_id"] for s in ok("lot", "list", "--status", "released")] == [first]
    assert ok("lot", "list", "--status", "rejected") == []
    for summary in ok("lot", "list"):
        assert summary["status"] == ("released" if summary["lot_id"] == first else "quarantine")
    refused(invoke("lot", "list", "--status", "bogus"), 2, "status")


def test_an_expired_lot_shows_expired_and_cannot_be_released(station: Lab, culture: str) -> None:
    # Formulated a day ago with a shelf life of one hour.
    lot = formulate(culture, when=9, shelf_life="1")["lot_id"]
    assert ok("lot", "show", lot)["status"] == "expired"
    assert [s["status"] for s in ok("lot", "list")] == ["expired"]
    assert [s["lot_id"] for s in ok("lot", "list", "--status", "expired")] == [lot]
    assert ok("lot", "list", "--status", "quarantine") == []
    record_passing(station, lot)
    shown = ok("qc", "show", lot)
    assert shown["releasable"] is False
    assert all(c["verdict"] == "pass" for c in shown["criteria"] if c["required"])
    refused(release(station, "rita", lot), 1, "expired")
    assert lot_status(station, lot) == "expired"


def test_a_lot_in_date_is_not_expired(station: Lab, culture: str) -> None:
    """The counterpart of the expiry test: the same lot with a longer shelf life releases."""
    lot = formulate(culture, when=9, shelf_life="48")["lot_id"]
    assert ok("lot", "show", lot)["status"] == "quarantine"
    record_passing(station, lot)
    assert release(station, "rita", lot).exit_code == 0


def test_the_batch_record_is_a_pdf_with_the_lot_and_its_signer(
    station: Lab, passing_lot: str, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    assert release(station, "rita", passing_lot).exit_code == 0
    station.login("tom")
    out = tmp_path / "batch.pdf"
    written = ok("report", "batch", passing_lot, "--out", str(out))
    assert written["lot_id"] == passing_lot
    assert out.read_bytes().startswith(b"%PDF")
    reader = PdfReader(out)
    assert written["pages"] == len(reader.pages)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert passing_lot in text
    assert "Rita Tester" in text
    assert "release specification version 1" in " ".join(text.split())
    assert "report.batch" in audit_actions(station, f"lot:{passing_lot}")


def test_a_batch_record_that_cannot_be_written_is_the_station_unavailable(
    station: Lab, passing_lot: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: StagedFiles, path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StagedFiles, "write", full_disk)
    station.login("tom")
    out = tmp_path / "batch.pdf"
    line = refused(invoke("report", "batch", passing_lot, "--out", str(out)), 5, "cannot write")
    assert line.endswith(": No space left on device")
    assert list(tmp_path.glob("*batch.pdf*")) == []
    assert "report.batch" not in audit_actions(station, f"lot:{passing_lot}")


def test_the_batch_record_refuses_a_missing_directory(
    station: Lab, passing_lot: str, tmp_path: Path
) -> None:
    station.login("tom")
    out = tmp_path / "nowhere" / "batch.pdf"
    refused(invoke("report", "batch", passing_lot, "--out", str(out)), 2, "out")
    assert not out.parent.exists()
    assert "report.batch" not in audit_actions(station, f"lot:{passing_lot}")
