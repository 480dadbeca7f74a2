"""Follow-up after administration (issue 13): events recorded for a patient, after the vial
named if one is; a serious adverse event the product may have caused opens a critical
deviation on the lots it may follow, and says an expedited safety report may be due.

The lab is tests.support.quality.Quality: lot L1 of four vials for PT-0001, released by rita;
tom gives V01 to PT-0001. PT-0002 is registered too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.scenario import PATIENT_CODE
from lims.services import events, lots, patients, vials
from lims.timeutil import json_time, utcnow
from lims.views.events import EventView
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.vials import add_lot, give, scan_of

OTHER = "PT-0002"
HEADACHE = "headache for 24 h after the injection"


@pytest.fixture
def given(lab: Lab) -> Quality:
    """L1 released; V01 given to PT-0001 (now); PT-0002 registered; tom logged in."""

    def build() -> Quality:
        quality = Quality(lab)
        quality.patient(OTHER)
        quality.record_passing()
        quality.release()
        quality.lab.login("tom")
        give(quality, _vial(quality))
        return quality

    return lab.built("events-given", build)


def _vial(quality: Quality, number: int = 1, lot: str | None = None) -> str:
    return f"{lot or quality.lot_id}-V{number:02d}"


def _record(quality: Quality, **values: Any) -> EventView:
    event: dict[str, Any] = {
        "patient": PATIENT_CODE,
        "at": utcnow(),
        "kind": "adverse_event",
        "severity": "moderate",
        "description": HEADACHE,
        **values,
    }
    view: EventView = quality.run(events.record_event, **event)
    return view


def _entries(quality: Quality, action: str) -> list[Any]:
    return [e for e in quality.scenario.audit_trail() if e.action == action]


def _administered_at(quality: Quality, vial: str) -> datetime:
    at = quality.read(vials.show_vial, vial=vial).administered_at
    assert at is not None
    return at


def _given_at(quality: Quality, vial: str, at: datetime) -> None:
    """Issue VIAL (of PATIENT_CODE's L1) and record it given at AT, its issue moved before."""
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT_CODE)
    quality.sql(
        "UPDATE vials SET issued_at = :issued WHERE code = :code",
        issued=at - timedelta(minutes=5),
        code=vial,
    )
    quality.run(
        vials.administer, vial=vial, scan=scan_of(quality, vial), patient=PATIENT_CODE, at=at
    )


def _released_lot_given(quality: Quality, patient: str = PATIENT_CODE) -> str:
    """Another lot for PATIENT, released, and its V01 given; its id."""
    lot = add_lot(quality, patient)
    kept, quality.lot_id = quality.lot_id, lot
    try:
        quality.record_passing()
        quality.release()
        quality.lab.login("tom")
        give(quality, _vial(quality))
    finally:
        quality.lot_id = kept
    return lot


# --- recording --------------------------------------------------------------------------------


def test_an_adverse_event_after_a_vial_is_recorded_audited_and_shown(given: Quality) -> None:
    vial = _vial(given)
    at = utcnow().replace(microsecond=0)
    recorded = _record(given, vial=vial, at=at, related="unlikely")
    assert (recorded.patient, recorded.vial_id, recorded.lot_id) == (
        PATIENT_CODE,
        vial,
        given.lot_id,
    )
    assert (recorded.kind, recorded.severity, recorded.serious, recorded.related) == (
        "adverse_event",
        "moderate",
        False,
        "unlikely",
    )
    assert (recorded.description, recorded.occurred_at, recorded.recorded_by) == (
        HEADACHE,
        at,
        "tom",
    )
    assert recorded.deviations == []
    assert recorded.expedited_report_may_be_due is False
    [entry] = _entries(given, "event.record")
    assert (entry.entity_type, entry.entity_id, entry.username) == (
        "event",
        str(recorded.event_id),
        "tom",
    )
    assert entry.new == {
        "patient": PATIENT_CODE,
        "vial": vial,
        "kind": "adverse_event",
        "severity": "moderate",
        "serious": False,
        "related": "unlikely",
        "description": HEADACHE,
        "occurred_at": json_time(at),
    }
    assert given.read(patients.show_patient, code=PATIENT_CODE).events == [recorded]
    assert given.read(events.list_events, patient=PATIENT_CODE) == [recorded]
    assert given.read(events.list_events, lot=given.lot_id) == [recorded]
    assert given.read(events.list_events, patient=OTHER) == []
    assert given.read(patients.show_patient, code=OTHER).events == []


def test_an_observation_names_no_vial_and_has_no_grade(given: Quality) -> None:
    seen = _record(given, kind="observation", severity=None, description="walks unaided")
    assert (seen.kind, seen.severity, seen.serious, seen.related, seen.vial_id) == (
        "observation",
        None,
        False,
        None,
        None,
    )
    assert seen.lot_id is None


def test_events_are_listed_oldest_first(given: Quality) -> None:
    now = utcnow()
    later = _record(given, at=now - timedelta(seconds=1), description="second")
    earlier = _record(given, at=now - timedelta(seconds=2), description="first")
    assert given.read(events.list_events) == [earlier, later]


def test_an_adverse_event_needs_a_severity(given: Quality) -> None:
    with pytest.raises(BadInput, match="severity: must be given for an adverse event: one of mild"):
        _record(given, severity=None)
    assert _entries(given, "event.record") == []


@pytest.mark.parametrize(
    ("option", "value"), [("severity", "mild"), ("serious", True), ("related", "possible")]
)
def test_only_an_adverse_event_is_graded(given: Quality, option: str, value: object) -> None:
    with pytest.raises(BadInput, match=f"{option}: must not be given for an observation"):
        _record(given, kind="observation", **{"severity": None, option: value})
    assert _entries(given, "event.record") == []


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("kind", "adverse event", "adverse_event, observation"),
        ("kind", "AE", "adverse_event, observation"),
        ("severity", "grade 3", "mild, moderate, severe, life_threatening, fatal"),
        ("severity", "Severe", "mild, moderate, severe, life_threatening, fatal"),
        ("related", "likely", "unrelated, unlikely, possible, probable, definite"),
    ],
)
def test_an_unknown_kind_severity_or_relation_is_bad_input(
    given: Quality, option: str, value: str, allowed: str
) -> None:
    with pytest.raises(BadInput, match=f"{option}: must be one of {allowed} "):
        _record(given, **{option: value})
    assert _entries(given, "event.record") == []


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"at": utcnow() + timedelta(days=1)}, "at: must not be in the future"),
        ({"at": "yesterday"}, "at: must be an ISO 8601 time"),
        ({"description": "  "}, "description: must not be empty"),
        ({"description": "x" * 2001}, "description: must be at most 2000 characters"),
        ({"patient": "pt 1"}, "patient: "),
        ({"vial": "V01"}, "vial: "),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    given: Quality, values: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(BadInput, match=refusal):
        _record(given, **values)
    assert _entries(given, "event.record") == []


def test_an_unknown_patient_or_vial_is_not_found(given: Quality) -> None:
    with pytest.raises(NotFound, match="PT-9999"):
        _record(given, patient="PT-9999")
    with pytest.raises(NotFound, match=f"{given.lot_id}-V09"):
        _record(given, vial=f"{given.lot_id}-V09")
    assert _entries(given, "event.record") == []


def test_an_event_follows_only_a_vial_given_to_that_patient_before_it(given: Quality) -> None:
    vial = _vial(given)
    with pytest.raises(RuleViolation, match=f"vial {vial} is patient {PATIENT_CODE}'s, not"):
        _record(given, patient=OTHER, vial=vial)
    with pytest.raises(RuleViolation, match=f"vial {_vial(given, 2)} is released: it was never"):
        _record(given, vial=_vial(given, 2))
    before = _administered_at(given, vial) - timedelta(minutes=1)
    with pytest.raises(RuleViolation, match=f"is before vial {vial} was administered at"):
        _record(given, vial=vial, at=before)
    assert _entries(given, "event.record") == []
    assert _record(given, vial=vial, at=_administered_at(given, vial)).vial_id == vial


def test_an_event_typed_in_the_minute_of_the_administration_follows_it(given: Quality) -> None:
    """Times are typed to the minute: a reaction at the bedside, typed 09:00 for a vial
    given at 09:00:40, follows it; one typed 08:59 does not."""
    vial = _vial(given)
    minute = _administered_at(given, vial).replace(second=0, microsecond=0)
    with pytest.raises(RuleViolation, match="is before vial"):
        _record(given, vial=vial, at=minute - timedelta(seconds=1))
    assert _record(given, vial=vial, at=minute).vial_id == vial
    suspected = _record(given, at=minute, serious=True, related="possible")
    assert len(suspected.deviations) == 1


def test_follow_up_goes_on_after_consent_is_withdrawn(given: Quality) -> None:
    given.run(patients.withdraw_patient, code=PATIENT_CODE, reason="withdrew in writing")
    recorded = _record(given, vial=_vial(given), serious=True, related="probable")
    assert recorded.expedited_report_may_be_due is True


def test_technicians_and_qa_record_events_the_admin_does_not(given: Quality, lab: Lab) -> None:
    lab.login("quinn")
    assert _record(given).recorded_by == "quinn"
    lab.login("admin")
    with pytest.raises(NotPermitted):
        _record(given)
    assert given.read(events.list_events, patient=PATIENT_CODE)[0].recorded_by == "quinn"


# --- a suspected serious adverse reaction -----------------------------------------------------


@pytest.mark.parametrize("related", ["possible", "probable", "definite"])
def test_a_serious_event_the_vial_may_have_caused_opens_a_critical_deviation_holding_its_lot(
    given: Quality, related: str
) -> None:
    vial = _vial(given)
    recorded = _record(given, vial=vial, severity="severe", serious=True, related=related)
    assert recorded.expedited_report_may_be_due is True
    lot = given.show()
    [deviation] = [d for d in lot.deviations if d.kind == "adverse_event"]
    assert recorded.deviations == [deviation.deviation_id]
    assert (deviation.severity, deviation.event_id, deviation.status, deviation.subject) == (
        "critical",
        recorded.event_id,
        "open",
        given.lot_id,
    )
    assert f"serious adverse event {recorded.event_id} of patient {PATIENT_CODE}" in (
        deviation.description
    )
    assert f"relation to vial {vial} {related}" in deviation.description
    assert "expedited safety report may be due (21 CFR 312.32; EU Regulation 536/2014)" in (
        deviation.description
    )
    assert lot.on_hold
    assert any(f"deviation {deviation.deviation_id} open" in r for r in lot.hold_reasons)
    [opened] = [e.new for e in _entries(given, "deviation.open")]
    assert opened is not None
    assert (opened["event_id"], opened["severity"], opened["kind"]) == (
        recorded.event_id,
        "critical",
        "adverse_event",
    )
    assert given.read(events.list_events, lot=given.lot_id) == [recorded]


@pytest.mark.parametrize(
    ("serious", "related"),
    [(True, None), (True, "unrelated"), (True, "unlikely"), (False, "definite")],
)
def test_an_event_not_both_serious_and_possibly_related_opens_nothing(
    given: Quality, serious: bool, related: str | None
) -> None:
    recorded = _record(given, vial=_vial(given), serious=serious, related=related)
    assert (recorded.deviations, recorded.expedited_report_may_be_due) == ([], False)
    assert _entries(given, "deviation.open") == []
    assert not given.show().on_hold


def test_without_a_vial_it_opens_one_on_every_lot_given_to_the_patient_before_it(
    given: Quality,
) -> None:
    second = _released_lot_given(given)
    given.lab.login("tom")
    never_given = add_lot(given, PATIENT_CODE)
    other_patients = _released_lot_given(given, OTHER)
    given.lab.login("tom")
    recorded = _record(given, serious=True, related="possible", severity="life_threatening")
    opened = {
        d.subject: d
        for d in given.read(patients.show_patient, code=PATIENT_CODE).deviations
        if d.kind == "adverse_event"
    }
    assert sorted(opened) == sorted([given.lot_id, second])
    assert recorded.deviations == sorted(d.deviation_id for d in opened.values())
    assert all(d.event_id == recorded.event_id for d in opened.values())
    assert "relation to the product possible" in opened[second].description
    for lot in (given.lot_id, second):
        assert given.read(events.list_events, lot=lot) == [recorded]
    for lot in (never_given, other_patients):
        assert given.read(events.list_events, lot=lot) == []
        assert not [
            d for d in given.read(lots.show_lot, lot=lot).deviations if d.kind == "adverse_event"
        ]


def test_a_lot_whose_vial_was_given_after_the_event_is_not_called_its_cause(
    given: Quality,
) -> None:
    # V02 of L1 was issued (its issue moved back, as plain SQL: nothing is decided by it) and
    # given two hours ago, the event came an hour later, and a vial of the second lot is
    # given now.
    two_hours_ago = utcnow() - timedelta(hours=2)
    _given_at(given, _vial(given, 2), two_hours_ago)
    second = _released_lot_given(given)
    given.lab.login("tom")
    recorded = _record(
        given, at=two_hours_ago + timedelta(hours=1), serious=True, related="probable"
    )
    [deviation] = [
        d
        for d in given.read(patients.show_patient, code=PATIENT_CODE).deviations
        if d.kind == "adverse_event"
    ]
    assert deviation.subject == given.lot_id
    assert recorded.deviations == [deviation.deviation_id]
    assert given.read(events.list_events, lot=second) == []


def test_a_suspected_reaction_to_a_product_never_given_is_refused(given: Quality) -> None:
    with pytest.raises(RuleViolation, match=f"patient {OTHER} was given no vial before"):
        _record(given, patient=OTHER, serious=True, related="possible")
    assert _entries(given, "event.record") == []
    assert _entries(given, "deviation.open") == []
    # Serious but unrelated, or any observation, needs no administration.
    assert _record(given, patient=OTHER, serious=True, related="unrelated").deviations == []


def test_list_by_patient_and_lot_keeps_both_filters(given: Quality) -> None:
    mine = _record(given, vial=_vial(given))
    assert given.read(events.list_events, patient=PATIENT_CODE, lot=given.lot_id) == [mine]
    assert given.read(events.list_events, patient=OTHER, lot=given.lot_id) == []
    with pytest.raises(NotFound):
        given.read(events.list_events, lot="A999926999999-L1")
    with pytest.raises(NotFound):
        given.read(events.list_events, patient="PT-9999")


def test_a_time_of_administration_moved_by_hand_stops_a_suspected_reaction_being_recorded(
    given: Quality,
) -> None:
    """Which lots a suspected reaction holds is read from when their vials were given: a
    vial of a second lot moved after the event by plain SQL dropped that lot from the
    deviations, and `audit verify` saw nothing. The row now disagrees with the trail and
    the event is refused, saving nothing."""
    second = _released_lot_given(given)
    given.lab.login("tom")
    moved = f"{second}-V01"
    given.sql(
        "UPDATE vials SET administered_at = :later WHERE code = :code",
        later=utcnow() + timedelta(days=1),
        code=moved,
    )
    with pytest.raises(
        RuleViolation,
        match=f"^record disagrees with the audit trail: vials {moved} administered_at",
    ):
        _record(given, serious=True, related="probable")
    assert _entries(given, "event.record") == []
    assert _entries(given, "deviation.open") == []
    # A vial named is checked before it decides whether the event follows it.
    with pytest.raises(RuleViolation, match=f"vials {moved} administered_at"):
        _record(given, vial=moved, kind="observation", severity=None)


def test_an_event_before_the_patients_consent_is_bad_input(given: Quality) -> None:
    """An adverse event dated 0026 for 2026, or the year before consent, was recorded; it
    followed no lot and showed in no batch record."""
    consented = given.read(patients.show_patient, code=PATIENT_CODE).consent_date
    assert consented is not None
    for typo in (utcnow().replace(year=26), utcnow().replace(year=consented.year - 1)):
        with pytest.raises(
            BadInput, match=f"^at: must not be before patient {PATIENT_CODE}'s consent on "
        ):
            _record(given, at=typo, kind="observation", severity=None)
    assert _entries(given, "event.record") == []


@pytest.mark.parametrize("severity", ["life_threatening", "fatal"])
def test_a_fatal_or_life_threatening_event_is_serious(given: Quality, severity: str) -> None:
    """Death and a life-threatening event are serious by definition (21 CFR 312.32(a)): one
    typed without --serious, probably caused by the vial, opened no deviation and said no
    expedited report may be due."""
    vial = _vial(given)
    with pytest.raises(BadInput, match=f"^serious: must be given for a {severity} adverse event"):
        _record(given, vial=vial, severity=severity, related="probable")
    assert _entries(given, "event.record") == []
    recorded = _record(given, vial=vial, severity=severity, related="probable", serious=True)
    assert recorded.expedited_report_may_be_due
    assert len(recorded.deviations) == 1
