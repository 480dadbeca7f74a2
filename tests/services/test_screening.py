"""Donor screening through the service: a result on record and in the trail together, judged
against the site's tests in force."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from lims.config import ScreeningSettings
from lims.domain import screening as rules
from lims.errors import BadInput, NotFound
from lims.services import lookup, screening
from lims.uow import UnitOfWork
from tests.support.bench import NOW, Bench

PATIENT = "PT-0001"


@pytest.fixture
def donor(bench: Bench) -> Bench:
    bench.patient(PATIENT)
    return bench


def record(bench: Bench, test: str, result: str, at: datetime | None = None) -> Any:
    return bench.run(screening.record, patient=PATIENT, test=test, result=result, at=at)


def screenings_on_record(bench: Bench) -> int:
    return int(bench.sql("SELECT count(*) FROM screenings").scalar_one())


def test_a_result_is_kept_with_its_entry_in_the_trail(donor: Bench) -> None:
    view = donor.run(
        screening.record,
        patient=PATIENT,
        test=" HBV ",
        result="Reactive",
        at=NOW - timedelta(hours=1),
    )
    assert (view.test, view.result, view.recorded_by) == ("hbv", "reactive", "tom")
    assert view.performed_at == NOW - timedelta(hours=1)
    assert view.statement.collection_type == "X"
    assert [row.test for row in view.results] == ["hbv"]
    [entry] = [e for e in donor.scenario.audit_trail() if e.action == "patient.screen"]
    assert (entry.entity_type, entry.entity_id, entry.username) == ("patient", PATIENT, "tom")
    assert entry.new is not None
    assert (entry.new["test"], entry.new["result"], entry.new["reactive"]) == (
        "hbv",
        "reactive",
        ["hbv"],
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"test": "hiv-1"}, "test"),
        ({"result": "positive"}, "result"),
        ({"at": "yesterday-ish"}, "at"),
        ({"at": NOW + timedelta(days=1)}, "at"),
    ],
)
def test_a_refused_result_leaves_neither_row_nor_entry(
    donor: Bench, values: dict[str, Any], field: str
) -> None:
    before = len(donor.scenario.audit_trail())
    with pytest.raises(BadInput) as refused:
        donor.run(
            screening.record,
            **{"patient": PATIENT, "test": "hiv", "result": "negative", **values},
        )
    assert refused.value.field == field
    assert screenings_on_record(donor) == 0
    assert len(donor.scenario.audit_trail()) == before


def test_an_unknown_patient_is_not_found(donor: Bench) -> None:
    with pytest.raises(NotFound):
        donor.run(screening.record, patient="PT-0999", test="hiv", result="negative")


def test_a_result_reported_days_after_the_test_needs_no_late_reason(donor: Bench) -> None:
    # The date is the outside laboratory's; the trail keeps when it was typed, and by whom.
    view = record(donor, "cmv", "negative", NOW - timedelta(days=20))
    assert view.performed_at == NOW - timedelta(days=20)


def test_the_statement_follows_the_vocabulary_in_force(donor: Bench) -> None:
    record(donor, "hiv", "negative")
    record(donor, "cmv", "reactive")

    def statement_under(tests: list[str]) -> rules.Statement:
        def judged(uow: UnitOfWork) -> rules.Statement:
            settings = uow.settings.model_copy(update={"screening": ScreeningSettings(tests=tests)})
            patient = lookup.patient(uow.session, settings, PATIENT)
            assert patient.id is not None
            return screening.statement_for(uow.session, settings, patient.id)

        return donor.read(judged)

    assert statement_under(["hiv", "cmv"]) == rules.Statement(reactive=("cmv",), not_performed=())
    # A test the site no longer screens for still marks the donor it found reactive.
    assert statement_under(["hiv", "hcv"]) == rules.Statement(
        reactive=("cmv",), not_performed=("hcv",)
    )
