"""Follow-up: what happened to a patient after administration (21 CFR 312.32; EU Regulation
536/2014, Art. 41-43).

An event is an adverse event, graded by severity, perhaps serious and judged for its
relation to the product, or an observation. An event may name the vial it followed: one
administered to that patient before it. A serious adverse event possibly, probably or
definitely related to the product is a suspected serious adverse reaction: it opens a
critical deviation on the lot of its vial (without a vial, on every lot the patient was
given a vial of before it), which holds a released lot's other vials until QA decides, and
an expedited safety report may be due. Follow-up goes on after a patient withdraws
consent: safety reporting does not stop (lims.services.consent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from lims import audit
from lims.config import Settings
from lims.domain.states import DeviationSeverity
from lims.errors import BadInput, RuleViolation
from lims.models import (
    EVENT_KINDS,
    EVENT_RELATEDNESS,
    EVENT_SEVERITIES,
    LONG_TEXT_MAX,
    Deviation,
    FollowUpEvent,
    Lot,
    Patient,
    Vial,
)
from lims.services import bindings, lookup
from lims.services import deviations as deviation_rules
from lims.timeutil import json_time, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import choice, free_text
from lims.views import from_record
from lims.views.events import EXPEDITED_REPORT, EventView

ADVERSE_EVENT = "adverse_event"
# Grades that are serious by definition: death and a life-threatening event (21 CFR 312.32(a);
# ICH E2A), whatever else is typed.
SERIOUS_GRADES = ("life_threatening", "fatal")
# A reasonable possibility that the product caused it: a suspected adverse reaction.
SUSPECTED = ("possible", "probable", "definite")
DEVIATION_KIND = "adverse_event"


def suspected_serious_reaction(kind: str, serious: bool, related: str | None) -> bool:
    """A serious adverse event the product may have caused: what calls for a deviation on
    its lots and may call for an expedited safety report."""
    return kind == ADVERSE_EVENT and serious and related in SUSPECTED


def record_event(
    uow: UnitOfWork,
    *,
    patient: str,
    at: str | datetime,
    kind: str,
    description: str,
    vial: str | None = None,
    severity: str | None = None,
    serious: bool = False,
    related: str | None = None,
) -> EventView:
    """Record what happened to a patient at `at`, after the vial named, if one is."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    _graded(kind, severity, serious, related)
    free_text("description", description, max_length=LONG_TEXT_MAX, multiline=True)
    now = utcnow()
    when = past_moment("at", at, settings.tz, now)
    found = lookup.patient(session, settings, patient)
    assert found.id is not None
    _not_before_consent(found, when, settings.tz)
    named = None if vial is None else lookup.vial(session, vial)
    suspected = suspected_serious_reaction(kind, serious, related)
    # Which vial it follows and which lots a suspected reaction holds are read from when
    # vials were given: those rows agree with the trail before they decide.
    bindings.require_agreement(
        session,
        [
            ("patient", found.code),
            *([("vial", named.code)] if named else []),
            *(("lot", code) for code in (_lots_of(session, found) if suspected else [])),
        ],
    )
    given = None if named is None else _followed_vial(session, settings, found, named, when)
    lots = _lots_it_may_follow(session, settings, found, given, when) if suspected else []
    event = FollowUpEvent(
        patient_id=found.id,
        vial_id=None if given is None else given.id,
        kind=kind,
        severity=severity,
        serious=serious,
        related=related,
        description=description,
        occurred_at=when,
        recorded_at=now,
        recorded_by=actor.username,
    )
    session.add(event)
    session.flush()
    assert event.id is not None
    audit.record_about(
        session,
        ("event", str(event.id)),
        "event.record",
        by=actor.username,
        new={
            "patient": found.code,
            "vial": None if given is None else given.code,
            "kind": kind,
            "severity": severity,
            "serious": serious,
            "related": related,
            "description": description,
            "occurred_at": json_time(when),
        },
    )
    for lot in lots:
        deviation_rules.open_on_lot(
            session,
            actor,
            lot,
            kind=DEVIATION_KIND,
            criterion=None,
            result_id=None,
            description=(
                f"serious adverse event {event.id} of patient {found.code} ({severity}), "
                f"relation to {'vial ' + given.code if given else 'the product'} "
                f"{related}: {EXPEDITED_REPORT}"
            ),
            severity=DeviationSeverity.CRITICAL,
            event_id=event.id,
        )
    [view] = _views(session, [event])
    return view


def _graded(kind: str, severity: str | None, serious: bool, related: str | None) -> None:
    """An adverse event has a severity, and may be serious and related to the product (a fatal
    or life-threatening one is serious); an observation is none of these (a serious or related
    one is an adverse event)."""
    choice("kind", kind, EVENT_KINDS)
    if severity is not None:
        choice("severity", severity, EVENT_SEVERITIES)
    if related is not None:
        choice("related", related, EVENT_RELATEDNESS)
    if kind == ADVERSE_EVENT:
        if severity is None:
            raise BadInput(
                "severity",
                f"must be given for an adverse event: one of {', '.join(EVENT_SEVERITIES)}",
            )
        if severity in SERIOUS_GRADES and not serious:
            raise BadInput(
                "serious",
                f"must be given for a {severity} adverse event: death and a life-threatening "
                "event are serious (21 CFR 312.32(a)); add --serious",
            )
        return
    for option, given in (
        ("severity", severity is not None),
        ("serious", serious),
        ("related", related is not None),
    ):
        if given:
            raise BadInput(
                option,
                f"must not be given for an {kind}: only an adverse event has a severity, "
                "seriousness or relation to the product (--kind adverse_event)",
            )


def _not_before_consent(patient: Patient, when: datetime, zone: tzinfo) -> None:
    """Follow-up is of a consenting patient who was born, as an aspirate is: an event dated
    before the consent date or the birth year is a typing error (0026 for 2026)."""
    born = date(patient.birth_year, 1, 1)
    earliest = born if patient.consent_date is None else max(patient.consent_date, born)
    if when.astimezone(zone).date() < earliest:
        why = f"birth year {patient.birth_year}" if earliest == born else f"consent on {earliest}"
        raise BadInput(
            "at",
            f"must not be before patient {patient.code}'s {why} (got {show_time(when, zone)})",
        )


def _lots_of(session: Session, patient: Patient) -> list[str]:
    """The codes of every lot made for the patient."""
    return list(session.exec(select(Lot.code).where(col(Lot.patient_id) == patient.id)).all())


def _followed_vial(
    session: Session, settings: Settings, patient: Patient, vial: Vial, when: datetime
) -> Vial:
    """The vial named, if it was administered to the patient before the event."""
    lot = session.get(Lot, vial.lot_id)
    assert lot is not None
    if lot.patient_id != patient.id:
        owner = session.get(Patient, lot.patient_id)
        assert owner is not None
        raise RuleViolation(
            f"vial {vial.code} is patient {owner.code}'s, not {patient.code}'s: "
            "an event follows a vial given to its own patient"
        )
    if vial.administered_at is None:
        raise RuleViolation(
            f"vial {vial.code} is {vial.status}: it was never administered, so no event follows it"
        )
    if when < _minute_of(vial.administered_at):
        raise RuleViolation(
            f"the event at {show_time(when, settings.tz)} is before vial {vial.code} was "
            f"administered at {show_time(vial.administered_at, settings.tz)}"
        )
    return vial


def _minute_of(moment: datetime) -> datetime:
    """The minute a step happened in: times are typed to the minute, and an event typed in
    the minute of the administration it follows (a reaction at the bedside) follows it."""
    return moment.replace(second=0, microsecond=0)


def _lots_it_may_follow(
    session: Session, settings: Settings, patient: Patient, vial: Vial | None, when: datetime
) -> list[Lot]:
    """The lots an event may be related to: its vial's, or else every lot the patient was
    given a vial of before it. A suspected reaction to a product never given is refused."""
    if vial is not None:
        lot = session.get(Lot, vial.lot_id)
        assert lot is not None
        return [lot]
    given = select(Vial.lot_id).where(
        col(Vial.administered_at).is_not(None),
        col(Vial.administered_at) < _minute_of(when) + timedelta(minutes=1),
    )
    lots = list(
        session.exec(
            select(Lot)
            .where(col(Lot.patient_id) == patient.id, col(Lot.id).in_(given))
            .order_by(col(Lot.id))
        ).all()
    )
    if not lots:
        raise RuleViolation(
            f"patient {patient.code} was given no vial before {show_time(when, settings.tz)}: "
            "an event related to the product follows its administration"
        )
    return lots


def list_events(
    uow: UnitOfWork, *, patient: str | None = None, lot: str | None = None
) -> list[EventView]:
    """Events oldest first: a patient's, those following a lot's vials, or every one."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    query = select(FollowUpEvent)
    if patient is not None:
        found = lookup.patient(session, settings, patient)
        query = query.where(col(FollowUpEvent.patient_id) == found.id)
    if lot is not None:
        query = query.where(_following(session, lookup.lot(session, lot)))
    return _views(session, _oldest_first(session, query))


def of_patient(session: Session, patient: Patient) -> list[EventView]:
    """The patient's events, oldest first."""
    query = select(FollowUpEvent).where(col(FollowUpEvent.patient_id) == patient.id)
    return _views(session, _oldest_first(session, query))


def of_lot(session: Session, lot: Lot) -> list[EventView]:
    """The events that followed the lot's vials, oldest first."""
    return _views(
        session, _oldest_first(session, select(FollowUpEvent).where(_following(session, lot)))
    )


def _following(session: Session, lot: Lot) -> ColumnElement[bool]:
    """Which events followed a lot: those naming one of its vials, and those naming none of
    its patient's since a vial of it was first administered."""
    its_vials = select(Vial.id).where(col(Vial.lot_id) == lot.id)
    first_given = session.exec(
        select(Vial.administered_at)
        .where(col(Vial.lot_id) == lot.id, col(Vial.administered_at).is_not(None))
        .order_by(col(Vial.administered_at))
    ).first()
    condition = col(FollowUpEvent.vial_id).in_(its_vials)
    if first_given is None:
        return condition
    return condition | (
        col(FollowUpEvent.vial_id).is_(None)
        & (col(FollowUpEvent.patient_id) == lot.patient_id)
        & (col(FollowUpEvent.occurred_at) >= _minute_of(first_given))
    )


def _oldest_first(
    session: Session, query: SelectOfScalar[FollowUpEvent]
) -> Sequence[FollowUpEvent]:
    return session.exec(query.order_by(col(FollowUpEvent.occurred_at), col(FollowUpEvent.id))).all()


def _views(session: Session, events: Sequence[FollowUpEvent]) -> list[EventView]:
    if not events:
        return []
    patients = dict(
        session.exec(
            select(Patient.id, Patient.code).where(
                col(Patient.id).in_({event.patient_id for event in events})
            )
        ).all()
    )
    vials = {
        vial_id: (vial_code, lot_code)
        for vial_id, vial_code, lot_code in session.exec(
            select(Vial.id, Vial.code, Lot.code)
            .join(Lot, col(Lot.id) == col(Vial.lot_id))
            .where(col(Vial.id).in_({event.vial_id for event in events if event.vial_id}))
        ).all()
    }
    opened: dict[int, list[int]] = {}
    for event_id, deviation_id in session.exec(
        select(Deviation.event_id, Deviation.id)
        .where(col(Deviation.event_id).in_([event.id for event in events]))
        .order_by(col(Deviation.id))
    ).all():
        assert event_id is not None
        assert deviation_id is not None
        opened.setdefault(event_id, []).append(deviation_id)
    views = []
    for event in events:
        assert event.id is not None
        vial_code, lot_code = vials.get(event.vial_id, (None, None))
        views.append(
            from_record(
                EventView,
                event,
                event_id=event.id,
                patient=patients[event.patient_id],
                vial_id=vial_code,
                lot_id=lot_code,
                deviations=opened.get(event.id, []),
                expedited_report_may_be_due=suspected_serious_reaction(
                    event.kind, event.serious, event.related
                ),
            )
        )
    return views
