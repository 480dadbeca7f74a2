"""Issue 11, items 3-5: the paths by which a failed or never-tested lot reached a patient.

Each test is a path from the issue's "Why" that worked before: testing into compliance,
waiving what was never tested, and a released lot that could not be stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
WAIVE = ("--confirm", "--waive", "--physician-request", "Dr Rossi, letter of 1 December")


def signed(lab: Lab, user: str, *args: str) -> Invocation:
    lab.login(user)
    return invoke(*args, "--password-stdin", input=PASSWORD + "\n")


def close(lab: Lab, number: int, *how: str, user: str = "quinn") -> Invocation:
    return signed(lab, user, "deviation", "close", str(number), "--resolution", "assessed", *how)


def the_oos(lab: Lab, test: str) -> dict[str, Any]:
    lab.login("tom")
    [deviation] = [
        d
        for d in ok("deviation", "list", "--open")
        if d["kind"] == "oos" and d["criterion"] == test
    ]
    return dict(deviation)


@pytest.fixture
def quality(lab: Lab) -> Quality:
    return lab.built("quality", lambda: Quality(lab))


@pytest.fixture
def released(quality: Quality) -> str:
    """A released lot, V01 still released, V02 issued to its patient."""
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    vial = f"{quality.lot_id}-V02"
    ok("vial", "issue", vial, "--scan", scan_of(quality, vial), "--patient", PATIENT)
    return quality.lot_id


def issue(quality: Quality, vial: str) -> Invocation:
    quality.lab.login("tom")
    return invoke("vial", "issue", vial, "--scan", scan_of(quality, vial), "--patient", PATIENT)


# --- testing into compliance ------------------------------------------------------------------


def test_a_positive_mycoplasma_cannot_be_retested_away(quality: Quality) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    assert ok("qc", "record", lot, "mycoplasma", "positive", "--reason", "day 28")["verdict"] == (
        "fail"
    )
    oos = the_oos(lab, "mycoplasma")
    assert "positive" in oos["description"]
    line = refused(invoke("qc", "record", lot, "mycoplasma", "negative", "--reason", "retest"), 1)
    assert f"--investigation {oos['deviation_id']}" in line
    refused(signed(lab, "rita", "lot", "release", lot), 1, "mycoplasma failed", "deviation")
    # Recorded in the investigation, the negative does not count until QA invalidates.
    lab.login("tom")
    investigation = str(oos["deviation_id"])
    ok("qc", "record", lot, "mycoplasma", "negative", "--investigation", investigation)
    assert close(lab, oos["deviation_id"], "--confirm").exit_code == 0
    lab.login("tom")
    refused(invoke("qc", "record", lot, "mycoplasma", "negative", "--reason", "again"), 1)
    shown = ok("lot", "show", lot)
    mycoplasma = [(r["value"], r["status"]) for r in shown["results"] if r["test"] == "mycoplasma"]
    assert mycoplasma == [
        ("negative", "superseded"),
        ("positive", "valid"),
        ("negative", "investigation"),
    ]
    assert all(r["deviation_id"] == oos["deviation_id"] for r in shown["results"][-2:])
    table = invoke("qc", "show", lot).stdout
    assert "positive" in table
    assert "investigation (deviation" in table
    refused(signed(lab, "rita", "lot", "release", lot), 1, "mycoplasma failed")


def test_an_invalidated_result_lets_the_investigation_count(quality: Quality) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    ok("qc", "record", lot, "endotoxin", "12", "--reason", "second vial")
    number = the_oos(lab, "endotoxin")["deviation_id"]
    ok("qc", "record", lot, "endotoxin", "0.7", "--investigation", str(number))
    refused(signed(lab, "rita", "lot", "release", lot), 1, f"deviation {number}")
    assert close(lab, number, "--invalidate").exit_code == 0
    lab.login("tom")
    statuses = [r["status"] for r in ok("lot", "show", lot)["results"] if r["test"] == "endotoxin"]
    assert statuses == ["superseded", "invalidated", "valid"]
    assert signed(lab, "rita", "lot", "release", lot).exit_code == 0


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ((), 2),
        (("--invalidate", "--confirm"), 2),
        (("--waive", "--physician-request", "Dr Rossi"), 2),
        (("--confirm", "--waive"), 2),
        (("--confirm", "--physician-request", "Dr Rossi"), 2),
    ],
)
def test_an_oos_deviation_closes_with_exactly_one_outcome(
    quality: Quality, how: tuple[str, ...], code: int
) -> None:
    lab = quality.lab
    lab.login("tom")
    ok("qc", "record", quality.lot_id, "cd105", "90")
    number = the_oos(lab, "cd105")["deviation_id"]
    refused(close(lab, number, *how), code)
    assert the_oos(lab, "cd105")["status"] == "open"


# --- waiving what was never tested ---------------------------------------------------------


def test_a_test_never_done_cannot_be_waived(quality: Quality) -> None:
    lab, lot = quality.lab, quality.lot_id
    lab.login("tom")
    for test, value in PASSING.items():
        if test != "cd73":
            ok("qc", "record", lot, test, value)
    number = ok("deviation", "open", "--lot", lot, "--criterion", "cd73", "--description", "kit")
    number = number["deviation_id"]
    refused(close(lab, number, "--waive"), 2, "--confirm")
    refused(close(lab, number, *WAIVE), 1, "not an out-of-specification result")
    assert close(lab, number).exit_code == 0
    refused(signed(lab, "rita", "lot", "release", lot), 1, "cd73 missing")


def test_the_qa_who_waived_a_failure_does_not_release_the_lot(quality: Quality) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    ok("qc", "record", lot, "cd105", "92", "--reason", "second stain")
    number = the_oos(lab, "cd105")["deviation_id"]
    assert close(lab, number, *WAIVE, user="rita").exit_code == 0
    refused(signed(lab, "rita", "lot", "release", lot), 1, "rita waived", str(number))
    assert signed(lab, "quinn", "lot", "release", lot).exit_code == 0


# --- stopping a released lot -------------------------------------------------------------------


def test_a_hold_stops_the_vials_until_qa_lifts_it(quality: Quality, released: str) -> None:
    lab = quality.lab
    refused(signed(lab, "tom", "lot", "hold", released, "--reason", "alarm"), 4)
    refused(signed(lab, "quinn", "lot", "hold", released), 2, "--reason")
    held = signed(lab, "quinn", "lot", "hold", released, "--reason", "incubator alarm", "--json")
    assert held.exit_code == 0, held.stderr
    lab.login("tom")
    shown = ok("lot", "show", released)
    assert shown["on_hold"] is True
    [reason] = shown["hold_reasons"]
    assert "incubator alarm" in reason
    assert shown["holds"][0]["placed_by"] == "quinn"
    refused(issue(quality, f"{released}-V01"), 1, "on hold", "incubator alarm")
    vial = f"{released}-V02"
    administer = ("vial", "administer", vial, "--scan", scan_of(quality, vial))
    refused(invoke(*administer, "--patient", PATIENT), 1, "on hold")
    refused(signed(lab, "quinn", "lot", "hold", released, "--reason", "again"), 1, "already")
    assert signed(lab, "rita", "lot", "unhold", released, "--reason", "sensor fault").exit_code == 0
    refused(signed(lab, "rita", "lot", "unhold", released, "--reason", "again"), 1, "no hold")
    lab.login("tom")
    assert ok("lot", "show", released)["on_hold"] is False
    assert issue(quality, f"{released}-V01").exit_code == 0
    signatures = ok("lot", "show", released)["signatures"]
    assert [s["meaning"] for s in signatures[1:]] == ["placed on hold (hold 1)", "hold 1 lifted"]
    assert all(s["record_unchanged"] for s in signatures)


def test_an_open_deviation_on_a_released_lot_holds_it(quality: Quality, released: str) -> None:
    lab = quality.lab
    lab.login("tom")
    opened = ok("deviation", "open", "--lot", released, "--description", "label smudged")
    refused(issue(quality, f"{released}-V01"), 1, "on hold", "label smudged")
    assert close(lab, opened["deviation_id"]).exit_code == 0
    assert issue(quality, f"{released}-V01").exit_code == 0


def test_a_late_failing_result_holds_a_released_lot_and_it_is_recalled(
    quality: Quality, released: str
) -> None:
    lab = quality.lab
    lab.login("tom")
    ok("qc", "record", released, "karyotype", "abnormal")
    number = the_oos(lab, "karyotype")["deviation_id"]
    lab.login("tom")
    reasons = ok("lot", "show", released)["hold_reasons"]
    assert any("karyotype failed" in reason for reason in reasons)
    refused(issue(quality, f"{released}-V01"), 1, "on hold", "karyotype")
    assert close(lab, number, "--confirm").exit_code == 0
    refused(issue(quality, f"{released}-V01"), 1, "on hold", "karyotype failed")
    refused(signed(lab, "tom", "lot", "recall", released, "--reason", "karyotype"), 4)
    recalled = signed(lab, "rita", "lot", "recall", released, "--reason", "karyotype abnormal")
    assert recalled.exit_code == 0, recalled.stderr
    lab.login("tom")
    shown = ok("lot", "show", released)
    assert shown["status"] == "recalled"
    assert {v["vial_id"][-3:]: v["status"] for v in shown["vial_states"]} == {
        "V01": "recalled",
        "V02": "recalled",
        "V03": "recalled",
        "V04": "recalled",
    }
    refused(issue(quality, f"{released}-V01"), 1, "recalled")
    refused(invoke("qc", "record", released, "cd73", "99", "--reason", "late"), 1, "recalled")
    out = Path("recalled-labels")
    out.mkdir()
    printed = ok("label", "print", released, "--format", "svg", "--out", str(out))
    for file in printed["files"]:
        assert "RECALLED — DO NOT USE" in Path(file).read_text(encoding="utf-8")
    ok("vial", "destroy", f"{released}-V01", "--reason", "recalled")
    refused(signed(lab, "rita", "lot", "recall", released, "--reason", "again"), 1)


def test_only_a_released_lot_is_recalled(quality: Quality) -> None:
    refused(
        signed(quality.lab, "rita", "lot", "recall", quality.lot_id, "--reason", "x"),
        1,
        "reject it rather than recall",
    )


def test_a_hold_deleted_from_the_table_still_stops_the_vials(
    quality: Quality, released: str
) -> None:
    assert signed(quality.lab, "quinn", "lot", "hold", released, "--reason", "alarm").exit_code == 0
    quality.sql("DELETE FROM lot_holds")
    refused(issue(quality, f"{released}-V01"), 1, "record disagrees with the audit trail")
    refused(invoke("audit", "verify"), 1, "lot_holds")


# --- found in review: paths around the rules above ----------------------------------------


def test_a_result_is_judged_as_its_value_reads_not_by_a_hidden_column(quality: Quality) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    ok("qc", "record", lot, "endotoxin", "500", "--reason", "second vial")
    number = the_oos(lab, "endotoxin")["deviation_id"]
    assert close(lab, number, "--confirm").exit_code == 0
    quality.sql("UPDATE qc_results SET number = 0.5 WHERE test = 'endotoxin'")
    refused(signed(lab, "rita", "lot", "release", lot), 1, "endotoxin failed: 500")


def test_every_failing_investigation_result_is_judged_once_the_original_is_invalidated(
    quality: Quality,
) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    ok("qc", "record", lot, "sterility", "positive", "--reason", "day 7 read")
    first = str(the_oos(lab, "sterility")["deviation_id"])
    ok("qc", "record", lot, "sterility", "positive", "--investigation", first)
    ok("qc", "record", lot, "sterility", "negative", "--investigation", first)
    assert close(lab, int(first), "--invalidate").exit_code == 0
    second = the_oos(lab, "sterility")
    assert second["status"] == "open"
    refused(signed(lab, "rita", "lot", "release", lot), 1, f"deviation {second['deviation_id']}")
    assert close(lab, second["deviation_id"], "--confirm").exit_code == 0
    # The confirmed positive stands, though a later result is negative.
    refused(signed(lab, "rita", "lot", "release", lot), 1, "sterility failed: positive")


def test_the_qa_who_released_a_lot_does_not_waive_its_late_failure(
    quality: Quality, released: str
) -> None:
    lab = quality.lab
    lab.login("tom")
    ok("qc", "record", released, "cd73", "50", "--reason", "late repeat")
    number = the_oos(lab, "cd73")["deviation_id"]
    refused(close(lab, number, *WAIVE, user="rita"), 1, "rita released", "another QA")
    assert close(lab, number, *WAIVE, user="quinn").exit_code == 0
    assert issue(quality, f"{released}-V01").exit_code == 0


@pytest.mark.parametrize(
    ("tamper", "table"),
    [
        (
            "UPDATE patients SET code = CASE code WHEN 'PT-0001' THEN 'PT-X' ELSE code END",
            # The aspirate's patient (and the lot's) is no longer the one its receipt named.
            "aspirates",
        ),
        ("UPDATE lots SET final_passage = 1", "lots"),
        ("UPDATE deviations SET closed_by = 'rita'", "deviations"),
    ],
)
def test_rows_that_decide_a_release_are_bound_to_the_trail(
    quality: Quality, tamper: str, table: str
) -> None:
    lab, lot = quality.lab, quality.lot_id
    quality.record_passing()
    lab.login("tom")
    ok("qc", "record", lot, "cd105", "92", "--reason", "second stain")
    assert close(lab, the_oos(lab, "cd105")["deviation_id"], *WAIVE).exit_code == 0
    quality.sql(tamper)
    refused(invoke("audit", "verify"), 1, table)
    refused(signed(lab, "quinn", "lot", "release", lot), 1, "record disagrees")


def test_a_patients_printed_identity_is_bound_to_the_trail(quality: Quality) -> None:
    quality.sql("UPDATE patients SET birth_year = 1950")
    refused(invoke("audit", "verify"), 1, "patients", "birth_year")
