"""Steps taking their cells from an imported count, from the shell: wiring, JSON, messages,
exit codes, and where each number came from in `culture show`, `lot show` and `aspirate show`.

The rules themselves are tested through the services (tests/services/test_count_use.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lims.timeutil import show_time, utcnow
from tests.support.cli import csf_vehicle, invoke, ok, plain, refused
from tests.support.counts import file_name_of, imported, sha256_of
from tests.support.lab import Lab

COLLECTED = (utcnow() - timedelta(days=30)).replace(microsecond=0)
PATIENT = "PT-0001"
RESEED = ("--seeded", "4e6", "--vessels", "5", "--area-cm2", "875")
INSTRUMENT = "Beckman Coulter Vi-CELL BLU S/N VB-20231234"


def moment(days: float) -> datetime:
    return COLLECTED + timedelta(days=days)


def at(days: float) -> str:
    return moment(days).isoformat()


def _bench(lab: Lab) -> dict[str, str]:
    """tom at the station, PT-0001 consenting, an aspirate received and a primary culture."""
    lab.add_user("tom", "technician")
    lab.login("tom")
    consented = (COLLECTED - timedelta(days=7)).date().isoformat()
    ok(
        "patient",
        "add",
        PATIENT,
        "--initials",
        "MR",
        "--birth-year",
        "1958",
        "--consent-date",
        consented,
    )
    din = ok(
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
    )["din"]
    culture = ok(
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
    )["culture_id"]
    return {"din": din, "culture": culture}


@pytest.fixture
def bench(lab: Lab) -> dict[str, str]:
    return lab.built("count use at the shell", lambda: _bench(lab))


def count(lab: Lab, days: float, viable_per_ml: float = 2.1e6, **values: Any) -> str:
    return imported(
        lab.scenario, viable_per_ml, values.pop("viability", 95), at=moment(days), **values
    )


def passage_log(culture: str, *options: str, days: float = 14) -> tuple[str, ...]:
    return ("passage", "log", culture, *RESEED, "--at", at(days), *options)


def test_a_passage_from_a_count_and_its_provenance_in_culture_show(
    lab: Lab, bench: dict[str, str]
) -> None:
    culture, code = bench["culture"], count(lab, 14)
    logged = ok(*passage_log(culture, "--count", code, "--suspension-ml", "2"))
    assert (logged["count_id"], logged["harvested"], logged["viability"]) == (code, 4_200_000, 95)
    assert logged["count"]["file_sha256"] == sha256_of(lab.scenario, code)
    typed = ok(*passage_log(culture, "--harvested", "3.2e7", "--viability", "93", days=18))
    assert (typed["count_id"], typed["count"]) == (None, None)

    shown = ok("culture", "show", culture)
    first, second = shown["passages"]
    assert first["count"] == {
        "count_id": code,
        "instrument": "vicell-blu",
        "serial": "VB-20231234",
        "file_name": file_name_of(lab.scenario, code),
        "file_sha256": sha256_of(lab.scenario, code),
        "suspension_ml": 2,
        "analysed_at": moment(14).isoformat(),
        "analysed_date_only": False,
        "viable_per_ml": 2.1e6,
        "total_per_ml": None,
    }
    assert (second["count_id"], second["count"]) == (None, None)
    assert (shown["count_id"], shown["count"]) == (None, None)  # its start was typed

    table = invoke("culture", "show", culture)
    assert table.exit_code == 0, table.stderr
    text = plain(table.stdout)
    sha = sha256_of(lab.scenario, code)
    assert f"{code} " in text  # the passages' table: the count, or typed
    assert " typed " in text
    assert f"count {code}: {INSTRUMENT}, file {file_name_of(lab.scenario, code)}" in text
    assert f"SHA-256 {sha[:12]}…" in text
    assert sha not in text  # shortened where people read it
    assert "2,100,000 viable cells/mL × 2 mL" in text
    assert "plated cells from typed at the bench" in text


def test_typed_numbers_and_a_count_are_one_or_the_other(lab: Lab, bench: dict[str, str]) -> None:
    culture, code = bench["culture"], count(lab, 14)
    taking = ("--count", code, "--suspension-ml", "2")
    refused(
        invoke(*passage_log(culture, *taking, "--harvested", "4e6")),
        2,
        "harvested: not with --count",
    )
    refused(
        invoke(*passage_log(culture, *taking, "--viability", "95")),
        2,
        "viability: not with --count",
    )
    refused(
        invoke(*passage_log(culture)),
        2,
        "harvested/viability: required",
        "--harvested N --viability PCT",
        "--count CNT-… --suspension-ml V",
    )
    refused(invoke(*passage_log(culture, "--count", code)), 2, "suspension-ml: required")
    refused(
        invoke(
            *passage_log(culture, "--harvested", "4e6", "--viability", "95", "--suspension-ml", "2")
        ),
        2,
        "suspension-ml: only with --count",
    )
    refused(
        invoke(*passage_log(culture, "--count", "CNT-12", "--suspension-ml", "2")),
        2,
        "count: must be a count id such as CNT-000123",
    )
    refused(
        invoke(*passage_log(culture, "--count", code, "--suspension-ml", "9000")),
        2,
        "suspension-ml: must be a number of mL from 0.01 to 5000",
    )
    refused(
        invoke(*passage_log(culture, "--count", "CNT-999999", "--suspension-ml", "2")),
        3,
        "no count CNT-999999",
    )
    assert ok("culture", "show", culture)["passages"] == []


def test_a_count_used_stale_or_not_ok_is_refused_with_exit_1(
    lab: Lab, bench: dict[str, str]
) -> None:
    culture = bench["culture"]
    code, stale = count(lab, 14), count(lab, 15)
    warned = count(lab, 14, status="Bubbles detected")
    logged = ok(*passage_log(culture, "--count", code, "--suspension-ml", "2"))
    taking = ("--suspension-ml", "2")
    refused(
        invoke(*passage_log(culture, "--count", code, *taking, days=15)),
        1,
        f"count {code} is already used by passage {logged['passage_id']}",
    )
    refused(
        invoke(*passage_log(culture, "--count", warned, *taking, days=15)),
        1,
        "reported 'Bubbles detected'",
    )
    line = refused(
        invoke(*passage_log(culture, "--count", stale, *taking, days=16)),
        1,
        "more than 12 h after it",
        "counts.max_age_hours",
    )
    zone = lab.settings.tz
    assert f"analysed at {show_time(moment(15), zone)}" in line
    assert f"the step at {show_time(moment(16), zone)}" in line
    line = refused(
        invoke(
            "passage", "correct", logged["passage_id"], "--viability", "90", "--reason", "recount"
        ),
        1,
        f"came from count {code}",
    )
    assert f"lims deviation open --culture {culture}" in line


def test_a_culture_started_from_a_count(lab: Lab, bench: dict[str, str]) -> None:
    code = count(lab, 0.15, viable_per_ml=4.8e7, viability=88)
    start = (
        "culture",
        "start",
        bench["din"],
        "--vessels",
        "5",
        "--area-cm2",
        "875",
        "--at",
        at(0.2),
    )
    refused(invoke(*start, "--count", code, "--suspension-ml", "5"), 2, "kind: required")
    refused(
        invoke(
            *start, "--count", code, "--suspension-ml", "5", "--kind", "primary", "--mnc", "2.4e8"
        ),
        2,
        "mnc: not with --count",
    )
    refused(invoke(*start, "--mnc", "2.4e8", "--kind", "primary"), 2, "kind: only with --count")
    started = ok(*start, "--count", code, "--suspension-ml", "5", "--kind", "primary")
    assert (started["count_id"], started["kind"], started["cells_plated"]) == (
        code,
        "primary",
        240_000_000,
    )
    shown = invoke("culture", "show", started["culture_id"])
    assert f"plated cells from count {code}: {INSTRUMENT}" in plain(shown.stdout)


def test_a_lot_formulated_from_a_count_and_its_provenance_in_lot_show(
    lab: Lab, bench: dict[str, str]
) -> None:
    culture = bench["culture"]
    ok(*passage_log(culture, "--harvested", "4e6", "--viability", "95"))
    code = count(lab, 20, viable_per_ml=1.1e6, viability=93.5)
    formulate = (
        "lot",
        "formulate",
        culture,
        "--vials",
        "4",
        "--cells-per-vial",
        "5e6",
        "--volume-ml",
        "2",
        "--at",
        at(20),
        *csf_vehicle(PATIENT, COLLECTED + timedelta(days=20)),
    )
    refused(
        invoke(*formulate, "--count", code, "--suspension-ml", "20", "--harvested", "2.2e7"),
        2,
        "harvested: not with --count",
    )
    lot = ok(*formulate, "--count", code, "--suspension-ml", "20")
    assert (lot["count_id"], lot["harvested"], lot["viability"]) == (code, 22_000_000, 93.5)
    shown = ok("lot", "show", lot["lot_id"])
    assert shown["count"]["file_sha256"] == sha256_of(lab.scenario, code)
    assert shown["culture"]["passages"][0]["count_id"] is None
    text = plain(invoke("lot", "show", lot["lot_id"]).stdout)
    assert f"final harvest from count {code}: {INSTRUMENT}" in text
    assert "1,100,000 viable cells/mL × 20 mL" in text
    line = refused(
        invoke("lot", "correct", lot["lot_id"], "--harvested", "2e7", "--reason", "recount"),
        1,
        f"came from count {code}",
    )
    assert f"lims deviation open --lot {lot['lot_id']}" in line


def test_an_aspirate_received_with_a_count_of_its_total_cells(
    lab: Lab, bench: dict[str, str]
) -> None:
    viable_only = count(lab, 1)
    with_total = count(lab, 1, viable_per_ml=1.2e7, total_per_ml=2.05e7)
    receive = (
        "aspirate",
        "receive",
        "--patient",
        PATIENT,
        "--collected-at",
        at(0.9),
        "--received-at",
        at(1),
        "--volume-ml",
        "30",
    )
    refused(
        invoke(*receive, "--count", viable_only, "--suspension-ml", "30"),
        1,
        "has no total cell density",
    )
    refused(
        invoke(*receive, "--count", with_total, "--suspension-ml", "30", "--tnc", "6e8"),
        2,
        "tnc: not with --count",
    )
    received = ok(*receive, "--count", with_total, "--suspension-ml", "30")
    assert (received["count_id"], received["tnc"]) == (with_total, 615_000_000)
    shown = invoke("aspirate", "show", received["din"])
    text = plain(shown.stdout)
    assert f"TNC from count {with_total}: {INSTRUMENT}" in text
    assert "20,500,000 total cells/mL × 30 mL" in text


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        ("UPDATE cell_counts SET used_by = 'passage elsewhere'", "used_by"),
        ("UPDATE passages SET count_id = NULL", "count_id of its step"),
    ],
)
def test_audit_verify_names_a_count_or_a_step_edited_behind_the_trail(
    lab: Lab, bench: dict[str, str], statement: str, column: str
) -> None:
    code = count(lab, 14)
    logged = ok(*passage_log(bench["culture"], "--count", code, "--suspension-ml", "2"))
    assert ok("audit", "verify")["disagreement"] is None
    lab.scenario.run(lambda uow: uow.session.execute(text(statement)))
    verified = invoke("audit", "verify", "--json")
    assert verified.exit_code == 1, verified.stderr
    assert json.loads(verified.stdout)["disagreement"] == {
        "table": "cell_counts",
        "id": code,
        "column": column,
    }
    line = refused(invoke("audit", "verify"), 1, f"cell_counts {code} {column}")
    assert logged["passage_id"] not in line  # no login: where, never what


def test_count_show_gives_the_volume_a_step_took_it_at_as_typed(
    lab: Lab, bench: dict[str, str]
) -> None:
    code = count(lab, 14, 2e4)
    ok(*passage_log(bench["culture"], "--count", code, "--suspension-ml", "1234.5678"))
    shown = invoke("count", "show", code)
    assert shown.exit_code == 0, shown.stderr
    assert "1234.5678" in plain(shown.stdout)
