"""Issue 13's "done when", from the shell, on whichever backend the suite runs on: a lot
with a 48-hour shelf life released with sterility pending, a vial issued with the pending
test acknowledged and administered, the final negative recorded and the release completed
by QA; in another run a final positive holds the lot at once and QA recalls it.

tom (technician) works at the bench and records QC; rita releases, quinn completes or
recalls; the audit chain and the rows bound to it verify at the end of each run.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.support.bench import NO_REAGENTS, NOW
from tests.support.cli import csf_vehicle, invoke, ok
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import LOT_PASSAGES, PASSING, Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
FORMULATED = NOW - timedelta(hours=20)
INTERIM_AT = FORMULATED + timedelta(hours=2)  # Gram stain and the rapid culture's first read
STARTED = FORMULATED + timedelta(hours=1)  # the 14-day culture inoculated
EXPECTED = STARTED + timedelta(days=14)


def _fresh_lot(quality: Quality) -> str:
    """A lot of one 2 mL syringe formulated 20 hours ago, in date for 48 hours."""
    quality.lab.login("tom")
    culture = quality.scenario.primary_culture(PATIENT, **NO_REAGENTS).summary.culture_id
    for values in LOT_PASSAGES:
        quality.passage(culture, **values)
    formulated = ok(
        "lot",
        "formulate",
        culture,
        "--harvested",
        "1.6e8",
        "--viability",
        "93",
        "--vials",
        "1",
        "--cells-per-vial",
        "4e7",
        "--volume-ml",
        "2",
        *csf_vehicle(PATIENT, FORMULATED, vehicle_ml="2"),
        "--shelf-life-hours",
        "48",
        "--at",
        FORMULATED.isoformat(),
    )
    return str(formulated["lot_id"])


def _released_with_sterility_pending(quality: Quality, lab: Lab) -> str:
    lot = _fresh_lot(quality)
    at = INTERIM_AT.isoformat()
    for test, value in PASSING.items():
        if test != "sterility":
            ok("qc", "record", lot, test, value, "--at", at)
    ok("qc", "record", lot, "gram_stain", "negative", "--method", "Gram stain", "--at", at)
    ok("qc", "record", lot, "sterility_interim", "negative", "--method", "BacT/ALERT", "--at", at)
    started = ok(
        "qc",
        "record",
        lot,
        "sterility",
        "pending",
        "--method",
        "BacT/ALERT, 14 d",
        "--at",
        STARTED.isoformat(),
        "--expected-final",
        EXPECTED.isoformat(),
    )
    assert started["verdict"] == "pending"
    released = _signed(lab, "rita", "lot", "release", lot)
    assert (released["status"], released["pending_tests"]) == ("released", ["sterility"])
    assert released["signatures"][-1]["meaning"] == "released — final results pending: sterility"
    return lot


def _signed(lab: Lab, user: str, *args: str) -> dict[str, Any]:
    lab.login(user)
    return dict(ok(*args, "--password-stdin", input=PASSWORD + "\n"))


def _give(quality: Quality, vial: str) -> None:
    """Issued (acknowledging the test pending) and administered, each scan matching."""
    quality.lab.login("tom")
    scan = scan_of(quality, vial)
    issued = ok(
        "vial", "issue", vial, "--patient", PATIENT, "--scan", scan, "--acknowledge-pending"
    )
    assert issued["acknowledged_pending"] == ["sterility"]
    administered = ok("vial", "administer", vial, "--patient", PATIENT, "--scan", scan)
    assert administered["status"] == "administered"


def _trail_verifies() -> None:
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.stdout + verified.stderr


def test_a_fresh_lot_released_on_interim_results_is_given_and_completed(lab: Lab) -> None:
    quality = Quality(lab)
    lot = _released_with_sterility_pending(quality, lab)
    _give(quality, f"{lot}-V01")
    final = ok("qc", "record", lot, "sterility", "negative", "--method", "BacT/ALERT, 14 d")
    assert (final["verdict"], final["notice"]) == ("pass", None)
    shown = ok("lot", "show", lot)
    assert (shown["pending_tests"], shown["release_complete"]) == ([], False)
    completed = _signed(lab, "quinn", "lot", "complete", lot)
    assert completed["release_complete"] is True
    assert [(s["username"], s["meaning"]) for s in completed["signatures"]] == [
        ("rita", "released — final results pending: sterility"),
        ("quinn", "final results reviewed"),
    ]
    assert all(s["record_unchanged"] for s in completed["signatures"])
    lab.login("tom")
    actions = [entry["action"] for entry in ok("audit", "log", "--entity", f"lot:{lot}")]
    assert {"qc.start", "lot.release", "lot.complete"} <= set(actions)
    _trail_verifies()


def test_a_final_positive_holds_the_released_lot_and_qa_recalls_it(
    lab: Lab, tmp_path: Path
) -> None:
    quality = Quality(lab)
    lot = _released_with_sterility_pending(quality, lab)
    _give(quality, f"{lot}-V01")
    failed = invoke("qc", "record", lot, "sterility", "positive", "--json")
    assert failed.exit_code == 0, failed.stderr
    assert f"lims report recall {lot} --out FILE.pdf" in json.loads(failed.stdout)["notice"]
    assert "ACTION REQUIRED" in failed.stderr
    held = ok("lot", "show", lot)
    assert held["on_hold"] is True
    assert [d["severity"] for d in held["deviations"]] == ["critical"]
    recalled = _signed(lab, "quinn", "lot", "recall", lot, "--reason", "final sterility positive")
    assert recalled["status"] == "recalled"
    lab.login("tom")
    notice = ok("report", "recall", lot, "--out", str(tmp_path / "recall.pdf"))
    assert notice["pages"] >= 1
    _trail_verifies()
