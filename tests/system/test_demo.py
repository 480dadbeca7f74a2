"""`lims demo`: the README's first command, on a fresh SQLite database in its own directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import invoke

# One worker runs them all, so the demo the `demo` fixture runs is run once, not once a worker;
# the fixture lasts the session, since other modules' tests may come between these on the worker.
pytestmark = pytest.mark.xdist_group("demo")


def _lims(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lims", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        check=False,
    )


def test_demo_builds_a_database_whose_printed_passwords_work(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    demo = _lims("demo", "--dir", str(directory), env=dict(os.environ))
    assert demo.returncode == 0, demo.stderr
    assert (directory / "lims.db").exists()
    assert "intact" in demo.stdout
    assert "the patient's own CSF was received" in " ".join(demo.stdout.split())
    rows = re.findall(
        r"│ (admin|tech|qa)\s+│[^│]+│ (?:admin|technician|qa)\s+│ (\S+)\s+│", demo.stdout
    )
    passwords = dict(rows)
    assert set(passwords) == {"admin", "tech", "qa"}

    station = {
        **os.environ,
        "LIMS_HOME": str(directory),
        "LIMS_DATABASE_URL": f"sqlite:///{directory / 'lims.db'}",
    }
    login = _lims("login", "tech", "--password-stdin", env=station, stdin=passwords["tech"] + "\n")
    assert login.returncode == 0, login.stderr
    whoami = _lims("whoami", "--json", env=station)
    assert '"role": "technician"' in whoami.stdout
    assert _lims("audit", "verify", env=station).returncode == 0
    # The station's own configured database was left alone.
    configured = invoke("db", "current", "--json")
    if configured.exit_code == 0:  # PostgreSQL: the test's schema exists, still blank
        assert '"current": null' in configured.stdout
    else:
        assert configured.exit_code == 3


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One `lims demo --json` for the tests that read what it made: the tour takes seconds."""
    directory = tmp_path_factory.mktemp("demo-json") / "demo"
    result = invoke("demo", "--dir", str(directory), "--json")
    assert result.exit_code == 0, result.stderr
    return directory, json.loads(result.stdout)


def test_demo_refuses_a_directory_that_already_holds_a_database(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    directory, _ = demo
    again = invoke("demo", "--dir", str(directory))
    assert again.exit_code == 1
    assert "already holds a lims database" in again.stderr


def test_demo_json_gives_the_users_and_the_audit_result(demo: tuple[Path, dict[str, Any]]) -> None:
    directory, report = demo
    assert [user["role"] for user in report["users"]] == ["admin", "technician", "qa"]
    assert all(len(user["password"]) >= 12 for user in report["users"])
    assert report["audit"]["intact"] is True
    assert report["database"] == str(directory / "lims.db")


def test_demo_takes_a_lot_from_aspirate_to_a_released_lot_and_its_batch_record(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    from pypdf import PdfReader

    _, report = demo
    culture = report["culture"]
    assert culture["kind"] == "primary"
    assert [p["passage_number"] for p in culture["passages"]] == [1, 2, 3]
    assert culture["passages"][0]["population_doublings"] is None
    assert culture["passages"][2]["cumulative_population_doublings"] > 5
    assert report["din"] == culture["din"]
    assert report["lot_id"] == f"{report['din']}-L1"
    assert report["lot_status"] == "released"
    assert len(report["vials"]) == 4
    assert "Quinn QA (qa)" in report["signature"]
    # Suspended in the patient's own CSF, a donation of its own.
    vehicle = report["vehicle"]
    assert vehicle["din"] != report["din"]
    assert vehicle["drawn_by"] == [{"lot_id": report["lot_id"], "vehicle_ml": 8}]
    assert vehicle["volume_left_ml"] == 2
    record = PdfReader(report["batch_record"])
    text = "".join(page.extract_text() for page in record.pages)
    assert report["lot_id"] in text
    assert "Quinn QA" in text
    assert f"8 mL of CSF DIN {vehicle['din_display']}" in text


def test_demo_shows_a_spec_change_an_oos_investigation_a_hold_and_a_recall(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    _, report = demo
    assert report["spec_version"] == 2
    investigation = report["investigation"]
    assert investigation["outcome"] == "invalidated"
    assert [(r["value"], r["status"]) for r in investigation["results"]] == [
        ("91", "invalidated"),
        ("97.1", "valid"),
    ]
    recall = report["recall"]
    assert any("incubator 2 alarm" in reason for reason in recall["hold_reasons"])
    assert recall["scan_while_held"]["match"] is False
    assert "on hold" in recall["scan_while_held"]["reason"]
    assert any("karyotype failed" in reason for reason in recall["late_hold_reasons"])
    assert list(recall["vial_states"].values()) == [
        "administered",
        "recalled",
        "recalled",
        "recalled",
    ]
    assert Path(recall["recall_notice"]).read_bytes().startswith(b"%PDF")
    assert report["audit"]["intact"] is True


def test_demo_releases_a_fresh_lot_before_its_final_sterility_result(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """The issue's first path: released with sterility pending, a vial issued with that
    acknowledged and given, the final result negative and the release completed by QA."""
    _, report = demo
    assert report["pending_at_release"] == ["sterility"]
    assert "released — final results pending: sterility" in report["signature"]
    fresh = report["fresh_product"]
    assert fresh["acknowledged_pending"] == ["sterility"]
    assert fresh["administered"] == {
        "vial_id": report["vials"][0],
        "route": "intraspinal",
        "physician": "Dr A. Rossi (neurosurgery)",
    }
    assert fresh["final_sterility"] == "negative"
    assert "Quinn QA (qa)" in fresh["completion_signature"]
    assert "final results reviewed" in fresh["completion_signature"]


def test_demo_shows_a_culture_split_and_late_entries(demo: tuple[Path, dict[str, Any]]) -> None:
    from pypdf import PdfReader

    _, report = demo
    culture = report["culture"]
    assert report["split_culture"] == f"{report['din']}-C2"
    assert culture["children"] == [report["split_culture"]]
    assert culture["late_entry"] is True
    assert culture["late_reason"]
    assert all(passage["late_entry"] for passage in culture["passages"])
    assert {culture["culture_id"], report["split_culture"], report["lot_id"]} <= set(
        report["late_entries"]
    )
    record = PdfReader(report["batch_record"])
    text = "".join(page.extract_text() for page in record.pages)
    assert "late entry" in text
    assert report["split_culture"] in text


def test_demo_users_chose_their_own_passwords_at_first_login(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    import sqlite3

    _, report = demo
    with closing(sqlite3.connect(report["database"])) as connection:
        changed = connection.execute(
            "SELECT username FROM audit_entries WHERE action = 'user.password_change'"
        ).fetchall()
    assert sorted(username for (username,) in changed) == ["qa", "tech"]


def test_demo_names_its_equipment_and_keeps_a_backup_and_samples_in_a_box(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    from pypdf import PdfReader

    _, report = demo
    assert report["equipment"] == ["BSC-01", "INC-01"]
    culture, lot = report["culture"]["culture_id"], report["lot_id"]
    stored = report["storage"]
    assert stored["bank_vials"] == [f"{culture}-B01", f"{culture}-B02"]
    assert stored["retained_samples"] == [f"{lot}-R01", f"{lot}-R02"]
    assert stored["box"] == {
        "A1": f"{culture}-B01",
        "A2": f"{culture}-B02",
        "A3": f"{lot}-R01",
        "A4": f"{lot}-R02",
    }
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(report["batch_record"]).pages).split()
    )
    equipment = text[text.index(". Equipment ") : text.index(". Storage ")]
    # The split and the freeze took cells of P3 that are not in L1: they are not listed.
    for step in ("culture.start", "passage.log", "lot.formulate"):
        assert step in equipment, step
    assert "culture.split" not in equipment
    assert "CERT-INC-2026-077" in equipment
    assert f"{lot}-R01" in text[text.index(". Storage ") : text.index(". Follow-up ")]


def test_demo_ships_the_first_vial_to_the_theatre_and_traces_it(
    demo: tuple[Path, dict[str, Any]],
) -> None:
    """The vial given went to the operating theatre in a shipment received there; the trace
    of it is the patient's tree, the same as `lims trace` gives from the marrow's DIN."""
    directory, report = demo
    shipment = report["fresh_product"]["shipment_id"]
    given = report["fresh_product"]["administered"]["vial_id"]
    tree = report["trace"]
    assert (tree["id"], tree["kind"]) == (report["patient"], "patient")
    marrow, csf = tree["children"]
    assert (marrow["id"], csf["id"]) == (report["din"], report["vehicle"]["din"])
    lot_ref = {"ref": report["lot_id"]}
    assert csf["children"] == [lot_ref]

    def find(node: dict[str, Any], wanted: str) -> dict[str, Any] | None:
        if node.get("id") == wanted:
            return node
        for child in node.get("children", ()):
            found = find(child, wanted)
            if found is not None:
                return found
        return None

    vial = find(tree, given)
    assert vial is not None
    assert vial["state"] == "administered"
    [travelled] = vial["children"]
    assert (travelled["id"], travelled["kind"], travelled["state"]) == (
        shipment,
        "shipment",
        "received",
    )
    assert travelled["detail"].startswith("to OR-1 ")
    station = {
        **os.environ,
        "LIMS_HOME": str(directory),
        "LIMS_DATABASE_URL": f"sqlite:///{directory / 'lims.db'}",
    }
    users = {user["username"]: user["password"] for user in report["users"]}
    assert (
        _lims("login", "qa", "--password-stdin", env=station, stdin=users["qa"] + "\n").returncode
        == 0
    )
    traced = _lims("trace", report["din"], "--json", env=station)
    assert traced.returncode == 0, traced.stderr
    assert json.loads(traced.stdout) == tree
