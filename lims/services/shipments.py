"""Shipments: released vials packed, sent to another site and received there, or lost
(21 CFR 1271.265(b)-(c) and 1271.290(b): tracking to the consignee and final disposition).

A shipment is made for a site the site setting `sites` names (its name and address are
copied onto it), with its courier and temperature logger. Vials are packed one at a time,
each label scanned: a scan that does not match is refused and put on record, as at the
bedside (lims.services.vials judges it). A vial packed in a shipment not yet dispatched
goes to no patient. A wrongly packed vial is taken out, or the whole shipment cancelled,
with a reason, while it is open. Dispatch sends every vial packed (shipped); at the
receiving site every vial is scanned exactly once (received) and the temperature judged:
an excursion opens a deviation on each lot in the shipment, which holds a released lot. A
vial whose lot was recalled while it travelled is received and recalled with its lot; one
whose lot is on hold is received and goes to no patient while the hold stands. A shipment
that never arrives is reported lost, and its vials with it.

Packing a vial and taking it out are entries about the vial (shipment.add, shipment.remove,
naming its shipment_vials row), so that the vial's own check (bindings.require_agreement)
reads them; the shipment's steps are entries about the shipment. The temperature logger's
export is kept whole, like a cell counter's (lims.services.counts): its bytes, name and
SHA-256, once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from lims import audit
from lims.auth import Actor
from lims.config import SITE_CODE_MAX, SITE_CODE_PATTERN, Settings, ShippingSite
from lims.domain import ids
from lims.domain.cell_counting import formula_like
from lims.domain.states import LOT, SHIPMENT, VIAL, expired
from lims.errors import AuditedRuleViolation, BadInput, NotFound, RuleViolation, shown
from lims.models import (
    COUNT_FILE_NAME_MAX,
    LONG_TEXT_MAX,
    SHORT_TEXT_MAX,
    LoggerFile,
    Lot,
    Patient,
    Shipment,
    ShipmentVial,
    Vial,
)
from lims.services import (
    bindings,
    deviations,
    instrument_files,
    late_entries,
    lookup,
    verdicts,
)
from lims.services import vials as vial_rules
from lims.services.transitions import change_status
from lims.timeutil import after, json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.deviations import DeviationView
from lims.views.shipments import (
    LoggerFileView,
    PackedVial,
    ShipmentReceipt,
    ShipmentSummary,
    ShipmentView,
)
from lims.views.vials import Verification

ENTITY = SHIPMENT.entity_type
DEVIATION_KIND = "shipment"  # deviations.kind of one a temperature excursion opened
TEMPERATURE_FIELD = "temperature-ok"
TEMPERATURE_ANSWERS = {"yes": True, "no": False}
LOGGER_FILE_FIELD = "logger-file"
_SITE_CODE = re.compile(SITE_CODE_PATTERN)


# --- what a shipment shows -----------------------------------------------------------------


def _packing(session: Session, shipment: Shipment) -> list[tuple[ShipmentVial, Vial, Lot, str]]:
    """Every vial ever packed in the shipment, in packing order, with its lot and patient."""
    rows = session.exec(
        select(ShipmentVial, Vial, Lot, Patient.code)
        .join(Vial, col(Vial.id) == col(ShipmentVial.vial_id))
        .join(Lot, col(Lot.id) == col(Vial.lot_id))
        .join(Patient, col(Patient.id) == col(Lot.patient_id))
        .where(col(ShipmentVial.shipment_id) == shipment.id)
        .order_by(col(ShipmentVial.id))
    ).all()
    return [(packed, vial, lot, patient) for packed, vial, lot, patient in rows]


def _packed(session: Session, shipment: Shipment) -> list[tuple[ShipmentVial, Vial, Lot, str]]:
    """The vials in the shipment: packed and not taken out again."""
    return [row for row in _packing(session, shipment) if row[0].removed_at is None]


def _view(
    session: Session, shipment: Shipment, *, now: datetime, lot: Lot | None = None
) -> ShipmentView:
    """The shipment with its vials (only those of `lot`, when given: a lot's batch record
    names no other patient's vials)."""
    code = shipment.code
    kept = session.exec(
        select(LoggerFile).where(col(LoggerFile.shipment_id) == shipment.id)
    ).first()
    late = late_entries.marks(session, ENTITY, [code]).get(code, [])
    vials = [
        from_record(
            PackedVial,
            packed,
            vial_id=vial.code,
            lot_id=of_lot.code,
            patient=patient,
            status=VIAL.shown(vial.status, expired=expired(of_lot.expires_at, now)),
        )
        for packed, vial, of_lot, patient in _packing(session, shipment)
        if lot is None or of_lot.id == lot.id
    ]
    return from_record(
        ShipmentView,
        shipment,
        shipment_id=code,
        logger_file=None if kept is None else from_record(LoggerFileView, kept),
        vials=vials,
        late_entry=bool(late),
        late_entries=late,
    )


def show_shipment(uow: UnitOfWork, *, shipment: str) -> ShipmentView:
    session = uow.session
    uow.require("read_records")
    return _view(session, lookup.shipment(session, shipment), now=utcnow())


def list_shipments(uow: UnitOfWork, *, status: str | None = None) -> list[ShipmentSummary]:
    """Every shipment, newest first, or those in one state."""
    session = uow.session
    uow.require("read_records")
    query = select(Shipment).order_by(col(Shipment.id).desc())
    if status is not None:
        query = query.where(
            col(Shipment.status) == choice("status", status, tuple(SHIPMENT.states))
        )
    shipments = session.exec(query).all()
    counted: dict[int | None, int] = dict(
        session.exec(
            select(ShipmentVial.shipment_id, func.count())
            .where(col(ShipmentVial.removed_at).is_(None))
            .group_by(col(ShipmentVial.shipment_id))
        ).all()
    )
    codes = [shipment.code for shipment in shipments]
    late = late_entries.marks(session, ENTITY, codes)
    return [
        from_record(
            ShipmentSummary,
            shipment,
            shipment_id=code,
            vials=counted.get(shipment.id, 0),
            late_entry=code in late,
        )
        for shipment, code in zip(shipments, codes, strict=True)
    ]


def of_lot(session: Session, lot: Lot) -> list[ShipmentView]:
    """Each shipment a vial of the lot was packed in and not taken out of, oldest first, with
    the lot's vials only: the batch record's Shipments."""
    shipments = session.exec(
        select(Shipment)
        .join(ShipmentVial, col(ShipmentVial.shipment_id) == col(Shipment.id))
        .join(Vial, col(Vial.id) == col(ShipmentVial.vial_id))
        .where(col(Vial.lot_id) == lot.id, col(ShipmentVial.removed_at).is_(None))
        .order_by(col(Shipment.id))
        .distinct()
    ).all()
    now = utcnow()
    return [_view(session, shipment, now=now, lot=lot) for shipment in shipments]


# --- making and packing a shipment -----------------------------------------------------------


def _site(settings: Settings, to: str) -> ShippingSite:
    """The site a shipment goes to, by its code in the site setting `sites`, typed in any
    case. A code of the wrong form is bad input; one the setting lacks is not found, as an
    id that names nothing is."""
    typed = ids.ascii_identifier(to, "to").strip().upper()
    if len(typed) > SITE_CODE_MAX or not _SITE_CODE.fullmatch(typed):
        raise BadInput(
            "to",
            f"must be a site code of at most {SITE_CODE_MAX} letters, digits, '.', '_' or "
            f"'-', such as OR-1 (got {shown(to)})",
        )
    for site in settings.sites:
        if site.code == typed:
            return site
    known = ", ".join(site.code for site in settings.sites)
    raise NotFound(
        f"no site {typed} in the site setting sites, which names "
        + (known or "none yet (an admin sets them: lims site set sites '[...]' --reason TEXT)")
    )


def create_shipment(
    uow: UnitOfWork,
    *,
    to: str,
    courier: str,
    logger: str | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> ShipmentView:
    """A shipment to a site of the site setting `sites`, open for vials to be packed."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    site = _site(settings, to)
    free_text("courier", courier, max_length=SHORT_TEXT_MAX)
    if logger is not None:
        free_text("logger", logger, max_length=SHORT_TEXT_MAX)
    now = utcnow()
    when = past_moment("at", at, settings.tz, now)
    late = late_entries.reason_for(uow, when, now, late_reason)
    shipment = Shipment(
        site_code=site.code,
        site_name=site.name,
        site_address=site.address,
        courier=courier,
        logger=logger,
        created_at=when,
        created_by=actor.username,
        recorded_at=now,
    )
    session.add(shipment)
    session.flush()
    code = shipment.code
    audit.record_about(
        session,
        (ENTITY, code),
        "shipment.create",
        by=actor.username,
        new={
            "status": shipment.status,
            "site": site.code,
            "site_name": site.name,
            "site_address": site.address,
            "courier": courier,
            "logger": logger,
            "created_at": json_time(when),
        },
    )
    _mark_late(session, late, "shipment.create", code, when, now, actor)
    return _view(session, shipment, now=now)


def _mark_late(
    session: Session,
    late: str | None,
    action: str,
    code: str,
    when: datetime,
    now: datetime,
    actor: Actor,
) -> None:
    late_entries.record(
        session,
        late,
        action=action,
        subject=(ENTITY, code),
        at=when,
        entered_at=now,
        by=actor.username,
    )


def _require_agreement(session: Session, shipment: Shipment, vials: Sequence[Vial]) -> None:
    """The shipment's row and those of the vials a step relies on must be what the trail says
    (a vial brings its lot and its packing rows)."""
    bindings.require_agreement(
        session, [(ENTITY, shipment.code), *(("vial", vial.code) for vial in vials)]
    )


def add_vial(uow: UnitOfWork, *, shipment: str, vial: str, scan: str) -> ShipmentView:
    """Pack a released vial, its label scanned, into an open shipment. It must be one a
    patient could be given now (its lot released, not on hold, not expired; consent
    standing), and in no other shipment being packed."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    found = lookup.shipment(session, shipment)
    packing = lookup.vial(session, vial)
    code = found.code
    _require_agreement(session, found, [packing])
    SHIPMENT.check("add", code=code, status=found.status)
    already = vial_rules.packed_in(session, packing)
    if already is not None:
        where = "this shipment" if already.id == found.id else f"shipment {already.code}"
        raise RuleViolation(f"vial {packing.code} is already packed in {where}")
    _, owner = vial_rules.with_lot(session, packing)
    now = utcnow()
    vial_rules.judged_scan(
        session,
        settings,
        actor,
        packing,
        scan,
        owner.code,
        at=now,
        action="ship",
        refused_as=f"{SHIPMENT.audit_action('add')}.refused",
    )
    # Taken out of this shipment before, and packed again: its row says so once more.
    row = session.exec(
        select(ShipmentVial).where(
            col(ShipmentVial.shipment_id) == found.id, col(ShipmentVial.vial_id) == packing.id
        )
    ).first()
    if row is None:
        assert found.id is not None
        assert packing.id is not None
        row = ShipmentVial(shipment_id=found.id, vial_id=packing.id)
    row.added_at, row.added_by = now, actor.username
    row.removed_at = row.removed_by = row.remove_reason = None
    session.add(row)
    session.flush()
    audit.record_about(
        session,
        ("vial", packing.code),
        SHIPMENT.audit_action("add"),
        by=actor.username,
        new={"shipment": code, "packed_id": row.id, "removed": False, "scan": "MATCH"},
    )
    return _view(session, found, now=now)


def remove_vial(uow: UnitOfWork, *, shipment: str, vial: str, reason: str) -> ShipmentView:
    """Take a vial out of a shipment being packed (the wrong vial packed): it stays in the
    lab, released, and may be issued or packed again."""
    session = uow.session
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.shipment(session, shipment)
    packing = lookup.vial(session, vial)
    code = found.code
    _require_agreement(session, found, [packing])
    SHIPMENT.check("remove", code=code, status=found.status)
    row = session.exec(
        select(ShipmentVial).where(
            col(ShipmentVial.shipment_id) == found.id,
            col(ShipmentVial.vial_id) == packing.id,
            col(ShipmentVial.removed_at).is_(None),
        )
    ).first()
    if row is None:
        raise RuleViolation(f"vial {packing.code} is not in shipment {code}")
    now = utcnow()
    row.removed_at, row.removed_by, row.remove_reason = now, actor.username, reason
    session.add(row)
    audit.record_about(
        session,
        ("vial", packing.code),
        SHIPMENT.audit_action("remove"),
        by=actor.username,
        new={"shipment": code, "packed_id": row.id, "removed": True},
        reason=reason,
    )
    session.flush()
    return _view(session, found, now=now)


def cancel(uow: UnitOfWork, *, shipment: str, reason: str) -> ShipmentView:
    """Call off a shipment not yet dispatched: its vials stay in the lab, released."""
    session = uow.session
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.shipment(session, shipment)
    _require_agreement(session, found, [])
    now = utcnow()
    change_status(session, SHIPMENT, found, "cancel", by=actor.username, reason=reason)
    found.ended_at, found.ended_by, found.end_reason = now, actor.username, reason
    session.flush()
    return _view(session, found, now=now)


# --- sending, receiving, losing --------------------------------------------------------------


def _unsendable(session: Session, settings: Settings, lot: Lot, at: datetime) -> str | None:
    """Why the lot's vials may not leave the lab at `at`, or None: on hold, or expired."""
    holds = verdicts.evaluate(session, settings, lot, now=at).hold_reasons
    if holds:
        return f"lot {lot.code} is on hold: {'; '.join(holds)}"
    if expired(lot.expires_at, at):
        return f"lot {lot.code} expired at {show_time(lot.expires_at, settings.tz)}"
    return None


def _moved(
    uow: UnitOfWork,
    action: str,
    shipment: str,
    at: str | datetime | None,
    late_reason: str | None,
    now: datetime,
) -> tuple[datetime, str | None, Shipment, list[tuple[ShipmentVial, Vial, Lot, str]]]:
    """What a shipment's dispatch or receipt starts from: when it happened (and why it is
    entered late), the shipment, and its vials, their rows agreeing with the trail and the
    shipment's state allowing `action`."""
    when = past_moment("at", at, uow.settings.tz, now)
    late = late_entries.reason_for(uow, when, now, late_reason)
    found = lookup.shipment(uow.session, shipment)
    packed = _packed(uow.session, found)
    _require_agreement(uow.session, found, [vial for _, vial, _, _ in packed])
    SHIPMENT.check(action, code=found.code, status=found.status)
    return when, late, found, packed


def dispatch(
    uow: UnitOfWork,
    *,
    shipment: str,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> ShipmentView:
    """Send an open shipment: every vial packed in it is shipped. Refused empty, and while a
    lot of its vials is on hold or expired (take those vials out first)."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    now = utcnow()
    when, late, found, packed = _moved(uow, "dispatch", shipment, at, late_reason, now)
    code = found.code
    if not packed:
        raise RuleViolation(f"shipment {code} is empty: pack its vials first (lims ship add)")
    after("at", when, found.created_at, f"shipment {code} was made", settings.tz)
    last = max(row.added_at for row, _, _, _ in packed)
    after("at", when, last, "its last vial was packed", settings.tz)
    for _, vial, _, _ in packed:  # recalled or destroyed with its lot since it was packed
        if not VIAL.allows("ship", vial.status):
            raise RuleViolation(
                f"vial {vial.code} is {vial.status}, not released: take it out of shipment "
                f"{code} (lims ship remove) first"
            )
    lots = {lot.id: lot for _, _, lot, _ in packed}
    for lot in lots.values():
        refused = _unsendable(session, settings, lot, when)
        if refused is not None:
            raise RuleViolation(
                f"{refused}; take its vials out of shipment {code} (lims ship remove) first"
            )
    vials = [vial.code for _, vial, _, _ in packed]
    found.dispatched_at, found.dispatched_by = when, actor.username
    change_status(
        session,
        SHIPMENT,
        found,
        "dispatch",
        by=actor.username,
        new={"dispatched_at": json_time(when), "vials": vials},
    )
    for _, vial, _, _ in packed:
        change_status(
            session,
            VIAL,
            vial,
            "ship",
            by=actor.username,
            new={"shipment": code, "at": json_time(when)},
        )
    _mark_late(session, late, SHIPMENT.audit_action("dispatch"), code, when, now, actor)
    session.flush()
    return _view(session, found, now=now)


class ShipmentMismatch(AuditedRuleViolation):
    """A receipt refused because a scan matched no vial of the shipment as its record says;
    each such scan is on record (the refusal commits)."""

    def __init__(self, shipment: str, mismatches: Sequence[Verification]) -> None:
        super().__init__(
            f"MISMATCH receiving {shipment}: "
            + "; ".join(f"{result.vial_id}: {result.reason}" for result in mismatches)
        )
        self.mismatches = list(mismatches)


def _receipt_scans(
    session: Session,
    settings: Settings,
    actor: Actor,
    code: str,
    packed: Sequence[tuple[ShipmentVial, Vial, Lot, str]],
    scans: Sequence[vial_rules.ScannedLabel],
) -> None:
    """Every vial of the shipment scanned exactly once, each label agreeing with the vial's
    record. A scan of a vial not in it, or of a label that disagrees, is a MISMATCH put on
    the scanned vial's record and raised; a vial missed or scanned twice is refused."""
    in_shipment = {vial.code: (vial, lot) for _, vial, lot, _ in packed}
    seen: set[str] = set()
    twice: list[str] = []
    mismatches: list[Verification] = []
    for scanned in scans:
        if scanned.vial_id in seen:
            twice.append(scanned.vial_id)
            continue
        seen.add(scanned.vial_id)
        found = in_shipment.get(scanned.vial_id)
        if found is None:
            other = scanned.vial
            owner = None if other is None else vial_rules.with_lot(session, other)[1].code
            reason = f"vial {scanned.vial_id} is not in shipment {code}"
            mismatches.append(_mismatch(scanned, owner, reason))
            continue
        vial, lot = found
        _, owner_record = vial_rules.with_lot(session, vial)
        disagrees = vial_rules.label_disagreement(
            session, settings, scanned, vial, owner_record
        ) or vial_rules.expiry_disagreement(scanned, vial, lot)
        if disagrees is not None:
            mismatches.append(_mismatch(scanned, owner_record.code, disagrees))
    if mismatches:
        for result in mismatches:
            vial_rules.audit_verification(
                session, actor, result, f"{SHIPMENT.audit_action('receive')}.refused"
            )
        raise ShipmentMismatch(code, mismatches)
    if twice:
        raise RuleViolation(
            f"scanned more than once: {', '.join(sorted(set(twice)))}; scan each vial of "
            f"shipment {code} once"
        )
    missing = [vial for vial in in_shipment if vial not in seen]
    if missing:
        raise RuleViolation(
            f"not scanned: {', '.join(missing)}; every vial of shipment {code} is scanned at "
            "receipt (a vial that did not arrive: report the shipment lost)"
        )


def _mismatch(scanned: vial_rules.ScannedLabel, owner: str | None, reason: str) -> Verification:
    return Verification(
        match=False,
        vial_id=scanned.vial_id,
        # A Data Matrix names no patient: the vial's owner, where the vial is known.
        patient=scanned.patient or owner or "",
        vial_patient=owner,
        reason=reason,
    )


def _logger_file(session: Session, path: Path) -> tuple[str, bytes, str]:
    """The logger's export to keep: its name, bytes and SHA-256; refused if kept before."""
    content = instrument_files.load(path, LOGGER_FILE_FIELD, "a temperature logger's export")
    name = path.name
    free_text(LOGGER_FILE_FIELD, name, max_length=COUNT_FILE_NAME_MAX)
    # Refused as a counter's file name is: it is shown in the batch record.
    if formula_like(name):
        raise BadInput(LOGGER_FILE_FIELD, f"name {shown(name)} begins like a spreadsheet formula")
    sha256 = hashlib.sha256(content).hexdigest()
    earlier = session.exec(select(LoggerFile).where(col(LoggerFile.sha256) == sha256)).first()
    if earlier is not None:
        holder = session.get(Shipment, earlier.shipment_id)
        assert holder is not None
        raise RuleViolation(
            f"logger file {name} (SHA-256 {sha256[:12]}…) was kept with shipment "
            f"{holder.code} on {json_time(earlier.recorded_at)}"
        )
    return name, content, sha256


def receive(
    uow: UnitOfWork,
    *,
    shipment: str,
    scans: Sequence[str],
    temperature_ok: str,
    logger_file: Path | None = None,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> ShipmentReceipt:
    """Receive a dispatched shipment at its site, every vial scanned exactly once: each is
    received (and recalled, if its lot was recalled meanwhile). A temperature out of range
    opens a deviation on each lot in it, which holds a released lot."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    in_range = TEMPERATURE_ANSWERS[
        choice(TEMPERATURE_FIELD, temperature_ok, tuple(TEMPERATURE_ANSWERS))
    ]
    if not scans:
        raise BadInput("scan", "give --scan PAYLOAD once for each vial in the shipment")
    read = [vial_rules.read_scan(session, scan) for scan in scans]
    now = utcnow()
    when, late, found, packed = _moved(uow, "receive", shipment, at, late_reason, now)
    code = found.code
    assert found.dispatched_at is not None
    after("at", when, found.dispatched_at, f"shipment {code} was dispatched", settings.tz)
    kept = None if logger_file is None else _logger_file(session, logger_file)
    _receipt_scans(session, settings, actor, code, packed, read)
    found.received_at, found.received_by, found.temperature_ok = when, actor.username, in_range
    stated: dict[str, Any] = {"logger_file": None, "logger_file_sha256": None}
    if kept is not None:
        name, content, sha256 = kept
        assert found.id is not None
        session.add(
            LoggerFile(
                shipment_id=found.id,
                file_name=name,
                sha256=sha256,
                content=content,
                size_bytes=len(content),
                recorded_at=now,
                recorded_by=actor.username,
            )
        )
        stated = {"logger_file": name, "logger_file_sha256": sha256}
    change_status(
        session,
        SHIPMENT,
        found,
        "receive",
        by=actor.username,
        new={
            "received_at": json_time(when),
            "temperature_ok": in_range,
            **stated,
            "vials": [vial.code for _, vial, _, _ in packed],
        },
    )
    recalled = LOT.action("recall").target
    for _, vial, lot, _ in packed:
        change_status(
            session,
            VIAL,
            vial,
            "receive",
            by=actor.username,
            new={"shipment": code, "at": json_time(when)},
        )
        if lot.status == recalled:
            change_status(
                session,
                VIAL,
                vial,
                "recall",
                by=actor.username,
                new={"lot": lot.code, "shipment": code},
                reason=f"lot {lot.code} was recalled while the vial was in shipment {code}",
            )
    opened = [] if in_range else _excursion(session, settings, actor, found, packed, when)
    _mark_late(session, late, SHIPMENT.audit_action("receive"), code, when, now, actor)
    session.flush()
    return ShipmentReceipt(shipment=_view(session, found, now=now), deviations=opened)


def _excursion(
    session: Session,
    settings: Settings,
    actor: Actor,
    shipment: Shipment,
    packed: Sequence[tuple[ShipmentVial, Vial, Lot, str]],
    received_at: datetime,
) -> list[DeviationView]:
    """A deviation on each lot the shipment carried, oldest lot first: its temperature went
    out of range on the way, and whether the product is affected is for QA to judge."""
    code = shipment.code
    lots: dict[int | None, tuple[Lot, list[str]]] = {}
    for _, vial, lot, _ in packed:
        lots.setdefault(lot.id, (lot, []))[1].append(vial.code)
    logger = f", logger {shipment.logger}" if shipment.logger else ""
    return [
        deviations.open_on_lot(
            session,
            actor,
            lot,
            kind=DEVIATION_KIND,
            criterion=None,
            result_id=None,
            description=(
                f"temperature out of range in shipment {code} to {shipment.site_code} "
                f"({shipment.site_name}; courier {shipment.courier}{logger}), received "
                f"{show_time(received_at, settings.tz)} with vials {', '.join(vials)}: review "
                "whether the product is affected"
            ),
        )
        for lot, vials in sorted(lots.values(), key=lambda item: item[0].code)
    ]


def report_lost(uow: UnitOfWork, *, shipment: str, reason: str) -> ShipmentView:
    """A dispatched shipment that will not arrive: it and every vial in it are lost."""
    session = uow.session
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.shipment(session, shipment)
    code = found.code
    packed = _packed(session, found)
    _require_agreement(session, found, [vial for _, vial, _, _ in packed])
    now = utcnow()
    change_status(
        session,
        SHIPMENT,
        found,
        "lose",
        by=actor.username,
        new={"vials": [vial.code for _, vial, _, _ in packed]},
        reason=reason,
    )
    found.ended_at, found.ended_by, found.end_reason = now, actor.username, reason
    for _, vial, _, _ in packed:
        change_status(
            session, VIAL, vial, "lose", by=actor.username, new={"shipment": code}, reason=reason
        )
    session.flush()
    return _view(session, found, now=now)
