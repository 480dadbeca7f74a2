"""The equipment register (lims.services.equipment): adding, calibrating, taking out of and
back into service, retiring, listing and showing pieces; who may do which."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.services import equipment
from lims.timeutil import utcnow
from tests.support.bench import Bench, day
from tests.support.equipment import add, calibrate, change, local_day
from tests.support.lab import Lab


def test_a_piece_added_is_listed_with_its_calibration_state(bench: Bench, lab: Lab) -> None:
    added = add(
        lab,
        "inc-01",
        "incubator",
        serial="42178653",
        location="room 2.14",
        calibration_interval_days="365",
    )
    assert (added.equipment_id, added.status, added.calibration_state) == (
        "INC-01",
        "active",
        "never_calibrated",
    )
    add(lab, "CEN-01", "centrifuge")
    listed = bench.read(equipment.list_equipment)
    assert [(piece.equipment_id, piece.calibration_state) for piece in listed] == [
        ("CEN-01", "not_required"),
        ("INC-01", "never_calibrated"),
    ]
    assert [p.equipment_id for p in bench.read(equipment.list_equipment, kind="centrifuge")] == [
        "CEN-01"
    ]
    [entry] = [e for e in bench.scenario.audit_trail() if e.action == "equipment.add"][:1]
    assert (entry.entity_type, entry.entity_id, entry.username) == ("equipment", "INC-01", "admin")


def test_an_id_twice_or_a_serial_twice_for_one_kind_is_refused(lab: Lab) -> None:
    add(lab, "CC-01", "cell_counter", serial="VB-1")
    with pytest.raises(RuleViolation, match=r"^equipment CC-01 is already in the register"):
        add(lab, "cc-01", "incubator")
    with pytest.raises(RuleViolation, match="cell counter CC-01 has serial vb-1 already"):
        add(lab, "CC-02", "cell_counter", serial="vb-1")
    add(lab, "INC-01", "incubator", serial="VB-1")  # another kind's serial is its own
    change(lab, equipment.retire, "CC-01")
    add(lab, "CC-02", "cell_counter", serial="VB-1")  # the retired one was replaced


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"equipment": "INC 01"}, "equipment"),
        ({"kind": "fridge"}, "kind"),
        ({"name": " "}, "name"),
        ({"serial": " 42 "}, "serial"),
        ({"calibration_interval_days": "0"}, "calibration-interval-days"),
        ({"calibration_interval_days": "3651"}, "calibration-interval-days"),
    ],
)
def test_bad_input_to_add_names_its_field(lab: Lab, values: dict[str, str], field: str) -> None:
    typed = {"equipment": "INC-01", "kind": "incubator", "name": "Heracell", **values}
    with lab.acting_as("admin") as uow, pytest.raises(BadInput) as refused:
        equipment.add_equipment(uow, **typed)
    assert refused.value.field == field


def test_only_qa_and_admin_keep_the_register_and_anyone_takes_a_piece_out_of_service(
    bench: Bench, lab: Lab
) -> None:
    with pytest.raises(NotPermitted):
        bench.run(equipment.add_equipment, equipment="INC-01", kind="incubator", name="x")
    add(lab, "INC-01", "incubator")
    with pytest.raises(NotPermitted):
        bench.run(equipment.calibrate, equipment="INC-01", at=day(1), due=date.today())
    out = bench.run(equipment.take_out_of_service, equipment="INC-01", reason="CO2 alarm")
    assert out.status == "out_of_service"
    with pytest.raises(NotPermitted):
        bench.run(equipment.return_to_service, equipment="INC-01", reason="fixed")
    with pytest.raises(NotPermitted):
        bench.run(equipment.retire, equipment="INC-01", reason="old")
    lab.add_user("quinn", "qa")
    lab.login("quinn")
    assert bench.run(
        equipment.return_to_service, equipment="INC-01", reason="seal replaced"
    ).status == ("active")
    actions = [e.action for e in bench.scenario.audit_trail() if e.entity_type == "equipment"]
    assert actions == ["equipment.add", "equipment.out_of_service", "equipment.return"]


def test_status_changes_follow_the_lifecycle(lab: Lab) -> None:
    add(lab, "INC-01", "incubator")
    with pytest.raises(RuleViolation, match="only equipment out of service can be returned"):
        change(lab, equipment.return_to_service, "INC-01")
    assert change(lab, equipment.retire, "INC-01").calibration_state is None
    with pytest.raises(RuleViolation, match="equipment INC-01 is already retired"):
        change(lab, equipment.retire, "INC-01")
    with pytest.raises(RuleViolation, match="it is no longer calibrated"):
        calibrate(lab, "INC-01", day(1), date.today())
    with pytest.raises(NotFound, match="no equipment INC-02 in the register"):
        change(lab, equipment.retire, "INC-02")


def test_a_calibration_is_due_by_its_interval_and_no_later(bench: Bench, lab: Lab) -> None:
    add(lab, "INC-01", "incubator", calibration_interval_days=30)
    first = calibrate(lab, "INC-01", local_day(day(1), lab).isoformat())
    assert first.calibration.calibrated_date_only
    assert first.calibration.due_on == local_day(day(1), lab) + timedelta(days=30)
    assert first.deviations == []
    assert first.uses_since_last_pass == []
    with pytest.raises(BadInput, match="at most 30 days after the calibration"):
        calibrate(lab, "INC-01", day(2), local_day(day(33), lab))
    with pytest.raises(BadInput, match="must not be before the calibration's own date"):
        calibrate(lab, "INC-01", day(2), local_day(day(1), lab))
    # The first calibration is dated by its day alone: it counts from that day's first
    # moment at the station, so an hour before it is before it whatever the time of day.
    first_moment = datetime.combine(local_day(day(1), lab), time(), tzinfo=lab.settings.tz)
    with pytest.raises(BadInput, match=r"^at: must be after INC-01's latest calibration"):
        calibrate(lab, "INC-01", first_moment - timedelta(hours=1), local_day(day(10), lab))
    with pytest.raises(BadInput, match=r"^at: must not be in the future"):
        calibrate(lab, "INC-01", utcnow() + timedelta(hours=1))
    second = calibrate(lab, "INC-01", day(3).isoformat(), certificate="C-7")
    assert not second.calibration.calibrated_date_only
    assert second.calibration.certificate == "C-7"
    shown = bench.read(equipment.show_equipment, equipment="INC-01")
    assert [c.calibrated_at for c in shown.calibrations] == [
        day(3),
        first.calibration.calibrated_at,
    ]


def test_a_piece_without_interval_needs_a_due_date(lab: Lab) -> None:
    add(lab, "BSC-01", "biosafety_cabinet")
    with pytest.raises(BadInput, match=r"^due: required: the piece has no calibration interval"):
        calibrate(lab, "BSC-01", day(1))
    recorded = calibrate(lab, "BSC-01", day(1), local_day(day(400), lab).isoformat())
    assert recorded.summary.calibration_state in ("in_calibration", "due_soon")


def test_due_within_days_lists_what_needs_calibrating(bench: Bench, lab: Lab) -> None:
    today = local_day(utcnow(), lab)
    add(lab, "INC-01", "incubator", calibration_interval_days=365)  # never calibrated
    add(lab, "INC-02", "incubator")
    calibrate(lab, "INC-02", day(1), today + timedelta(days=10))  # due in 10 days
    add(lab, "INC-03", "incubator")
    calibrate(lab, "INC-03", day(1), today + timedelta(days=100))
    add(lab, "INC-04", "incubator")
    calibrate(lab, "INC-04", day(1), today - timedelta(days=1))  # overdue
    add(lab, "INC-05", "incubator")
    calibrate(lab, "INC-05", day(1), today + timedelta(days=100), result="fail")
    add(lab, "CEN-01", "centrifuge")  # needs none
    add(lab, "INC-06", "incubator", calibration_interval_days=365)
    change(lab, equipment.retire, "INC-06")
    due = bench.read(equipment.list_equipment, due_within_days=30)
    assert [(p.equipment_id, p.calibration_state, p.due_in_days) for p in due] == [
        ("INC-01", "never_calibrated", None),
        ("INC-02", "due_soon", 10),
        ("INC-04", "overdue", -1),
        ("INC-05", "failed", 100),
    ]
    assert [p.equipment_id for p in bench.read(equipment.list_equipment, due_within_days=9)] == [
        "INC-01",
        "INC-04",
        "INC-05",
    ]
    states = {p.equipment_id: p.calibration_state for p in bench.read(equipment.list_equipment)}
    assert states["INC-03"] == "in_calibration"
    assert states["CEN-01"] == "not_required"
    assert states["INC-06"] is None
