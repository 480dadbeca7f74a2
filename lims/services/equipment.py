"""The equipment register: pieces, their calibrations, and taking them out of and back into
service.

QA and admin keep the register (add, calibrate, return to service, retire); anyone may take
a piece out of service (whoever finds a failed incubator must be able to). Every change is
in the trail as the piece's (entity type "equipment", its id). A failed calibration lists
every step that used the piece since its last passing calibration and opens a deviation on
each lot and culture those steps reached, whose product is not all administered or
destroyed (lims.services.equipment_use.affected); a released lot with an open deviation is
on hold until QA closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, tzinfo

from sqlmodel import Session, col, func, select

from lims import audit
from lims.auth import Actor
from lims.config import Settings
from lims.domain import equipment as rules
from lims.domain import quantities
from lims.domain.ids import equipment_id
from lims.domain.states import EQUIPMENT
from lims.errors import BadInput, RuleViolation, shown
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX, Calibration, Equipment, EquipmentUse
from lims.services import deviations, equipment_use, lookup
from lims.services.transitions import change_status
from lims.timeutil import (
    after,
    as_utc,
    calendar_date,
    json_time,
    local_day_end,
    not_in_future,
    parse_date_start,
    show_time,
    utcnow,
)
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.deviations import DeviationView
from lims.views.equipment import (
    CalibrationRecorded,
    EquipmentDetail,
    EquipmentSummary,
)

SUBJECT = "equipment"
DEVIATION_KIND = "equipment"
ID_FIELD = "equipment"


def _subject(piece: Equipment) -> audit.Subject:
    return SUBJECT, piece.code


def _trimmed(field: str, text: str | None) -> str | None:
    """Text that names or identifies: a serial with a space around it would match no file."""
    if text is None:
        return None
    free_text(field, text, max_length=SHORT_TEXT_MAX)
    if text != text.strip():
        raise BadInput(field, f"must not start or end with spaces (got {shown(text)})")
    return text


def _summaries(
    session: Session,
    settings: Settings,
    pieces: Sequence[Equipment],
    now: datetime,
    soon_days: int = rules.DUE_SOON_DAYS,
) -> list[EquipmentSummary]:
    """The pieces as listed: each with its latest calibration and how it stands at `now`."""
    by_piece: dict[int, list[Calibration]] = {}
    if pieces:
        for calibration in session.exec(
            select(Calibration)
            .where(col(Calibration.equipment_id).in_([piece.id for piece in pieces]))
            .order_by(col(Calibration.calibrated_at), col(Calibration.id))
        ).all():
            by_piece.setdefault(calibration.equipment_id, []).append(calibration)
    summaries = []
    for piece in pieces:
        assert piece.id is not None
        calibrations = by_piece.get(piece.id, [])
        standing = rules.standing(
            equipment_use.piece_rules(piece), calibrations, now, settings.tz, soon_days
        )
        retired = EQUIPMENT.locked(piece.status)
        summaries.append(
            from_record(
                EquipmentSummary,
                piece,
                equipment_id=piece.code,
                last_calibration=(
                    equipment_use.calibration_view(calibrations[-1]) if calibrations else None
                ),
                calibration_state=None if retired else standing.state,
                due_on=standing.due_on,
                due_in_days=None if retired else standing.due_in_days,
            )
        )
    return summaries


def _summary(session: Session, settings: Settings, piece: Equipment) -> EquipmentSummary:
    [summary] = _summaries(session, settings, [piece], utcnow())
    return summary


def add_equipment(
    uow: UnitOfWork,
    *,
    equipment: str,
    kind: str,
    name: str,
    serial: str | None = None,
    location: str | None = None,
    calibration_interval_days: str | int | None = None,
) -> EquipmentSummary:
    """Put a piece in the register under the id the lab gives it; with a calibration
    interval it is used only within a passing calibration, due at most that many days on."""
    session, settings = uow.session, uow.settings
    actor = uow.require("keep_registers")
    code = equipment_id(equipment, ID_FIELD)
    choice("kind", kind, rules.EQUIPMENT_KINDS)
    free_text("name", name, max_length=SHORT_TEXT_MAX)
    serial = _trimmed("serial", serial)
    location = _trimmed("location", location)
    interval = (
        None
        if calibration_interval_days is None
        else quantities.whole_number(
            "calibration-interval-days",
            calibration_interval_days,
            low=1,
            high=rules.INTERVAL_MAX_DAYS,
        )
    )
    existing = session.exec(select(Equipment).where(col(Equipment.code) == code)).first()
    if existing is not None:
        raise RuleViolation(
            f"equipment {code} is already in the register: {rules.kind_words(existing.kind)} "
            f"{existing.name!r}, added {json_time(existing.added_at)} by {existing.added_by}"
        )
    if serial is not None:  # a counter's files are matched to it by serial, in any letter case
        twin = session.exec(
            select(Equipment.code).where(
                col(Equipment.kind) == kind,
                col(Equipment.status).not_in(equipment_use.GONE),
                func.upper(col(Equipment.serial)) == serial.upper(),
            )
        ).first()
        if twin is not None:
            raise RuleViolation(
                f"{rules.kind_words(kind)} {twin} has serial {serial} already: a serial names "
                "one piece (retire the other first if it was replaced)"
            )
    piece = Equipment(
        code=code,
        kind=kind,
        name=name,
        serial=serial,
        location=location,
        calibration_interval_days=interval,
        added_at=utcnow(),
        added_by=actor.username,
    )
    audit.record_created(
        session,
        piece,
        _subject(piece),
        "equipment.add",
        by=actor.username,
        new={
            "kind": kind,
            "name": name,
            "serial": serial,
            "location": location,
            "calibration_interval_days": interval,
            "status": piece.status,
        },
    )
    return _summary(session, settings, piece)


def _calibrated_at(
    value: str | date | datetime, zone: tzinfo, now: datetime
) -> tuple[datetime, bool]:
    """When a calibration was made, and whether only its day was given (then its first
    moment in the station's zone); not in the future."""
    if isinstance(value, datetime):
        when, date_only = as_utc(value), False
    elif isinstance(value, date):
        when, date_only = datetime.combine(value, time(), tzinfo=zone).astimezone(UTC), True
    else:
        when = parse_date_start("at", value, zone)
        try:
            date.fromisoformat(value.strip())
            date_only = True
        except ValueError:
            date_only = False
    return not_in_future("at", when, now, zone), date_only


def calibrate(
    uow: UnitOfWork,
    *,
    equipment: str,
    at: str | date | datetime,
    due: str | date | None = None,
    certificate: str | None = None,
    result: str = rules.PASS,
) -> CalibrationRecorded:
    """Record a calibration of a piece, made at `at` (a day or a time) and due on `due`
    (inclusive; for a piece with an interval, at most that many days on, and by default
    exactly). A failed one opens a deviation on each lot and culture the piece's uses since
    its last passing calibration reached."""
    session, settings = uow.session, uow.settings
    actor = uow.require("keep_registers")
    zone = settings.tz
    choice("result", result, rules.CALIBRATION_RESULTS)
    certificate = _trimmed("certificate", certificate)
    due_typed = None if due is None else calendar_date("due", due)
    now = utcnow()
    calibrated_at, date_only = _calibrated_at(at, zone, now)
    piece = lookup.equipment(session, equipment, ID_FIELD)
    _require_agreement(session, [_subject(piece)])
    EQUIPMENT.check("calibrate", code=piece.code, status=piece.status)
    earlier = equipment_use.calibrations_of(session, piece)
    if earlier:
        latest = f"{piece.code}'s latest calibration"
        after("at", calibrated_at, earlier[-1].calibrated_at, latest, zone)
    due_on = rules.due_date(
        rules.local_day(calibrated_at, zone), due_typed, piece.calibration_interval_days
    )
    failed = result == rules.FAIL
    if not failed:
        _require_covering(session, zone, piece, calibrated_at, due_on)
    last_pass = next((c for c in reversed(earlier) if c.result == rules.PASS), None)
    uses: list[EquipmentUse] = []
    if failed:
        uses = equipment_use.uses_of(
            session, piece, since=None if last_pass is None else last_pass.calibrated_at
        )
        # The steps the trail says used it too: a use row deleted by hand must not keep its
        # step out of review.
        stated = equipment_use.stated_users(session, piece)
        steps = stated | {(use.entity_type, use.entity_id) for use in uses}
        if steps:
            _require_agreement(session, sorted(steps))
    assert piece.id is not None
    calibration = Calibration(
        equipment_id=piece.id,
        calibrated_at=calibrated_at,
        calibrated_date_only=date_only,
        due_on=due_on,
        due_at=local_day_end(due_on, zone),
        certificate=certificate,
        result=result,
        recorded_at=now,
        recorded_by=actor.username,
    )
    session.add(calibration)
    session.flush()
    audit.record_about(
        session,
        _subject(piece),
        "equipment.calibrate",
        by=actor.username,
        new={
            "calibration_id": calibration.id,
            "calibrated_at": json_time(calibrated_at),
            "calibrated_date_only": date_only,
            "due_on": due_on.isoformat(),
            "due_at": json_time(calibration.due_at),
            "certificate": certificate,
            "result": result,
        },
    )
    opened = (
        _open_deviations(session, zone, actor, piece, calibration, last_pass, uses)
        if failed
        else []
    )
    return CalibrationRecorded(
        summary=_summary(session, settings, piece),
        calibration=equipment_use.calibration_view(calibration),
        last_pass_at=last_pass.calibrated_at if failed and last_pass is not None else None,
        uses_since_last_pass=equipment_use.views(session, uses),
        deviations=opened,
    )


def _require_covering(
    session: Session, zone: tzinfo, piece: Equipment, calibrated_at: datetime, due_on: date
) -> None:
    """A passing calibration dated before steps already recorded becomes the one they were
    used under: it must cover them (a failed one opens deviations on them instead)."""
    due_at = local_day_end(due_on, zone)
    for use in equipment_use.uses_of(session, piece, since=calibrated_at):
        if use.used_at >= due_at:
            raise RuleViolation(
                f"{equipment_use.piece_rules(piece).label}: a calibration on "
                f"{rules.local_day(calibrated_at, zone)} due {due_on} would put the "
                f"{use.action} of {use.entity_type} {use.entity_id} dated "
                f"{show_time(use.used_at, zone)} out of calibration, after it was recorded "
                "within one; give a due date that covers it"
            )


def _require_agreement(session: Session, subjects: Sequence[audit.Subject]) -> None:
    """The piece's status, calibrations and uses are what the trail states."""
    from lims.services import bindings

    bindings.require_agreement(session, subjects)


def _open_deviations(
    session: Session,
    zone: tzinfo,
    actor: Actor,
    piece: Equipment,
    failed: Calibration,
    last_pass: Calibration | None,
    uses: Sequence[EquipmentUse],
) -> list[DeviationView]:
    """One deviation on each lot and culture the uses since the last pass reached."""
    reached = equipment_use.affected(session, uses)
    label = equipment_use.piece_rules(piece).label
    certificate = f" (certificate {failed.certificate})" if failed.certificate else ""
    since = (
        f"its last passing calibration on {rules.local_day(last_pass.calibrated_at, zone)}"
        if last_pass is not None
        else "it was registered (no calibration of it ever passed)"
    )

    def description(what: str) -> str:
        return (
            f"{label} failed its calibration on {rules.local_day(failed.calibrated_at, zone)}"
            f"{certificate}; {what} went through it since {since}: review whether the product "
            f"is affected (`lims equipment show {piece.code}` lists each step)"
        )

    opened = [
        deviations.open_on_lot(
            session,
            actor,
            lot,
            kind=DEVIATION_KIND,
            criterion=None,
            result_id=None,
            description=description(f"lot {lot.code}"),
        )
        for lot in reached.lots
    ]
    for culture in reached.cultures:
        assert culture.id is not None
        opened.append(
            deviations.open_on_culture(
                session,
                actor,
                culture_id=culture.id,
                culture_code=culture.code,
                passage_id=None,
                passage_code=None,
                kind=DEVIATION_KIND,
                description=description(f"culture {culture.code}"),
            )
        )
    return opened


def _change(
    uow: UnitOfWork, permission: str, action: str, equipment: str, reason: str
) -> EquipmentSummary:
    session, settings = uow.session, uow.settings
    actor = uow.require(permission)
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    piece = lookup.equipment(session, equipment, ID_FIELD)
    _require_agreement(session, [_subject(piece)])
    change_status(session, EQUIPMENT, piece, action, by=actor.username, reason=reason)
    session.flush()
    return _summary(session, settings, piece)


def take_out_of_service(uow: UnitOfWork, *, equipment: str, reason: str) -> EquipmentSummary:
    """Anyone may: no step may use the piece until QA or admin returns it."""
    return _change(uow, "take_out_of_service", "take_out_of_service", equipment, reason)


def return_to_service(uow: UnitOfWork, *, equipment: str, reason: str) -> EquipmentSummary:
    return _change(uow, "keep_registers", "return", equipment, reason)


def retire(uow: UnitOfWork, *, equipment: str, reason: str) -> EquipmentSummary:
    """For good: no step names it, and no step is required to name its kind on its account."""
    return _change(uow, "keep_registers", "retire", equipment, reason)


def list_equipment(
    uow: UnitOfWork, *, kind: str | None = None, due_within_days: str | int | None = None
) -> list[EquipmentSummary]:
    """The register by id: of one kind, or only what needs calibrating within so many days
    (overdue, failed or never calibrated included; retired pieces left out)."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    query = select(Equipment).order_by(col(Equipment.code))
    if kind is not None:
        query = query.where(col(Equipment.kind) == choice("kind", kind, rules.EQUIPMENT_KINDS))
    if due_within_days is None:
        return _summaries(session, settings, session.exec(query).all(), utcnow())
    days = quantities.whole_number(
        "due-within-days", due_within_days, low=0, high=rules.INTERVAL_MAX_DAYS
    )
    summaries = _summaries(session, settings, session.exec(query).all(), utcnow(), days)
    return [summary for summary in summaries if _due_within(summary, days)]


def _due_within(summary: EquipmentSummary, days: int) -> bool:
    if summary.calibration_state in (rules.OVERDUE, rules.FAILED, rules.NEVER_CALIBRATED):
        return True
    return summary.due_in_days is not None and summary.due_in_days <= days


def show_equipment(uow: UnitOfWork, *, equipment: str) -> EquipmentDetail:
    """A piece, its calibrations (newest first) and every step that used it (newest first)."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    piece = lookup.equipment(session, equipment, ID_FIELD)
    calibrations = equipment_use.calibrations_of(session, piece)
    uses = equipment_use.uses_of(session, piece)
    return EquipmentDetail(
        summary=_summary(session, settings, piece),
        calibrations=[equipment_use.calibration_view(c) for c in reversed(calibrations)],
        uses=equipment_use.views(session, uses[::-1]),
    )
