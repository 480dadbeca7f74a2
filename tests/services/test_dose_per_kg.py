"""Dose per kilogram through the service: the weight's plausible range, the criterion a site
enables, the single-syringe lot of the reference process, and what a release signature covers.
"""

from __future__ import annotations

from typing import Any

import pytest

from lims.errors import BadInput, RuleViolation
from lims.services import bindings, lookup, lots, patients, vials
from lims.uow import unit_of_work
from tests.support.bench import NO_REAGENTS
from tests.support.lab import PASSWORD
from tests.support.quality import LOT_PASSAGES, RESULTS_AT, Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
PER_KG = {"cell_dose_per_kg": {"min": 1e6, "max": 2e6}}
# The paper's product: one syringe of 1.2x10^8 cells, above the default 1e8 per vial.
SYRINGE = {"vials": 1, "cells_per_vial": 120_000_000}


def _weigh(quality: Quality, kg: str, code: str = PATIENT) -> Any:
    quality.lab.login("tom")
    return quality.run(
        patients.correct_patient, code=code, weight_kg=kg, reason="weighed at admission"
    )


def _lot(quality: Quality, patient: str, **formulation: Any) -> str:
    """Another lot from a fresh culture of PATIENT, formulated as given over lot L1's values."""
    quality.lab.login("tom")
    culture = quality.scenario.primary_culture(patient, **NO_REAGENTS).summary.culture_id
    for values in LOT_PASSAGES:
        quality.passage(culture, **values)
    return quality.formulate(culture, **formulation).summary.lot_id


def _criterion(quality: Quality, lot: str, test: str) -> Any:
    detail = quality.read(lots.show_lot, lot=lot)
    return next(c for c in detail.evaluation.criteria if c.test == test)


def _release(quality: Quality, lot: str) -> Any:
    quality.lab.login("tom")
    quality.scenario.record_qc(lot, at=RESULTS_AT)
    return quality.scenario.release(lot, signer="rita", password=PASSWORD)


def _disagreement(quality: Quality) -> Any:
    verification = quality.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


# --- the weight ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kg", ["1.9", "250.1", "0.5", "400"])
def test_a_weight_outside_the_sites_range_is_refused_naming_it(quality: Quality, kg: str) -> None:
    quality.lab.login("tom")
    before = quality.audit_actions()
    with pytest.raises(BadInput) as refused:
        quality.run(patients.correct_patient, code=PATIENT, weight_kg=kg, reason="weighed")
    assert refused.value.message.startswith("weight-kg: must be a number of kg from 2 to 250")
    assert quality.audit_actions() == before


def test_the_range_is_the_sites_setting(quality: Quality) -> None:
    assert _weigh(quality, "2").weight_kg == 2
    assert _weigh(quality, "250").weight_kg == 250
    quality.lab.set_site(patients={"min_weight_kg": 0.5, "max_weight_kg": 150})
    assert _weigh(quality, "0.8").weight_kg == 0.8
    with pytest.raises(BadInput, match=r"from 0\.5 to 150"):
        _weigh(quality, "151")
    quality.lab.login("tom")
    with pytest.raises(BadInput, match=r"from 0\.5 to 150"):
        quality.run(
            patients.add_patient,
            code="PT-0002",
            initials="AB",
            birth_year=1970,
            consent_date="2026-01-15",
            weight_kg="160",
        )


def test_the_trail_states_the_weight_at_creation_and_correction(quality: Quality) -> None:
    quality.lab.login("tom")
    quality.run(
        patients.add_patient,
        code="PT-0002",
        initials="AB",
        birth_year=1970,
        consent_date="2026-01-15",
        weight_kg="64.5",
    )
    _weigh(quality, "65", code="PT-0002")
    stated = [
        (entry.action, entry.new.get("weight_kg"))
        for entry in quality.scenario.audit_trail()
        if entry.entity_id == "PT-0002"
    ]
    assert stated == [("patient.create", 64.5), ("patient.correct", 65)]
    assert _disagreement(quality) is None


def test_a_weight_changed_by_hand_disagrees_and_stops_release(quality: Quality) -> None:
    _weigh(quality, "80")
    quality.scenario.record_qc(quality.lot_id, at=RESULTS_AT)
    quality.sql("UPDATE patients SET weight_kg = 40 WHERE code = :code", code=PATIENT)
    found = _disagreement(quality)
    assert (found.table, found.id, found.column, found.row_value, found.trail_value) == (
        "patients",
        PATIENT,
        "weight_kg",
        40,
        80,
    )
    quality.lab.login("rita")
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}patients {PATIENT} weight_kg"):
        quality.run(lots.release, lot=quality.lot_id, password=PASSWORD)


def test_a_weight_set_by_hand_where_none_was_recorded_disagrees(quality: Quality) -> None:
    quality.sql("UPDATE patients SET weight_kg = 70 WHERE code = :code", code=PATIENT)
    found = _disagreement(quality)
    assert (found.table, found.column, found.trail_value) == ("patients", "weight_kg", None)


# --- the criterion ---------------------------------------------------------------------------


def test_a_site_enables_the_dose_per_kg_and_it_judges_all_the_lots_vials(
    quality: Quality,
) -> None:
    """Four vials of 4x10^7 cells: 1.6x10^8 cells, 2x10^6 per kg at 80 kg."""
    assert all(c.test != "cell_dose_per_kg" for c in quality.evaluation().criteria)
    quality.lab.set_spec(PER_KG)
    lot = _lot(quality, PATIENT)
    judged = _criterion(quality, lot, "cell_dose_per_kg")
    assert (judged.verdict, judged.result, judged.unit) == ("fail", None, "cells/kg")
    assert "all the lot's vials" in judged.description
    _weigh(quality, "80")
    judged = _criterion(quality, lot, "cell_dose_per_kg")
    assert (judged.verdict, judged.result, judged.spec) == ("pass", "2e6", "1e6-2e6 cells/kg")
    _weigh(quality, "79")
    assert _criterion(quality, lot, "cell_dose_per_kg").verdict == "fail"
    # Lot L1 was formulated under the version before: it is not judged per kg.
    assert all(c.test != "cell_dose_per_kg" for c in quality.evaluation().criteria)


def test_a_lot_for_a_patient_without_a_weight_is_not_released(quality: Quality) -> None:
    quality.lab.set_spec(PER_KG)
    lot = _lot(quality, PATIENT)
    with pytest.raises(RuleViolation) as refused:
        _release(quality, lot)
    assert (
        "cell_dose_per_kg failed: the patient's weight is missing (record it with "
        "`lims patient correct --weight-kg`) (spec 1e6-2e6 cells/kg)"
    ) in refused.value.message
    _weigh(quality, "80")
    quality.lab.login("rita")
    released = quality.run(lots.release, lot=lot, password=PASSWORD)
    assert released.summary.status == "released"


def test_the_single_syringe_passes_a_spec_that_allows_it_and_fails_the_default(
    quality: Quality,
) -> None:
    under_default = _lot(quality, "PT-0002", **SYRINGE)
    judged = _criterion(quality, under_default, "cell_dose")
    assert (judged.verdict, judged.result) == ("fail", "1.2e8")
    with pytest.raises(RuleViolation, match=r"cell_dose failed: 1\.2e8 cells/vial"):
        _release(quality, under_default)
    quality.lab.set_spec({"cell_dose": {"max": 2e8}, **PER_KG})
    allowed = _lot(quality, "PT-0003", **SYRINGE)
    _weigh(quality, "60", code="PT-0003")
    assert _criterion(quality, allowed, "cell_dose").verdict == "pass"
    assert _criterion(quality, allowed, "cell_dose_per_kg").result == "2e6"
    assert _release(quality, allowed).summary.status == "released"


def test_a_weight_corrected_after_release_that_fails_the_dose_per_kg_holds_the_lot(
    quality: Quality,
) -> None:
    """80 kg at release; the patient weighs 8 (a typing error found later): 10 times the dose
    per kg. No vial of the lot goes to the patient until the weight or QA says otherwise."""
    quality.lab.set_spec(PER_KG)
    lot = _lot(quality, PATIENT)
    _weigh(quality, "80")
    assert _release(quality, lot).on_hold is False
    _weigh(quality, "8")
    held = quality.read(lots.show_lot, lot=lot)
    assert held.hold_reasons == ["cell_dose_per_kg failed: 2e7 cells/kg (spec 1e6-2e6 cells/kg)"]
    vial = f"{lot}-V01"
    quality.lab.login("tom")
    with pytest.raises(vials.VialMismatch, match="is on hold: cell_dose_per_kg failed"):
        quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)
    _weigh(quality, "80")
    assert quality.read(lots.show_lot, lot=lot).on_hold is False


# --- what a release signature covers --------------------------------------------------------------


def test_a_weight_corrected_after_release_shows_the_signed_record_changed(
    quality: Quality,
) -> None:
    _weigh(quality, "80")
    quality.record_passing()
    [signature] = quality.release().signatures
    assert signature.record_unchanged
    _weigh(quality, "82")
    [signature] = quality.show().signatures
    assert signature.linked
    assert not signature.record_unchanged


def test_a_signature_of_record_shape_3_still_verifies_and_never_covered_the_weight(
    quality: Quality, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lot signed by the lims before shape 4 (signing as it did) keeps an unchanged record."""
    _weigh(quality, "80")
    quality.record_passing()
    monkeypatch.setattr(lots, "RECORD_SHAPE", 3)
    quality.release()
    monkeypatch.undo()
    assert quality.sql("SELECT record_shape FROM signatures").scalar_one() == 3
    [signature] = quality.show().signatures
    assert signature.record_unchanged
    _weigh(quality, "82")
    [signature] = quality.show().signatures
    assert signature.record_unchanged
    quality.sql("UPDATE qc_results SET value = '93' WHERE test = 'viability'")
    [signature] = quality.show().signatures
    assert not signature.record_unchanged  # what shape 3 covers is still recomputed


def test_record_shape_4_is_shape_3_and_the_patients_weight(quality: Quality) -> None:
    _weigh(quality, "80")
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        lot = lookup.lot(uow.session, quality.lot_id)
        at = lot.formulated_at
        third = lots._record(uow.session, lot, signed_at=at, shape=3)
        fourth = lots._record(uow.session, lot, signed_at=at, shape=4)
    assert set(third) == {
        "lot",
        "patient",
        "din",
        "culture",
        "cells_plated",
        "passages",
        "formulation",
        "results",
        "waivers",
        "spec_version",
        "specification",
    }
    assert fourth == {**third, "patient_weight_kg": 80}
