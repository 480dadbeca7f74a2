"""Patients through the service: one pseudonymous code each, values in range, audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lims.errors import BadInput, NotPermitted, RuleViolation
from lims.models import Patient
from lims.services import patients
from lims.views import to_json
from tests.support.bench import NOW, Bench


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
    record = {key: value for key, value in to_json(added).items() if key != "aspirates"}
    assert to_json(shown).items() >= record.items()
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
        "weight_kg",
        "recorded_at",
        "recorded_by",
        "withdrawn_at",
        "withdrawn_by",
        "withdraw_reason",
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
    bench.lab.set_site(patients={"code_pattern": "P[0-9]{4}", "code_description": "P and 4 digits"})
    bench.lab.login("tom")
    with pytest.raises(BadInput, match="P and 4 digits"):
        bench.patient("PT-0001")
    bench.patient("P0001")


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
        ("weight-kg", {"weight_kg": "0"}),
        ("weight-kg", {"weight_kg": "401"}),
    ],
)
def test_patient_values_out_of_range_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(
            patients.add_patient,
            **{
                "code": "PT-0001",
                "initials": "MR",
                "birth_year": 1958,
                "consent_date": "2026-01-15",
                **values,
            },
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


def test_a_site_pattern_cannot_make_codes_longer_than_the_column(bench: Bench) -> None:
    bench.lab.set_site(patients={"code_pattern": "[A-Z]{3,64}"})
    bench.lab.login("tom")
    with pytest.raises(BadInput, match="at most 32"):
        bench.patient("A" * 40)
