"""Patients: the donor, who is also the recipient. Identified by a pseudonymous code only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from lims.domain import quantities
from lims.errors import BadInput, RuleViolation, shown
from lims.models import SHORT_TEXT_MAX, Aspirate, Patient
from lims.services import lookup, records
from lims.timeutil import calendar_date, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text, matching
from lims.views import from_record
from lims.views.bench import PatientView

INITIALS = re.compile(r"[A-Z]{1,4}")
EARLIEST_BIRTH_YEAR = 1900


def _views(session: Session, patients: Sequence[Patient]) -> list[PatientView]:
    dins: dict[int | None, list[str]] = {patient.id: [] for patient in patients}
    if patients:
        rows = session.exec(
            select(Aspirate.patient_id, Aspirate.din)
            .where(col(Aspirate.patient_id).in_(list(dins)))
            .order_by(col(Aspirate.id))
        ).all()
        for patient_id, din in rows:
            dins[patient_id].append(din)
    return [from_record(PatientView, patient, aspirates=dins[patient.id]) for patient in patients]


def add_patient(
    uow: UnitOfWork,
    *,
    code: str,
    initials: str,
    birth_year: str | int,
    consent_date: str | date | None = None,
    study: str | None = None,
) -> PatientView:
    """Register a patient under a pseudonymous code; no name or record number is kept."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    lookup.valid_patient_code(settings, code)
    matching("initials", initials, INITIALS, "1-4 upper-case letters, e.g. AB")
    today = utcnow().astimezone(settings.tz).date()
    year = quantities.whole_number(
        "birth-year", birth_year, low=EARLIEST_BIRTH_YEAR, high=today.year
    )
    consent = None
    if consent_date is not None:
        consent = calendar_date("consent-date", consent_date)
        if not date(year, 1, 1) <= consent <= today:
            raise BadInput(
                "consent-date",
                f"must be between the birth year {year} and today {today} "
                f"(got {shown(str(consent))})",
            )
    if study is not None:
        free_text("study", study, max_length=SHORT_TEXT_MAX)
    if session.exec(select(Patient.id).where(col(Patient.code) == code)).first() is not None:
        raise RuleViolation(f"a patient with code {code!r} already exists")
    given: dict[str, Any] = {"code": code, "initials": initials, "birth_year": year, "study": study}
    patient = Patient(**given, consent_date=consent)
    new = {**given, "consent_date": consent.isoformat() if consent is not None else None}
    records.create(session, patient, "patient.create", by=actor, at=utcnow(), new=new)
    [view] = _views(session, [patient])
    return view


def show_patient(uow: UnitOfWork, *, code: str) -> PatientView:
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    [view] = _views(session, [lookup.patient(session, settings, code, field="code")])
    return view


def list_patients(uow: UnitOfWork) -> list[PatientView]:
    session = uow.session
    uow.require("read_records")
    patients = session.exec(select(Patient).order_by(col(Patient.code))).all()
    return _views(session, patients)
