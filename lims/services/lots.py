"""Product lots: formulation, QA release and rejection with electronic signatures.

A lot is formulated from a culture's final harvest for the patient who gave
the aspirate (autologous), starts in quarantine, and is released only by a
QA user who did no step of it, who re-enters their password (21 CFR 11.200),
and only when every release criterion passes or is waived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from lims import audit, site
from lims.auth import Actor
from lims.config import Settings
from lims.domain import ids, quantities
from lims.domain import signatures as signing
from lims.domain.count_use import not_typed, requested, taken_by, typed_unless_counted
from lims.domain.ids import Din
from lims.domain.states import CULTURE, DEVIATION, LOT, VIAL, expired
from lims.errors import BadInput, RuleViolation
from lims.models import (
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    Aspirate,
    AuditEntry,
    Culture,
    Deviation,
    Lot,
    LotHold,
    Patient,
    QCResult,
    Signature,
    User,
    Vial,
)
from lims.services import (
    bindings,
    consent,
    count_use,
    counts,
    equipment_use,
    late_entries,
    lookup,
    records,
    signatures,
    vehicles,
    verdicts,
)
from lims.services import cultures as culture_rules
from lims.services import deviations as deviation_rules
from lims.services import reagents as reagent_rules
from lims.services import storage as storage_rules
from lims.services import vials as vial_rules
from lims.services.aspirates import din_of
from lims.services.transitions import change_status
from lims.timeutil import json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.quality import HoldView, LotDetail, LotSummary, LotVial, SignatureView
from lims.views.release import evaluation_view

VIALS_MAX = 1000
VIAL_VOLUME_MAX_ML = 1000.0
SHELF_LIFE_MAX_HOURS = 24 * 365
RELEASE_MEANING = "approved for release"
PENDING_RELEASE_MEANING = "released"
PENDING_AT_RELEASE = " — final results pending: "
COMPLETE_MEANING = "final results reviewed"
MEANING_MAX = 200  # signatures.meaning
REJECTED = "rejected: "
RECALLED = "recalled: "
# A rejection's or recall's reason is printed in its signature's meaning: one line that fits
# the column (a longer reason failed in PostgreSQL only, as "value too long").
REASON_IN_MEANING_MAX = MEANING_MAX - max(len(REJECTED), len(RECALLED))
# What a lot takes from a count, when it takes one (lot formulate --count).
COUNTED_FIELDS = ("harvested", "viability")


# --- lookups and views ---------------------------------------------------------------------


def effective_status(lot: Lot, now: datetime) -> str:
    """The stored status, or expired once a lot still in use is past its expiry."""
    return LOT.shown(lot.status, expired=expired(lot.expires_at, now))


def lot_summaries(session: Session, lots: Sequence[Lot], now: datetime) -> list[LotSummary]:
    if not lots:
        return []
    rows = session.exec(
        select(Lot.id, Patient, Aspirate, Culture.code)
        .join(Patient, col(Patient.id) == col(Lot.patient_id))
        .join(Aspirate, col(Aspirate.id) == col(Lot.aspirate_id))
        .join(Culture, col(Culture.id) == col(Lot.culture_id))
        .where(col(Lot.id).in_([lot.id for lot in lots]))
    ).all()
    origins = {lot_id: (patient, aspirate, culture) for lot_id, patient, aspirate, culture in rows}
    suspended_in = {
        donation.id: din_of(donation)
        for donation in session.exec(
            select(Aspirate).where(
                col(Aspirate.id).in_({lot.vehicle_aspirate_id for lot in lots} - {None})
            )
        ).all()
    }
    late = late_entries.marks(session, "lot", [lot.code for lot in lots])
    sources = counts.sources(session, [lot.count_id for lot in lots])
    summaries = []
    for lot, source in zip(lots, sources, strict=True):
        patient, aspirate, culture = origins[lot.id]
        marks = late.get(lot.code, [])
        summaries.append(
            from_record(
                LotSummary,
                lot,
                lot_id=lot.code,
                status=effective_status(lot, now),
                patient=patient.code,
                initials=patient.initials,
                birth_year=patient.birth_year,
                din=din_of(aspirate),
                culture_id=culture,
                count=source,
                vehicle_din=suspended_in.get(lot.vehicle_aspirate_id),
                late_entry=bool(marks),
                entered_at=lot.recorded_at,
                late_reason=marks[0].reason if marks else None,
            )
        )
    return summaries


def list_lots(uow: UnitOfWork, *, status: str | None = None) -> list[LotSummary]:
    session = uow.session
    uow.require("read_records")
    if status is not None:
        choice("status", status, LOT.shown_states())
    now = utcnow()
    lots = session.exec(select(Lot).order_by(col(Lot.code))).all()
    summaries = lot_summaries(session, lots, now)
    return [summary for summary in summaries if status is None or summary.status == status]


def _vials(session: Session, lot: Lot) -> list[LotVial]:
    vials = session.exec(
        select(Vial).where(col(Vial.lot_id) == lot.id).order_by(col(Vial.number))
    ).all()
    late = late_entries.marks(session, "vial", [vial.code for vial in vials])
    shipped = vial_rules.shipments_of(session, vials)
    return [
        from_record(
            LotVial,
            vial,
            vial_id=vial.code,
            late_entries=late.get(vial.code, []),
            acknowledged_pending=verdicts.tests_named(vial.acknowledged_pending),
            shipment=shipped.get(vial.code),
        )
        for vial in vials
    ]


def _signature(session: Session, lot: Lot, signature: Signature) -> SignatureView:
    return from_record(
        SignatureView,
        signature,
        linked=signatures.linked(signature, ids.lot_subject(lot.code)),
        record_unchanged=signature.record_hash in _record_hashes(session, lot, signature),
    )


def lot_detail(session: Session, settings: Settings, lot: Lot) -> LotDetail:
    now = utcnow()
    [summary] = lot_summaries(session, [lot], now)
    culture = session.get(Culture, lot.culture_id)
    assert culture is not None
    assert lot.id is not None
    signed = session.exec(
        select(Signature).where(col(Signature.lot_id) == lot.id).order_by(col(Signature.id))
    ).all()
    return LotDetail(
        summary=summary,
        culture=culture_rules.culture_detail(session, culture),
        reagents=reagent_rules.uses_for_lot(session, lot.id),
        evaluation=evaluation_view(verdicts.evaluate(session, settings, lot, now=now)),
        deviations=deviation_rules.on_lot(session, lot),
        signatures=[_signature(session, lot, signature) for signature in signed],
        vials=_vials(session, lot),
        retained_samples=storage_rules.samples_of_lot(session, lot),
        holds=[
            from_record(HoldView, hold, hold_id=hold.id)
            for hold in session.exec(
                select(LotHold).where(col(LotHold.lot_id) == lot.id).order_by(col(LotHold.id))
            ).all()
        ],
        pending_at_release=pending_at_release(lot),
        release_complete=release_complete(lot),
    )


def release_complete(lot: Lot) -> bool | None:
    """Whether the lot's release needs nothing more: None for a lot never released, False
    for a release on interim results QA has yet to complete."""
    if not LOT.with_patients(lot.status):
        return None
    return lot.pending_at_release is None or lot.release_completed_at is not None


def show_lot(uow: UnitOfWork, *, lot: str) -> LotDetail:
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    return lot_detail(session, settings, lookup.lot(session, lot))


# --- signatures ------------------------------------------------------------------------------


# What a lot signature hashes. Shape 3 is the decision: who the lot is for, what was
# formulated, the results and waivers relied on, and the specification's rules; nothing
# recorded after signing and no description. Shape 4 adds the patient's weight, which a
# dose per kilogram is judged by. Shape 5 adds the vehicle: the DIN of the patient's CSF the
# cells are suspended in and the mL drawn from it. Signatures made before shapes were numbered
# hashed the whole record as it then stood (_earlier_record).
RECORD_SHAPE = 5
WEIGHED_SHAPE = 4  # the first shape whose record holds the patient's weight
VEHICLE_SHAPE = 5  # the first whose record holds the vehicle's DIN and mL


def _record(session: Session, lot: Lot, *, signed_at: datetime, shape: int) -> dict[str, Any]:
    """What a lot signature made at `signed_at` in `shape` covers, as it stands in the
    database."""
    culture = session.get(Culture, lot.culture_id)
    patient = session.get(Patient, lot.patient_id)
    aspirate = session.get(Aspirate, lot.aspirate_id)
    assert culture is not None
    assert patient is not None
    assert aspirate is not None
    results = _results_by(session, lot, signed_at)
    waivers = session.exec(
        select(Deviation)
        .where(
            col(Deviation.lot_id) == lot.id,
            col(Deviation.waived),
            col(Deviation.closed_at) <= signed_at,
        )
        .order_by(col(Deviation.id))
    ).all()
    judged_by = site.specification(session, lot.spec_version)
    weighed = {"patient_weight_kg": patient.weight_kg} if shape >= WEIGHED_SHAPE else {}
    suspended = {"vehicle": _vehicle(session, lot)} if shape >= VEHICLE_SHAPE else {}
    return {
        "lot": lot.code,
        "patient": patient.code,
        **weighed,
        **suspended,
        "din": din_of(aspirate).code,
        "culture": culture.code,
        "cells_plated": culture.cells_plated,
        "passages": _passages(session, culture),
        "formulation": _formulation(lot),
        "results": [
            [r.id, r.test, r.value, r.unit, json_time(r.tested_at), r.investigation_id]
            for r in results
        ],
        "waivers": [[d.id, d.criterion, d.waived_result_id] for d in waivers],
        "spec_version": lot.spec_version,
        "specification": {
            test: {key: value for key, value in table.items() if key != "description"}
            for test, table in site.spec_tables(judged_by).items()
        },
    }


def _passages(session: Session, culture: Culture) -> list[list[Any]]:
    return [
        [p.code, json_time(p.harvested_at), p.harvested, p.viability, p.seeded, p.area_cm2]
        for p in culture_rules.passages_of(session, culture)
    ]


def _results_by(session: Session, lot: Lot, signed_at: datetime) -> Sequence[QCResult]:
    """The lot's results recorded by the time of signing, as recorded."""
    return session.exec(
        select(QCResult)
        .where(col(QCResult.lot_id) == lot.id, col(QCResult.recorded_at) <= signed_at)
        .order_by(col(QCResult.id))
    ).all()


def _formulation(lot: Lot) -> list[Any]:
    return [
        json_time(lot.formulated_at),
        lot.harvested,
        lot.viability,
        lot.vials,
        lot.cells_per_vial,
        lot.volume_ml,
        lot.vehicle,
        json_time(lot.expires_at),
    ]


def _vehicle(session: Session, lot: Lot) -> list[Any]:
    """The vehicle as a signature covers it: the CSF's DIN and the mL drawn, or the words of
    a typed vehicle."""
    donation = vehicle_donation(session, lot)
    if donation is None:
        return [lot.vehicle]
    return [din_of(donation).code, lot.vehicle_ml]


def vehicle_donation(session: Session, lot: Lot) -> Aspirate | None:
    """The CSF the lot's cells are suspended in; None for a typed vehicle."""
    if lot.vehicle_aspirate_id is None:
        return None
    return session.get(Aspirate, lot.vehicle_aspirate_id)


def vehicle_din(session: Session, lot: Lot) -> Din | None:
    """The DIN of the CSF the lot's cells are suspended in, for its labels."""
    donation = vehicle_donation(session, lot)
    return None if donation is None else din_of(donation)


def _earlier_record(session: Session, lot: Lot, *, signed_at: datetime) -> dict[str, Any]:
    """The record lot signatures hashed before RECORD_SHAPE, from what existed at signing:
    with the lot's specification version since site records (0006), without it before."""
    culture = session.get(Culture, lot.culture_id)
    assert culture is not None
    return {
        "lot": lot.code,
        "culture": culture.code,
        "started_at": json_time(culture.started_at),
        "cells_plated": culture.cells_plated,
        "passages": _passages(session, culture),
        "formulation": _formulation(lot),
        "qc": [
            [r.test, r.value, r.unit, json_time(r.tested_at)]
            for r in _results_by(session, lot, signed_at)
        ],
        "deviations": [
            [d.deviation_id, d.status, d.description, d.resolution, d.waived]
            for d in deviation_rules.on_lot(session, lot)
            if d.opened_at <= signed_at
        ],
        "spec_version": lot.spec_version,
        "specification": site.spec_tables(site.specification(session, lot.spec_version)),
    }


def _hashed(record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record_hashes(session: Session, lot: Lot, signature: Signature) -> set[str]:
    """What the signature's record hashes to now, in each shape it may have been made in."""
    if signature.record_shape is not None:  # numbered from shape 3 on
        shape = signature.record_shape
        return {_hashed(_record(session, lot, signed_at=signature.signed_at, shape=shape))}
    earlier = _earlier_record(session, lot, signed_at=signature.signed_at)
    before_site_records = {key: v for key, v in earlier.items() if key != "spec_version"}
    return {_hashed(earlier), _hashed(before_site_records)}


# --- separation of duties -----------------------------------------------------------------------


def performers(session: Session, lot: Lot) -> dict[str, list[str]]:
    """Who recorded which step of this lot: its culture, passages, corrections, formulation, QC."""
    culture = session.get(Culture, lot.culture_id)
    assert culture is not None
    steps: dict[str, list[str]] = {}

    def did(username: str, step: str) -> None:
        steps.setdefault(username, []).append(step)

    # The cultures it was split from are its history too.
    for ancestor, _ in culture_rules.ancestors(session, culture):
        did(ancestor.recorded_by, f"started {ancestor.code}")
        for passage in culture_rules.passages_of(session, ancestor):
            did(passage.recorded_by, f"logged {passage.code}")
    did(culture.recorded_by, f"started {culture.code}")
    passages = culture_rules.passages_of(session, culture)
    for passage in passages:
        did(passage.recorded_by, f"logged {passage.code}")
    did(lot.recorded_by, f"formulated {lot.code}")
    corrections = session.exec(
        select(AuditEntry.username, AuditEntry.entity_id).where(
            col(AuditEntry.action).in_(["passage.correct", "lot.correct"]),
            col(AuditEntry.entity_id).in_([p.code for p in passages] + [lot.code]),
        )
    ).all()
    for username, code in corrections:
        if username:
            did(username, f"corrected {code}")
    for username, test in session.exec(
        select(QCResult.recorded_by, QCResult.test).where(col(QCResult.lot_id) == lot.id)
    ).all():
        did(username, f"recorded QC {test}")
    return steps


def _signing_facts(session: Session, lot: Lot, actor: Actor) -> dict[str, Any]:
    """What the guards of a lot's signature look at: who signs and what they did on it."""
    steps = performers(session, lot).get(actor.username, [])
    return {"signer": actor.username, "signer_steps": steps}


# --- commands ---------------------------------------------------------------------------------


def formulate(
    uow: UnitOfWork,
    *,
    culture: str,
    vials: str | int,
    cells_per_vial: str | int,
    volume_ml: str | float,
    harvested: str | int | None = None,
    viability: str | float | None = None,
    count: str | None = None,
    suspension_ml: str | float | None = None,
    vehicle: str | None = None,
    vehicle_din: str | None = None,
    vehicle_ml: str | float | None = None,
    shelf_life_hours: str | float | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
    reagents: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> LotDetail:
    """Harvest a culture into a lot of vials for its patient; the lot starts in quarantine.

    The viable cells of the final harvest and their viability are typed, or taken from an
    imported count (`count`, with the mL the counted cells are suspended in), which the lot
    then uses up. The cells are suspended in the patient's own CSF, `vehicle_ml` of the
    donation `vehicle_din` (lims.services.vehicles says which may be drawn), or, where the
    site allows it (vehicle.allow_non_autologous), in a typed `vehicle`.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    request = requested(count, suspension_ml)
    not_typed(request, harvested=harvested, viability=viability)
    typed_unless_counted(
        request, "--harvested N --viability PCT", harvested=harvested, viability=viability
    )
    harvested_cells = viable_percent = None
    if harvested is not None and viability is not None:
        harvested_cells = quantities.cell_count("harvested", harvested)
        viable_percent = quantities.percentage("viability", viability)
    vial_count = quantities.whole_number("vials", vials, low=1, high=VIALS_MAX)
    dose = quantities.cell_count("cells-per-vial", cells_per_vial)
    if harvested_cells is not None:
        _vials_within_harvest(vial_count, dose, harvested_cells)
    volume = quantities.positive(
        "volume-ml", volume_ml, unit="mL", smallest=0.01, high=VIAL_VOLUME_MAX_ML
    )
    suspension = _vehicle_named(settings, vehicle, vehicle_din, vehicle_ml)
    shelf_life = quantities.positive(
        "shelf-life-hours",
        shelf_life_hours if shelf_life_hours is not None else settings.lot.shelf_life_hours,
        unit="hours",
        smallest=1,
        high=SHELF_LIFE_MAX_HOURS,
    )
    zone = settings.tz
    now = utcnow()
    formulated_at = past_moment("at", at, zone, now)
    late = late_entries.reason_for(uow, formulated_at, now, late_reason)
    source = lookup.culture(session, culture)
    consent.require_in_force_for_culture(session, zone, source, "lot formulation")
    existing = session.exec(select(Lot.code).where(col(Lot.culture_id) == source.id)).first()
    CULTURE.check("formulate", code=source.code, status=source.status, lot=existing)
    blocking = [
        d
        for d in deviation_rules.on_culture(session, source)
        if DEVIATION.pending(d.status) and d.kind in settings.lot.formulation_blocked_by
    ]
    if blocking:
        raise RuleViolation(
            f"culture {source.code} has open deviations that block formulation: "
            + "; ".join(f"{d.deviation_id} {d.description}" for d in blocking)
        )
    passages = culture_rules.passages_of(session, source)
    culture_rules.after_previous_step(source, passages, formulated_at, zone)
    lots = reagent_rules.usable_lots(session, settings, reagents, formulated_at)
    used = equipment_use.usable(uow, step="lot_formulate", equipment=equipment, at=formulated_at)
    aspirate = session.get(Aspirate, source.aspirate_id)
    assert aspirate is not None
    patient = session.get(Patient, aspirate.patient_id)
    assert patient is not None
    donation = None
    if suspension.csf_ml is not None:
        donation = lookup.aspirate(session, suspension.typed_din or "", "vehicle-din")
        vehicles.require_drawable(
            uow,
            donation,
            patient=patient,
            formulated_at=formulated_at,
            wanted_ml=suspension.csf_ml,
            at_field="at",
        )

    assert aspirate.id is not None
    assert source.id is not None
    identity = ids.next_lot(
        din_of(aspirate),
        session.exec(select(func.max(Lot.number)).where(col(Lot.aspirate_id) == aspirate.id)).one(),
    )
    counted = None
    if request is not None:
        counted = count_use.take(
            uow, request, at=formulated_at, used_by=taken_by("lot", identity.code)
        )
        harvested_cells, viable_percent = counted.viable_cells, counted.viability
        _vials_within_harvest(vial_count, dose, harvested_cells)
    vial_ids = ids.vial_ids(identity, vial_count)
    divisions = next_divisions(session, identity.din.code, vial_count)
    formulation: dict[str, Any] = {
        "patient_id": aspirate.patient_id,
        "harvested": harvested_cells,
        "viability": viable_percent,
        "cells_per_vial": dose,
        "volume_ml": volume,
        "vehicle": suspension.words,
        "vehicle_ml": suspension.csf_ml,
        "final_passage": culture_rules.final_passage_number(session, source, passages),
        "spec_version": _in_force(uow.spec_version),
        "formulated_at": formulated_at,
        "expires_at": formulated_at + timedelta(hours=shelf_life),
    }
    lot = Lot(
        code=identity.code,
        culture_id=source.id,
        aspirate_id=aspirate.id,
        number=identity.number,
        vials=vial_count,
        **formulation,
        vehicle_aspirate_id=None if donation is None else donation.id,
        count_id=None if counted is None else counted.count_id,
    )
    new = {
        "culture": source.code,
        "patient": patient.code,
        **formulation,
        "vehicle_din": None if donation is None else donation.din,
        "vials": [vial.code for vial in vial_ids],
        "divisions": dict(zip([vial.code for vial in vial_ids], divisions, strict=True)),
        "reagents": [f"{r.name}:{r.lot}" for r in lots],
        "status": lot.status,
        **count_use.stated(counted),
        **equipment_use.stated(used),
    }
    records.create(
        session,
        lot,
        "lot.formulate",
        by=actor,
        at=now,
        new=new,
        late_reason=late,
        stated_at=formulated_at,
    )
    assert lot.id is not None
    equipment_use.record(
        session,
        used,
        action="lot.formulate",
        subject=("lot", lot.code),
        culture=source,
        lot=lot,
        by=actor.username,
    )
    session.add_all(
        Vial(
            code=vial.code,
            lot_id=lot.id,
            number=vial.number,
            din=identity.din.code,
            division=division,
            cells=dose,
            volume_ml=volume,
        )
        for vial, division in zip(vial_ids, divisions, strict=True)
    )
    reagent_rules.record_uses(session, lots, source.id, None, lot_id=lot.id)
    if donation is not None:
        vehicles.record_draw(session, donation, lot, by=actor.username)
    change_status(session, CULTURE, source, "formulate", by=actor.username, new={"lot": lot.code})
    session.flush()
    return lot_detail(session, settings, lot)


def next_divisions(session: Session, din: str, count: int) -> list[int]:
    """The divisions (ISBT 128 data structure 003) the next `count` vials of a DIN take:
    after every vial of every lot of it, so sister lots never share one."""
    taken = session.exec(select(func.max(col(Vial.division))).where(col(Vial.din) == din)).one()
    first = (taken or 0) + 1
    return list(range(first, first + count))


@dataclass(frozen=True)
class _Suspension:
    """What a formulation names its vehicle by: the patient's CSF (its DIN as typed and the
    mL drawn), with the site's words for it (lot.vehicle), or a typed vehicle's words."""

    words: str
    typed_din: str | None = None
    csf_ml: float | None = None


def _vehicle_named(
    settings: Settings,
    vehicle: str | None,
    vehicle_din: str | None,
    vehicle_ml: str | float | None,
) -> _Suspension:
    """The vehicle as typed, checked before anything is looked up: a CSF donation by DIN,
    with the mL drawn, or, only where the site allows a vehicle not the patient's own
    (vehicle.allow_non_autologous), a typed one."""
    allowed = settings.vehicle.allow_non_autologous
    if vehicle is not None and vehicle_din is not None:
        raise BadInput(
            "vehicle", "not with --vehicle-din: the cells are suspended in one or the other"
        )
    if vehicle_din is None:
        if vehicle_ml is not None:
            raise BadInput("vehicle-ml", "only with --vehicle-din: the mL of that CSF drawn")
        if vehicle is None or not allowed:
            raise BadInput(
                "vehicle-din",
                "required: the DIN of the patient's CSF the cells are suspended in, with "
                "--vehicle-ml V"
                + (
                    " (or a typed --vehicle TEXT)"
                    if allowed
                    else "; a typed --vehicle only where the site allows it "
                    "(vehicle.allow_non_autologous)"
                ),
            )
        return _Suspension(words=free_text("vehicle", vehicle, max_length=SHORT_TEXT_MAX))
    ids.parse_din(vehicle_din, "vehicle-din")
    if vehicle_ml is None:
        raise BadInput("vehicle-ml", "required with --vehicle-din: the mL of that CSF drawn")
    return _Suspension(
        words=settings.lot.vehicle,
        typed_din=vehicle_din,
        csf_ml=_csf_ml(settings, vehicle_ml),
    )


def _csf_ml(settings: Settings, vehicle_ml: str | float) -> float:
    """The mL of CSF drawn into a lot: measurable, and no more than a donation holds."""
    return quantities.positive(
        "vehicle-ml",
        vehicle_ml,
        unit="mL",
        smallest=vehicles.SMALLEST_ML,
        high=settings.aspirate.csf_max_volume_ml,
    )


def _in_force(spec_version: int | None) -> int:
    """The specification version a lot formulated now is judged by."""
    if spec_version is None:  # `lims init` stores version 1 before anyone can formulate
        raise RuleViolation("the database has no release specification; run `lims init`")
    return spec_version


def _vials_within_harvest(vials: int, cells_per_vial: int, harvested: int) -> None:
    if vials * cells_per_vial > harvested:
        raise BadInput(
            "cells-per-vial",
            f"{vials} vials × {cells_per_vial:,} cells is {vials * cells_per_vial:,}, more than "
            f"the {harvested:,} viable cells harvested",
        )


def correct_lot(
    uow: UnitOfWork,
    *,
    lot: str,
    reason: str,
    harvested: str | int | None = None,
    viability: str | float | None = None,
    cells_per_vial: str | int | None = None,
    volume_ml: str | float | None = None,
    vehicle: str | None = None,
    vehicle_din: str | None = None,
    vehicle_ml: str | float | None = None,
) -> LotDetail:
    """Correct what was typed at formulation, with a reason, while the lot is in quarantine.

    The vehicle is corrected as it is named at formulation: another CSF donation of the
    patient (`vehicle_din`, drawn as a formulation draws it: the mL drawn move from the old
    donation to the new) or another mL of it (`vehicle_ml`), or, where the site allows it, a
    typed vehicle.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    typed: dict[str, Any] = {}
    if harvested is not None:
        typed["harvested"] = quantities.cell_count("harvested", harvested)
    if viability is not None:
        typed["viability"] = quantities.percentage("viability", viability)
    if cells_per_vial is not None:
        typed["cells_per_vial"] = quantities.cell_count("cells-per-vial", cells_per_vial)
    if volume_ml is not None:
        typed["volume_ml"] = quantities.positive(
            "volume-ml", volume_ml, unit="mL", smallest=0.01, high=VIAL_VOLUME_MAX_ML
        )
    csf_ml = _typed_vehicle_correction(settings, typed, vehicle, vehicle_din, vehicle_ml)
    if not typed and vehicle_din is None and csf_ml is None:
        raise BadInput(
            "correction",
            "name at least one value to correct: --harvested, --viability, --cells-per-vial, "
            "--volume-ml, --vehicle-din, --vehicle-ml or --vehicle",
        )
    found = lookup.lot(session, lot)
    LOT.check_unlocked(code=found.code, status=found.status)
    count_use.require_kept(
        uow,
        found.count_id,
        step=f"lot {found.code}",
        retyped=[name for name in COUNTED_FIELDS if name in typed],
        at=None,
        remedy=f"open a deviation on the lot for QA to review: lims deviation open --lot "
        f"{found.code} --description TEXT",
    )
    _vials_within_harvest(
        found.vials,
        typed.get("cells_per_vial", found.cells_per_vial),
        typed.get("harvested", found.harvested),
    )
    before = vehicle_donation(session, found)
    if before is not None and ("vehicle" in typed or vehicle_din or csf_ml is not None):
        # The correction moves or changes the draw on it and states what is left there: the
        # lot's draw and the donation's others must be what the trail says.
        vehicles.require_agreement(session, before)
    after_correction = before if "vehicle" not in typed else None
    if vehicle_din is not None or csf_ml is not None:
        after_correction = _redrawn(uow, found, before, vehicle_din, csf_ml, typed)
    changed = {name: value for name, value in typed.items() if getattr(found, name) != value}
    changes = {name: (getattr(found, name), value) for name, value in changed.items()}
    if after_correction is not before:
        changes["vehicle_din"] = (
            None if before is None else before.din,
            None if after_correction is None else after_correction.din,
        )
    if not changes:
        raise BadInput("correction", f"every value given is already what {found.code} holds")
    for name, value in changed.items():
        setattr(found, name, value)
    found.vehicle_aspirate_id = None if after_correction is None else after_correction.id
    session.add(found)
    for vial in session.exec(select(Vial).where(col(Vial.lot_id) == found.id)).all():
        vial.cells, vial.volume_ml = found.cells_per_vial, found.volume_ml
        session.add(vial)
    audit.record_changes(
        session, ("lot", found.code), "lot.correct", changes, by=actor.username, reason=reason
    )
    # The donations whose draws changed state what is drawn on them now.
    redrawn = {donation.din: donation for donation in (before, after_correction) if donation}
    if "vehicle_din" in changes or "vehicle_ml" in changes:
        for donation in redrawn.values():
            vehicles.record_draw(session, donation, found, by=actor.username, reason=reason)
    session.flush()
    return lot_detail(session, settings, found)


def _typed_vehicle_correction(
    settings: Settings,
    typed: dict[str, Any],
    vehicle: str | None,
    vehicle_din: str | None,
    vehicle_ml: str | float | None,
) -> float | None:
    """The vehicle's correction as typed: a typed vehicle's words go into `typed` (where the
    site allows one); the CSF's DIN is checked, and its mL returned."""
    if vehicle is not None:
        if vehicle_din is not None or vehicle_ml is not None:
            raise BadInput(
                "vehicle",
                "not with --vehicle-din or --vehicle-ml: the cells are suspended in one or "
                "the other",
            )
        if not settings.vehicle.allow_non_autologous:
            raise BadInput(
                "vehicle",
                "a typed vehicle only where the site allows it (vehicle.allow_non_autologous);"
                " name the patient's CSF with --vehicle-din DIN --vehicle-ml V",
            )
        typed["vehicle"] = free_text("vehicle", vehicle, max_length=SHORT_TEXT_MAX)
        typed["vehicle_ml"] = None
        return None
    if vehicle_din is not None:
        ids.parse_din(vehicle_din, "vehicle-din")
    return None if vehicle_ml is None else _csf_ml(settings, vehicle_ml)


def _redrawn(
    uow: UnitOfWork,
    lot: Lot,
    before: Aspirate | None,
    vehicle_din: str | None,
    csf_ml: float | None,
    typed: dict[str, Any],
) -> Aspirate:
    """The CSF a corrected lot is suspended in, drawn as at its formulation: the donation
    named, or the one it had with another mL. What it draws goes into `typed`."""
    session = uow.session
    donation = before
    if vehicle_din is not None:
        donation = lookup.aspirate(session, vehicle_din, "vehicle-din")
    if donation is None:
        raise BadInput(
            "vehicle-din",
            f"required: lot {lot.code} is suspended in {lot.vehicle}, no CSF; name the "
            "patient's CSF with --vehicle-din DIN --vehicle-ml V",
        )
    drawn = csf_ml if csf_ml is not None else lot.vehicle_ml
    if drawn is None:
        raise BadInput(
            "vehicle-ml",
            f"required with --vehicle-din: lot {lot.code} drew no CSF before, so how much it "
            "drew is not known",
        )
    patient = session.get(Patient, lot.patient_id)
    assert patient is not None
    vehicles.require_drawable(
        uow,
        donation,
        patient=patient,
        formulated_at=lot.formulated_at,
        wanted_ml=drawn,
        lot=lot.code,
    )
    typed["vehicle_ml"] = drawn
    if before is None:  # from a typed vehicle: the site's words for a CSF donation
        typed["vehicle"] = uow.settings.lot.vehicle
    # The same donation found again is the same record: no move.
    return before if before is not None and before.id == donation.id else donation


def release(
    uow: UnitOfWork,
    *,
    lot: str,
    password: str,
    meaning: str | None = None,
) -> LotDetail:
    """QA's signature releasing a lot that passes every criterion; its vials follow.

    A lot whose only open criteria are tests pending that may be (their interim tests pass)
    is released on interim results: the signature means "released — final results pending:
    TESTS", or the meaning given followed by the same, and the lot keeps the tests until QA
    completes the release (complete).
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    given = meaning
    # `--meaning ""` is refused as empty, not silently replaced by the default.
    meaning = free_text(
        "meaning", RELEASE_MEANING if meaning is None else meaning, max_length=MEANING_MAX
    )
    found = lookup.lot(session, lot)
    recipient = consent.require_in_force(session, settings.tz, found.patient_id, "lot release")
    bindings.require_agreement(session, [("lot", found.code), ("patient", recipient.code)])
    evaluation = verdicts.evaluate(session, settings, found, now=utcnow())
    pending = evaluation.pending_tests
    if pending:  # released on interim results: the signature names the results to come
        meaning = _pending_meaning(given, pending)
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"release of {found.code}"
    )
    facts = _signing_facts(session, found, actor)
    facts["signer_waivers"] = _waivers_closed_by(session, found, actor.username)
    facts["blocking"] = evaluation.blocking
    if not pending:
        return _sign_status(session, settings, found, signer, "release", meaning, facts=facts)
    found.pending_at_release = verdicts.stored_tests(pending)
    return _sign_status(
        session,
        settings,
        found,
        signer,
        "release",
        meaning,
        facts=facts,
        stated={"pending_at_release": pending},
    )


def _pending_meaning(given: str | None, pending: Sequence[str]) -> str:
    """A release's meaning with the tests whose final results are pending named: the meaning
    typed, or "released", followed by them."""
    meaning = f"{given or PENDING_RELEASE_MEANING}{PENDING_AT_RELEASE}{', '.join(pending)}"
    if len(meaning) > MEANING_MAX:
        raise BadInput(
            "meaning",
            f"must leave room for{PENDING_AT_RELEASE}{', '.join(pending)}: at most "
            f"{MEANING_MAX} characters in all (got {len(meaning)})",
        )
    return meaning


def _waivers_closed_by(session: Session, lot: Lot, username: str) -> list[int]:
    """The deviations on the lot whose waivers `username` signed: they may not also release."""
    return [
        number
        for number in session.exec(
            select(Deviation.id)
            .where(
                col(Deviation.lot_id) == lot.id,
                col(Deviation.waived),
                col(Deviation.closed_by) == username,
            )
            .order_by(col(Deviation.id))
        ).all()
        if number is not None
    ]


def reject(
    uow: UnitOfWork,
    *,
    lot: str,
    password: str,
    reason: str,
) -> LotDetail:
    """QA's signature rejecting a lot: it can never be released or issued."""
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    free_text("reason", reason, max_length=REASON_IN_MEANING_MAX)
    found = lookup.lot(session, lot)
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"rejection of {found.code}"
    )
    return _sign_status(
        session,
        settings,
        found,
        signer,
        "reject",
        f"{REJECTED}{reason}",
        facts=_signing_facts(session, found, actor),
        reason=reason,
    )


def recall(uow: UnitOfWork, *, lot: str, password: str, reason: str) -> LotDetail:
    """QA's signature recalling a released lot: every vial not yet given to a patient is
    recalled with it and can then only be destroyed."""
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    free_text("reason", reason, max_length=REASON_IN_MEANING_MAX)
    found = lookup.lot(session, lot)
    LOT.check("recall", code=found.code, status=found.status)
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"recall of {found.code}"
    )
    return _sign_status(
        session, settings, found, signer, "recall", f"{RECALLED}{reason}", facts={}, reason=reason
    )


def complete(uow: UnitOfWork, *, lot: str, password: str) -> LotDetail:
    """QA's signature completing a release on interim results, once the final results of the
    tests pending at release are in and the lot is as releasable as it was: "final results
    reviewed", by a QA reviewer who did no step of the lot and signed none of its waivers."""
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    found = lookup.lot(session, lot)
    bindings.require_agreement(session, [("lot", found.code)])
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"completing the release of {found.code}"
    )
    evaluation = verdicts.evaluate(session, settings, found, now=utcnow())
    completed = (
        None
        if found.release_completed_at is None
        else f"by {found.release_completed_by} at "
        f"{show_time(found.release_completed_at, settings.tz)}"
    )
    facts = {
        **_signing_facts(session, found, actor),
        "signer_waivers": _waivers_closed_by(session, found, actor.username),
        "pending_at_release": pending_at_release(found),
        "completed": completed,
        "pending_tests": evaluation.pending_tests,
        "hold_reasons": evaluation.hold_reasons,
    }
    LOT.check("complete", code=found.code, status=found.status, facts=facts)
    # The completion is the signature: one instant, shown alike wherever either is.
    now = utcnow()
    signed = _sign_lot(session, found, signer, COMPLETE_MEANING, at=now)
    found.release_completed_at, found.release_completed_by = now, actor.username
    session.add(found)
    audit.record_about(
        session,
        ("lot", found.code),
        LOT.audit_action("complete"),
        by=actor.username,
        new={
            **signed,
            "release_completed_at": json_time(found.release_completed_at),
            "release_completed_by": found.release_completed_by,
        },
    )
    session.flush()
    return lot_detail(session, settings, found)


def pending_at_release(lot: Lot) -> list[str]:
    """The tests whose final results were pending when the lot was released, if any."""
    return verdicts.tests_named(lot.pending_at_release)


def hold(uow: UnitOfWork, *, lot: str, password: str, reason: str) -> LotDetail:
    """QA's signature holding a lot: while the hold stands its vials go to no patient and it
    is not released."""
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.lot(session, lot)
    LOT.check("hold", code=found.code, status=found.status)
    standing = verdicts.standing_holds(session, found)
    if standing:
        raise RuleViolation(
            f"lot {found.code} is already on hold ({verdicts.hold_reason(standing[0])})"
        )
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"hold of {found.code}"
    )
    assert found.id is not None
    placed = LotHold(lot_id=found.id, reason=reason, placed_at=utcnow(), placed_by=actor.username)
    session.add(placed)
    session.flush()
    _sign_hold(session, found, signer, placed, "lot.hold", f"placed on hold (hold {placed.id})")
    return lot_detail(session, settings, found)


def unhold(uow: UnitOfWork, *, lot: str, password: str, reason: str) -> LotDetail:
    """QA's signature lifting the hold QA placed on a lot. Holds by open deviations lift
    only as the deviations are closed."""
    session, settings = uow.session, uow.settings
    actor = uow.require("sign")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.lot(session, lot)
    LOT.check("unhold", code=found.code, status=found.status)
    standing = verdicts.standing_holds(session, found)
    if not standing:
        raise RuleViolation(f"lot {found.code} has no hold placed by QA to lift")
    signer = signatures.confirm_signer(
        session, settings, actor, password, signing=f"lifting the hold of {found.code}"
    )
    for lifted in standing:
        lifted.lifted_at, lifted.lifted_by, lifted.lift_reason = utcnow(), actor.username, reason
        session.add(lifted)
        _sign_hold(session, found, signer, lifted, "lot.unhold", f"hold {lifted.id} lifted")
    session.flush()
    return lot_detail(session, settings, found)


def _sign_lot(
    session: Session, lot: Lot, signer: User, meaning: str, at: datetime | None = None
) -> dict[str, Any]:
    """A QA signature on the lot's record as it stands (at `at`, by default now); returns what
    its audit entry says."""
    now = at or utcnow()
    record_hash = _hashed(_record(session, lot, signed_at=now, shape=RECORD_SHAPE))
    signature = signatures.sign(
        session,
        lot,
        signer=signer,
        record_hash=record_hash,
        meaning=meaning,
        record_shape=RECORD_SHAPE,
        at=now,
    )
    session.flush()
    manifestation = signing.manifestation(
        signature.username, signature.full_name, signature.signed_at, signature.meaning
    )
    return {
        "signature": manifestation,
        "meaning": meaning,
        "record_hash": record_hash,
        "spec_version": lot.spec_version,
    }


def _sign_hold(
    session: Session, lot: Lot, signer: User, placed: LotHold, action: str, meaning: str
) -> None:
    signed = _sign_lot(session, lot, signer, meaning)
    reason = placed.reason if action == "lot.hold" else placed.lift_reason
    audit.record_about(
        session,
        ("lot", lot.code),
        action,
        by=signer.username,
        new={"hold_id": placed.id, "lifted": placed.lifted_at is not None, **signed},
        reason=reason,
    )


# A lot's vials follow it when it is released or recalled.
_VIALS_FOLLOW = {"release": "release", "recall": "recall", "reject": "reject"}


def _sign_status(
    session: Session,
    settings: Settings,
    lot: Lot,
    signer: User,
    action: str,
    meaning: str,
    *,
    facts: dict[str, Any],
    reason: str | None = None,
    stated: dict[str, Any] | None = None,
) -> LotDetail:
    """QA's signature moving a lot to another status; its vials follow a release or recall.
    `stated` adds to what its entry states (the columns it set besides the status)."""
    assert lot.id is not None
    signed = _sign_lot(session, lot, signer, meaning)
    change_status(
        session,
        LOT,
        lot,
        action,
        by=signer.username,
        new={**signed, **(stated or {})},
        reason=reason,
        facts=facts,
    )
    vial_action = _VIALS_FOLLOW.get(action)
    if vial_action is not None:
        for vial in session.exec(
            select(Vial)
            .where(
                col(Vial.lot_id) == lot.id,
                col(Vial.status).in_(VIAL.action(vial_action).sources),
            )
            .order_by(col(Vial.number))
        ).all():
            change_status(
                session,
                VIAL,
                vial,
                vial_action,
                by=signer.username,
                new={"lot": lot.code},
                reason=reason,
            )
    session.flush()
    return lot_detail(session, settings, lot)
