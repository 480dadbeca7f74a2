"""Storage and retained samples through the CLI: what each command prints, and its exit codes.

The lab is tests.support.quality.Quality (lot L1 of PT-0001, tom logged in; quinn and rita
QA) with an empty 9×9 box LN2-1/rack-3/box-07 added by the admin. Exit codes: 0 ok, 1 a
rule (a taken position, a box holding a box, a removed sample), 2 bad input (a position
outside the grid, a malformed id), 3 not found (a path, an id), 4 not permitted.
"""

from __future__ import annotations

import pytest

from tests.support.cli import invoke, ok, plain, refused
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.storage import BOX, RACK, add_box, freeze

PATIENT = "PT-0001"
ITEM_KEYS = {
    "item",
    "item_kind",
    "status",
    "patient",
    "culture_id",
    "lot_id",
    "cells",
    "place",
    "path",
    "position",
    "placed_at",
    "stored_at",
    "stored_by",
    "ended_at",
    "ended_by",
    "end_reason",
    "late_entry",
}


@pytest.fixture
def kept(lab: Lab) -> Quality:
    return lab.built("storage", lambda: _kept(lab))


def _kept(lab: Lab) -> Quality:
    quality = Quality(lab)
    add_box(lab)
    return quality


def _sample(kept: Quality, number: int) -> str:
    return f"{kept.lot_id}-R{number:02d}"


def test_qa_adds_locations_and_a_technician_may_not(kept: Quality, lab: Lab) -> None:
    refused(invoke("storage", "add", "LN2-2", "--kind", "tank"), 4, "keep the equipment")
    lab.login("quinn")
    tank = ok("storage", "add", "LN2-2", "--kind", "tank", "--temperature-c", "-190")
    assert tank == {
        "path": "LN2-2",
        "kind": "tank",
        "rows": None,
        "columns": None,
        "temperature_c": -190,
        "capacity": 0,
        "occupied": 0,
        "added_at": tank["added_at"],
        "added_by": "quinn",
    }
    box = ok("storage", "add", "ln2-2/box-1", "--kind", "box", "--rows", "8", "--columns", "12")
    assert (box["path"], box["capacity"]) == ("LN2-2/box-1", 96)
    refused(invoke("storage", "add", "LN2-2/rack-1/x", "--kind", "shelf"), 3, "LN2-2/rack-1")
    refused(invoke("storage", "add", "LN2-2/box-1/x", "--kind", "shelf"), 1, "is a box")
    refused(invoke("storage", "add", "LN2-2/BOX-1", "--kind", "shelf"), 1, "letter case")
    refused(
        invoke("storage", "add", "LN2-2/rack-1", "--kind", "rack", "--rows", "2"),
        2,
        "rows: must be left out for a rack",
    )
    printed = plain(invoke("storage", "add", "LN2-2/rack-1", "--kind", "rack").stdout)
    assert "Storage location added" in printed
    assert "LN2-2/rack-1" in printed


def test_a_box_is_drawn_as_a_grid_of_its_positions_with_a_legend(kept: Quality) -> None:
    retained = ok("sample", "retain", kept.lot_id, "--count", "2", "--into", f"{BOX}:b8")
    assert [sample["place"] for sample in retained["samples"]] == [f"{BOX}:B8", f"{BOX}:B9"]
    assert set(retained["samples"][0]) == ITEM_KEYS
    [vial] = freeze(kept.lab, kept.culture_id, 1, f"{BOX}:A1")
    shown = invoke("storage", "show", BOX.upper())
    assert shown.exit_code == 0, shown.stderr
    grid = [line for line in shown.stdout.splitlines() if line[:4] in ("│ A ", "│ B ")]
    assert [cell.strip() for cell in grid[0].split("│")[1:4]] == ["A", "C1-B01", "·"]
    assert "L1-R01" in grid[1]
    assert "L1-R02" in grid[1]
    legend = plain(shown.stdout)
    assert f"B8 {_sample(kept, 1)} retained sample stored {PATIENT} {kept.lot_id}" in legend
    assert f"A1 {vial} bank vial stored {PATIENT} {kept.culture_id} 1,000,000" in legend
    detail = ok("storage", "show", BOX)
    assert (detail["path"], detail["kind"], detail["rows"], detail["columns"]) == (BOX, "box", 9, 9)
    assert (detail["capacity"], detail["occupied"], detail["children"]) == (81, 3, [])
    assert [(p["position"], p["item"], p["item_kind"]) for p in detail["positions"]] == [
        ("A1", vial, "bank_vial"),
        ("B8", _sample(kept, 1), "retained_sample"),
        ("B9", _sample(kept, 2), "retained_sample"),
    ]
    rack = ok("storage", "show", RACK)
    assert rack["positions"] == []
    assert [(c["path"], c["kind"], c["occupied"]) for c in rack["children"]] == [(BOX, "box", 3)]
    assert "3 of 81" in plain(invoke("storage", "show", RACK).stdout)
    listed = ok("storage", "list")
    assert [(view["path"], view["occupied"]) for view in listed] == [
        ("LN2-1", 3),
        (RACK, 3),
        (BOX, 3),
    ]
    refused(invoke("storage", "show", "LN2-9"), 3, "no storage location LN2-9")
    refused(invoke("storage", "show", "LN2 9"), 2, "path: must be a storage path")


def test_retaining_refuses_taken_positions_outside_the_grid_and_unknown_boxes(
    kept: Quality,
) -> None:
    ok("sample", "retain", kept.lot_id, "--count", "1", "--into", f"{BOX}:A2")
    retain = ("sample", "retain", kept.lot_id, "--count", "2", "--into")
    refused(invoke(*retain, f"{BOX}:A1"), 1, "position A2 already holds an item")
    refused(invoke(*retain, f"{BOX}:J1"), 2, "into: must be a position within A1-I9")
    refused(invoke(*retain, f"{BOX}:1A"), 2, "into: must be a position such as A1")
    refused(invoke(*retain, RACK), 2, "into: must be a box with positions")
    refused(invoke(*retain, f"{RACK}/box-99"), 3, "no storage location")
    refused(invoke("sample", "retain", f"{kept.lot_id}9", "--count", "1", "--into", BOX), 3)
    lab = kept.lab
    lab.login("admin")
    refused(invoke(*retain, BOX), 4)


def test_an_item_is_moved_removed_and_found(kept: Quality) -> None:
    ok("sample", "retain", kept.lot_id, "--count", "2", "--into", BOX)
    moved = invoke("storage", "move", _sample(kept, 1), f"{BOX}:I9", "--reason", "tidy")
    assert moved.exit_code == 0, moved.stderr
    assert f"{_sample(kept, 1)}: {BOX}:A1 -> {BOX}:I9" in moved.stdout
    move = ("storage", "move", _sample(kept, 2))
    refused(invoke(*move, f"{BOX}:I9", "--reason", "x"), 1, "I9 already holds an item")
    refused(invoke(*move, f"{BOX}:I10", "--reason", "x"), 2, "to: must be a position within")
    refused(invoke(*move, "LN2-9:A1", "--reason", "x"), 3, "no storage location LN2-9")
    refused(invoke("storage", "move", f"{kept.lot_id}-V01", BOX, "--reason", "x"), 2, "item:")
    refused(invoke("storage", "move", f"{kept.lot_id}-R77", BOX, "--reason", "x"), 3)
    removed = ok("sample", "remove", _sample(kept, 2), "--reason", "sterility retest")
    assert (removed["status"], removed["place"], removed["end_reason"]) == (
        "removed",
        None,
        "sterility retest",
    )
    refused(invoke(*move, f"{BOX}:A5", "--reason", "x"), 1, "is removed")
    refused(invoke("sample", "remove", _sample(kept, 2), "--reason", "again"), 1, "is removed")
    found = ok("storage", "find", PATIENT)
    assert [(item["item"], item["place"]) for item in found] == [(_sample(kept, 1), f"{BOX}:I9")]
    everything = ok("storage", "find", kept.lot_id, "--all")
    assert [item["status"] for item in everything] == ["stored", "removed"]
    printed = plain(invoke("storage", "find", kept.lot_id, "--all").stdout)
    assert "removed" in printed
    assert "sterility" in printed
    assert [s["item"] for s in ok("sample", "list", kept.lot_id)] == [
        _sample(kept, 1),
        _sample(kept, 2),
    ]
    refused(invoke("storage", "find", f"{kept.lot_id}-V01"), 2, "item: must be")
    refused(invoke("storage", "find", "PT-0099"), 3)


def test_lot_and_patient_show_where_their_items_are(kept: Quality) -> None:
    ok("sample", "retain", kept.lot_id, "--count", "1", "--into", f"{BOX}:C3")
    lot = ok("lot", "show", kept.lot_id)
    assert [(s["item"], s["place"]) for s in lot["retained_samples"]] == [
        (_sample(kept, 1), f"{BOX}:C3")
    ]
    assert f"{_sample(kept, 1)} retained sample stored {BOX}:C3" in plain(
        invoke("lot", "show", kept.lot_id).stdout
    )
    patient = ok("patient", "show", PATIENT)
    assert [s["place"] for s in patient["stored_items"]] == [f"{BOX}:C3"]
    printed = plain(invoke("patient", "show", PATIENT).stdout)
    assert "In storage" in printed
    assert f"{BOX}:C3" in printed
