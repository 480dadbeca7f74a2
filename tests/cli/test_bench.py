"""The bench commands from the shell: wiring, JSON keys, messages and exit codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lims.timeutil import utcnow
from tests.support.cli import invoke, ok, refused
from tests.support.lab import Lab

COLLECTED = (utcnow() - timedelta(days=30)).replace(microsecond=0)
PASSAGE_KEYS = {
    "passage_id",
    "passage_number",
    "population_doublings",
    "cumulative_population_doublings",
    "doubling_time_hours",
    "fold_expansion",
    "seeding_density_per_cm2",
}


ADD_PATIENT = (
    *("patient", "add", "PT-0001", "--initials", "MR", "--birth-year", "1958"),
    *("--consent-date", (COLLECTED - timedelta(days=7)).date().isoformat()),
)


def at(days: float) -> str:
    return (COLLECTED + timedelta(days=days)).isoformat()


def passage(
    culture: str,
    harvested: str,
    seeded: str,
    *,
    days: float = 14,
    viability: str = "95",
    vessels: str = "5",
    area_cm2: str = "875",
) -> list[str]:
    """The words of `lims passage log` for one harvest and reseed."""
    return [
        "passage",
        "log",
        culture,
        "--harvested",
        harvested,
        "--viability",
        viability,
        "--seeded",
        seeded,
        "--vessels",
        vessels,
        "--area-cm2",
        area_cm2,
        "--at",
        at(days),
    ]


def two_passages(culture: str) -> None:
    """P1 and P2, three doublings apart in 72 hours."""
    ok(*passage(culture, "4e6", "4e6", area_cm2="3200"))
    ok(*passage(culture, "3.2e7", "1.6e7", days=17, area_cm2="3200"))


@pytest.fixture
def station(lab: Lab) -> Lab:
    lab.add_user("tom", "technician")
    lab.login("tom")
    return lab


@pytest.fixture
def din(station: Lab) -> str:
    ok(*ADD_PATIENT)
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


def test_patient_add_show_and_list(station: Lab) -> None:
    added = ok(
        "patient",
        "add",
        "PT-0001",
        "--initials",
        "MR",
        "--birth-year",
        "1958",
        "--consent-date",
        "2026-01-15",
        "--study",
        "MSC-ALS",
    )
    assert added["code"] == "PT-0001"
    shown = ok("patient", "show", "PT-0001")
    assert {key: shown[key] for key in added if key != "aspirates"} == {
        key: value for key, value in added.items() if key != "aspirates"
    }
    assert [p["code"] for p in ok("patient", "list")] == ["PT-0001"]
    table = invoke("patient", "show", "PT-0001")
    assert "MSC-ALS" in table.stdout
    refused(invoke(*ADD_PATIENT), 1, "already exists")
    refused(invoke(*ADD_PATIENT[:2], "PT-OOO1", *ADD_PATIENT[3:]), 1, "PT-0001")
    refused(invoke(*ADD_PATIENT[:2], "PT-0002", *ADD_PATIENT[3:-2]), 2, "--consent-date")
    refused(invoke("patient", "show", "PT-0404"), 3, "PT-0404")
    refused(invoke(*ADD_PATIENT[:2], "pt", *ADD_PATIENT[3:]), 2, "code")


def test_patient_correct_withdraw_and_show(din: str) -> None:
    corrected = ok(*("patient", "correct", "PT-0001", "--weight-kg", "70", "--reason", "weighed"))
    assert corrected["weight_kg"] == 70
    refused(invoke("patient", "correct", "PT-0001", "--reason", "nothing"), 2, "correction")
    refused(invoke("patient", "correct", "PT-0001", "--weight-kg", "70"), 2, "--reason")
    withdrawn = ok("patient", "withdraw", "PT-0001", "--reason", "consent withdrawn")
    assert withdrawn["withdrawn"] is True
    assert withdrawn["withdraw_reason"] == "consent withdrawn"
    refused(invoke("patient", "withdraw", "PT-0001", "--reason", "again"), 1, "already withdrew")
    shown = ok("patient", "show", "PT-0001")
    assert [a["din"] for a in shown["aspirates"]] == [din]
    assert shown["aspirates"][0]["nonconforming"] is False
    assert {"cultures", "lots", "vials", "deviations"} <= set(shown)
    assert "CONSENT WITHDRAWN" in invoke("patient", "show", "PT-0001").stdout
    assert "WITHDRAWN" in invoke("patient", "list").stdout
    refused(
        invoke("culture", "start", din, "--mnc", "2e8", "--vessels", "5", "--area-cm2", "875"),
        1,
        "PT-0001 withdrew consent",
    )


def test_a_nonconforming_aspirate_is_received_only_with_the_flag(din: str) -> None:
    base = ["aspirate", "receive", "--patient", "PT-0001", "--volume-ml", "30"]
    base += ["--collected-at", at(0), "--received-at", at(3)]
    refused(invoke(*base), 2, "nonconforming", "--nonconforming --reason")
    kept = ok(*base, "--nonconforming", "--reason", "the only sample")
    assert kept["nonconforming"] is True
    table = invoke("aspirate", "show", kept["din"]).stdout
    assert "NONCONFORMING" in table
    [deviation] = ok("deviation", "list")
    assert deviation["subject"] == kept["din"]
    assert kept["din"] in invoke("deviation", "list").stdout


def test_aspirate_receipt_gives_the_din_three_ways(din: str) -> None:
    shown = ok("aspirate", "show", din)
    assert shown["din"] == din
    assert len(shown["din_check"]) == 1
    assert shown["din_display"] == f"{din[:5]} {din[5:7]} {din[7:]} {shown['din_check']}"
    assert shown["site"] == "posterior iliac crest"
    assert ok("aspirate", "show", shown["din_display"])["din"] == din
    assert [a["din"] for a in ok("aspirate", "list")] == [din]
    wrong = "0" if shown["din_check"] != "0" else "1"
    refused(invoke("aspirate", "show", din + wrong), 2, "din", "check character")
    refused(invoke("aspirate", "show", "A9999 26 000999"), 3, "no aspirate")


def test_csf_is_received_as_a_donation_of_its_own_and_starts_no_culture(din: str) -> None:
    base = ["aspirate", "receive", "--patient", "PT-0001", "--material", "csf"]
    base += ["--collected-at", at(1), "--received-at", at(1.05)]
    refused(invoke(*base, "--volume-ml", "31"), 2, "volume-ml", "to 30")
    refused(invoke(*base, "--volume-ml", "10", "--tnc", "6e8"), 2, "tnc", "not for CSF")
    refused(invoke(*base, "--volume-ml", "10", "--material", "liquor"), 2, "material")
    csf = ok(*base, "--volume-ml", "10", "--temperature-c", "4")
    assert int(csf["din"][-6:]) == int(din[-6:]) + 1  # the same sequence
    assert (csf["material"], csf["site"], csf["volume_left_ml"], csf["drawn_by"]) == (
        "csf",
        "lumbar puncture",
        10,
        [],
    )
    assert ok("aspirate", "show", din)["material"] == "bone_marrow"
    assert [a["material"] for a in ok("aspirate", "list")] == ["bone_marrow", "csf"]
    shown = " ".join(invoke("aspirate", "show", csf["din"]).stdout.split())
    assert "CSF" in shown
    assert "10 mL" in shown
    refused(
        invoke(
            "culture", "start", csf["din"], "--mnc", "2.4e8", "--vessels", "5", "--area-cm2", "875"
        ),
        1,
        csf["din_display"],
        "is CSF, not bone marrow",
    )
    assert ok("culture", "list") == []


def test_aspirate_refusals_name_the_field(din: str) -> None:
    base = ["aspirate", "receive", "--patient", "PT-0001", "--collected-at", at(0)]
    base += ["--received-at", at(0.1)]
    refused(invoke(*base, "--volume-ml", "0"), 2, "volume-ml")
    refused(invoke(*base, "--volume-ml", "500"), 2, "volume-ml", "to 100")
    refused(invoke(*base, "--volume-ml", "30", "--temperature-c", "37"), 2, "temperature-c")
    refused(invoke(*base, "--volume-ml", "30", "--received-at", at(-1)), 2, "received-at")
    refused(invoke(*base[:3], "PT-0404", *base[4:], "--volume-ml", "30"), 3, "PT-0404")


def test_reagents_are_added_listed_and_checked_at_each_step(culture: str) -> None:
    added = ok("reagent", "add", "TrypLE Express", "--lot", "2409B", "--expires", "2099-12-31")
    assert (added["name"], added["lot"], added["expired"]) == ("TrypLE Express", "2409B", False)
    ok("reagent", "add", "Old serum", "--lot", "S1", "--expires", at(1)[:10])
    listed = {r["lot"]: r["expired"] for r in ok("reagent", "list")}
    assert listed == {"2409B": False, "S1": True}
    base = passage(culture, "4e6", "4e6")
    refused(invoke(*base, "--reagent", "Old serum:S1"), 1, "expired")
    refused(invoke(*base, "--reagent", "Nothing:0"), 3, "no reagent lot")
    logged = ok(*base, "--reagent", "TrypLE Express:2409B")
    assert logged["reagents"] == ["TrypLE Express:2409B"]
    assert ok("culture", "show", culture)["passages"][0]["reagents"] == ["TrypLE Express:2409B"]


def test_culture_start_gives_its_id_and_refuses_a_wrong_start(din: str, culture: str) -> None:
    assert culture == f"{din}-C1"
    second = ok(
        "culture",
        "start",
        din,
        "--mnc",
        "1e8",
        "--vessels",
        "1",
        "--area-cm2",
        "175",
        "--at",
        at(1),
    )
    assert second["culture_id"] == f"{din}-C2"
    assert second["kind"] == "primary"
    both = invoke(
        "culture",
        "start",
        din,
        "--mnc",
        "1e8",
        "--seeded",
        "1e6",
        "--vessels",
        "1",
        "--area-cm2",
        "175",
    )
    refused(both, 2, "--mnc", "--seeded")
    refused(
        invoke(
            "culture",
            "start",
            "A9999 26 000777",
            "--mnc",
            "1e8",
            "--vessels",
            "1",
            "--area-cm2",
            "175",
        ),
        3,
    )
    assert [c["culture_id"] for c in ok("culture", "list")] == [culture, f"{din}-C2"]


def test_passage_log_prints_the_derived_values_under_the_issue_keys(culture: str) -> None:
    first = ok(*passage(culture, "4000000", "4e6", area_cm2="800"))
    assert set(first) >= PASSAGE_KEYS
    assert first["population_doublings"] is None
    second = ok(
        *passage(culture, "3.2e7", "1.6e7", days=17, vessels="20", area_cm2="3200"),
        "--confluence",
        "85",
    )
    assert second["passage_id"] == f"{culture}-P2"
    assert second["passage_number"] == 2
    assert second["population_doublings"] == pytest.approx(3.0)
    assert second["cumulative_population_doublings"] == pytest.approx(3.0)
    assert second["doubling_time_hours"] == pytest.approx(24.0)
    assert second["fold_expansion"] == pytest.approx(8.0)
    assert second["seeding_density_per_cm2"] == pytest.approx(5000)
    shown = ok("culture", "show", culture)
    assert [{k: p[k] for k in PASSAGE_KEYS} for p in shown["passages"]] == [
        {k: first[k] for k in PASSAGE_KEYS},
        {k: second[k] for k in PASSAGE_KEYS},
    ]


def test_a_flagged_passage_is_saved_and_shown_loudly(culture: str) -> None:
    logged = invoke(*passage(culture, "4e6", "4e6", viability="72"))
    assert logged.exit_code == 0, logged.stderr
    assert "FLAGGED" in logged.stdout
    assert "viability 72 % is below 80 %" in logged.stdout
    shown = ok("culture", "show", culture)
    assert [(d["kind"], d["status"]) for d in shown["deviations"]] == [("low_viability", "open")]
    assert shown["open_deviations"] == 1


def test_passage_refusals_exit_2_and_unknown_culture_exits_3(culture: str) -> None:
    refused(invoke(*passage(culture, "1e6", "2e6")), 2, "seeded")
    refused(invoke(*passage(culture, "-3", "1")), 2, "harvested")
    refused(invoke(*passage(culture, "1e6", "1e6", viability="140")), 2, "viability")
    refused(invoke(*passage(f"{culture[:-1]}7", "1e6", "1e6")), 3)


def test_passage_correct_needs_a_reason_and_recomputes(culture: str) -> None:
    two_passages(culture)
    ok(*passage(culture, "6.4e7", "1.6e7", days=19, area_cm2="3200"))
    no_reason = invoke("passage", "correct", f"{culture}-P2", "--seeded", "8e6")
    refused(no_reason, 2, "--reason")
    corrected = ok("passage", "correct", f"{culture}-P2", "--seeded", "8e6", "--reason", "misread")
    assert corrected["changed"]["seeded"] == {"old": 16_000_000, "new": 8_000_000}
    assert corrected["recomputed"] == [f"{culture}-P3"]
    assert ok("culture", "show", culture)["passages"][2]["population_doublings"] == pytest.approx(
        3.0
    )
    table = invoke("passage", "correct", f"{culture}-P3", "--viability", "94", "--reason", "typo")
    assert table.exit_code == 0
    assert "Corrected" in table.stdout


def test_culture_show_draws_the_growth_curve(culture: str) -> None:
    two_passages(culture)
    shown = invoke("culture", "show", culture)
    assert shown.exit_code == 0
    assert "Growth: cumulative population doublings" in shown.stdout
    assert "days since the culture started" in shown.stdout
    assert "\x1b[" not in shown.stdout  # no colour codes when not on a terminal


def test_culture_project_prints_its_assumptions_or_refuses(culture: str) -> None:
    refused(invoke("culture", "project", culture, "--target-cells", "1e8"), 1, "too little data")
    two_passages(culture)
    projected = ok("culture", "project", culture, "--target-cells", "1.28e8")
    assert projected["passages_needed"] == 1
    assert projected["doublings_needed"] == pytest.approx(3.0)
    assert projected["assumptions"]
    table = invoke("culture", "project", culture, "--target-cells", "1.28e8")
    assert "Assumptions:" in table.stdout
    refused(invoke("culture", "project", culture, "--target-cells", "many"), 2, "target-cells")


def test_bench_commands_need_a_session_and_the_right_role(station: Lab) -> None:
    invoke("logout")
    refused(invoke("patient", "list"), 4, "not logged in")
    station.login("admin")
    refused(invoke(*ADD_PATIENT), 4, "record bench work")
    assert invoke("patient", "list").exit_code == 0  # every role may read


def test_a_receipt_typed_late_needs_its_reason_and_shows_it(station: Lab) -> None:
    ok(*ADD_PATIENT)
    station.set_site(records={"late_entry_hours": 24})
    station.login("tom")
    base = ["aspirate", "receive", "--patient", "PT-0001", "--volume-ml", "30"]
    base += ["--collected-at", at(0), "--received-at", at(0.1)]
    refused(invoke(*base), 2, "late-reason")
    received = ok(*base, "--late-reason", "typed from the paper record")
    assert received["late_entry"] is True
    assert received["late_reason"] == "typed from the paper record"
    assert "entered_at" in received
    assert "late entry" in invoke("aspirate", "show", received["din"]).stdout
    assert "late entry" in invoke("aspirate", "list").stdout
