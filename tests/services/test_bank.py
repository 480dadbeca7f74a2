"""The cell bank through the services: freezing a harvest into a box, the harvest shared
with the parent and its split children, thawing into a child culture that carries the
lineage on, discarding, and the vials' rows bound to the trail.

The lab is tests.support.quality.Quality, with box LN2-1/rack-3/box-07 (9 x 9): culture C1
passaged twice (P2 harvested 3.2x10^7 cells on day 20 and reseeded 2x10^7 of them, at
cumulative PD 3) and formulated into lot L1, so 1.2x10^7 cells of P2 are left.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.services import (
    bank,
    cultures,
    equipment_use,
    lookup,
    lots,
    patients,
    reports,
    samples,
)
from lims.uow import unit_of_work
from lims.views import to_json
from lims.views.bank import FreezeView
from lims.views.bench import CultureDetail
from tests.support.bench import day
from tests.support.equipment import calibrated
from tests.support.lab import Lab
from tests.support.quality import LOT, Quality
from tests.support.storage import BOX, add_box, add_location

FROZEN_AT = day(20) + timedelta(hours=2)
FREEZE = {"cells_per_vial": 5_000_000, "vials": 2, "into": f"{BOX}:A1", "at": FROZEN_AT}
THAW = {"viability": 92, "seeded": 4_000_000, "vessels": 1, "area_cm2": 175, "at": day(27)}


@pytest.fixture
def banked(lab: Lab) -> Quality:
    def build() -> Quality:
        quality = Quality(lab)
        add_box(lab)
        return quality

    return lab.built("banked", build)


def _freeze(quality: Quality, **values: Any) -> FreezeView:
    return quality.run(bank.freeze, culture=quality.culture_id, **{**FREEZE, **values})


def _thaw(quality: Quality, vial: str, **values: Any) -> CultureDetail:
    return quality.run(bank.thaw, bank_vial=vial, **{**THAW, **values})


def _clean(quality: Quality) -> None:
    verification = quality.scenario.verify_trail()
    assert verification.first_bad_seq is None
    assert verification.disagreement is None, verification.disagreement


def _vial(quality: Quality, number: int) -> str:
    return f"{quality.culture_id}-B{number:02d}"


# --- freezing --------------------------------------------------------------------------------


def test_a_freeze_makes_numbered_vials_in_positions_from_the_one_given(banked: Quality) -> None:
    frozen = _freeze(banked, medium="CryoStor CS10")
    first, second = _vial(banked, 1), _vial(banked, 2)
    assert [v.bank_vial_id for v in frozen.bank_vials] == [first, second]
    assert [v.position for v in frozen.bank_vials] == [f"{BOX}:A1", f"{BOX}:A2"]
    assert (frozen.passage_id, frozen.cells, frozen.left_in_harvest) == (
        f"{banked.culture_id}-P2",
        10_000_000,
        2_000_000,
    )
    shown = banked.read(bank.show_bank_vial, bank_vial=first)
    assert (shown.status, shown.cells, shown.medium, shown.recorded_by) == (
        "stored",
        5_000_000,
        "CryoStor CS10",
        "tom",
    )
    assert (shown.passage_number, shown.cumulative_population_doublings) == (2, pytest.approx(3.0))
    assert shown.frozen_at == FROZEN_AT
    assert to_json(shown)["frozen_by"] == "tom"
    actions = banked.audit_actions()
    assert actions[-3:] == ["culture.freeze", "bank_vial.freeze", "bank_vial.freeze"]
    _clean(banked)


def test_later_vials_are_numbered_on_and_take_the_next_free_positions(banked: Quality) -> None:
    _freeze(banked, vials=1, into=f"{BOX}:A2")
    again = _freeze(banked, vials=2, into=BOX, cells_per_vial=1_000_000)
    assert [(v.bank_vial_id, v.position) for v in again.bank_vials] == [
        (_vial(banked, 2), f"{BOX}:A1"),
        (_vial(banked, 3), f"{BOX}:A3"),
    ]
    assert again.left_in_harvest == 5_000_000


def test_positions_run_on_in_row_major_order(banked: Quality) -> None:
    frozen = _freeze(banked, vials=3, cells_per_vial=1_000_000, into=f"{BOX}:a8")
    assert [v.position for v in frozen.bank_vials] == [f"{BOX}:A8", f"{BOX}:A9", f"{BOX}:B1"]


def test_freezing_more_than_the_harvest_left_is_refused_naming_the_numbers(
    banked: Quality,
) -> None:
    before = banked.audit_actions()
    with pytest.raises(RuleViolation) as refused:
        _freeze(banked, vials=3)
    message = str(refused.value)
    for number in ("15,000,000", "12,000,000", "32,000,000", "20,000,000"):
        assert number in message, message
    assert banked.audit_actions() == before
    assert banked.read(bank.list_bank_vials, include_ended=True) == []


def test_split_children_and_bank_vials_share_one_harvest(banked: Quality) -> None:
    """What the parent reseeded, split off and froze cannot exceed what it harvested."""
    banked.run(
        cultures.split_culture,
        culture=banked.culture_id,
        seeded=4_000_000,
        vessels=1,
        area_cm2=175,
        at=day(20) + timedelta(hours=1),
    )
    with pytest.raises(RuleViolation, match="4,000,000 into"):
        _freeze(banked, vials=9, cells_per_vial=1_000_000)
    _freeze(banked, vials=1, cells_per_vial=6_000_000)
    with pytest.raises(BadInput) as split:
        banked.run(
            cultures.split_culture,
            culture=banked.culture_id,
            seeded=2_000_001,
            vessels=1,
            area_cm2=175,
            at=day(20) + timedelta(hours=3),
        )
    assert split.value.field == "seeded"
    assert "6,000,000 frozen in 1 bank vial" in str(split.value)


def test_a_correction_keeps_the_harvest_covering_its_bank_vials(banked: Quality) -> None:
    _freeze(banked)
    passage = f"{banked.culture_id}-P2"
    with pytest.raises(BadInput) as fewer:
        banked.run(cultures.correct_passage, passage=passage, harvested=29_999_999, reason="x")
    assert fewer.value.field == "harvested"
    assert "frozen in 2 bank vials" in str(fewer.value)
    with pytest.raises(BadInput) as later:
        banked.run(cultures.correct_passage, passage=passage, at=FROZEN_AT, reason="x")
    assert later.value.field == "at"
    assert _vial(banked, 1) in str(later.value)


@pytest.mark.parametrize(
    ("into", "error", "words"),
    [
        (f"{BOX}:A1", RuleViolation, "A1 already holds"),  # taken by the first freeze
        (f"{BOX}:I9", RuleViolation, "1 position(s) from I9"),
        (f"{BOX}:J1", BadInput, "A1-I9"),
        (f"{BOX}:1A", BadInput, "such as A1"),
        ("LN2-1/rack-3", BadInput, "must be a box"),
        ("LN2-1/rack-3/box-99", NotFound, "box-99"),
    ],
)
def test_where_the_vials_go_is_checked(
    banked: Quality, into: str, error: type[Exception], words: str
) -> None:
    _freeze(banked, vials=1, cells_per_vial=1_000_000)
    before = banked.audit_actions()
    with pytest.raises(error) as refused:
        _freeze(banked, into=into, cells_per_vial=1_000_000)
    assert words in str(refused.value)
    assert banked.audit_actions() == before


def test_a_freeze_needs_a_harvest_and_follows_it(banked: Quality) -> None:
    with pytest.raises(BadInput) as early:
        _freeze(banked, at=day(20))
    assert early.value.field == "at"
    din = banked.aspirate().din.code
    fresh = banked.culture(din, at=day(2)).summary.culture_id
    with pytest.raises(RuleViolation, match="no passage yet"):
        banked.run(bank.freeze, **{**FREEZE, "culture": fresh, "at": day(3)})


def test_bench_workers_bank_cells_and_anyone_may_read_the_bank(banked: Quality) -> None:
    banked.lab.login("quinn")  # QA records bench work too
    _freeze(banked)
    banked.lab.login("admin")
    for service, values in (
        (bank.freeze, {"culture": banked.culture_id, **FREEZE, "into": BOX}),
        (bank.thaw, {"bank_vial": _vial(banked, 1), **THAW}),
        (bank.discard, {"bank_vial": _vial(banked, 2), "reason": "cracked"}),
    ):
        with pytest.raises(NotPermitted):
            banked.run(service, **values)
    assert len(banked.read(bank.list_bank_vials)) == 2
    assert banked.read(bank.show_bank_vial, bank_vial=_vial(banked, 1)).recorded_by == "quinn"


def test_no_cells_of_a_withdrawn_patient_are_frozen_or_thawed(banked: Quality) -> None:
    _freeze(banked, vials=1)
    banked.run(patients.withdraw_patient, code="PT-0001", reason="withdrawn in writing")
    with pytest.raises(RuleViolation, match="withdrew consent"):
        _freeze(banked, vials=1, into=BOX)
    with pytest.raises(RuleViolation, match="withdrew consent"):
        _thaw(banked, _vial(banked, 1))
    # Disposal stays possible: the vial must be accounted for to the end.
    discarded = banked.run(bank.discard, bank_vial=_vial(banked, 1), reason="consent withdrawn")
    assert discarded.status == "discarded"


def test_a_late_freeze_needs_a_reason_and_marks_each_vial(banked: Quality) -> None:
    banked.lab.set_site(records={"late_entry_hours": 24})
    with pytest.raises(BadInput) as refused:
        _freeze(banked)
    assert refused.value.field == "late-reason"
    frozen = _freeze(banked, late_reason="paper batch sheet typed up")
    assert all(v.late_entry for v in frozen.bank_vials)
    assert frozen.bank_vials[0].late_entries[0].reason == "paper batch sheet typed up"
    _clean(banked)


# --- thawing ---------------------------------------------------------------------------------


def test_a_thawed_vial_starts_a_child_that_carries_the_lineage_on(banked: Quality) -> None:
    """Done when: cells frozen into a box, thawed into a child culture with the right passage
    number and cumulative PD."""
    _freeze(banked)
    vial = _vial(banked, 1)
    child = _thaw(banked, vial)
    code = child.summary.culture_id
    assert code.endswith("-C2")
    assert (child.summary.kind, child.parent, child.source_passage) == (
        "thawed",
        banked.culture_id,
        f"{banked.culture_id}-P2",
    )
    assert (child.summary.passages, child.summary.cells_plated) == (2, 4_000_000)
    assert child.summary.cumulative_population_doublings == pytest.approx(3.0)
    assert child.thawed_from is not None
    assert (child.thawed_from.bank_vial_id, child.thawed_from.passage_number) == (vial, 2)
    assert child.thawed_from.thaw_viability == 92
    [ancestor] = child.lineage
    assert (ancestor.culture_id, ancestor.split_at, ancestor.bank_vial) == (
        banked.culture_id,
        f"{banked.culture_id}-P2",
        vial,
    )
    first = banked.passage(code, day(28.5), harvested=16_000_000, seeded=4_000_000)
    assert first.passage_id == f"{code}-P3"
    assert first.cumulative_population_doublings == pytest.approx(5.0)  # 3 + log2(16/4)
    lot = banked.formulate(code, **{**LOT, "harvested": 40_000_000, "vials": 1, "at": day(29)})
    assert lot.summary.final_passage == 3

    thawed = banked.read(bank.show_bank_vial, bank_vial=vial)
    assert (thawed.status, thawed.position, thawed.thawed_into) == ("thawed", None, code)
    assert thawed.ended_at == THAW["at"]
    parent = banked.read(cultures.show_culture, culture=banked.culture_id)
    assert parent.children == [code]
    lot_json = to_json(banked.read(lots.show_lot, lot=lot.summary.lot_id))
    assert lot_json["culture"]["thawed_from"]["bank_vial_id"] == vial
    _clean(banked)


def test_a_thawed_childs_cells_are_not_drawn_from_the_harvest_again(banked: Quality) -> None:
    """They were drawn when frozen: 2x10^6 of P2's harvest are left before and after."""
    _freeze(banked)
    _thaw(banked, _vial(banked, 1), at=day(20) + timedelta(hours=3))
    banked.run(
        cultures.split_culture,
        culture=banked.culture_id,
        seeded=2_000_000,
        vessels=1,
        area_cm2=175,
        at=day(20) + timedelta(hours=4),
    )
    banked.run(
        cultures.correct_passage,
        passage=f"{banked.culture_id}-P2",
        harvested=32_000_000,
        viability=94,
        reason="viability misread",
    )


def test_correcting_the_frozen_harvest_recomputes_the_thawed_child(banked: Quality) -> None:
    _freeze(banked)
    child = _thaw(banked, _vial(banked, 1)).summary.culture_id
    banked.passage(child, day(28.5), harvested=16_000_000, seeded=4_000_000)
    corrected = banked.run(
        cultures.correct_passage,
        passage=f"{banked.culture_id}-P2",
        harvested=64_000_000,
        reason="count sheet misread",
    )
    assert f"{child}-P3" in corrected.recomputed
    shown = banked.read(cultures.show_culture, culture=child)
    assert shown.summary.cumulative_population_doublings == pytest.approx(6.0)  # 4 + 2


def test_a_thaw_is_refused_beyond_the_vial_before_its_freezing_or_twice(banked: Quality) -> None:
    _freeze(banked)
    vial = _vial(banked, 1)
    before = banked.audit_actions()
    with pytest.raises(RuleViolation, match="holds 5,000,000 cells"):
        _thaw(banked, vial, seeded=5_000_001)
    with pytest.raises(BadInput) as early:
        _thaw(banked, vial, at=FROZEN_AT)
    assert early.value.field == "at"
    assert banked.audit_actions() == before
    _thaw(banked, vial)
    with pytest.raises(RuleViolation, match="only a stored vial can be thawed"):
        _thaw(banked, vial, at=day(28))
    with pytest.raises(NotFound):
        _thaw(banked, _vial(banked, 9))


def test_a_low_viability_after_thawing_opens_a_deviation_on_the_child(banked: Quality) -> None:
    _freeze(banked)
    child = _thaw(banked, _vial(banked, 1), viability=61.5)
    [deviation] = child.deviations
    assert deviation.kind == "low_viability"
    assert "61.5 %" in deviation.description
    assert _vial(banked, 1) in deviation.description
    assert child.summary.open_deviations == 1
    _clean(banked)


def test_a_thawed_position_is_free_again(banked: Quality) -> None:
    _freeze(banked, vials=1)
    _thaw(banked, _vial(banked, 1))
    again = _freeze(banked, vials=1, at=day(27) + timedelta(hours=1))
    assert again.bank_vials[0].position == f"{BOX}:A1"


# --- discarding, listing ---------------------------------------------------------------------


def test_a_discarded_vial_leaves_its_position_and_the_list(banked: Quality) -> None:
    _freeze(banked)
    first, second = _vial(banked, 1), _vial(banked, 2)
    discarded = banked.run(bank.discard, bank_vial=first, reason="cracked in the tank")
    assert (discarded.status, discarded.position, discarded.end_reason) == (
        "discarded",
        None,
        "cracked in the tank",
    )
    assert discarded.ended_by == "tom"
    stored = banked.read(bank.list_bank_vials)
    assert [v.bank_vial_id for v in stored] == [second]
    every = banked.read(bank.list_bank_vials, include_ended=True, culture=banked.culture_id)
    assert [v.bank_vial_id for v in every] == [first, second]
    with pytest.raises(RuleViolation, match="no longer in storage"):
        banked.run(bank.discard, bank_vial=first, reason="again")
    _thaw(banked, second)
    with pytest.raises(RuleViolation, match="is thawed"):
        banked.run(bank.discard, bank_vial=second, reason="x")
    refill = _freeze(banked, vials=1, cells_per_vial=1_000_000, into=f"{BOX}:A1", at=day(28))
    assert refill.bank_vials[0].bank_vial_id == _vial(banked, 3)
    _clean(banked)


def test_listing_by_culture_needs_a_known_culture(banked: Quality) -> None:
    with pytest.raises(NotFound):
        banked.read(bank.list_bank_vials, culture=f"{banked.culture_id[:-1]}9")
    with pytest.raises(BadInput):
        banked.read(bank.show_bank_vial, bank_vial="B01")


# --- bound to the trail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        ("UPDATE bank_vials SET cells = cells * 10", "cells"),
        ("UPDATE bank_vials SET status = 'thawed'", "status"),
        ("UPDATE bank_vials SET frozen_at = (SELECT MIN(harvested_at) FROM passages)", "frozen_at"),
        ("UPDATE storage_positions SET grid_column = grid_column + 4", "storage_positions"),
        ("DELETE FROM storage_positions", "storage_positions"),
    ],
)
def test_a_vial_changed_by_hand_is_reported_and_refused(
    banked: Quality, statement: str, column: str
) -> None:
    _freeze(banked, vials=1)
    banked.sql(statement)
    disagreement = banked.scenario.verify_trail().disagreement
    assert (disagreement.table, disagreement.column) == ("bank_vials", column)
    with pytest.raises(RuleViolation, match="disagrees with the audit trail"):
        _thaw(banked, _vial(banked, 1))
    with pytest.raises(RuleViolation, match="disagrees with the audit trail"):
        banked.run(bank.discard, bank_vial=_vial(banked, 1), reason="x")


@pytest.mark.parametrize(
    ("statement", "cells", "into"),
    [
        # The harvest would seem to have more cells left...
        ("UPDATE bank_vials SET cells = 1", 5_000_000, f"{BOX}:C1"),
        # ...or the box more positions.
        (f"UPDATE storage_locations SET grid_rows = 26 WHERE path = '{BOX}'", 1, f"{BOX}:Z1"),
    ],
)
def test_a_freeze_is_refused_while_what_it_relies_on_was_changed_by_hand(
    banked: Quality, statement: str, cells: int, into: str
) -> None:
    _freeze(banked, vials=2)  # 10^7 of the 1.2x10^7 cells left
    banked.sql(statement)
    before = banked.lab.audit_count()
    with pytest.raises(RuleViolation, match="disagrees with the audit trail"):
        _freeze(banked, vials=1, cells_per_vial=cells, into=into)
    assert banked.lab.audit_count() == before


def test_a_thawed_vial_and_its_child_are_bound(banked: Quality) -> None:
    _freeze(banked)
    child = _thaw(banked, _vial(banked, 1)).summary.culture_id
    vial = _vial(banked, 1)
    banked.sql(
        "UPDATE bank_vials SET thawed_into_id = NULL, status = 'stored' WHERE code = :vial",
        vial=vial,
    )
    assert banked.scenario.verify_trail().disagreement.table == "bank_vials"
    assert banked.read(cultures.show_culture, culture=child).thawed_from is None
    banked.sql(
        "UPDATE bank_vials SET status = 'thawed', thawed_into_id = "
        "(SELECT id FROM cultures WHERE code = :code) WHERE code = :vial",
        code=child,
        vial=vial,
    )
    _clean(banked)
    banked.sql("UPDATE cultures SET cells_plated = 5000000 WHERE code = :code", code=child)
    assert banked.scenario.verify_trail().disagreement.column == "cells_plated"


def test_a_vial_added_by_hand_is_not_on_record(banked: Quality) -> None:
    _freeze(banked, vials=1)
    with unit_of_work(banked.settings, authenticated=False) as uow:
        uow.session.connection().exec_driver_sql(
            "INSERT INTO bank_vials (code, culture_id, passage_id, number, cells, frozen_at, "
            "status, recorded_at, recorded_by) SELECT code || '0', culture_id, passage_id, 9, "
            "cells, frozen_at, status, recorded_at, recorded_by FROM bank_vials"
        )
    disagreement = banked.scenario.verify_trail().disagreement
    assert (disagreement.table, disagreement.column) == ("bank_vials", None)


# --- shown where the lineage is -------------------------------------------------------------


def test_the_batch_record_says_the_lot_was_thawed_from_a_bank_vial(
    banked: Quality, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    _freeze(banked)
    vial = _vial(banked, 1)
    child = _thaw(banked, vial).summary.culture_id
    banked.passage(child, day(28.5), harvested=16_000_000, seeded=4_000_000)
    banked.lot_id = banked.formulate(
        child, **{**LOT, "harvested": 40_000_000, "vials": 1, "at": day(29)}
    ).summary.lot_id
    out = tmp_path / "batch.pdf"
    report = banked.run(reports.write_batch_record, lot=banked.lot_id, out=out)
    report.files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    for expected in (
        f"thawed from bank vial {vial}, 92 % viable",
        f"frozen at {banked.culture_id}-P2 in bank vial {vial}",
        "bank_vial.thaw",
    ):
        assert expected in text, (expected, text)


def test_a_storage_location_that_is_not_a_box_holds_no_vials(banked: Quality) -> None:
    add_location(banked.lab, "LN2-1/shelf-1", "shelf")
    with pytest.raises(BadInput) as refused:
        _freeze(banked, into="ln2-1/SHELF-1")
    assert refused.value.field == "into"


# --- equipment at freezing and thawing --------------------------------------------------------


def test_freezing_and_thawing_name_the_equipment_the_register_requires(banked: Quality) -> None:
    calibrated(banked.lab, "BSC-01", "biosafety_cabinet", day(-30), day(300))
    calibrated(banked.lab, "INC-01", "incubator", day(-30), day(300))
    with pytest.raises(BadInput) as refused:
        _freeze(banked)
    assert refused.value.field == "equipment"
    assert "culture freeze needs a biosafety_cabinet" in str(refused.value)
    _freeze(banked, equipment=["BSC-01"])
    vial = _vial(banked, 1)
    with pytest.raises(BadInput) as missing:
        _thaw(banked, vial, equipment=["BSC-01"])
    assert "bank thaw needs an incubator" in str(missing.value)
    child = _thaw(banked, vial, equipment=["BSC-01", "INC-01"]).summary.culture_id
    banked.passage(
        child, day(28.5), harvested=16_000_000, seeded=4_000_000, equipment=["BSC-01", "INC-01"]
    )
    lot = banked.formulate(
        child,
        **{**LOT, "harvested": 40_000_000, "vials": 1, "at": day(29)},
        equipment=["BSC-01"],
    )
    with unit_of_work(banked.settings, write=False) as uow:
        found = lookup.lot(uow.session, lot.summary.lot_id)
        steps = {
            (use.action, use.record, use.equipment_id)
            for use in equipment_use.equipment_of_lot(uow.session, found)
        }
    assert ("culture.freeze", vial, "BSC-01") in steps  # the thawed cells were frozen there
    assert ("culture.thaw", child, "INC-01") in steps
    assert ("lot.formulate", lot.summary.lot_id, "BSC-01") in steps
    _clean(banked)


def test_a_cabinet_past_its_due_date_freezes_nothing(banked: Quality) -> None:
    calibrated(banked.lab, "BSC-01", "biosafety_cabinet", day(-30), day(10))
    with pytest.raises(RuleViolation) as refused:
        _freeze(banked, equipment=["BSC-01"])
    assert "BSC-01" in str(refused.value)
    assert banked.read(bank.list_bank_vials) == []


def test_the_batch_record_lists_the_equipment_used_and_what_was_stored(
    banked: Quality, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    calibrated(banked.lab, "BSC-01", "biosafety_cabinet", day(-30), day(300), serial="SN-4411")
    _freeze(banked, vials=1, into=f"{BOX}:C3", equipment=["BSC-01"])
    banked.run(samples.retain_samples, lot=banked.lot_id, count=2, into=f"{BOX}:D1", at=day(26.5))
    banked.record("endotoxin", "0.5", equipment=["BSC-01"])
    out = tmp_path / "batch.pdf"
    banked.run(reports.write_batch_record, lot=banked.lot_id, out=out).files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    equipment_section = text[text.index(". Equipment ") : text.index(". Storage ")]
    # The QC step's use, with the calibration it was under; the bank vial frozen from C1 is not
    # in L1's product, so its use is not either.
    assert "BSC-01 biosafety cabinet SN-4411 qc.record" in equipment_section
    assert "culture.freeze" not in equipment_section
    assert "pass" in equipment_section
    storage_section = text[text.index(". Storage ") : text.index(". Follow-up ")]
    for item, position in (
        (_vial(banked, 1), "C3"),
        (f"{banked.lot_id}-R01", "D1"),
        (f"{banked.lot_id}-R02", "D2"),
    ):
        row = storage_section[storage_section.index(item) :]
        assert f"{BOX} {position}" in row[:150], (item, position, row)
