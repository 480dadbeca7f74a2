"""lims.scenario: the builder the demo, the benchmarks and the tests' labs stand on, step by step.

Each test stops where a caller of the builder stops (a culture growing, a lot
awaiting QC, a released lot with its labels) and checks that the step did what
its name and the reference values say, on the scenario's clock.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from lims.domain.payload import decode
from lims.scenario import (
    FORMULATION,
    PASSAGES,
    PASSING,
    START_REAGENTS,
    Clock,
    Scenario,
    staff,
)
from lims.services import aspirates, cultures, lots, qc, sessions
from lims.views.bench import CultureDetail
from tests.support.lab import PASSWORD, Lab

OTHER_PATIENT = "PT-0002"


@pytest.fixture
def scenario(lab: Lab) -> Scenario:
    """The lab on the demo's clock, with its technician (logged in), QA and reagent lots."""
    _, *team = staff(PASSWORD)
    lab.scenario.add_people(*team)
    scenario = lab.scenario.on(Clock.formulating_yesterday())
    scenario.login("tech")
    scenario.add_reagents()
    return scenario


@pytest.fixture
def growing(scenario: Scenario) -> CultureDetail:
    return scenario.primary_culture()


@pytest.fixture
def formulated(scenario: Scenario, growing: CultureDetail) -> str:
    """A lot of the culture passaged three times, as the demo's: its id, awaiting QC."""
    culture = growing.summary.culture_id
    scenario.expand(culture, 3)
    return scenario.formulate(culture).summary.lot_id


def test_a_primary_culture_starts_from_a_fresh_aspirate_on_the_clock(
    scenario: Scenario, growing: CultureDetail
) -> None:
    clock = scenario.clock
    summary = growing.summary
    assert (summary.kind, summary.status, summary.patient) == ("primary", "active", "PT-0001")
    assert (summary.started_at, summary.cells_plated) == (clock.started, 240_000_000)
    assert growing.reagents == list(START_REAGENTS)
    aspirate = scenario.read(aspirates.show_aspirate, din=summary.din.code)
    assert (aspirate.collected_at, aspirate.received_at) == (clock.collected, clock.received)


def test_a_second_culture_of_a_known_patient_registers_the_patient_once(
    scenario: Scenario, growing: CultureDetail
) -> None:
    again = scenario.primary_culture(growing.summary.patient)
    other = scenario.primary_culture(OTHER_PATIENT)

    assert again.summary.din != growing.summary.din
    assert other.summary.patient == OTHER_PATIENT
    actions = [entry.action for entry in scenario.audit_trail()]
    assert actions.count("patient.create") == 2
    assert actions.count("culture.start") == 3


def test_the_passage_schedule_grows_the_culture_and_breaks_no_bench_limit(
    scenario: Scenario,
) -> None:
    scenario = scenario.on(Clock.days_ago(40))  # its last passage is on day 32
    culture = scenario.primary_culture().summary.culture_id
    logged = scenario.expand(culture, len(PASSAGES))

    assert [passage.passage_number for passage in logged] == [1, 2, 3, 4, 5]
    assert [passage.harvested_at for passage in logged] == [
        scenario.clock.day(day) for day in (12, 17, 22, 27, 32)
    ]
    assert [passage.harvested for passage in logged] == [row[0] for row in PASSAGES]
    assert all(passage.flags == [] for passage in logged)
    assert all((passage.population_doublings or 0) > 0 for passage in logged[1:])
    shown = scenario.read(cultures.show_culture, culture=culture)
    assert shown.summary.open_deviations == 0


def test_a_value_given_overrides_the_schedule_and_keeps_the_rest(
    scenario: Scenario, growing: CultureDetail
) -> None:
    passage = scenario.passage(growing.summary.culture_id, 1, harvested=5_000_000)

    assert (passage.harvested, passage.seeded) == (5_000_000, PASSAGES[0][2])
    assert passage.harvested_at == scenario.clock.day(12)


def test_a_formulated_lot_awaits_the_results_that_passing_gives_it(
    scenario: Scenario, formulated: str
) -> None:
    lot = scenario.read(lots.show_lot, lot=formulated)
    assert (lot.summary.status, lot.summary.vials) == ("quarantine", FORMULATION["vials"])
    assert lot.summary.formulated_at == scenario.clock.day(27)
    assert not lot.evaluation.releasable

    recorded = scenario.record_qc(formulated)

    assert [result.test for result in recorded] == list(PASSING)
    assert all(result.verdict == "pass" for result in recorded)
    assert scenario.read(qc.show_evaluation, lot=formulated).releasable


def test_qa_releases_the_lot_with_their_own_signature(scenario: Scenario, formulated: str) -> None:
    scenario.record_qc(formulated)

    released = scenario.release(formulated, signer="qa")

    assert released.summary.status == "released"
    [signature] = released.signatures
    assert (signature.username, signature.full_name) == ("qa", "Quinn QA")
    assert scenario.read(sessions.current_session).user.username == "qa"


def test_a_released_lot_gets_its_batch_record_labels_and_a_matching_scan(
    scenario: Scenario, formulated: str, tmp_path: Path
) -> None:
    scenario.record_qc(formulated)
    scenario.release(formulated, signer="qa")
    scenario.login("tech")

    written = scenario.batch_record(formulated, tmp_path / "batch-record.pdf")
    labels = scenario.labels(formulated, tmp_path / "labels")
    payloads = scenario.label_payloads(formulated)

    assert written.path.exists()
    assert written.pages >= 1
    assert sorted(path.suffix for path in labels) == [".pdf"] + [".png"] * 4
    assert all(path.exists() for path in labels)
    assert [decode(payload).vial_id for payload in payloads] == [
        f"{formulated}-V0{number}" for number in range(1, 5)
    ]
    assert scenario.scan(formulated, "PT-0001").match
    assert not scenario.scan(formulated, OTHER_PATIENT).match


def test_stations_of_one_lab_keep_their_own_sessions(scenario: Scenario, tmp_path: Path) -> None:
    from lims.config import load_settings

    elsewhere = scenario.station(
        load_settings(home=tmp_path / "elsewhere", database_url=scenario.settings.database_url)
    )
    elsewhere.login("qa")

    assert elsewhere.read(sessions.current_session).user.username == "qa"
    assert scenario.read(sessions.current_session).user.username == "tech"


def test_the_steps_are_on_the_audit_trail_and_it_verifies(
    scenario: Scenario, growing: CultureDetail
) -> None:
    scenario.logout()

    actions = [entry.action for entry in scenario.audit_trail()]
    assert actions[-8:] == [
        *["reagent.add"] * 4,
        "patient.create",
        "aspirate.receive",
        "culture.start",
        "auth.logout",
    ]
    assert scenario.verify_trail().intact


def test_a_clock_some_days_ago_starts_on_the_hour() -> None:
    clock = Clock.days_ago(28)

    assert clock.collected == clock.collected.replace(minute=0, second=0, microsecond=0)
    assert clock.day(14) == clock.collected + timedelta(days=14)
    assert clock.collected < clock.received < clock.started


def test_staff_without_a_password_each_get_their_own() -> None:
    people = staff()

    assert [person.role for person in people] == ["admin", "technician", "qa"]
    assert len({person.password for person in people}) == 3


def test_importing_the_scenario_loads_no_document_or_migration_library() -> None:
    heavy = (
        "alembic",
        "psycopg",
        "reportlab",
        "qrcode",
        "PIL",
        "pypdf",
        "matplotlib",
        "allotropy",
        "pandas",
    )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, lims.scenario\n"
            f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({heavy!r})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
