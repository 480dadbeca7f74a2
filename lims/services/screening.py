"""Donor screening: a patient's results, and what they make the labels of their cells say."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from lims import audit
from lims.config import Settings
from lims.domain import screening
from lims.models import Patient, Screening
from lims.services import lookup
from lims.timeutil import past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice
from lims.views.screening import ScreeningResultView, ScreeningStatementView, ScreeningView


def statement_for(session: Session, settings: Settings, patient_id: int) -> screening.Statement:
    """The patient's screening statement, judged against the site's tests in force."""
    return screening.statement(
        settings.screening.tests,
        (
            screening.Result(row.test, row.result, row.performed_at)
            for row in _results(session, patient_id)
        ),
    )


def _results(session: Session, patient_id: int) -> list[Screening]:
    return list(
        session.exec(
            select(Screening)
            .where(col(Screening.patient_id) == patient_id)
            .order_by(col(Screening.performed_at), col(Screening.id))
        ).all()
    )


def statement_view(statement: screening.Statement) -> ScreeningStatementView:
    return ScreeningStatementView(
        reactive=list(statement.reactive),
        not_performed=list(statement.not_performed),
        label_text=statement.label_text,
        collection_type=statement.collection_type,
    )


def result_views(session: Session, patient_id: int) -> list[ScreeningResultView]:
    return [
        ScreeningResultView(
            test=row.test,
            result=row.result,
            performed_at=row.performed_at,
            recorded_by=row.recorded_by,
        )
        for row in _results(session, patient_id)
    ]


def _word(typed: str) -> str:
    """A vocabulary word as typed, in any case; only ASCII is folded (str.lower() maps
    some other letters onto ASCII ones)."""
    return typed.strip().lower() if typed.isascii() else typed


def record(
    uow: UnitOfWork,
    *,
    patient: str,
    test: str,
    result: str,
    at: str | datetime | None = None,
) -> ScreeningView:
    """A donor screening result of the patient, performed at `at` (not in the future): from
    now on the labels of their cells say what their results do."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    tested = choice("test", _word(test), tuple(settings.screening.tests))
    found = choice("result", _word(result), screening.RESULTS)
    now = utcnow()
    performed_at = past_moment("at", at, settings.tz, now)
    owner: Patient = lookup.patient(session, settings, patient, field="patient")
    assert owner.id is not None
    row = Screening(
        patient_id=owner.id,
        test=tested,
        result=found,
        performed_at=performed_at,
        recorded_at=now,
        recorded_by=actor.username,
    )
    session.add(row)
    session.flush()
    statement = statement_for(session, settings, owner.id)
    audit.record_about(
        session,
        ("patient", owner.code),
        "patient.screen",
        by=actor.username,
        new={
            "test": tested,
            "result": found,
            "performed_at": performed_at,
            "reactive": list(statement.reactive),
            "not_performed": list(statement.not_performed),
        },
    )
    return ScreeningView(
        patient=owner.code,
        test=tested,
        result=found,
        performed_at=performed_at,
        recorded_by=actor.username,
        results=result_views(session, owner.id),
        statement=statement_view(statement),
    )
