"""Bench rules, called as the CLI calls them: patients, aspirates, reagents, cultures, passages.

Each rule has a test that fails when the rule is removed, including the
refusals: bad input (exit 2), unknown records (3), wrong role (4) and rules (1).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from lims import audit
from lims.config import Settings, load_settings
from lims.domain.ids import check_character
from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.models import Patient
from lims.services import aspirates, cultures, patients, reagents
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views import to_json
from tests.support import Lab

NOW = utcnow().replace(microsecond=0)
COLLECTED = NOW - timedelta(days=30)
RECEIVED = COLLECTED + timedelta(hours=2)
STARTED = COLLECTED + timedelta(hours=5)


def day(days: float) -> datetime:
    """A time so many days after collection."""
    return COLLECTED + timedelta(days=days)


class Bench:
    """A lab with a technician logged in at this station, and shortcuts to the services."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.settings = lab.settings
        lab.add_user("tom", "technician")
        lab.login("tom")

    def run(
        self, service: Callable[..., Any], settings: Settings | None = None, **values: Any
    ) -> Any:
        with unit_of_work(settings or self.settings) as uow:
            return service(uow, **values)

    def read(self, service: Callable[..., Any], **values: Any) -> Any:
        with unit_of_work(self.settings, write=False) as uow:
            return service(uow, **values)

    def patient(self, code: str = "PT-0001") -> patients.PatientView:
        return self.run(patients.add_patient, code=code, initials="MR", birth_year=1958)

    def aspirate(self, patient: str = "PT-0001", **values: Any) -> aspirates.AspirateView:
        values = {"collected_at": COLLECTED, "received_at": RECEIVED, "volume_ml": 30, **values}
        return self.run(aspirates.receive, patient=patient, **values)

    def culture(self, din: str, **values: Any) -> cultures.CultureDetail:
        values = {"mnc": 240_000_000, "vessels": 5, "area_cm2": 875, "at": STARTED, **values}
        return self.run(cultures.start_culture, din=din, **values)

    def passage(self, culture: str, at: datetime, **values: Any) -> cultures.PassageView:
        values = {
            "harvested": 4_000_000,
            "viability": 95,
            "seeded": 4_000_000,
            "vessels": 5,
            "area_cm2": 875,
            **values,
        }
        return self.run(cultures.log_passage, culture=culture, at=at, **values)

    def audit_actions(self) -> list[str]:
        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            return [entry.action for entry in audit.entries(uow.session)]

    def sql(self, statement: str, **parameters: Any) -> Any:
        with unit_of_work(self.settings, authenticated=False) as uow:
            return uow.session.execute(text(statement), parameters)


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return Bench(lab)


@pytest.fixture
def growing(bench: Bench) -> str:
    """A primary culture from a fresh aspirate; its id."""
    bench.patient()
    din = bench.aspirate().din.code
    return bench.culture(din).summary.culture_id


# --- patients --------------------------------------------------------------------------


def test_a_patient_is_registered_under_a_code_and_audited(bench: Bench) -> None:
    added = bench.run(
        patients.add_patient,
        code="PT-0001",
        initials="MR",
        birth_year="1958",
        consent_date="2026-01-15",
        study="MSC-ALS-02",
    )
    shown = bench.read(patients.show_patient, code="PT-0001")
    assert shown == added
    assert (shown.birth_year, str(shown.consent_date), shown.study) == (
        1958,
        "2026-01-15",
        "MSC-ALS-02",
    )
    assert bench.audit_actions()[-1] == "patient.create"


def test_patients_carry_no_name_or_record_number() -> None:
    """21 CFR 1271.290: the pseudonymous code is the identity."""
    columns = set(Patient.__table__.columns.keys())  # type: ignore[attr-defined]
    assert columns == {
        "id",
        "code",
        "initials",
        "birth_year",
        "consent_date",
        "study",
        "recorded_at",
        "recorded_by",
    }


def test_a_patient_code_is_registered_once(bench: Bench) -> None:
    bench.patient()
    with pytest.raises(RuleViolation, match="already exists"):
        bench.patient()


@pytest.mark.parametrize("code", ["pt-0001", "AB", "A" * 33, "PT 0001", "PT_0001"])
def test_patient_codes_follow_the_default_pattern(bench: Bench, code: str) -> None:
    with pytest.raises(BadInput) as refused:
        bench.patient(code)
    assert refused.value.field == "code"


def test_the_patient_code_pattern_is_configurable(bench: Bench) -> None:
    strict = load_settings(
        patients={"code_pattern": "P[0-9]{4}", "code_description": "P and 4 digits"}
    )
    with pytest.raises(BadInput, match="P and 4 digits"):
        bench.run(patients.add_patient, strict, code="PT-0001", initials="MR", birth_year=1958)
    bench.run(patients.add_patient, strict, code="P0001", initials="MR", birth_year=1958)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("initials", {"initials": "mr"}),
        ("initials", {"initials": "ABCDE"}),
        ("birth-year", {"birth_year": 1899}),
        ("birth-year", {"birth_year": NOW.year + 1}),
        ("birth-year", {"birth_year": "1958.5"}),
        ("consent-date", {"consent_date": (NOW + timedelta(days=2)).date()}),
        ("consent-date", {"consent_date": "1950-01-01"}),
        ("consent-date", {"consent_date": "2026-02-30"}),
        ("study", {"study": "line\nbreak"}),
    ],
)
def test_patient_values_out_of_range_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(
            patients.add_patient,
            **{"code": "PT-0001", "initials": "MR", "birth_year": 1958, **values},
        )
    assert refused.value.field == field
    assert bench.audit_actions() == before


def test_only_staff_who_record_bench_work_may_add_patients(bench: Bench) -> None:
    bench.lab.login("admin")
    with pytest.raises(NotPermitted, match="only qa or technician may record bench work"):
        bench.patient()


def test_bench_work_needs_a_live_session(bench: Bench) -> None:
    from lims import auth

    auth.remove_token(bench.settings)
    with pytest.raises(NotPermitted, match="not logged in"):
        bench.patient()


# --- aspirates and DINs -------------------------------------------------------------------


def test_an_aspirate_gets_the_next_din_of_the_facility_and_collection_year(bench: Bench) -> None:
    bench.patient()
    first = bench.aspirate()
    second = bench.aspirate()
    year = COLLECTED.astimezone(bench.settings.tz).year % 100
    assert first.din.code == f"A9999{year:02d}000001"
    assert second.din.code == f"A9999{year:02d}000002"
    data = to_json(first)
    assert len(data["din"]) == 13
    assert data["din_check"] == check_character(data["din"])
    assert data["din_display"] == f"A9999 {year:02d} 000001 {data['din_check']}"
    assert bench.audit_actions()[-2:] == ["aspirate.receive", "aspirate.receive"]


def test_din_sequences_restart_each_year_and_belong_to_their_facility(bench: Bench) -> None:
    bench.patient()
    bench.aspirate()
    last_year = datetime(NOW.year - 1, 6, 1, 8, tzinfo=UTC)
    earlier = bench.aspirate(collected_at=last_year, received_at=last_year + timedelta(hours=1))
    assert earlier.din.code == f"A9999{(NOW.year - 1) % 100:02d}000001"
    other = load_settings(facility={"fin": "B1234"})
    elsewhere = bench.run(
        aspirates.receive,
        other,
        patient="PT-0001",
        collected_at=COLLECTED,
        received_at=RECEIVED,
        volume_ml=20,
    )
    assert elsewhere.din.code.startswith("B1234")
    assert elsewhere.din.sequence == 1


def test_a_refused_receipt_leaves_no_gap_in_the_sequence(bench: Bench) -> None:
    bench.patient()
    bench.aspirate()
    with pytest.raises(NotFound):
        bench.aspirate(patient="PT-9999")
    with pytest.raises(BadInput):
        bench.aspirate(volume_ml=0)
    assert bench.aspirate().din.sequence == 2


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("volume-ml", {"volume_ml": 0}),
        ("volume-ml", {"volume_ml": -5}),
        ("volume-ml", {"volume_ml": 100.5}),
        (
            "collected-at",
            {"collected_at": NOW + timedelta(hours=1), "received_at": NOW + timedelta(hours=2)},
        ),
        ("received-at", {"received_at": COLLECTED - timedelta(minutes=1)}),
        ("received-at", {"received_at": COLLECTED}),
        ("received-at", {"received_at": NOW + timedelta(hours=1)}),
        ("temperature-c", {"temperature_c": 1.9}),
        ("temperature-c", {"temperature_c": 30.1}),
        ("tnc", {"tnc": "lots"}),
        ("site", {"site": " "}),
    ],
)
def test_implausible_aspirates_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    bench.patient()
    with pytest.raises(BadInput) as refused:
        bench.aspirate(**values)
    assert refused.value.field == field
    assert "aspirate.receive" not in bench.audit_actions()


def test_the_aspirate_limits_are_configurable(bench: Bench) -> None:
    bench.patient()
    roomy = load_settings(
        aspirate={"max_volume_ml": 250, "min_temperature_c": 15, "max_temperature_c": 25}
    )
    bench.run(aspirates.receive, roomy, patient="PT-0001", collected_at=COLLECTED, volume_ml=200)
    with pytest.raises(BadInput, match="from 15 to 25"):
        bench.run(
            aspirates.receive,
            roomy,
            patient="PT-0001",
            collected_at=COLLECTED,
            volume_ml=20,
            temperature_c=10,
        )


def test_receipt_defaults_to_now_and_the_posterior_iliac_crest(bench: Bench) -> None:
    bench.patient()
    received = bench.run(aspirates.receive, patient="PT-0001", collected_at=COLLECTED, volume_ml=30)
    assert received.site == "posterior iliac crest"
    assert abs((received.received_at - utcnow()).total_seconds()) < 60


def test_an_unknown_patient_is_not_found(bench: Bench) -> None:
    with pytest.raises(NotFound, match="PT-0404"):
        bench.aspirate(patient="PT-0404")


def test_a_din_is_found_however_it_is_typed(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din
    for typed in (
        din.code,
        din.code + din.check,
        din.display,
        din.display.lower(),
        f" {din.code} ",
    ):
        assert bench.read(aspirates.show_aspirate, din=typed).din == din
    wrong = "0" if din.check != "0" else "1"
    with pytest.raises(BadInput, match="check character"):
        bench.read(aspirates.show_aspirate, din=din.code + wrong)


_RECEIVER = """
import sys
from datetime import datetime, timedelta, timezone
from lims.services import aspirates
from lims.uow import unit_of_work
collected = datetime.now(timezone.utc) - timedelta(days=1)
for _ in range(int(sys.argv[1])):
    with unit_of_work() as uow:
        aspirates.receive(uow, patient="PT-0001",
                          collected_at=collected, volume_ml=25)
"""


@pytest.mark.slow
def test_stations_receiving_at_once_get_unique_gap_free_dins(bench: Bench) -> None:
    bench.patient()
    stations, each = 4, 6
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RECEIVER, str(each)],
            env=dict(os.environ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(stations)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=180)
        assert process.returncode == 0, errors
    received = bench.read(aspirates.list_aspirates)
    assert sorted(view.din.sequence for view in received) == list(range(1, stations * each + 1))
    with unit_of_work(bench.settings, write=False, authenticated=False) as uow:
        assert audit.verify(uow.session.connection()).intact


# --- reagents ------------------------------------------------------------------------------


def test_reagent_lots_are_registered_once_and_listed(bench: Bench) -> None:
    bench.run(
        reagents.add_reagent, name="MEM alpha", lot="2411A", expires="2027-03-31", supplier="Gibco"
    )
    with pytest.raises(RuleViolation, match="already registered"):
        bench.run(reagents.add_reagent, name="MEM alpha", lot="2411A", expires="2027-03-31")
    [listed] = bench.read(reagents.list_reagents)
    assert (listed.label, listed.supplier, str(listed.expires_on)) == (
        "MEM alpha:2411A",
        "Gibco",
        "2027-03-31",
    )
    assert bench.audit_actions()[-1] == "reagent.add"


def test_a_reagent_name_cannot_hold_the_separator(bench: Bench) -> None:
    with pytest.raises(BadInput) as refused:
        bench.run(reagents.add_reagent, name="MEM:alpha", lot="1", expires="2027-01-01")
    assert refused.value.field == "name"


def test_a_lot_is_usable_through_its_expiry_date_and_not_after(bench: Bench, growing: str) -> None:
    zone = bench.settings.tz
    last_day = day(10).astimezone(zone).date()
    bench.run(reagents.add_reagent, name="TrypLE", lot="B1", expires=last_day)
    late_that_day = datetime.combine(last_day, datetime.min.time(), tzinfo=zone) + timedelta(
        hours=23
    )
    bench.passage(growing, late_that_day, reagents=["TrypLE:B1"])
    with pytest.raises(RuleViolation, match="expired"):
        bench.passage(growing, late_that_day + timedelta(hours=2), reagents=["TrypLE:B1"])


def test_an_unknown_or_malformed_reagent_is_refused(bench: Bench, growing: str) -> None:
    with pytest.raises(NotFound, match="no reagent lot"):
        bench.passage(growing, day(14), reagents=["TrypLE:none"])
    with pytest.raises(BadInput) as refused:
        bench.passage(growing, day(14), reagents=["TrypLE"])
    assert refused.value.field == "reagent"


def test_which_lots_went_into_which_step_is_kept(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    bench.run(reagents.add_reagent, name="Percoll", lot="P1", expires="2099-12-31")
    bench.run(reagents.add_reagent, name="TrypLE", lot="T1", expires="2099-12-31")
    code = bench.culture(din, reagents=["Percoll:P1"]).summary.culture_id
    bench.passage(code, day(14), reagents=["TrypLE:T1"])
    detail = bench.read(cultures.show_culture, culture=code)
    assert detail.reagents == ["Percoll:P1"]
    assert detail.passages[0].reagents == ["TrypLE:T1"]


# --- cultures ------------------------------------------------------------------------------


def test_cultures_are_numbered_within_their_aspirate(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    primary = bench.culture(din)
    seeded = bench.culture(din, mnc=None, seeded=1_000_000)
    assert primary.summary.culture_id == f"{din}-C1"
    assert seeded.summary.culture_id == f"{din}-C2"
    assert primary.summary.method == "density gradient (Percoll 1.073 g/mL)"
    assert (primary.summary.kind, seeded.summary.kind) == ("primary", "seeded")
    assert bench.read(aspirates.show_aspirate, din=din).cultures == [f"{din}-C1", f"{din}-C2"]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("mnc/seeded", {"mnc": None}),
        ("mnc/seeded", {"seeded": 1000}),
        ("mnc", {"mnc": 0}),
        ("vessels", {"vessels": 0}),
        ("vessels", {"vessels": "2.5"}),
        ("area-cm2", {"area_cm2": -1}),
        ("at", {"at": RECEIVED}),
        ("at", {"at": NOW + timedelta(hours=1)}),
    ],
)
def test_impossible_culture_starts_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    with pytest.raises(BadInput) as refused:
        bench.culture(din, **values)
    assert refused.value.field == field
    assert "culture.start" not in bench.audit_actions()


def test_a_culture_needs_a_known_aspirate(bench: Bench) -> None:
    with pytest.raises(NotFound):
        bench.culture("A9999 26 000042")


# --- passages and growth ----------------------------------------------------------------------


def test_growth_is_derived_from_the_counts(bench: Bench, growing: str) -> None:
    first = bench.passage(growing, day(14), harvested=4_000_000, seeded=4_000_000)
    assert first.passage_id == f"{growing}-P1"
    assert first.passage_number == 1
    assert first.population_doublings is None  # the first harvest of a primary culture
    assert first.cumulative_population_doublings == 0
    second = bench.passage(growing, day(17), harvested="3.2e7", seeded="16000000", area_cm2=3200)
    assert second.passage_number == 2
    assert second.population_doublings == pytest.approx(3.0)  # 4e6 -> 3.2e7
    assert second.fold_expansion == pytest.approx(8.0)
    assert second.doubling_time_hours == pytest.approx(24.0)  # 72 h / 3
    assert second.seeding_density_per_cm2 == pytest.approx(5000)
    third = bench.passage(growing, day(19), harvested=64_000_000, seeded=16_000_000, area_cm2=3200)
    assert third.population_doublings == pytest.approx(2.0)
    assert third.cumulative_population_doublings == pytest.approx(5.0)
    assert third.doubling_time_hours == pytest.approx(24.0)
    assert bench.audit_actions()[-1] == "passage.log"


def test_a_seeded_culture_counts_doublings_from_its_first_harvest(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    code = bench.culture(din, mnc=None, seeded=1_000_000, area_cm2=200).summary.culture_id
    first = bench.passage(
        code, STARTED + timedelta(hours=96), harvested=16_000_000, seeded=5_000_000, area_cm2=1000
    )
    assert first.population_doublings == pytest.approx(4.0)
    assert first.cumulative_population_doublings == pytest.approx(4.0)
    assert first.doubling_time_hours == pytest.approx(24.0)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("harvested", {"harvested": 0}),
        ("harvested", {"harvested": "-3"}),
        ("harvested", {"harvested": "nan"}),
        ("harvested", {"harvested": "1.5"}),
        ("viability", {"viability": 140}),
        ("viability", {"viability": -0.1}),
        ("seeded", {"seeded": 5_000_000}),
        ("confluence", {"confluence": 101}),
        ("vessels", {"vessels": -1}),
        ("area-cm2", {"area_cm2": 0}),
    ],
)
def test_impossible_passages_are_refused_and_nothing_is_written(
    bench: Bench, growing: str, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.passage(growing, day(14), **values)
    assert refused.value.field == field
    assert bench.audit_actions() == before
    assert bench.read(cultures.show_culture, culture=growing).passages == []


def test_a_passage_must_come_after_the_step_before_it_and_not_in_the_future(
    bench: Bench, growing: str
) -> None:
    with pytest.raises(BadInput, match="after the start"):
        bench.passage(growing, STARTED)
    bench.passage(growing, day(14))
    with pytest.raises(BadInput, match="after passage"):
        bench.passage(growing, day(14))
    with pytest.raises(BadInput, match="future"):
        bench.passage(growing, utcnow() + timedelta(minutes=30))


def test_a_passage_needs_a_known_culture(bench: Bench) -> None:
    with pytest.raises(NotFound):
        bench.passage("A999926000001-C9", day(1))
    with pytest.raises(BadInput) as refused:
        bench.passage("C9", day(1))
    assert refused.value.field == "culture"


def test_a_culture_no_longer_active_takes_no_passages(bench: Bench, growing: str) -> None:
    bench.sql("UPDATE cultures SET status = 'formulated' WHERE code = :code", code=growing)
    with pytest.raises(RuleViolation, match="formulated"):
        bench.passage(growing, day(14))


def _open_deviation_kinds(bench: Bench, culture: str) -> list[str]:
    detail = bench.read(cultures.show_culture, culture=culture)
    return [d.kind for d in detail.deviations if d.status == "open"]


def test_a_passage_in_range_raises_no_flag(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    assert (
        bench.passage(
            growing, day(18), harvested=32_000_000, seeded=20_000_000, area_cm2=4000
        ).flags
        == []
    )
    assert _open_deviation_kinds(bench, growing) == []


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("low_viability", {"viability": 79.9}),
        ("seeding_density", {"seeded": 800_000}),  # 914 cells/cm² on 875 cm²
        ("seeding_density", {"area_cm2": 300}),  # 13,333 cells/cm²
    ],
)
def test_a_passage_outside_the_bench_limits_is_saved_flagged_and_opens_a_deviation(
    bench: Bench, growing: str, kind: str, values: dict[str, Any]
) -> None:
    logged = bench.passage(growing, day(14), **values)
    assert [flag.kind for flag in logged.flags] == [kind]
    assert _open_deviation_kinds(bench, growing) == [kind]
    assert bench.audit_actions()[-2:] == ["passage.log", "deviation.open"]


def test_a_harvest_without_growth_is_flagged(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    logged = bench.passage(growing, day(18), harvested=3_000_000, seeded=3_000_000, area_cm2=600)
    assert logged.population_doublings is not None
    assert logged.population_doublings < 0
    assert logged.doubling_time_hours is None
    assert [flag.kind for flag in logged.flags] == ["no_growth"]


def test_a_passage_above_the_maximum_is_flagged(bench: Bench, growing: str) -> None:
    strict = load_settings(expansion={"max_passage": 1})
    bench.passage(growing, day(14))
    second = bench.run(
        cultures.log_passage,
        strict,
        culture=growing,
        at=day(18),
        harvested=32_000_000,
        viability=95,
        seeded=20_000_000,
        vessels=5,
        area_cm2=4000,
    )
    assert [flag.kind for flag in second.flags] == ["passage_limit"]


# --- corrections -------------------------------------------------------------------------------


@pytest.fixture
def expanded(bench: Bench, growing: str) -> str:
    """The growing culture with three passages: PD null, 3 and 2."""
    bench.passage(growing, day(14), harvested=4_000_000, seeded=4_000_000)
    bench.passage(growing, day(17), harvested=32_000_000, seeded=16_000_000, area_cm2=3200)
    bench.passage(growing, day(19), harvested=64_000_000, seeded=16_000_000, area_cm2=3200)
    return growing


def test_a_correction_recomputes_the_passage_and_every_later_one(
    bench: Bench, expanded: str
) -> None:
    corrected = bench.run(
        cultures.correct_passage,
        passage=f"{expanded}-P2",
        reason="count sheet misread",
        seeded=8_000_000,
    )
    assert corrected.changed["seeded"] == (16_000_000, 8_000_000)
    assert corrected.recomputed == [f"{expanded}-P3"]
    detail = bench.read(cultures.show_culture, culture=expanded)
    third = detail.passages[2]
    assert third.population_doublings == pytest.approx(3.0)  # 8e6 -> 6.4e7
    assert third.cumulative_population_doublings == pytest.approx(6.0)
    assert detail.passages[1].corrections == 1
    assert detail.passages[1].seeding_density_per_cm2 == pytest.approx(2500)
    assert bench.audit_actions()[-2:] == ["passage.correct", "passage.recompute"]


def test_a_correction_keeps_the_old_values_and_the_reason_in_the_audit(
    bench: Bench, expanded: str
) -> None:
    bench.run(
        cultures.correct_passage, passage=f"{expanded}-P2", reason="recount", harvested="2.4e7"
    )
    with unit_of_work(bench.settings, write=False) as uow:
        entry = audit.entries(uow.session, entity_type="passage", entity_id=f"{expanded}-P2")[-1]
    assert entry.action == "passage.correct"
    assert entry.reason == "recount"
    assert entry.old["harvested"] == 32_000_000
    assert entry.new["harvested"] == 24_000_000
    assert entry.old["population_doublings"] == pytest.approx(3.0)
    assert entry.new["population_doublings"] == pytest.approx(math.log2(6))


def test_a_correction_that_breaks_a_limit_opens_a_deviation(bench: Bench, expanded: str) -> None:
    corrected = bench.run(
        cultures.correct_passage, passage=f"{expanded}-P3", reason="typo", viability=70
    )
    assert [flag.kind for flag in corrected.passage.flags] == ["low_viability"]
    assert _open_deviation_kinds(bench, expanded) == ["low_viability"]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("reason", {"reason": " ", "viability": 90}),
        ("correction", {"reason": "nothing"}),
        ("correction", {"reason": "same", "viability": 95}),
        ("seeded", {"reason": "x", "seeded": 40_000_000}),
        ("at", {"reason": "x", "at": day(19)}),
        ("at", {"reason": "x", "at": day(14)}),
        ("viability", {"reason": "x", "viability": 100.01}),
    ],
)
def test_corrections_that_cannot_stand_are_refused(
    bench: Bench, expanded: str, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(cultures.correct_passage, passage=f"{expanded}-P2", **values)
    assert refused.value.field == field
    assert bench.audit_actions() == before


def test_a_correction_needs_a_known_passage(bench: Bench, expanded: str) -> None:
    with pytest.raises(NotFound):
        bench.run(cultures.correct_passage, passage=f"{expanded}-P9", reason="x", viability=90)


# --- projection --------------------------------------------------------------------------------


def test_a_projection_needs_growth_to_project_from(bench: Bench, growing: str) -> None:
    with pytest.raises(RuleViolation, match="too little data"):
        bench.read(cultures.project_culture, culture=growing, target_cells=1e8)
    bench.passage(growing, day(14))
    with pytest.raises(RuleViolation, match="too little data"):
        bench.read(cultures.project_culture, culture=growing, target_cells=1e8)


def test_a_projection_follows_the_recent_doubling_time(bench: Bench, expanded: str) -> None:
    view = bench.read(cultures.project_culture, culture=expanded, target_cells="1.28e8")
    p = view
    assert p.cells_now == 16_000_000
    assert p.doubling_time_hours == pytest.approx(24.0)  # P2: 3 PD in 72 h, P3: 2 PD in 48 h
    assert p.doublings_per_passage == pytest.approx(2.5)
    assert p.doublings_needed == pytest.approx(3.0)
    assert p.passages_needed == 2
    assert p.expected_at == day(19) + timedelta(hours=72)
    assert view.final_passage_number == 5
    assert not view.exceeds_max_passage
    assert view.basis == [f"{expanded}-P2", f"{expanded}-P3"]
    assert any("5,000 cells/cm²" in line for line in view.assumptions)


# --- found in review ------------------------------------------------------------------------


def test_moving_a_passage_past_its_reagent_expiry_is_refused(bench: Bench, growing: str) -> None:
    zone = bench.settings.tz
    last_day = day(10).astimezone(zone).date()
    bench.run(reagents.add_reagent, name="TrypLE", lot="B1", expires=last_day)
    evening = datetime.combine(last_day, datetime.min.time(), tzinfo=zone) + timedelta(hours=20)
    bench.passage(growing, evening, reagents=["TrypLE:B1"])
    with pytest.raises(RuleViolation, match="expired"):
        bench.run(
            cultures.correct_passage,
            passage=f"{growing}-P1",
            reason="clock was wrong",
            at=evening + timedelta(hours=5),
        )


def test_a_correction_reports_each_new_flag_on_its_own_passage(bench: Bench, expanded: str) -> None:
    corrected = bench.run(
        cultures.correct_passage,
        passage=f"{expanded}-P2",
        reason="recount",
        harvested=80_000_000,
        seeded=70_000_000,  # more than P3 later harvested: P3 shows no growth
        area_cm2=14_000,
    )
    assert corrected.passage.flags == []  # P2 itself is still in range
    assert [(f.kind, f.description.split(":")[0]) for f in corrected.flagged_later] == [
        ("no_growth", f"{expanded}-P3")
    ]


def test_a_breach_already_on_record_is_not_flagged_again(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14), viability=70)
    bench.sql("UPDATE deviations SET status = 'closed'")
    corrected = bench.run(
        cultures.correct_passage, passage=f"{growing}-P1", reason="x", confluence=80
    )
    assert corrected.passage.flags == []
    assert _open_deviation_kinds(bench, growing) == []


def test_a_site_pattern_cannot_make_codes_longer_than_the_column(bench: Bench) -> None:
    roomy = load_settings(patients={"code_pattern": "[A-Z]{3,64}"})
    with pytest.raises(BadInput, match="at most 32"):
        bench.run(patients.add_patient, roomy, code="A" * 40, initials="AB", birth_year=1958)


@pytest.mark.parametrize("typed", ["١٠٠", "１００", "1e-400"])
def test_numbers_are_ascii_and_measurable(bench: Bench, typed: str) -> None:
    bench.patient()
    with pytest.raises(BadInput):
        bench.aspirate(volume_ml=typed)


def test_a_culture_that_stopped_growing_gets_no_projection(bench: Bench, expanded: str) -> None:
    bench.passage(expanded, day(22), harvested=16_000_000, seeded=16_000_000, area_cm2=3200)
    with pytest.raises(RuleViolation, match="not growing"):
        bench.read(cultures.project_culture, culture=expanded, target_cells="1e9")
