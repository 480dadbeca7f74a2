"""Aspirate receipt: each bone-marrow aspirate gets its ISBT 128 DIN at the bench."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims.domain import quantities
from lims.domain.ids import Din, next_din
from lims.models import SHORT_TEXT_MAX, Aspirate, Culture, Patient
from lims.services import lookup, records
from lims.timeutil import after, past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views import from_record
from lims.views.bench import AspirateView

DEFAULT_SITE = "posterior iliac crest"
SMALLEST_VOLUME_ML = 0.1


def din_of(aspirate: Aspirate) -> Din:
    return Din(aspirate.fin, aspirate.year, aspirate.sequence)


def _din_columns(din: Din) -> dict[str, Any]:
    """The columns an aspirate keeps its DIN in, as din_of reads it back."""
    return {
        "din": din.code,
        "din_check": din.check,
        "fin": din.fin,
        "year": din.year,
        "sequence": din.sequence,
    }


def _view(aspirate: Aspirate, patient_code: str, cultures: list[str]) -> AspirateView:
    return from_record(
        AspirateView, aspirate, din=din_of(aspirate), patient=patient_code, cultures=cultures
    )


def _culture_codes(session: Session, aspirate: Aspirate) -> list[str]:
    codes = session.exec(
        select(Culture.code)
        .where(col(Culture.aspirate_id) == aspirate.id)
        .order_by(col(Culture.number))
    ).all()
    return list(codes)


def _next_din(session: Session, fin: str, year: int) -> Din:
    """The next sequence for the facility and year: gap-free because writers are serialised."""
    last = session.exec(
        select(func.max(Aspirate.sequence)).where(
            col(Aspirate.fin) == fin, col(Aspirate.year) == year
        )
    ).one()
    return next_din(fin, year, last)


def receive(
    uow: UnitOfWork,
    *,
    patient: str,
    collected_at: str | datetime,
    volume_ml: str | float,
    site: str | None = None,
    anticoagulant: str | None = None,
    tnc: str | int | None = None,
    received_at: str | datetime | None = None,
    temperature_c: str | float | None = None,
) -> AspirateView:
    """Record an aspirate's arrival and give it the next DIN of this facility and year."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    zone = settings.tz
    now = utcnow()
    limits = settings.aspirate
    collected = past_moment("collected-at", collected_at, zone, now)
    received = past_moment("received-at", received_at, zone, now)
    after("received-at", received, collected, "collection", zone)
    volume = quantities.positive(
        "volume-ml", volume_ml, unit="mL", smallest=SMALLEST_VOLUME_ML, high=limits.max_volume_ml
    )
    site = free_text("site", site if site is not None else DEFAULT_SITE, max_length=SHORT_TEXT_MAX)
    if anticoagulant is not None:
        free_text("anticoagulant", anticoagulant, max_length=SHORT_TEXT_MAX)
    cells = quantities.cell_count("tnc", tnc) if tnc is not None else None
    temperature = None
    if temperature_c is not None:
        temperature = quantities.within(
            "temperature-c",
            temperature_c,
            unit="degrees Celsius",
            low=limits.min_temperature_c,
            high=limits.max_temperature_c,
        )
    donor: Patient = lookup.patient(session, settings, patient)

    assert donor.id is not None
    din = _next_din(session, settings.facility.fin, collected.astimezone(zone).year % 100)
    arrival: dict[str, Any] = {
        "collected_at": collected,
        "received_at": received,
        "volume_ml": volume,
        "site": site,
        "anticoagulant": anticoagulant,
        "tnc": cells,
        "temperature_c": temperature,
    }
    aspirate = Aspirate(patient_id=donor.id, **_din_columns(din), **arrival)
    identity = {"din": din.code, "din_check": din.check, "din_display": din.display}
    new = {**identity, "patient": donor.code, **arrival}
    records.create(session, aspirate, "aspirate.receive", by=actor, at=now, new=new)
    return _view(aspirate, donor.code, [])


def show_aspirate(uow: UnitOfWork, *, din: str) -> AspirateView:
    session = uow.session
    uow.require("read_records")
    aspirate = lookup.aspirate(session, din)
    patient = session.get(Patient, aspirate.patient_id)
    assert patient is not None
    return _view(aspirate, patient.code, _culture_codes(session, aspirate))


def list_aspirates(uow: UnitOfWork) -> list[AspirateView]:
    session = uow.session
    uow.require("read_records")
    rows = session.exec(
        select(Aspirate, Patient.code)
        .join(Patient, col(Patient.id) == col(Aspirate.patient_id))
        .order_by(col(Aspirate.fin), col(Aspirate.year), col(Aspirate.sequence))
    ).all()
    cultures: dict[int | None, list[str]] = {}
    for aspirate_id, code in session.exec(
        select(Culture.aspirate_id, Culture.code).order_by(col(Culture.number))
    ).all():
        cultures.setdefault(aspirate_id, []).append(code)
    return [_view(aspirate, code, cultures.get(aspirate.id, [])) for aspirate, code in rows]
