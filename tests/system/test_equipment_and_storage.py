"""Issue 15 done, end to end at the shell: QA keeps the equipment register and the storage
locations, and the bench names its equipment and freezes into a box, as users type it.

A passage is refused for an incubator past its due date and accepted once it is calibrated;
a failed calibration of the biosafety cabinet opens a deviation on the lot that used it;
cells frozen into a box are shown in its grid, found by patient and thawed into a child
culture that carries on the frozen harvest's passage number and cumulative PD; the batch
record lists the equipment and the storage.

The patient, aspirate and primary culture are made through the services before the
register exists (their steps name no equipment); everything after that is typed at the
shell, QA and the technician each logged in for their part.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.scenario import PATIENT_CODE
from tests.support.bench import Bench, day
from tests.support.cli import csf_vehicle, invoke, ok, plain, refused
from tests.support.equipment import local_day
from tests.support.lab import Lab

QA, TECHNICIAN = "quinn", "tom"
CABINET, INCUBATOR = "BSC-01", "INC-01"
CABINET_SERIAL, INCUBATOR_SERIAL = "SN-4411", "SN-4217"
TANK, RACK, BOX = "LN2-1", "LN2-1/rack-3", "LN2-1/rack-3/box-07"
USED = ("--equipment", CABINET, "--equipment", INCUBATOR)
# The incubator's calibration covers the days up to day 10; the first passage is on day 12.
INCUBATOR_DUE_DAY = 10
FIRST_PASSAGE = 12


def at(days: float) -> str:
    return day(days).isoformat()


@dataclass(frozen=True)
class Floor:
    """The lab with its register and storage set up by QA, the technician logged in."""

    lab: Lab
    culture: str
    cabinet_calibration: str  # as the batch record shows it: "pass DAY, due DAY"


def _as(lab: Lab, username: str, *args: str) -> Any:
    """`lims ARGS --json` typed by username, logged in at the station for it."""
    lab.login(username)
    return ok(*args)


@pytest.fixture
def floor(lab: Lab) -> Floor:
    def build() -> Floor:
        lab.add_user(QA, "qa")
        bench = Bench(lab)  # adds the technician
        bench.patient()
        culture = bench.culture(bench.aspirate().din.code).summary.culture_id
        lab.login(QA)
        ok(
            "equipment", "add", CABINET, "--kind", "biosafety_cabinet",
            "--name", "Herasafe 2030i", "--serial", CABINET_SERIAL,
            "--location", "room 2.14", "--calibration-interval-days", "365",
        )  # fmt: skip
        calibrated = local_day(day(-20), lab)
        cabinet = ok("equipment", "calibrate", CABINET, "--at", calibrated.isoformat())
        due = (calibrated + timedelta(days=365)).isoformat()  # by its interval
        assert cabinet["calibration"]["due_on"] == due
        ok(
            "equipment", "add", INCUBATOR, "--kind", "incubator", "--name", "Heracell 240i",
            "--serial", INCUBATOR_SERIAL, "--calibration-interval-days", "365",
        )  # fmt: skip
        ok(
            "equipment", "calibrate", INCUBATOR, "--at", at(-30),
            "--due", local_day(day(INCUBATOR_DUE_DAY), lab).isoformat(),
            "--certificate", "C-2291",
        )  # fmt: skip
        ok("storage", "add", TANK, "--kind", "tank", "--temperature-c", "-190")
        ok("storage", "add", RACK, "--kind", "rack")
        ok("storage", "add", BOX, "--kind", "box", "--rows", "9", "--columns", "9")
        lab.login(TECHNICIAN)
        return Floor(lab, culture, f"pass {calibrated.isoformat()}, due {due}")

    return lab.built("equipment-and-storage", build)


def _recalibrate_incubator(floor: Floor, when: datetime) -> dict[str, Any]:
    """QA calibrates the incubator again, covering the year from `when`; the technician is
    logged in again after."""
    recorded: dict[str, Any] = _as(
        floor.lab, QA, "equipment", "calibrate", INCUBATOR, "--at", when.isoformat(),
        "--due", local_day(when + timedelta(days=365), floor.lab).isoformat(),
        "--certificate", "C-2388",
    )  # fmt: skip
    floor.lab.login(TECHNICIAN)
    return recorded


def _passage(culture: str, days: float, harvested: str, seeded: str, *more: str) -> list[str]:
    return [
        "passage", "log", culture, "--harvested", harvested, "--viability", "94",
        "--seeded", seeded, "--at", at(days), *more, *USED,
    ]  # fmt: skip


def test_a_passage_needs_the_incubator_in_calibration_and_a_failed_one_opens_a_deviation(
    floor: Floor,
) -> None:
    """The incubator past due refuses the passage until QA calibrates it; the cabinet's
    failed calibration then opens a deviation on the lot formulated in it."""
    lab, culture = floor.lab, floor.culture
    passage = _passage(
        culture, FIRST_PASSAGE, "4.2e6", "4.2e6", "--vessels", "5", "--area-cm2", "875"
    )
    due = local_day(day(INCUBATOR_DUE_DAY), lab).isoformat()
    trail = lab.audit_count()

    refused(invoke(*passage), 1, INCUBATOR, due)
    assert ok("culture", "show", culture)["passages"] == []
    assert ok("equipment", "show", INCUBATOR)["uses"] == []
    assert lab.audit_count() == trail

    recalibrated = _recalibrate_incubator(floor, day(FIRST_PASSAGE - 1))
    logged = ok(*passage)
    assert logged["passage_number"] == 1
    [use] = ok("equipment", "show", INCUBATOR)["uses"]
    assert (use["action"], use["record"]) == ("passage.log", logged["passage_id"])
    assert use["calibration"] == recalibrated["calibration"]

    lot = ok(
        "lot", "formulate", culture, "--harvested", "2.9e7", "--viability", "93",
        "--vials", "4", "--cells-per-vial", "5e6", "--volume-ml", "2",
        "--at", at(FIRST_PASSAGE + 5), "--equipment", CABINET,
        *csf_vehicle(PATIENT_CODE, day(FIRST_PASSAGE + 5)),
    )["lot_id"]  # fmt: skip
    assert ok("lot", "show", lot)["deviations"] == []
    failed = _as(
        lab, QA, "equipment", "calibrate", CABINET, "--at", at(FIRST_PASSAGE + 6),
        "--result", "fail", "--certificate", "C-2402",
    )  # fmt: skip
    assert failed["calibration"]["result"] == "fail"
    assert [(use["action"], use["record"]) for use in failed["uses_since_last_pass"]] == [
        ("passage.log", logged["passage_id"]),
        ("lot.formulate", lot),
    ]
    [deviation] = failed["deviations"]
    assert (deviation["subject"], deviation["kind"], deviation["status"]) == (
        lot,
        "equipment",
        "open",
    )
    assert CABINET in deviation["description"]
    assert [found for found in ok("deviation", "list", "--open") if found["subject"] == lot] == [
        deviation
    ]
    assert ok("lot", "show", lot)["deviations"] == [deviation]
    assert ok("equipment", "show", CABINET)["calibration_state"] == "failed"


def test_cells_frozen_into_a_box_are_found_thawed_and_in_the_batch_record(
    floor: Floor, tmp_path: Path
) -> None:
    culture = floor.culture
    recalibrated = _recalibrate_incubator(floor, day(FIRST_PASSAGE - 1))["calibration"]
    ok(*_passage(culture, FIRST_PASSAGE, "4.2e6", "4.2e6", "--vessels", "5", "--area-cm2", "875"))
    harvest = ok(
        *_passage(
            culture, FIRST_PASSAGE + 5, "2.9e7", "2.6e7", "--vessels", "30", "--area-cm2", "5250"
        )
    )
    frozen = ok(
        "culture", "freeze", culture, "--cells-per-vial", "1e6", "--vials", "3",
        "--into", f"{BOX}:A1", "--medium", "CryoStor CS10",
        "--at", at(FIRST_PASSAGE + 5.05), "--equipment", CABINET,
    )  # fmt: skip
    vials = [vial["bank_vial_id"] for vial in frozen["bank_vials"]]
    assert vials == [f"{culture}-B0{number}" for number in (1, 2, 3)]
    assert frozen["passage_id"] == harvest["passage_id"]

    box = ok("storage", "show", BOX)
    assert [(item["item"], item["position"]) for item in box["positions"]] == list(
        zip(vials, ["A1", "A2", "A3"], strict=True)
    )
    grid = invoke("storage", "show", BOX)
    assert grid.exit_code == 0, grid.stderr
    assert "C1-B01 C1-B02 C1-B03" in plain(grid.stdout)
    found = ok("storage", "find", PATIENT_CODE)
    assert [(item["item"], item["place"], item["patient"]) for item in found] == [
        (vial, f"{BOX}:{position}", PATIENT_CODE)
        for vial, position in zip(vials, ["A1", "A2", "A3"], strict=True)
    ]

    child = ok(
        "bank", "thaw", vials[0], "--viability", "91", "--seeded", "1e6", "--vessels", "1",
        "--area-cm2", "175", "--at", at(FIRST_PASSAGE + 6), *USED,
    )["culture_id"]  # fmt: skip
    thawed = ok("culture", "show", child)
    assert thawed["kind"] == "thawed"
    assert thawed["parent"] == culture
    assert thawed["thawed_from"]["bank_vial_id"] == vials[0]
    assert thawed["thawed_from"]["passage_number"] == harvest["passage_number"] == 2
    assert thawed["cumulative_population_doublings"] == harvest["cumulative_population_doublings"]
    assert [item["position"] for item in ok("storage", "show", BOX)["positions"]] == ["A2", "A3"]
    grown = ok(
        *_passage(child, FIRST_PASSAGE + 11, "5e6", "5e6", "--vessels", "5", "--area-cm2", "875")
    )
    assert grown["passage_number"] == harvest["passage_number"] + 1
    assert [step["passage_number"] for step in ok("culture", "show", child)["passages"]] == [3]

    lot = ok(
        "lot", "formulate", child, "--harvested", "2e7", "--viability", "93",
        "--vials", "4", "--cells-per-vial", "4e6", "--volume-ml", "2",
        "--at", at(FIRST_PASSAGE + 16), "--equipment", CABINET,
        *csf_vehicle(PATIENT_CODE, day(FIRST_PASSAGE + 16)),
    )["lot_id"]  # fmt: skip
    retained = ok("sample", "retain", lot, "--count", "2", "--into", f"{BOX}:B1")
    out = tmp_path / "batch.pdf"
    ok("report", "batch", lot, "--out", str(out))
    record = _pdf_text(out)
    equipment = record[record.index("Equipment equipment kind") : record.index("Storage item")]
    cabinet = (f"{CABINET} biosafety cabinet {CABINET_SERIAL}", floor.cabinet_calibration)
    incubator = (
        f"{INCUBATOR} incubator {INCUBATOR_SERIAL}",
        f"certificate C-2388, due {recalibrated['due_on']}",
    )
    for (piece, calibration), step, made in (
        (cabinet, "passage.log", f"{culture}-P2"),
        (incubator, "passage.log", f"{culture}-P2"),
        (cabinet, "culture.freeze", vials[0]),
        (cabinet, "culture.thaw", child),
        (incubator, "culture.thaw", child),
        (incubator, "passage.log", f"{child}-P3"),
        (cabinet, "lot.formulate", lot),
    ):
        row = _row(equipment, f"{piece} {step} {made}")
        assert " pass " in row, row
        assert calibration in row, row
    assert vials[1] not in equipment  # frozen, but not into this lot's product
    storage = record[record.index("Storage item kind") :]
    for item, position in (
        (vials[1], "A2"),
        (vials[2], "A3"),
        *((sample["item"], sample["position"]) for sample in retained["samples"]),
    ):
        row = storage[storage.index(item) :]
        assert f"{BOX} {position}" in row[:150], (item, position, row)
    assert vials[0] in storage


def _row(section: str, start: str) -> str:
    """A row of the batch record's equipment table: from start to the next piece's id."""
    row = section[section.index(start) + len(start) :]
    ends = [row.index(piece) for piece in (CABINET, INCUBATOR) if piece in row]
    return start + row[: min(ends, default=len(row))]


def _pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())
