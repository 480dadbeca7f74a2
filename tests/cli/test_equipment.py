"""The equipment register and --equipment from the shell: wiring, JSON keys, tables,
messages and exit codes (issue 15, item 1). The rules are tested through the services
(tests/services/test_equipment.py, test_equipment_use.py)."""

from __future__ import annotations

import pytest

from lims.timeutil import utcnow
from tests.support.bench import Bench, day
from tests.support.cli import invoke, ok, plain, refused
from tests.support.counts import imported
from tests.support.equipment import local_day
from tests.support.instrument_files import BLU
from tests.support.lab import Lab

RESEED = ("--seeded", "4e6", "--vessels", "5", "--area-cm2", "875")
HARVEST = ("--harvested", "4e6", "--viability", "95")


class Floor(Bench):
    """tom at the bench with a culture growing; quinn (QA) keeps the register."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        lab.add_user("quinn", "qa")
        lab.login("tom")
        self.patient()
        self.culture_id = self.culture(self.aspirate().din.code).summary.culture_id


@pytest.fixture
def floor(lab: Lab) -> Floor:
    return lab.built("equipment floor", lambda: Floor(lab))


def as_qa(floor: Floor, *args: str) -> dict:
    floor.lab.login("quinn")
    try:
        return ok(*args)  # type: ignore[no-any-return]
    finally:
        floor.lab.login("tom")


def test_a_piece_is_added_calibrated_and_listed(floor: Floor) -> None:
    refused(invoke("equipment", "add", "INC-01", "--kind", "incubator", "--name", "x"), 4)
    added = as_qa(
        floor,
        "equipment",
        "add",
        "inc-01",
        "--kind",
        "incubator",
        "--name",
        "Heracell 240i",
        "--serial",
        "42178653",
        "--calibration-interval-days",
        "365",
    )
    assert added["equipment_id"] == "INC-01"
    assert set(added) == {
        "equipment_id",
        "kind",
        "name",
        "serial",
        "location",
        "calibration_interval_days",
        "status",
        "last_calibration",
        "calibration_state",
        "due_on",
        "due_in_days",
        "added_at",
        "added_by",
    }
    assert (added["calibration_state"], added["last_calibration"]) == ("never_calibrated", None)
    on = local_day(day(1), floor.lab).isoformat()
    recorded = as_qa(floor, "equipment", "calibrate", "INC-01", "--at", on, "--certificate", "C-1")
    assert recorded["calibration"]["calibrated_date_only"] is True
    assert recorded["calibration"]["certificate"] == "C-1"
    assert recorded["uses_since_last_pass"] == []
    assert recorded["deviations"] == []
    assert recorded["last_pass_at"] is None
    [listed] = ok("equipment", "list")
    assert listed["due_on"] == recorded["calibration"]["due_on"]
    assert listed["last_calibration"] == recorded["calibration"]
    table = plain(invoke("equipment", "list").stdout)
    assert "INC-01" in table
    assert f"{on} (pass)" in table
    assert "in calibration" in table or "due in" in table


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("add", "INC 1", "--kind", "incubator", "--name", "x"), 2, ("equipment",)),
        (("add", "INC-9", "--kind", "fridge", "--name", "x"), 2, ("kind", "incubator")),
        (("add", "INC-9", "--kind", "incubator", "--name", "x", "--calibration-interval-days",
          "0"), 2, ("calibration-interval-days",)),
        (("add", "BSC-01", "--kind", "incubator", "--name", "x"), 1, ("already in the register",)),
        (("calibrate", "NOPE", "--at", "2026-01-01", "--due", "2026-02-01"), 3, ("NOPE",)),
        (("calibrate", "BSC-01", "--at", "2026-01-01", "--due", "2025-12-31"), 2, ("due",)),
        (("calibrate", "BSC-01", "--at", "2026-01-01"), 2, ("due", "required")),
        (("calibrate", "BSC-01", "--at", "2999-01-01", "--due", "2999-02-01"), 2, ("at",)),
        (("calibrate", "BSC-01", "--at", "yesterday", "--due", "2026-02-01"), 2, ("at",)),
        (("calibrate", "BSC-01", "--at", "2026-01-01", "--due", "2026-02-01", "--result",
          "ok"), 2, ("result",)),
        (("list", "--due-within-days", "-1"), 2, ("due-within-days",)),
        (("list", "--kind", "oven"), 2, ("kind",)),
        (("show", "BSC-99"), 3, ("no equipment BSC-99",)),
        (("return", "BSC-01", "--reason", "x"), 1, ("only equipment out of service",)),
    ],
)  # fmt: skip
def test_each_command_refuses_in_one_line_with_its_exit_code(
    floor: Floor, args: tuple[str, ...], code: int, words: tuple[str, ...]
) -> None:
    as_qa(floor, "equipment", "add", "BSC-01", "--kind", "biosafety_cabinet", "--name", "MSC 1.2")
    floor.lab.login("quinn")
    refused(invoke("equipment", *args), code, *words)


def test_anyone_takes_a_piece_out_of_service_and_qa_returns_it(floor: Floor) -> None:
    as_qa(floor, "equipment", "add", "INC-01", "--kind", "incubator", "--name", "Heracell")
    out = ok("equipment", "out-of-service", "INC-01", "--reason", "CO2 alarm")
    assert out["status"] == "out_of_service"
    assert "out of service" in plain(invoke("equipment", "show", "INC-01").stdout)
    refused(invoke("equipment", "return", "INC-01", "--reason", "fixed"), 4)
    refused(invoke("equipment", "retire", "INC-01", "--reason", "old"), 4)
    result = invoke("passage", "log", floor.culture_id, *HARVEST, *RESEED, "--equipment", "INC-01")
    refused(result, 1, "INC-01 is out of service")
    assert as_qa(floor, "equipment", "return", "INC-01", "--reason", "seal replaced")["status"] == (
        "active"
    )
    assert as_qa(floor, "equipment", "retire", "INC-01", "--reason", "replaced")["status"] == (
        "retired"
    )


def test_a_passage_names_its_equipment_and_the_piece_shows_it(floor: Floor) -> None:
    as_qa(floor, "equipment", "add", "BSC-01", "--kind", "biosafety_cabinet", "--name", "MSC")
    as_qa(floor, "equipment", "add", "INC-01", "--kind", "incubator", "--name", "Heracell")
    due = local_day(utcnow(), floor.lab).isoformat()
    as_qa(floor, "equipment", "calibrate", "INC-01", "--at", day(1).isoformat(), "--due", due)
    line = refused(invoke("passage", "log", floor.culture_id, *HARVEST, *RESEED), 2)
    assert line == (
        "error: equipment: passage log needs a biosafety_cabinet and an incubator: name each "
        "with --equipment ID (in the register: BSC-01, INC-01)"
    )
    refused(
        invoke(
            "passage", "log", floor.culture_id, *HARVEST, *RESEED,
            "--equipment", "BSC-01", "--equipment", "INC-02",
        ),
        3,
        "no equipment INC-02 in the register",
    )  # fmt: skip
    logged = ok(
        "passage", "log", floor.culture_id, *HARVEST, *RESEED,
        "--equipment", "BSC-01", "--equipment", "inc-01",
    )  # fmt: skip
    shown = ok("equipment", "show", "INC-01")
    [use] = shown["uses"]
    assert set(use) == {
        "equipment_id",
        "kind",
        "name",
        "serial",
        "action",
        "record_type",
        "record",
        "culture_id",
        "lot_id",
        "count_taken_by",
        "used_at",
        "recorded_by",
        "calibration",
    }
    assert (use["record"], use["culture_id"], use["recorded_by"]) == (
        logged["passage_id"],
        floor.culture_id,
        "tom",
    )
    assert use["calibration"]["due_on"] == due
    [calibration] = shown["calibrations"]
    assert calibration["result"] == "pass"
    table = plain(invoke("equipment", "show", "INC-01").stdout)
    assert logged["passage_id"] in table
    assert f"due {due}" in table
    assert "due today" in table


def test_a_failed_calibration_prints_the_uses_and_the_deviations(floor: Floor) -> None:
    as_qa(floor, "equipment", "add", "INC-01", "--kind", "incubator", "--name", "Heracell")
    ok("passage", "log", floor.culture_id, *HARVEST, *RESEED, "--at", day(14).isoformat(),
       "--equipment", "INC-01")  # fmt: skip
    floor.lab.login("quinn")
    result = invoke(
        "equipment", "calibrate", "INC-01", "--at", day(15).isoformat(), "--due",
        local_day(day(60), floor.lab).isoformat(), "--result", "fail",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    printed = plain(result.stdout)
    assert "FAILED: 1 step used it ever (no calibration of it passed)" in printed
    assert f"{floor.culture_id}-P1" in printed
    assert f"opened on {floor.culture_id}" in printed
    [deviation] = ok("deviation", "list", "--open")
    assert (deviation["kind"], deviation["subject"]) == ("equipment", floor.culture_id)


def test_count_import_names_equipment_and_refuses_an_unknown_one(floor: Floor) -> None:
    refused(invoke("count", "import", str(BLU), "--equipment", "CC-09"), 3, "CC-09")
    assert ok("count", "list") == []
    as_qa(floor, "equipment", "add", "BSC-01", "--kind", "biosafety_cabinet", "--name", "MSC")
    counts = ok("count", "import", str(BLU), "--equipment", "BSC-01")
    uses = ok("equipment", "show", "BSC-01")["uses"]
    assert sorted(use["record"] for use in uses) == sorted(c["count_id"] for c in counts)
    code = imported(floor.scenario, 1e6, 95, at=day(14))
    assert code not in {use["record"] for use in ok("equipment", "show", "BSC-01")["uses"]}


def test_the_required_kinds_are_a_site_setting_set_key_by_key(floor: Floor) -> None:
    floor.lab.login("admin")
    changed = ok(
        "site", "set", "equipment.required.qc_record", '["cell_counter"]', "--reason", "SOP-12"
    )
    assert changed["settings"]["equipment.required.qc_record"] == ["cell_counter"]
    assert changed["settings"]["equipment.required.passage_log"] == [
        "biosafety_cabinet",
        "incubator",
    ]
    ok("site", "set", "equipment.required.passage_log", "[]", "--reason", "SOP-12")
    shown = ok("config", "show")["settings"]
    assert shown["equipment.required.qc_record"]["value"] == ["cell_counter"]
    assert shown["equipment.required.passage_log"]["value"] == []
    assert shown["equipment.required.qc_record"]["source"].startswith("site record, version")
    refused(
        invoke("site", "set", "equipment.required.qc", "[]", "--reason", "x"),
        2,
        "equipment.required.qc",
        "a step must be one of",
        "'qc'",
    )
    refused(
        invoke("site", "set", "equipment.required.lot_formulate", '["oven"]', "--reason", "x"),
        2,
        "an equipment kind must be one of",
    )
    refused(invoke("site", "set", "equipment.name.x", "1", "--reason", "x"), 2, "SECTION.TABLE.KEY")
    entry = [
        e for e in floor.scenario.audit_trail() if e.action == "site.set" and e.reason == "SOP-12"
    ][-1]
    assert entry.old == {"equipment.required.passage_log": ["biosafety_cabinet", "incubator"]}
    assert entry.new == {"equipment.required.passage_log": []}
