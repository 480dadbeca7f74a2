"""The dose per kilogram, a derived criterion a site enables, judged with no database.

Cells per kg are the cells of all the lot's vials over the patient's weight; with no
weight on record there is nothing to judge by, and the criterion fails saying so.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from lims.domain.spec import (
    DERIVED_TESTS,
    Criterion,
    CriterionVerdict,
    LotFacts,
    ReleaseSpec,
    StoredSpec,
    evaluate,
    laid_over,
)

RELEASE_SPEC: TypeAdapter[dict[str, Criterion]] = TypeAdapter(ReleaseSpec)
STORED_SPEC: TypeAdapter[dict[str, Criterion]] = TypeAdapter(StoredSpec)
DEFAULT = RELEASE_SPEC.validate_python({})
PER_KG = {"cell_dose_per_kg": {"min": 1e6, "max": 2e6}}
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lot(**facts: Any) -> LotFacts:
    """One vial of 1.2x10^8 cells, the paper's single syringe, for a 60 kg patient."""
    given: dict[str, Any] = {
        "code": "A999926000001-L1",
        "status": "quarantine",
        "spec_version": 2,
        "expires_at": NOW + timedelta(days=2),
        "now": NOW,
        "zone": UTC,
        "cells_per_vial": 120_000_000,
        "final_passage": 2,
        "deviations": (),
        "vials": 1,
        "patient_weight_kg": 60.0,
        **facts,
    }
    return LotFacts(**given)


def per_kg(spec: dict[str, Criterion], facts: LotFacts) -> CriterionVerdict:
    evaluation = evaluate(spec, [], facts)
    return next(v for v in evaluation.criteria if v.test == "cell_dose_per_kg")


def test_cells_per_kg_are_all_the_lots_vials_over_the_patients_weight() -> None:
    read = DERIVED_TESTS["cell_dose_per_kg"]
    assert read(lot()) == 2e6
    assert read(lot(vials=4, cells_per_vial=40_000_000, patient_weight_kg=80.0)) == 2e6
    assert read(lot(patient_weight_kg=None)) is None


def test_the_default_specification_does_not_judge_a_dose_per_kg() -> None:
    assert "cell_dose_per_kg" not in DEFAULT
    assert all(v.test != "cell_dose_per_kg" for v in evaluate(DEFAULT, [], lot()).criteria)


def test_a_site_enables_it_with_min_and_max_and_lims_describes_it() -> None:
    """At `lims init` (lims.toml over the packaged defaults) and through `spec set` (over the
    version in force), min and max are all a site has to give."""
    for spec in (
        RELEASE_SPEC.validate_python(PER_KG),
        STORED_SPEC.validate_python(laid_over(DEFAULT, PER_KG)),
    ):
        criterion = spec["cell_dose_per_kg"]
        assert (criterion.kind, criterion.unit, criterion.describe()) == (
            "derived",
            "cells/kg",
            "1e6-2e6 cells/kg",
        )
        assert "all the lot's vials" in criterion.description


def test_a_dose_per_kg_must_stay_derived() -> None:
    with pytest.raises(ValidationError, match="its kind must be 'derived'"):
        STORED_SPEC.validate_python(
            laid_over(DEFAULT, {"cell_dose_per_kg": {"kind": "numeric", "max": 2e6}})
        )


@pytest.mark.parametrize(
    ("facts", "verdict", "value"),
    [
        ({}, "pass", "2e6"),
        ({"patient_weight_kg": 120.0}, "pass", "1e6"),
        ({"patient_weight_kg": 121.0}, "fail", "991736"),
        ({"patient_weight_kg": 59.0}, "fail", "2.0339e6"),
        ({"vials": 2, "patient_weight_kg": 120.0}, "pass", "2e6"),
    ],
)
def test_the_dose_per_kg_is_judged_against_its_range(
    facts: dict[str, Any], verdict: str, value: str
) -> None:
    spec = RELEASE_SPEC.validate_python(PER_KG)
    judged = per_kg(spec, lot(**facts))
    assert (judged.verdict, judged.result) == (verdict, value)


def test_a_patient_without_a_weight_fails_it_saying_the_weight_is_missing() -> None:
    spec = RELEASE_SPEC.validate_python(PER_KG)
    facts = lot(patient_weight_kg=None)
    judged = per_kg(spec, facts)
    assert (judged.verdict, judged.result, judged.waived_by) == ("fail", None, None)
    assert judged.blocking is not None
    assert judged.blocking.startswith("cell_dose_per_kg failed: the patient's weight is missing")
    assert judged.blocking.endswith("(spec 1e6-2e6 cells/kg)")
    assert judged.blocking in evaluate(spec, [], facts).blocking


def _held_by_dose(facts: LotFacts) -> list[str]:
    """What holds a released lot among its dose criteria (it has no results here)."""
    spec = RELEASE_SPEC.validate_python(PER_KG)
    holds = evaluate(spec, [], replace(facts, status="released")).hold_reasons
    return [reason for reason in holds if reason.startswith("cell_dose")]


def test_a_released_lot_is_held_once_a_weight_corrected_fails_its_dose_per_kg() -> None:
    """A weight is corrected after release (a child's 8 kg typed as 80): the dose per kg read
    off it then fails, and the lot's vials go to no patient until QA decides, as when a
    result fails after release. Its signature's record shows the change as well
    (lims.services.lots)."""
    assert _held_by_dose(lot()) == []
    [held] = _held_by_dose(lot(patient_weight_kg=6.0))
    assert held.startswith("cell_dose_per_kg failed: 2e7 cells/kg")
    [held] = _held_by_dose(lot(patient_weight_kg=None))
    assert held.startswith("cell_dose_per_kg failed: the patient's weight is missing")
    # The lot's own facts were fixed when it was signed: what fails by them alone holds nothing.
    assert _held_by_dose(lot(cells_per_vial=1e9, patient_weight_kg=500.0)) == []
