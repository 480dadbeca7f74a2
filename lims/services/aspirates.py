"""Aspirate receipt: each donation gets its ISBT 128 DIN at the bench, bone marrow to expand
or CSF to suspend the product in (its vehicle), from the same sequence.

CSF is received as a lab receives it: its own volume range (aspirate.csf_max_volume_ml), the
same temperature on arrival and transit limits, collected by lumbar puncture by default, and
neither anticoagulated nor counted (an anticoagulant, TNC or count named for it is refused:
the wrong material was chosen). It starts no culture; lots draw on it (lims.services.vehicles).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims.auth import Actor
from lims.config import Settings
from lims.domain import quantities
from lims.domain.count_use import not_typed, requested, taken_by
from lims.domain.ids import Din, next_din
from lims.errors import BadInput, RuleViolation
from lims.models import (
    CSF,
    LONG_TEXT_MAX,
    MARROW,
    MATERIALS,
    SHORT_TEXT_MAX,
    Aspirate,
    Culture,
    Lot,
    Patient,
)
from lims.services import consent, count_use, counts, late_entries, lookup, records
from lims.services import deviations as deviation_rules
from lims.timeutil import after, past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.bench import AspirateView, VehicleDraw

DEFAULT_SITES = {MARROW: "posterior iliac crest", CSF: "lumbar puncture"}
SMALLEST_VOLUME_ML = 0.1
NONCONFORMING = "nonconforming_sample"  # the kind of deviation a nonconforming receipt opens


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


def views(
    session: Session, aspirates: Sequence[tuple[Aspirate, str, list[str]]]
) -> list[AspirateView]:
    """Aspirates as shown, each with its patient's code, its cultures and its late-entry mark."""
    late = late_entries.marks(session, "aspirate", [aspirate.din for aspirate, _, _ in aspirates])
    sources = counts.sources(session, [aspirate.count_id for aspirate, _, _ in aspirates])
    drawn = draws(session, [a.id for a, _, _ in aspirates if a.material == CSF])
    views = []
    for (aspirate, patient_code, cultures), source in zip(aspirates, sources, strict=True):
        marks = late.get(aspirate.din, [])
        drawn_by = drawn.get(aspirate.id or 0, [])
        views.append(
            from_record(
                AspirateView,
                aspirate,
                din=din_of(aspirate),
                patient=patient_code,
                count=source,
                cultures=cultures,
                drawn_by=drawn_by,
                volume_left_ml=volume_left(aspirate.volume_ml, drawn_by)
                if aspirate.material == CSF
                else None,
                late_entry=bool(marks),
                entered_at=aspirate.recorded_at,
                late_reason=marks[0].reason if marks else None,
            )
        )
    return views


def draws(session: Session, aspirate_ids: Iterable[int | None]) -> dict[int, list[VehicleDraw]]:
    """The lots that drew on each CSF donation as their vehicle, in the order formulated."""
    wanted = [number for number in aspirate_ids if number is not None]
    found: dict[int, list[VehicleDraw]] = {}
    if not wanted:
        return found
    rows = session.exec(
        select(Lot.vehicle_aspirate_id, Lot.code, Lot.vehicle_ml)
        .where(col(Lot.vehicle_aspirate_id).in_(wanted))
        .order_by(col(Lot.id))
    ).all()
    for aspirate_id, code, drawn in rows:
        assert aspirate_id is not None
        assert drawn is not None
        found.setdefault(aspirate_id, []).append(VehicleDraw(lot_id=code, vehicle_ml=drawn))
    return found


def volume_left(received_ml: float, drawn: Sequence[VehicleDraw]) -> float:
    """The mL of a CSF donation no lot drew, in decimal as typed: 10 mL less three draws of
    3.3 is 0.1, not 0.10000000000000053."""
    left = Decimal(repr(received_ml)) - sum(
        (Decimal(repr(draw.vehicle_ml)) for draw in drawn), Decimal(0)
    )
    return float(left)


def require_marrow(aspirate: Aspirate) -> None:
    """Only bone marrow is expanded: CSF is a lot's vehicle, drawn on at formulation."""
    if aspirate.material != MARROW:
        raise RuleViolation(
            f"aspirate {din_of(aspirate).display} is CSF, not bone marrow: a culture starts "
            "from bone marrow; CSF is the vehicle a lot is suspended in (lims lot formulate "
            "--vehicle-din DIN --vehicle-ml V)"
        )


def facility_zone(settings: Settings) -> ZoneInfo:
    """Where the facility is (facility.timezone): collection dates and DIN years are its."""
    return ZoneInfo(settings.facility.timezone)


def collection_year(collected: datetime, facility_zone: tzinfo) -> int:
    """The DIN's year: the year of collection at the facility, whichever station records it."""
    return collected.astimezone(facility_zone).year % 100


def check_collection(donor: Patient, collected: datetime, facility_zone: tzinfo) -> None:
    """An aspirate is taken from a consenting patient who was born: on or after the consent
    date and the birth year, at the facility. A patient on record without a consent date
    (added before consent was required) has none of their aspirates received until one is
    set with `patient correct --consent-date`."""
    if donor.consent_date is None:
        raise RuleViolation(
            f"patient {donor.code} has no consent date on record: set it with "
            f"lims patient correct {donor.code} --consent-date DATE --reason TEXT"
        )
    collected_on = collected.astimezone(facility_zone).date()
    earliest = max(donor.consent_date, date(donor.birth_year, 1, 1))
    if collected_on < earliest:
        why = (
            f"consent on {donor.consent_date}"
            if earliest == donor.consent_date
            else f"birth year {donor.birth_year}"
        )
        raise BadInput(
            "collected-at",
            f"must not be before patient {donor.code}'s {why} (got {collected_on} at the facility)",
        )


def _nonconforming_reason(
    uow: UnitOfWork,
    collected: datetime,
    received: datetime,
    nonconforming: bool,
    reason: str | None,
) -> str | None:
    """Why a sample too long in transit is kept (--nonconforming --reason); None when conforming.

    A sample in transit longer than aspirate.max_transit_hours must be named nonconforming,
    and only such a sample may be.
    """
    limit = uow.settings.aspirate.max_transit_hours
    transit = received - collected
    hours = transit.total_seconds() / 3600
    too_long = transit > timedelta(hours=limit)
    if reason is not None and not nonconforming:
        raise BadInput("reason", "only with --nonconforming")
    if not too_long:
        if nonconforming:
            raise BadInput(
                "nonconforming",
                f"only for a sample received more than {limit:g} h after collection "
                f"(aspirate.max_transit_hours); this one arrived after {hours:.1f} h",
            )
        return None
    if not nonconforming:
        raise BadInput(
            "nonconforming",
            f"required: received {hours:.1f} h after collection, more than {limit:g} h "
            "(aspirate.max_transit_hours); receive it as a nonconforming sample with "
            "--nonconforming --reason TEXT",
        )
    if reason is None:
        raise BadInput("reason", "required with --nonconforming: why the sample is kept")
    return free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)


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
    count: str | None = None,
    suspension_ml: str | float | None = None,
    received_at: str | datetime | None = None,
    temperature_c: str | float | None = None,
    nonconforming: bool = False,
    reason: str | None = None,
    late_reason: str | None = None,
    material: str | None = None,
) -> AspirateView:
    """Record a donation's arrival and give it the next DIN of this facility and year.

    Bone marrow by default, or CSF (`material`), the vehicle lots are suspended in. A sample
    too long in transit is received only as nonconforming, with a reason, and opens a
    deviation on the aspirate. A marrow aspirate's total nucleated cells are typed (`tnc`),
    or taken from an imported count's total cell density (`count`, with the mL the counted
    cells are suspended in), which the aspirate then uses up.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    kind = MARROW if material is None else choice("material", material, MATERIALS)
    if kind == CSF:
        _nothing_of_marrow(anticoagulant=anticoagulant, tnc=tnc, count=count)
    request = requested(count, suspension_ml)
    not_typed(request, tnc=tnc)
    zone = settings.tz
    now = utcnow()
    limits = settings.aspirate
    collected = past_moment("collected-at", collected_at, zone, now)
    received = past_moment("received-at", received_at, zone, now)
    after("received-at", received, collected, "collection", zone)
    volume = quantities.positive(
        "volume-ml",
        volume_ml,
        unit="mL",
        smallest=SMALLEST_VOLUME_ML,
        high=limits.csf_max_volume_ml if kind == CSF else limits.max_volume_ml,
    )
    site = free_text(
        "site", site if site is not None else DEFAULT_SITES[kind], max_length=SHORT_TEXT_MAX
    )
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
    kept_because = _nonconforming_reason(uow, collected, received, nonconforming, reason)
    late = late_entries.reason_for(uow, received, now, late_reason)
    donor: Patient = lookup.patient(session, settings, patient)
    assert donor.id is not None
    consent.require_in_force(session, zone, donor.id, "aspirate receipt")
    at_facility = facility_zone(settings)
    check_collection(donor, collected, at_facility)

    din = _next_din(session, settings.facility.fin, collection_year(collected, at_facility))
    counted = None
    if request is not None:
        counted = count_use.take(
            uow, request, at=received, used_by=taken_by("aspirate", din.code), needs_total=True
        )
        cells = counted.total_cells
    arrival: dict[str, Any] = {
        "material": kind,
        "collected_at": collected,
        "received_at": received,
        "volume_ml": volume,
        "site": site,
        "anticoagulant": anticoagulant,
        "tnc": cells,
        "temperature_c": temperature,
        "nonconforming": kept_because is not None,
    }
    aspirate = Aspirate(
        patient_id=donor.id,
        **_din_columns(din),
        **arrival,
        count_id=None if counted is None else counted.count_id,
    )
    identity = {"din": din.code, "din_check": din.check, "din_display": din.display}
    new = {**identity, "patient": donor.code, **arrival, **count_use.stated(counted)}
    records.create(
        session,
        aspirate,
        "aspirate.receive",
        by=actor,
        at=now,
        new=new,
        late_reason=late,
        stated_at=received,
    )
    if kept_because is not None:
        _open_nonconformance(session, actor, aspirate, din, kept_because, limits.max_transit_hours)
    [view] = views(session, [(aspirate, donor.code, [])])
    return view


def _nothing_of_marrow(**given: str | int | float | None) -> None:
    """CSF is neither anticoagulated nor counted for nucleated cells: a value typed for it
    says the wrong material was chosen."""
    for option, value in given.items():
        if value is not None:
            raise BadInput(
                option,
                "not for CSF, which is neither anticoagulated nor counted at receipt "
                "(for bone marrow, leave out --material csf)",
            )


def _open_nonconformance(
    session: Session, actor: Actor, aspirate: Aspirate, din: Din, reason: str, limit: float
) -> None:
    hours = (aspirate.received_at - aspirate.collected_at).total_seconds() / 3600
    what = "CSF" if aspirate.material == CSF else "aspirate"
    deviation_rules.open_on_aspirate(
        session,
        actor,
        aspirate,
        kind=NONCONFORMING,
        description=(
            f"{what} {din.display} received {hours:.1f} h after collection, more than "
            f"{limit:g} h (aspirate.max_transit_hours); kept as nonconforming: {reason}"
        ),
    )


def show_aspirate(uow: UnitOfWork, *, din: str) -> AspirateView:
    session = uow.session
    uow.require("read_records")
    aspirate = lookup.aspirate(session, din)
    patient = session.get(Patient, aspirate.patient_id)
    assert patient is not None
    [view] = views(session, [(aspirate, patient.code, _culture_codes(session, aspirate))])
    return view


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
    return views(
        session, [(aspirate, code, cultures.get(aspirate.id, [])) for aspirate, code in rows]
    )
