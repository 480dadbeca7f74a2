"""Equipment named by the steps (lims.services.equipment_use): checked at the step's time,
required by kind, recorded with the calibration in force, bound to the trail; and what a
failed calibration reaches.

Issue 15's "done when", on each backend: a passage is refused for an incubator past its due
date and accepted after `equipment calibrate`; a failed calibration opens deviations on the
lots that used it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, RuleViolation
from lims.services import bindings, cultures, equipment, equipment_use, lookup, lots, qc, vials
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.bench import NO_REAGENTS, Bench, day
from tests.support.counts import imported
from tests.support.equipment import add, calibrate, calibrated, change, local_day
from tests.support.lab import Lab
from tests.support.quality import LOT_PASSAGES, RESULTS_AT, Quality
from tests.support.vials import give, scan_of

COUNTER_SERIAL = "VB-20231234"  # tests.support.counts' files give it


def _passages(bench: Bench, culture: str) -> int:
    return len(bench.read(cultures.show_culture, culture=culture).passages)


def _entry(bench: Bench, action: str, entity_id: str) -> dict[str, Any]:
    [entry] = [
        e.new
        for e in bench.scenario.audit_trail()
        if e.action == action and e.entity_id == entity_id
    ]
    return entry  # type: ignore[no-any-return]


def _disagreement(bench: Bench) -> Any:
    verification = bench.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


# --- issue 15, done when: a passage refused past the due date, accepted after calibration ------


def test_a_passage_is_refused_for_an_incubator_past_its_due_date_and_accepted_after_calibration(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-01", "incubator", calibration_interval_days=365)
    calibrate(lab, "INC-01", day(-10), local_day(day(10), lab))
    entries = len(bench.scenario.audit_trail())
    with pytest.raises(RuleViolation) as refused:
        bench.passage(growing, day(14), equipment=["inc-01"])
    assert str(refused.value).startswith(
        f"incubator INC-01 was due for calibration on {local_day(day(10), lab)} (passage log dated "
    )
    assert "lims equipment calibrate INC-01" in str(refused.value)
    assert _passages(bench, growing) == 0
    assert len(bench.scenario.audit_trail()) == entries
    renewed = calibrate(lab, "INC-01", day(12))  # due by its interval
    passage = bench.passage(growing, day(14), equipment=["INC-01"])
    assert _entry(bench, "passage.log", passage.passage_id)["equipment"] == ["INC-01"]
    [use] = bench.read(equipment.show_equipment, equipment="INC-01").uses
    assert (use.action, use.record_type, use.record, use.culture_id, use.lot_id) == (
        "passage.log",
        "passage",
        passage.passage_id,
        growing,
        None,
    )
    assert (use.used_at, use.recorded_by) == (day(14), "tom")
    assert use.calibration == renewed.calibration
    assert _disagreement(bench) is None


def test_out_of_service_retired_failed_and_uncalibrated_pieces_are_refused_in_their_words(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-01", "incubator", calibration_interval_days=365)
    with pytest.raises(RuleViolation, match="incubator INC-01 has never been calibrated"):
        bench.passage(growing, day(14), equipment=["INC-01"])
    calibrate(lab, "INC-01", day(1))
    calibrate(lab, "INC-01", day(2), result="fail")
    with pytest.raises(RuleViolation, match="incubator INC-01 failed its calibration on"):
        bench.passage(growing, day(14), equipment=["INC-01"])
    din = bench.read(cultures.show_culture, culture=growing).summary.din.code
    with pytest.raises(RuleViolation, match=r"first calibrated on .*, after the culture start"):
        bench.culture(din, equipment=["INC-01"])
    add(lab, "INC-02", "incubator")
    bench.run(equipment.take_out_of_service, equipment="INC-02", reason="CO2 alarm")
    with pytest.raises(RuleViolation, match="equipment INC-02 is out of service; no step may"):
        bench.passage(growing, day(14), equipment=["INC-02"])
    change(lab, equipment.retire, "INC-02")
    with pytest.raises(RuleViolation, match="equipment INC-02 is retired; no step may use it"):
        bench.passage(growing, day(14), equipment=["INC-02"])
    with pytest.raises(NotFound, match="no equipment INC-03 in the register"):
        bench.passage(growing, day(14), equipment=["INC-03"])
    with pytest.raises(BadInput, match="INC-01 is named twice"):
        bench.passage(growing, day(14), equipment=["INC-01", "inc-01"])
    assert _passages(bench, growing) == 0


def test_a_step_dated_while_a_piece_was_out_of_service_is_refused_after_its_return(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-02", "incubator")
    bench.passage(growing, day(14), equipment=["INC-02"])  # in service then
    bench.run(equipment.take_out_of_service, equipment="INC-02", reason="CO2 alarm")
    during = utcnow()
    change(lab, equipment.return_to_service, "INC-02")
    with pytest.raises(RuleViolation, match="incubator INC-02 was out of service at the passage"):
        bench.passage(growing, during, equipment=["INC-02"])
    assert _passages(bench, growing) == 1
    bench.passage(growing, utcnow(), equipment=["INC-02"])  # back in service since


def test_a_calibration_dated_before_a_step_must_cover_it(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-01", "incubator", calibration_interval_days=365)
    calibrate(lab, "INC-01", day(1), local_day(day(60), lab))
    passage = bench.passage(growing, day(14), equipment=["INC-01"])
    with pytest.raises(RuleViolation) as refused:
        calibrate(lab, "INC-01", day(10), local_day(day(11), lab))
    assert f"would put the passage.log of passage {passage.passage_id} dated" in str(refused.value)
    assert len(bench.read(equipment.show_equipment, equipment="INC-01").calibrations) == 1
    calibrate(lab, "INC-01", day(10), local_day(day(14), lab))  # the due date is inclusive
    assert calibrate(lab, "INC-01", day(12), result="fail").deviations  # reviewed, not refused


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE equipment SET status = 'retired'",
        "UPDATE equipment SET kind = 'other'",
    ],
)
def test_a_required_kind_hidden_by_hand_refuses_the_step(
    bench: Bench, lab: Lab, growing: str, statement: str
) -> None:
    add(lab, "BSC-01", "biosafety_cabinet")
    bench.sql(statement)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}equipment "):
        bench.passage(growing, day(14))
    assert _passages(bench, growing) == 0


def test_a_failed_calibration_is_refused_while_a_use_was_deleted_by_hand(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-01", "incubator", calibration_interval_days=365)
    calibrate(lab, "INC-01", day(1), local_day(day(60), lab))
    bench.passage(growing, day(14), equipment=["INC-01"])
    bench.sql("DELETE FROM equipment_uses")  # else the failure would open no deviation
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}equipment_uses "):
        calibrate(lab, "INC-01", day(15), result="fail")
    assert len(bench.read(equipment.show_equipment, equipment="INC-01").calibrations) == 1


def test_a_step_must_name_each_required_kind_the_register_holds(
    bench: Bench, lab: Lab, growing: str
) -> None:
    bench.passage(growing, day(14))  # nothing registered: nothing required
    add(lab, "BSC-02", "biosafety_cabinet")
    add(lab, "BSC-01", "biosafety_cabinet")
    with pytest.raises(BadInput) as refused:
        bench.passage(growing, day(20))
    assert str(refused.value) == (
        "equipment: passage log needs a biosafety_cabinet: name it with --equipment ID "
        "(in the register: BSC-01, BSC-02)"
    )
    add(lab, "CEN-01", "centrifuge")  # no step requires a centrifuge by default
    with pytest.raises(BadInput, match="needs a biosafety_cabinet: "):
        bench.passage(growing, day(20), equipment=["CEN-01"])
    bench.passage(growing, day(20), equipment=["BSC-02", "CEN-01"])
    for code in ("BSC-01", "BSC-02"):
        change(lab, equipment.retire, code)
    bench.passage(growing, day(25))  # only retired ones: not required
    assert _passages(bench, growing) == 3


def test_the_site_setting_says_what_each_step_requires(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "BSC-01", "biosafety_cabinet")
    add(lab, "CC-01", "cell_counter")
    lab.set_site(equipment={"required.passage_log": [], "required.qc_record": ["cell_counter"]})
    bench.passage(growing, day(14))
    lot = bench.scenario.formulate(growing, equipment=["BSC-01"], **NO_REAGENTS)
    code = lot.summary.lot_id
    with pytest.raises(BadInput, match=r"qc record needs a cell_counter: .*CC-01"):
        bench.run(qc.record_result, lot=code, test="viability", value="92", at=day(28))
    bench.run(
        qc.record_result,
        lot=code,
        test="viability",
        value="92",
        at=day(28),
        equipment=["CC-01"],
    )
    [use] = bench.read(equipment.show_equipment, equipment="CC-01").uses
    assert (use.action, use.record_type, use.lot_id, use.culture_id) == (
        "qc.record",
        "qc_result",
        code,
        growing,
    )
    assert _disagreement(bench) is None


def test_every_step_that_names_equipment_records_its_use(
    bench: Bench, lab: Lab, growing: str
) -> None:
    calibrated(lab, "BSC-01", "biosafety_cabinet", day(-1), day(60))
    add(lab, "INC-01", "incubator")
    din = bench.read(cultures.show_culture, culture=growing).summary.din.code
    started = bench.culture(din, equipment=["BSC-01", "INC-01"])
    bench.passage(growing, day(14), harvested=8_000_000, equipment=["BSC-01", "INC-01"])
    split = bench.run(
        cultures.split_culture,
        culture=growing,
        seeded=1_000_000,
        vessels=1,
        area_cm2=175,
        at=day(15),
        equipment=["BSC-01", "INC-01"],
        **NO_REAGENTS,
    )
    lot = bench.scenario.formulate(growing, at=day(26), equipment=["BSC-01"], **NO_REAGENTS)
    shown = bench.read(equipment.show_equipment, equipment="BSC-01")
    assert [(use.action, use.record) for use in reversed(shown.uses)] == [
        ("culture.start", started.summary.culture_id),
        ("passage.log", f"{growing}-P1"),
        ("culture.split", split.summary.culture_id),
        ("lot.formulate", lot.summary.lot_id),
    ]
    assert all(use.calibration is not None for use in shown.uses)
    [*_, first] = bench.read(equipment.show_equipment, equipment="INC-01").uses
    assert first.calibration is None  # an incubator with no calibration needs none
    assert _entry(bench, "culture.split", split.summary.culture_id)["equipment"] == [
        "BSC-01",
        "INC-01",
    ]
    assert "equipment" not in _entry(bench, "culture.start", growing)  # named none
    assert _disagreement(bench) is None


# --- counts and their cell counters ---------------------------------------------------------


def test_an_import_uses_the_counter_its_serial_names_at_the_analysis_time(
    bench: Bench, lab: Lab
) -> None:
    add(lab, "CC-01", "cell_counter", serial=COUNTER_SERIAL.lower(), calibration_interval_days=90)
    calibrate(lab, "CC-01", day(1), local_day(day(10), lab))
    files = bench.sql("SELECT count(*) FROM cell_counts").scalar_one()
    with pytest.raises(RuleViolation, match="cell counter CC-01 was due for calibration on"):
        imported(bench.scenario, 1e6, 95, at=day(14))
    assert bench.sql("SELECT count(*) FROM cell_counts").scalar_one() == files
    code = imported(bench.scenario, 1e6, 95, at=day(9))
    [use] = bench.read(equipment.show_equipment, equipment="CC-01").uses
    assert (use.action, use.record_type, use.record, use.used_at) == (
        "count.import",
        "count",
        code,
        day(9),
    )
    assert _entry(bench, "count.import", code)["equipment"] == ["CC-01"]
    imported(bench.scenario, 1e6, 95, at=day(14), serial="another counter")  # not registered
    assert _disagreement(bench) is None


def test_a_count_named_equipment_and_the_required_counter(bench: Bench, lab: Lab) -> None:
    add(lab, "CC-01", "cell_counter")
    add(lab, "BSC-01", "biosafety_cabinet")
    lab.set_site(equipment={"required.count_import": ["cell_counter", "biosafety_cabinet"]})
    with pytest.raises(BadInput, match="count import needs a cell_counter and a biosafety_cabinet"):
        imported(bench.scenario, 1e6, 95, at=day(9), serial="unregistered")
    change(lab, equipment.retire, "CC-01")
    add(lab, "CC-02", "cell_counter", serial=COUNTER_SERIAL)
    code = imported(bench.scenario, 1e6, 95, at=day(9), equipment=("BSC-01",))
    assert _entry(bench, "count.import", code)["equipment"] == ["BSC-01", "CC-02"]


# --- a passage moved in time ----------------------------------------------------------------


def test_a_passage_moved_in_time_is_checked_and_its_uses_follow(
    bench: Bench, lab: Lab, growing: str
) -> None:
    first = calibrate_incubator(lab, day(1), day(16))
    passage = bench.passage(growing, day(14), equipment=["INC-01"])
    code = passage.passage_id
    with pytest.raises(RuleViolation, match="INC-01 was due for calibration on"):
        bench.run(cultures.correct_passage, passage=code, reason="clock", at=day(17))
    second = calibrate(lab, "INC-01", day(16.5), local_day(day(60), lab))
    bench.run(equipment.take_out_of_service, equipment="INC-01", reason="moved rooms")
    bench.run(cultures.correct_passage, passage=code, reason="clock was wrong", at=day(17))
    [use] = bench.read(equipment.show_equipment, equipment="INC-01").uses
    assert use.used_at == day(17)
    assert use.calibration == second.calibration
    assert use.calibration != first
    assert _disagreement(bench) is None


def test_a_passage_moved_into_a_time_its_piece_was_out_of_service_is_refused(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "INC-02", "incubator")
    code = bench.passage(growing, day(14), equipment=["INC-02"]).passage_id
    bench.run(equipment.take_out_of_service, equipment="INC-02", reason="CO2 alarm")
    during = utcnow()
    change(lab, equipment.return_to_service, "INC-02")
    with pytest.raises(RuleViolation, match="incubator INC-02 was out of service at the passage"):
        bench.run(cultures.correct_passage, passage=code, reason="clock", at=during)
    bench.run(equipment.take_out_of_service, equipment="INC-02", reason="CO2 alarm again")
    with pytest.raises(RuleViolation, match="incubator INC-02 was out of service at the passage"):
        bench.run(cultures.correct_passage, passage=code, reason="clock", at=utcnow())
    [use] = bench.read(equipment.show_equipment, equipment="INC-02").uses
    assert use.used_at == day(14)


def calibrate_incubator(lab: Lab, at: Any, due: Any) -> Any:
    add(lab, "INC-01", "incubator")
    return calibrate(lab, "INC-01", at, local_day(due, lab)).calibration


# --- a failed calibration -------------------------------------------------------------------


def _lot_of(quality: Quality, patient: str, start: list[str], passage: list[str]) -> str:
    """A lot for a new patient's culture, started with START and passaged with PASSAGE."""
    culture = quality.scenario.primary_culture(
        patient, equipment=start, **NO_REAGENTS
    ).summary.culture_id
    for values in LOT_PASSAGES:
        quality.passage(culture, equipment=passage, **values)
    return quality.formulate(culture).summary.lot_id


def test_a_failed_calibration_opens_a_deviation_on_each_lot_that_used_it(
    quality: Quality, lab: Lab
) -> None:
    for code in ("INC-01", "INC-02"):
        calibrated(lab, code, "incubator", day(-20), day(100))
    touched = _lot_of(quality, "PT-0002", ["INC-01"], ["INC-02"])
    untouched = _lot_of(quality, "PT-0003", ["INC-02"], ["INC-02"])
    growing = quality.scenario.primary_culture(
        "PT-0004", equipment=["INC-01"], **NO_REAGENTS
    ).summary.culture_id
    quality.scenario.record_qc(touched, at=RESULTS_AT)
    quality.scenario.release(touched, signer="rita")
    lab.login("tom")
    vial = f"{touched}-V01"
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient="PT-0002")

    failed = calibrate(lab, "INC-01", day(27), local_day(day(100), lab), result="fail")
    assert failed.last_pass_at == day(-20)
    assert sorted(use.record for use in failed.uses_since_last_pass) == sorted(
        [f"{touched.removesuffix('-L1')}-C1", growing]
    )
    assert [(d.subject, d.kind, d.status) for d in failed.deviations] == [
        (touched, "equipment", "open"),
        (growing, "equipment", "open"),
    ]
    assert "incubator INC-01 failed its calibration on" in failed.deviations[0].description
    assert not [d for d in quality.read(lots.show_lot, lot=untouched).deviations]
    # The released lot is held while the deviation is open: its vials stay where they are.
    second = f"{touched}-V02"
    with pytest.raises(RuleViolation, match=f"lot {touched} is on hold: deviation"):
        quality.run(vials.issue, vial=second, scan=scan_of(quality, second), patient="PT-0002")
    assert _disagreement(quality) is None


def test_a_failure_reaches_what_was_split_after_the_use_and_skips_what_was_given(
    quality: Quality, lab: Lab
) -> None:
    calibrated(lab, "INC-01", "incubator", day(-20), day(100))
    add(lab, "INC-02", "incubator")
    culture = quality.scenario.primary_culture(
        "PT-0002", equipment=["INC-02"], **NO_REAGENTS
    ).summary.culture_id
    quality.passage(culture, day(14), harvested=8_000_000, equipment=["INC-02"])
    before = _split(quality, culture, day(15))
    quality.passage(culture, day(20), harvested=8_000_000, equipment=["INC-01"])  # the use: P2
    after = _split(quality, culture, day(21))
    quality.passage(
        after, day(24), harvested=2_000_000, seeded=1_000_000, vessels=1, area_cm2=175,
        equipment=["INC-02"],
    )  # fmt: skip
    grandchild = _split(quality, after, day(24.5))
    given = quality.formulate(culture, vials=1).summary.lot_id
    quality.scenario.record_qc(given, at=RESULTS_AT)
    quality.scenario.release(given, signer="rita")
    give(quality, f"{given}-V01")  # every vial of the lot administered: nothing to hold back

    failed = calibrate(lab, "INC-01", day(27), local_day(day(100), lab), result="fail")
    assert [use.record for use in failed.uses_since_last_pass] == [f"{culture}-P2"]
    assert sorted(d.subject for d in failed.deviations) == sorted([after, grandchild])
    assert before not in {d.subject for d in failed.deviations}


def _split(quality: Quality, culture: str, at: Any) -> str:
    return quality.run(  # type: ignore[no-any-return]
        cultures.split_culture,
        culture=culture,
        seeded=1_000_000,
        vessels=1,
        area_cm2=175,
        at=at,
        equipment=["INC-02"],
        **NO_REAGENTS,
    ).summary.culture_id


def test_a_counter_that_fails_reaches_the_step_that_took_its_count(
    bench: Bench, lab: Lab, growing: str
) -> None:
    add(lab, "CC-01", "cell_counter", serial=COUNTER_SERIAL)
    calibrate(lab, "CC-01", day(1), local_day(day(60), lab))
    code = imported(bench.scenario, 1e6, 95, at=day(14) - timedelta(minutes=20))
    bench.passage(growing, day(14), harvested=None, viability=None, count=code, suspension_ml=4)
    failed = calibrate(lab, "CC-01", day(20), local_day(day(60), lab), result="fail")
    [use] = failed.uses_since_last_pass
    assert (use.record, use.count_taken_by) == (code, f"passage {growing}-P1")
    assert [(d.subject, d.kind) for d in failed.deviations] == [(growing, "equipment")]


# --- bound to the trail ---------------------------------------------------------------------


# Each row edited by hand (table, column, the edit): audit verify names it, and, for the
# piece and its calibrations, a step naming the piece refuses.
TAMPERED = [
    ("equipment", "status", "'retired'"),
    ("equipment", "calibration_interval_days", "7"),
    ("equipment", "serial", "'X'"),
    ("calibrations", "result", "'fail'"),
    ("calibrations", "due_on", "'2099-01-01'"),
    ("calibrations", "due_at", "recorded_at"),
    ("calibrations", "calibrated_at", "recorded_at"),
    ("equipment_uses", "calibration_id", "NULL"),
    ("equipment_uses", "used_at", "recorded_at"),
    ("equipment_uses", "action", "'passage.correct'"),
    ("equipment_uses", "lot_id", "(SELECT max(id) FROM lots)"),
]


def test_rows_edited_by_hand_disagree_with_the_trail_and_stop_the_steps_relying_on_them(
    quality: Quality, lab: Lab
) -> None:
    calibrated(lab, "INC-01", "incubator", day(-1), day(60), serial="42")
    growing = quality.scenario.primary_culture(
        "PT-0002", equipment=["INC-01"], **NO_REAGENTS
    ).summary.culture_id
    quality.passage(growing, day(14), equipment=["INC-01"])
    assert _disagreement(quality) is None
    for table, column, edit in TAMPERED:
        originals = quality.sql(f"SELECT id, {column} FROM {table}").all()
        quality.sql(f"UPDATE {table} SET {column} = {edit}")
        found = _disagreement(quality)
        assert (found.table, found.column) == (table, column), (table, column, edit)
        if table != "equipment_uses":
            with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}{table} "):
                quality.passage(growing, day(20), equipment=["INC-01"])
        for row_id, value in originals:
            quality.sql(
                f"UPDATE {table} SET {column} = :value WHERE id = :id", value=value, id=row_id
            )
        assert _disagreement(quality) is None, (table, column)


def test_a_use_moved_to_another_piece_by_hand_stops_a_failed_calibration(
    bench: Bench, lab: Lab, growing: str
) -> None:
    calibrated(lab, "INC-01", "incubator", day(1), day(60))
    calibrated(lab, "INC-02", "incubator", day(1), day(60))
    bench.passage(growing, day(14), equipment=["INC-01"])
    bench.sql(
        "UPDATE equipment_uses SET equipment_id = (SELECT id FROM equipment WHERE code = 'INC-02')"
    )
    found = _disagreement(bench)
    assert (found.table, found.column) == ("equipment_uses", "equipment_id")
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}equipment_uses"):
        calibrate(lab, "INC-02", day(20), local_day(day(60), lab), result="fail")


# --- the batch record's equipment ------------------------------------------------------------


def test_a_lots_equipment_is_every_step_of_its_lineage(quality: Quality, lab: Lab) -> None:
    calibrated(lab, "BSC-01", "biosafety_cabinet", day(-1), day(100), serial="BSC-9")
    add(lab, "INC-01", "incubator")
    add(lab, "CC-01", "cell_counter", serial=COUNTER_SERIAL)
    both = ["BSC-01", "INC-01"]
    parent = quality.scenario.primary_culture(
        "PT-0002", equipment=both, **NO_REAGENTS
    ).summary.culture_id
    quality.passage(parent, day(14), harvested=8_000_000, equipment=both)
    child = quality.run(
        cultures.split_culture,
        culture=parent,
        seeded=1_000_000,
        vessels=1,
        area_cm2=175,
        at=day(15),
        equipment=both,
        **NO_REAGENTS,
    ).summary.culture_id
    quality.passage(parent, day(20), equipment=both)  # after the split: not the child's
    count = imported(quality.scenario, 1e6, 95, at=day(21))
    quality.passage(
        child, day(21), harvested=None, viability=None, count=count, suspension_ml=4,
        equipment=both,
    )  # fmt: skip
    lot = quality.formulate(child, equipment=["BSC-01"]).summary.lot_id
    quality.run(
        qc.record_result, lot=lot, test="viability", value="93", at=RESULTS_AT, equipment=["CC-01"]
    )
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        found = equipment_use.equipment_of_lot(uow.session, lookup.lot(uow.session, lot))
    steps = [(use.equipment_id, use.action, use.record) for use in found]
    assert steps == [
        ("BSC-01", "culture.start", parent),
        ("INC-01", "culture.start", parent),
        ("BSC-01", "passage.log", f"{parent}-P1"),
        ("INC-01", "passage.log", f"{parent}-P1"),
        ("BSC-01", "culture.split", child),
        ("INC-01", "culture.split", child),
        ("CC-01", "count.import", count),
        ("BSC-01", "passage.log", f"{child}-P2"),
        ("INC-01", "passage.log", f"{child}-P2"),
        ("BSC-01", "lot.formulate", lot),
        ("CC-01", "qc.record", found[-1].record),
    ]
    bsc = found[0]
    assert (bsc.kind, bsc.name, bsc.serial) == (
        "biosafety_cabinet",
        "biosafety_cabinet BSC-01",
        "BSC-9",
    )
    assert bsc.calibration is not None
    assert found[6].count_taken_by == f"passage {child}-P2"
