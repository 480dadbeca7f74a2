"""Consent: a patient who withdrew it gets no further manufacturing step on their materials.

Every manufacturing step (aspirate receipt, culture start and split, passage log, lot
formulation and release, label print, vial issue, verification and administration) asks
here, with the patient whose materials it works on, before it writes. Disposal (vial
destroy, bank discard), corrections of what was recorded, deviation closing, QC results,
follow-up events, reads, trace and reports stay possible: a withdrawn patient's
materials must still be accounted for to the end.
"""

from __future__ import annotations

from datetime import tzinfo

from sqlmodel import Session

from lims.errors import RuleViolation
from lims.models import Aspirate, Culture, Patient
from lims.timeutil import show_time


def withdrawal(patient: Patient, zone: tzinfo) -> str | None:
    """Why no manufacturing step may be done for the patient; None while consent stands."""
    if patient.withdrawn_at is None:
        return None
    return f"patient {patient.code} withdrew consent on {show_time(patient.withdrawn_at, zone)}"


def require_in_force(session: Session, zone: tzinfo, patient_id: int, step: str) -> Patient:
    """The patient, unless they withdrew consent: then `step` is refused (RuleViolation)."""
    patient = session.get(Patient, patient_id)
    assert patient is not None
    refusal = withdrawal(patient, zone)
    if refusal is not None:
        raise RuleViolation(f"{refusal}: no {step} on their materials")
    return patient


def require_in_force_for_culture(
    session: Session, zone: tzinfo, culture: Culture, step: str
) -> Patient:
    """As require_in_force, for the patient whose aspirate the culture came from."""
    aspirate = session.get(Aspirate, culture.aspirate_id)
    assert aspirate is not None
    return require_in_force(session, zone, aspirate.patient_id, step)
