"""Patients: the donor, who is also the recipient. Identified by a pseudonymous code only.

Consent is on record for every patient added (its date bounds their aspirates' collection);
a record is corrected with a reason, never overwritten; a patient who withdraws consent
gets no further manufacturing step (lims.services.consent), while what was made stays
on record to the end.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from lims import audit
from lims.domain import ids, quantities
from lims.errors import BadInput, RuleViolation, shown
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX, Aspirate, Culture, Lot, Patient, Vial
from lims.services import aspirates as aspirate_rules
from lims.services import cultures as culture_rules
from lims.services import deviations as deviation_rules
from lims.services import events as event_rules
from lims.services import lookup, records, screening
from lims.services import lots as lot_rules
from lims.services import storage as storage_rules
from lims.services import vials as vial_rules
from lims.timeutil import calendar_date, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text, matching
from lims.views import from_record
from lims.views.bench import PatientView
from lims.views.patients import PatientDetail

INITIALS = re.compile(r"[A-Z]{1,4}")
EARLIEST_BIRTH_YEAR = 1900
CORRECTABLE = ("initials", "birth_year", "consent_date", "weight_kg")


def _record_keys(patient: Patient) -> dict[str, Any]:
    """What a patient's view shows beyond the columns of its row."""
    return {"withdrawn": patient.withdrawn_at is not None}


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
    return [
        from_record(PatientView, patient, aspirates=dins[patient.id], **_record_keys(patient))
        for patient in patients
    ]


def _birth_year(uow: UnitOfWork, value: str | int) -> int:
    today = utcnow().astimezone(uow.settings.tz).date()
    return quantities.whole_number("birth-year", value, low=EARLIEST_BIRTH_YEAR, high=today.year)


def _consent_date(uow: UnitOfWork, value: str | date, birth_year: int) -> date:
    today = utcnow().astimezone(uow.settings.tz).date()
    consent = calendar_date("consent-date", value)
    if not date(birth_year, 1, 1) <= consent <= today:
        raise BadInput(
            "consent-date",
            f"must be between the birth year {birth_year} and today {today} "
            f"(got {shown(str(consent))})",
        )
    return consent


def _weight_kg(uow: UnitOfWork, value: str | float) -> float:
    """A body weight within the site's plausible range: outside it, a typing error that would
    decide a dose per kilogram."""
    rules = uow.settings.patients
    return quantities.within(
        "weight-kg", value, unit="kg", low=rules.min_weight_kg, high=rules.max_weight_kg
    )


def _distinct_code(session: Session, code: str) -> None:
    """A new code reads as no other patient's and as no other kind of lims id.

    Skeletons are compared in Python: the codes of one site's patients are few, and the
    rule (lims.domain.ids.skeleton) stays in one place.
    """
    kind = ids.reads_as_lims_id(code)
    if kind is not None:
        raise RuleViolation(
            f"patient code {code!r} reads as a {kind} id; choose a code no lims id can be read as"
        )
    wanted = ids.skeleton(code)
    for other in session.exec(select(Patient.code)).all():
        if other == code:
            raise RuleViolation(f"a patient with code {code!r} already exists")
        if ids.skeleton(other) == wanted:
            raise RuleViolation(
                f"patient code {code!r} can be read as patient {other}'s "
                "(letter O and zero, letter I and one, or case); choose another code"
            )


def add_patient(
    uow: UnitOfWork,
    *,
    code: str,
    initials: str,
    birth_year: str | int,
    consent_date: str | date,
    study: str | None = None,
    weight_kg: str | float | None = None,
) -> PatientView:
    """Register a patient under a pseudonymous code; no name or record number is kept."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    lookup.valid_patient_code(settings, code)
    matching("initials", initials, INITIALS, "1-4 upper-case letters, e.g. AB")
    year = _birth_year(uow, birth_year)
    consent = _consent_date(uow, consent_date, year)
    weight = _weight_kg(uow, weight_kg) if weight_kg is not None else None
    if study is not None:
        free_text("study", study, max_length=SHORT_TEXT_MAX)
    _distinct_code(session, code)
    given: dict[str, Any] = {
        "code": code,
        "initials": initials,
        "birth_year": year,
        "study": study,
        "weight_kg": weight,
    }
    patient = Patient(**given, consent_date=consent)
    new = {**given, "consent_date": consent.isoformat()}
    records.create(session, patient, "patient.create", by=actor, at=utcnow(), new=new)
    [view] = _views(session, [patient])
    return view


def correct_patient(
    uow: UnitOfWork,
    *,
    code: str,
    reason: str,
    initials: str | None = None,
    birth_year: str | int | None = None,
    consent_date: str | date | None = None,
    weight_kg: str | float | None = None,
) -> PatientView:
    """Correct what was recorded of a patient, with a reason; the trail keeps old and new.

    A withdrawn patient's record is still corrected: a wrong birth year or consent date
    stays wrong on every record and report of their materials otherwise, and a correction
    makes nothing. The consent date stays within the birth year and today, and no earlier
    collection of theirs may fall before it.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    typed: dict[str, Any] = {}
    if initials is not None:
        typed["initials"] = matching("initials", initials, INITIALS, "1-4 upper-case letters")
    if birth_year is not None:
        typed["birth_year"] = _birth_year(uow, birth_year)
    if weight_kg is not None:
        typed["weight_kg"] = _weight_kg(uow, weight_kg)
    if not typed and consent_date is None:
        raise BadInput(
            "correction",
            "name at least one value to correct: --initials, --birth-year, --consent-date "
            "or --weight-kg",
        )
    patient = lookup.patient(session, settings, code, field="code")
    year = typed.get("birth_year", patient.birth_year)
    if consent_date is not None:
        typed["consent_date"] = _consent_date(uow, consent_date, year)
    elif patient.consent_date is not None and patient.consent_date < date(year, 1, 1):
        raise BadInput(
            "birth-year",
            f"must not be after the consent date {patient.consent_date} (got {year})",
        )
    changes = {
        name: (getattr(patient, name), value)
        for name, value in typed.items()
        if getattr(patient, name) != value
    }
    if not changes:
        raise BadInput("correction", "every value given is the one on record: nothing to correct")
    # Applied before the check below reads them: a refusal rolls the unit of work back.
    for name, (_, value) in changes.items():
        setattr(patient, name, value)
    _collections_still_consented(session, uow, patient)
    session.add(patient)
    audit.record_changes(
        session,
        ("patient", patient.code),
        "patient.correct",
        {name: tuple(map(_audited, pair)) for name, pair in changes.items()},
        by=actor.username,
        reason=reason,
    )
    session.flush()
    [view] = _views(session, [patient])
    return view


def _audited(value: Any) -> Any:
    """A value as the trail states it: a date as ISO 8601 text, as patient.create does."""
    return value.isoformat() if isinstance(value, date) else value


def _collections_still_consented(session: Session, uow: UnitOfWork, patient: Patient) -> None:
    """A corrected patient has no aspirate collected before their consent or birth year."""
    facility_zone = aspirate_rules.facility_zone(uow.settings)
    for aspirate in session.exec(
        select(Aspirate).where(col(Aspirate.patient_id) == patient.id).order_by(col(Aspirate.id))
    ).all():
        try:
            aspirate_rules.check_collection(patient, aspirate.collected_at, facility_zone)
        except BadInput:
            raise RuleViolation(
                f"aspirate {aspirate.din} of patient {patient.code} was collected on "
                f"{aspirate.collected_at.astimezone(facility_zone).date()}: the consent date "
                "and birth year must not be after it"
            ) from None


def withdraw_patient(uow: UnitOfWork, *, code: str, reason: str) -> PatientView:
    """The patient withdraws consent: from now no manufacturing step on their materials.

    What was made stays on record and can still be disposed of, traced and reported.
    Withdrawal is final: consent given again is a new patient record, under a new code.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    patient = lookup.patient(session, settings, code, field="code")
    if patient.withdrawn_at is not None:
        raise RuleViolation(
            f"patient {patient.code} already withdrew consent on "
            f"{show_time(patient.withdrawn_at, settings.tz)}"
        )
    now = utcnow()
    patient.withdrawn_at, patient.withdrawn_by, patient.withdraw_reason = (
        now,
        actor.username,
        reason,
    )
    session.add(patient)
    audit.record_about(
        session,
        ("patient", patient.code),
        "patient.withdraw",
        by=actor.username,
        old={"withdrawn": False},
        new={"withdrawn": True, "withdrawn_at": now, "withdrawn_by": actor.username},
        reason=reason,
    )
    session.flush()
    [view] = _views(session, [patient])
    return view


def show_patient(uow: UnitOfWork, *, code: str) -> PatientDetail:
    """Everything about one patient: their record and every material made from them."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    patient = lookup.patient(session, settings, code, field="code")
    assert patient.id is not None
    now = utcnow()
    aspirates = session.exec(
        select(Aspirate).where(col(Aspirate.patient_id) == patient.id).order_by(col(Aspirate.id))
    ).all()
    cultures = session.exec(
        select(Culture)
        .where(col(Culture.aspirate_id).in_([a.id for a in aspirates]))
        .order_by(col(Culture.aspirate_id), col(Culture.number))
    ).all()
    lots = session.exec(
        select(Lot)
        .where(col(Lot.patient_id) == patient.id)
        .order_by(col(Lot.aspirate_id), col(Lot.number))
    ).all()
    lot_of = {lot.id: lot for lot in lots}
    vials = session.exec(
        select(Vial)
        .where(col(Vial.lot_id).in_(list(lot_of)))
        .order_by(col(Vial.lot_id), col(Vial.number))
    ).all()
    shipped = vial_rules.shipments_of(session, vials)
    culture_codes: dict[int | None, list[str]] = {}
    for culture in cultures:
        culture_codes.setdefault(culture.aspirate_id, []).append(culture.code)
    return from_record(
        PatientDetail,
        patient,
        **_record_keys(patient),
        aspirates=aspirate_rules.views(
            session, [(a, patient.code, culture_codes.get(a.id, [])) for a in aspirates]
        ),
        cultures=culture_rules.culture_summaries(session, cultures),
        lots=lot_rules.lot_summaries(session, lots, now),
        vials=[
            vial_rules.vial_view(
                v, lot_of[v.lot_id], patient.code, now, shipment=shipped.get(v.code)
            )
            for v in vials
        ],
        stored_items=storage_rules.stored_of_patient(session, patient),
        deviations=deviation_rules.on_patient(session, patient.id),
        events=event_rules.of_patient(session, patient),
        screening=screening.result_views(session, patient.id),
        screening_statement=screening.statement_view(
            screening.statement_for(session, settings, patient.id)
        ),
    )


def list_patients(uow: UnitOfWork) -> list[PatientView]:
    session = uow.session
    uow.require("read_records")
    patients = session.exec(select(Patient).order_by(col(Patient.code))).all()
    return _views(session, patients)
