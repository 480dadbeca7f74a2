"""Consent and the patient record (issue 12, items 2, 7 and 8): consent bounds every aspirate,
a sample too long in transit is kept only as nonconforming, the record is corrected and
withdrawn on the trail, codes cannot be confused, and the DIN year is the facility's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lims.domain.states import DEVIATION
from lims.errors import BadInput, RuleViolation
from lims.services import aspirates, cultures, lots, patients, printing, vials
from lims.views import to_json
from tests.support.bench import COLLECTED, NOW, PASSAGE, RECEIVED, Bench, day
from tests.support.quality import LOT_PASSAGES, Quality
from tests.support.vials import scan_of, vial_ids

LATE = {"late_reason": "typed from the paper record"}


def _consented_on(
    bench: Bench, consent: str, birth_year: int = 1958, code: str = "PT-0001"
) -> None:
    bench.run(
        patients.add_patient,
        code=code,
        initials="MR",
        birth_year=birth_year,
        consent_date=consent,
    )


# --- consent bounds the aspirate ------------------------------------------------------------


def test_a_patient_without_a_consent_date_gets_no_aspirate_until_one_is_set(bench: Bench) -> None:
    """Why: a patient with no consent date got an aspirate (patients added before consent
    was required keep none)."""
    bench.patient()
    bench.sql("UPDATE patients SET consent_date = NULL")
    with pytest.raises(RuleViolation, match=r"no consent date on record.*patient correct"):
        bench.aspirate()
    assert "aspirate.receive" not in bench.audit_actions()
    consent = (COLLECTED - timedelta(days=3)).date().isoformat()
    bench.run(patients.correct_patient, code="PT-0001", consent_date=consent, reason="form found")
    assert bench.aspirate().din.sequence == 1


def test_an_aspirate_collected_before_consent_is_refused(bench: Bench) -> None:
    """Why: an aspirate collected before the consent date was accepted."""
    _consented_on(bench, COLLECTED.date().isoformat())
    before = COLLECTED - timedelta(days=1)
    with pytest.raises(BadInput, match="consent on") as refused:
        bench.aspirate(collected_at=before, received_at=before + timedelta(hours=2))
    assert refused.value.field == "collected-at"
    assert "aspirate.receive" not in bench.audit_actions()


def test_an_aspirate_collected_before_the_birth_year_is_refused(bench: Bench) -> None:
    """Why: a birth year after the collection year was accepted. (Consent, never before the
    birth year, bounds it too; without a consent date no aspirate is received at all.)"""
    _consented_on(bench, f"{NOW.year}-01-01", birth_year=NOW.year)
    last_year = datetime(NOW.year - 1, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(BadInput) as refused:
        bench.aspirate(collected_at=last_year, received_at=last_year + timedelta(hours=2))
    assert refused.value.field == "collected-at"


def test_a_collection_in_year_one_is_refused_not_given_din_year_01(bench: Bench) -> None:
    """Why: a collection in year 0001 made DIN year 01."""
    bench.patient()
    ancient = datetime(1, 6, 1, 8, tzinfo=UTC)
    with pytest.raises(BadInput) as refused:
        bench.aspirate(collected_at=ancient, received_at=ancient + timedelta(hours=2))
    assert refused.value.field == "collected-at"


# --- transit ------------------------------------------------------------------------------


def test_a_sample_too_long_in_transit_is_refused_unless_kept_as_nonconforming(
    bench: Bench,
) -> None:
    bench.patient()
    late = {"received_at": COLLECTED + timedelta(hours=49)}
    with pytest.raises(BadInput, match="--nonconforming --reason") as refused:
        bench.aspirate(**late)
    assert refused.value.field == "nonconforming"
    with pytest.raises(BadInput) as refused:
        bench.aspirate(**late, nonconforming=True)
    assert refused.value.field == "reason"
    with pytest.raises(BadInput, match="only for a sample"):
        bench.aspirate(nonconforming=True, reason="kept")
    with pytest.raises(BadInput, match="only with --nonconforming"):
        bench.aspirate(reason="kept")
    assert "aspirate.receive" not in bench.audit_actions()

    kept = bench.aspirate(**late, nonconforming=True, reason="the only aspirate; PI approves")
    assert kept.nonconforming is True
    assert to_json(kept)["nonconforming"] is True
    [deviation] = bench.read(patients.show_patient, code="PT-0001").deviations
    assert deviation.subject == kept.din.code
    assert deviation.kind == aspirates.NONCONFORMING
    assert DEVIATION.pending(deviation.status)
    assert "PI approves" in deviation.description
    assert bench.audit_actions()[-2:] == ["aspirate.receive", "deviation.open"]


def test_the_transit_limit_is_a_site_setting(bench: Bench) -> None:
    bench.patient()
    bench.lab.set_site(aspirate={"max_transit_hours": 72})
    bench.lab.login("tom")
    assert not bench.aspirate(received_at=COLLECTED + timedelta(hours=60)).nonconforming


def test_a_lot_from_a_nonconforming_aspirate_shows_its_deviation(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate(
        received_at=COLLECTED + timedelta(hours=50), nonconforming=True, reason="approved"
    ).din.code
    culture = bench.culture(din, at=COLLECTED + timedelta(hours=51)).summary.culture_id
    bench.passage(culture, day(10))
    lot = bench.scenario.formulate(
        culture, harvested=4_000_000, vials=1, cells_per_vial=1_000_000, reagents=()
    )
    assert [d.kind for d in lot.deviations] == [aspirates.NONCONFORMING]


# --- late entry ---------------------------------------------------------------------------


def _late_after_a_day(bench: Bench) -> None:
    """The site's limit as shipped (the tests' labs take a month typed at once as on time)."""
    bench.lab.set_site(records={"late_entry_hours": 24})
    bench.lab.login("tom")


def test_a_receipt_entered_late_needs_a_reason_and_is_marked(bench: Bench) -> None:
    bench.patient()
    _late_after_a_day(bench)
    with pytest.raises(BadInput) as refused:
        bench.aspirate(late_reason=None)
    assert refused.value.field == "late-reason"
    received = bench.aspirate(**LATE)
    data = to_json(bench.read(aspirates.show_aspirate, din=received.din.code))
    assert data["late_entry"] is True
    assert data["late_reason"] == LATE["late_reason"]
    assert datetime.fromisoformat(data["entered_at"]) > RECEIVED
    assert bench.audit_actions()[-2:] == ["aspirate.receive", "late_entry.record"]
    on_time = bench.run(
        aspirates.receive, patient="PT-0001", collected_at=NOW - timedelta(hours=3), volume_ml=20
    )
    assert (on_time.late_entry, on_time.late_reason) == (False, None)
    with pytest.raises(BadInput, match="only for a step dated"):
        bench.run(
            aspirates.receive,
            patient="PT-0001",
            collected_at=NOW - timedelta(hours=3),
            volume_ml=20,
            **LATE,
        )


# --- DIN year -----------------------------------------------------------------------------


def test_the_din_year_is_the_collection_year_at_the_facility(bench: Bench) -> None:
    """Why: the same collection instant got A999925… at a UTC station and A999926… in
    Europe/Rome."""
    new_year_eve = datetime(NOW.year - 1, 12, 31, 23, 30, tzinfo=UTC)
    _consented_on(bench, f"{NOW.year - 1}-12-01")
    values = {
        "patient": "PT-0001",
        "collected_at": new_year_eve,
        "received_at": new_year_eve + timedelta(hours=2),
        "volume_ml": 20,
    }
    at_utc = bench.settings.model_copy(update={"timezone": "UTC"})
    in_rome = bench.settings.model_copy(update={"timezone": "Europe/Rome"})
    utc_year = (NOW.year - 1) % 100
    assert bench.run(aspirates.receive, at_utc, **values).din.year == utc_year
    assert bench.run(aspirates.receive, in_rome, **values).din.year == utc_year
    bench.lab.set_site(facility={"timezone": "Europe/Rome"})
    bench.lab.login("tom")
    assert bench.run(aspirates.receive, at_utc, **values).din.year == NOW.year % 100


# --- correction ---------------------------------------------------------------------------


def test_a_patient_is_corrected_with_a_reason_and_the_old_values_kept(bench: Bench) -> None:
    """Why: a patient could not be corrected."""
    bench.patient()
    corrected = bench.run(
        patients.correct_patient,
        code="PT-0001",
        initials="MRT",
        birth_year="1985",
        weight_kg="71.5",
        reason="transposed digits at entry",
    )
    assert (corrected.initials, corrected.birth_year, corrected.weight_kg) == ("MRT", 1985, 71.5)
    entry = bench.scenario.audit_trail()[-1]
    assert entry.action == "patient.correct"
    assert entry.reason == "transposed digits at entry"
    assert entry.old == {"initials": "MR", "birth_year": 1958, "weight_kg": None}
    assert entry.new == {"initials": "MRT", "birth_year": 1985, "weight_kg": 71.5}
    assert bench.scenario.verify_trail().intact


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("reason", {"initials": "AB", "reason": " "}),
        ("correction", {}),
        ("correction", {"initials": "MR"}),
        ("initials", {"initials": "ab"}),
        ("birth-year", {"birth_year": "2100"}),
        ("consent-date", {"consent_date": "1957-12-31"}),
        ("weight-kg", {"weight_kg": "-1"}),
    ],
)
def test_a_correction_out_of_range_changes_nothing(
    bench: Bench, field: str, values: dict[str, str]
) -> None:
    bench.patient()
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(patients.correct_patient, code="PT-0001", **{"reason": "why", **values})
    assert refused.value.field == field
    assert bench.audit_actions() == before


def test_a_correction_leaves_no_aspirate_before_consent(bench: Bench) -> None:
    bench.patient()
    bench.aspirate()
    with pytest.raises(RuleViolation, match="consent date and birth year must not be after"):
        bench.run(
            patients.correct_patient,
            code="PT-0001",
            consent_date=(COLLECTED + timedelta(days=1)).date().isoformat(),
            reason="wrong form",
        )
    shown = bench.read(patients.show_patient, code="PT-0001")
    assert shown.consent_date == (COLLECTED - timedelta(days=7)).date()


# --- patient show -------------------------------------------------------------------------


def test_patient_show_has_everything_about_the_patient(quality: Quality) -> None:
    """Why: patient show listed only DINs."""
    detail = quality.read(patients.show_patient, code="PT-0001")
    data = to_json(detail)
    for key in (
        "code",
        "initials",
        "birth_year",
        "consent_date",
        "weight_kg",
        "study",
        "withdrawn",
        "withdrawn_at",
        "withdraw_reason",
    ):
        assert key in data
    aspirate, csf = data["aspirates"]
    assert {"din", "din_check", "din_display", "collected_at", "received_at", "nonconforming"} <= (
        set(aspirate)
    )
    assert (aspirate["material"], aspirate["cultures"]) == ("bone_marrow", [quality.culture_id])
    # The lot's vehicle, the patient's CSF: what it suspends and what is left of it.
    assert (csf["material"], csf["cultures"], csf["volume_left_ml"]) == ("csf", [], 2)
    assert csf["drawn_by"] == [{"lot_id": quality.lot_id, "vehicle_ml": 8}]
    [culture] = data["cultures"]
    assert (culture["culture_id"], culture["passage_count"]) == (
        quality.culture_id,
        len(LOT_PASSAGES),
    )
    assert [(lot["lot_id"], lot["status"]) for lot in data["lots"]] == [
        (quality.lot_id, "quarantine")
    ]
    assert [vial["vial_id"] for vial in data["vials"]] == vial_ids(quality.lot_id)
    assert data["deviations"] == []
    assert data["withdrawn"] is False


# --- withdrawal ---------------------------------------------------------------------------


def _withdraw(bench: Bench, code: str = "PT-0001") -> None:
    bench.run(patients.withdraw_patient, code=code, reason="consent withdrawn in writing")


def test_withdrawal_stops_every_manufacturing_step(quality: Quality, tmp_path) -> None:  # type: ignore[no-untyped-def]
    quality.record_passing()
    din = quality.read(patients.show_patient, code="PT-0001").aspirates[0].din.code
    vehicle = quality.vehicle(day(26))  # received before the withdrawal
    _withdraw(quality)
    withdrawn = quality.read(patients.show_patient, code="PT-0001")
    assert withdrawn.withdrawn
    assert withdrawn.withdraw_reason == "consent withdrawn in writing"
    assert quality.scenario.audit_trail()[-1].action == "patient.withdraw"
    quality.lab.login("tom")
    refusal = r"patient PT-0001 withdrew consent on \d{4}-\d\d-\d\d"
    with pytest.raises(RuleViolation, match=refusal + ".*aspirate receipt"):
        quality.aspirate()
    with pytest.raises(RuleViolation, match=refusal + ".*culture start"):
        quality.culture(din)
    with pytest.raises(RuleViolation, match=refusal + ".*passage log"):
        quality.passage(quality.culture_id, day(20))
    with pytest.raises(RuleViolation, match=refusal + ".*lot formulation"):
        quality.formulate(**vehicle)
    with pytest.raises(RuleViolation, match=refusal + ".*label print"):
        quality.run(printing.print_labels, lot=quality.lot_id, fmt="zpl", out=tmp_path)
    with pytest.raises(RuleViolation, match=refusal + ".*lot release"):
        quality.release()
    quality.lab.login("tom")
    first, second, *_ = vial_ids(quality.lot_id)
    verdict = quality.run(vials.verify, scan=scan_of(quality, first), patient="PT-0001")
    assert not verdict.match
    assert "withdrew consent" in verdict.reason
    # Disposal, corrections of what was recorded, and reads stay possible.
    quality.run(
        cultures.correct_passage, passage=f"{quality.culture_id}-P1", viability=90, reason="typo"
    )
    destroyed = quality.run(vials.destroy, vial=second, reason="consent withdrawn")
    assert destroyed.status == "destroyed"
    assert quality.read(lots.show_lot, lot=quality.lot_id).summary.lot_id == quality.lot_id
    with pytest.raises(RuleViolation, match="already withdrew consent"):
        _withdraw(quality)


def test_a_withdrawn_patient_can_still_be_corrected(bench: Bench) -> None:
    bench.patient()
    _withdraw(bench)
    corrected = bench.run(
        patients.correct_patient, code="PT-0001", initials="AB", reason="entry error"
    )
    assert corrected.withdrawn
    assert corrected.initials == "AB"
    assert to_json(bench.read(patients.list_patients)[0])["withdrawn"] is True


def test_passage_log_is_refused_for_a_withdrawn_patient_before_anything_is_written(
    bench: Bench,
) -> None:
    bench.patient()
    culture = bench.culture(bench.aspirate().din.code).summary.culture_id
    _withdraw(bench)
    before = bench.audit_actions()
    with pytest.raises(RuleViolation):
        bench.passage(culture, day(12), **PASSAGE)
    assert bench.audit_actions() == before


# --- codes that cannot be confused ----------------------------------------------------------


def test_a_code_that_reads_as_another_patients_is_refused(bench: Bench) -> None:
    """Why: PT-0001 and PT-OOO1 (letter O) were both accepted."""
    bench.patient("PT-0001")
    for look_alike in ("PT-OOO1", "PT-000I", "PT-O0OI"):
        with pytest.raises(RuleViolation, match="PT-0001"):
            bench.patient(look_alike)
    bench.patient("PT-0002")


def test_codes_differing_only_in_case_are_one_patient(bench: Bench) -> None:
    bench.lab.set_site(patients={"code_pattern": "[A-Za-z0-9-]{3,32}"})
    bench.lab.login("tom")
    bench.patient("PT-0001")
    with pytest.raises(BadInput, match="what a label carries"):
        bench.patient("pt-0001")


@pytest.mark.parametrize(
    "code", ["A999926000001", "A9999 26 000001", "A999926000001-C1", "A999926000001-L1-V01"]
)
def test_a_code_that_reads_as_a_lims_id_is_refused(bench: Bench, code: str) -> None:
    bench.lab.set_site(patients={"code_pattern": "[A-Z0-9 -]{3,32}"})
    bench.lab.login("tom")
    with pytest.raises((RuleViolation, BadInput)):
        bench.patient(code)
    assert "patient.create" not in bench.audit_actions()


@pytest.mark.parametrize("code", ["PT-１２３４", "PT-١٢٣٤"])
def test_a_site_pattern_cannot_let_in_digits_other_than_ascii(bench: Bench, code: str) -> None:
    """Why: the site pattern PT-\\d{4} accepted full-width and Arabic-Indic digits as other
    patients, and label print then failed with "unexpected ValueError"."""
    bench.lab.set_site(patients={"code_pattern": r"PT-\d{4}", "code_description": "PT-NNNN"})
    bench.lab.login("tom")
    with pytest.raises(BadInput, match="ASCII") as refused:
        bench.patient(code)
    assert refused.value.field == "code"
    with pytest.raises(BadInput, match="ASCII"):
        bench.read(patients.show_patient, code=code)
    bench.patient("PT-1234")
