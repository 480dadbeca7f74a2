"""Donor screening: a patient's results, and what they make the labels of their cells say."""

from __future__ import annotations

from sqlmodel import Session, col, select

from lims.config import Settings
from lims.domain import screening
from lims.models import Screening


def statement_for(session: Session, settings: Settings, patient_id: int) -> screening.Statement:
    """The patient's screening statement, judged against the site's tests in force."""
    rows = session.exec(
        select(Screening).where(col(Screening.patient_id) == patient_id).order_by(col(Screening.id))
    ).all()
    return screening.statement(
        settings.screening.tests,
        (screening.Result(row.test, row.result, row.performed_at) for row in rows),
    )
