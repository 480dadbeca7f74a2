"""Storage through the services: the register of locations, retained samples kept in box
positions, items moved and found, and positions bound to the trail.

The lab is lot L1 of PT-0001 (tests.support.quality) and a 9×9 box LN2-1/rack-3/box-07
in rack LN2-1/rack-3 of tank LN2-1; bank vials are frozen into it by
tests.support.storage.freeze.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lims.domain.ids import LotId
from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.services import bindings, cultures, lots, patients, samples, storage
from lims.views.storage import StoredItem
from tests.support.bench import day
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality
from tests.support.storage import BOX, RACK, TANK, add_box, add_location, freeze

PATIENT = "PT-0001"


@pytest.fixture
def kept(lab: Lab) -> Quality:
    """Lot L1 (tom logged in) and an empty 9×9 box."""
    return lab.built("storage", lambda: _kept(lab))


def _kept(lab: Lab) -> Quality:
    quality = Quality(lab)
    add_box(lab)
    return quality


def _retain(kept: Quality, count: int = 1, into: str = BOX, **values: Any) -> list[StoredItem]:
    done = kept.run(samples.retain_samples, lot=kept.lot_id, count=count, into=into, **values)
    return list(done.samples)


def _sample(kept: Quality, number: int) -> str:
    return f"{kept.lot_id}-R{number:02d}"


def _places(found: list[StoredItem]) -> dict[str, str | None]:
    return {item.item: item.place for item in found}


def _entries(kept: Quality, action: str) -> list[Any]:
    return [entry for entry in kept.scenario.audit_trail() if entry.action == action]


# --- the register ------------------------------------------------------------------------------


def test_locations_nest_under_existing_ones_and_boxes_carry_a_grid(kept: Quality, lab: Lab):
    added = add_location(lab, "ln2-1/rack-3/box-08", "box", rows="8", columns="12")
    assert (added.path, added.rows, added.columns, added.capacity) == (
        "LN2-1/rack-3/box-08",  # its parent's path as registered
        8,
        12,
        96,
    )
    tank = add_location(lab, "FRZ-2", "freezer", temperature_c="-80")
    assert (tank.temperature_c, tank.rows, tank.capacity, tank.occupied) == (-80, None, 0, 0)
    [entry] = [e for e in _entries(kept, "storage.add") if e.entity_id == "LN2-1/rack-3/box-08"]
    assert (entry.entity_type, entry.username) == ("storage", "admin")
    assert entry.new == {
        "kind": "box",
        "rows": 8,
        "columns": 12,
        "temperature_c": None,
        "parent": RACK,
    }


def test_a_location_needs_its_parent_and_nothing_goes_inside_a_box(kept: Quality, lab: Lab):
    before = kept.lab.audit_count()
    with pytest.raises(NotFound, match=r"^no storage location LN2-1/rack-9 to put box-1 in"):
        add_location(lab, "LN2-1/rack-9/box-1", "box", rows=9, columns=9)
    with pytest.raises(RuleViolation, match=rf"^{BOX} is a box: nothing goes inside a box"):
        add_location(lab, f"{BOX}/tube", "shelf")
    with pytest.raises(RuleViolation, match=rf"^storage location {BOX} already exists$"):
        add_location(lab, BOX, "box", rows=9, columns=9)
    with pytest.raises(RuleViolation, match="differs from it only in letter case"):
        add_location(lab, "LN2-1/Rack-3/BOX-07", "box", rows=9, columns=9)
    assert kept.lab.audit_count() == before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kind": "box"}, "^rows: must be given for a box: --rows 1-26 and --columns 1-99"),
        ({"kind": "box", "rows": 9}, "^columns: must be given for a box"),
        ({"kind": "box", "rows": 27, "columns": 9}, "^rows: must be a whole number from 1 to 26"),
        ({"kind": "box", "rows": 9, "columns": 100}, "^columns: must be a whole number from 1"),
        ({"kind": "rack", "rows": 9}, "^rows: must be left out for a rack"),
        ({"kind": "tank", "columns": 9}, "^columns: must be left out for a tank"),
        ({"kind": "Box", "rows": 9, "columns": 9}, "^kind: must be one of tank, freezer"),
        ({"kind": "tank", "temperature_c": "-273"}, "^temperature-c: must be a number of °C"),
        ({"kind": "tank", "temperature_c": "61"}, "^temperature-c: must be a number of °C"),
    ],
)
def test_a_locations_kind_grid_and_temperature_are_checked(
    kept: Quality, lab: Lab, values: dict[str, Any], message: str
):
    with pytest.raises(BadInput, match=message):
        add_location(lab, "LN2-1/new", **values)


def test_a_path_the_trail_cannot_name_is_bad_input(kept: Quality, lab: Lab):
    long = "/".join(["a" * 20] * 4)  # 83 characters: a storage path, but no audit entity id
    with pytest.raises(BadInput, match=r"^path: must be at most 64 characters"):
        add_location(lab, long, "tank")


def test_only_qa_and_admin_keep_the_register(kept: Quality, lab: Lab):
    with pytest.raises(NotPermitted):
        kept.run(storage.add_location, path="LN2-2", kind="tank")
    lab.login("quinn")
    assert kept.run(storage.add_location, path="LN2-2", kind="tank").path == "LN2-2"


def test_a_location_shows_how_full_the_boxes_under_it_are(kept: Quality, lab: Lab):
    add_box(lab, f"{RACK}/box-08", rows=2, columns=2)
    _retain(kept, 3, into=f"{RACK}/box-08")
    _retain(kept, 1)
    tank = kept.read(storage.show_location, path=TANK.lower())
    assert (tank.location.capacity, tank.location.occupied, tank.positions) == (85, 4, [])
    [rack] = tank.children
    assert (rack.path, rack.capacity, rack.occupied) == (RACK, 85, 4)
    listed = {
        view.path: (view.capacity, view.occupied) for view in kept.read(storage.list_locations)
    }
    assert listed == {TANK: (85, 4), RACK: (85, 4), BOX: (81, 1), f"{RACK}/box-08": (4, 3)}
    with pytest.raises(NotFound, match=r"^no storage location LN2-9$"):
        kept.read(storage.show_location, path="LN2-9")


# --- retained samples --------------------------------------------------------------------------


def test_samples_go_from_the_position_given_on_and_are_numbered_on(kept: Quality):
    first = _retain(kept, 3, into=f"{BOX}:a8")
    assert [(s.item, s.place) for s in first] == [
        (_sample(kept, 1), f"{BOX}:A8"),
        (_sample(kept, 2), f"{BOX}:A9"),
        (_sample(kept, 3), f"{BOX}:B1"),
    ]
    more = _retain(kept, 2)  # the first free positions
    assert [(s.item, s.position) for s in more] == [
        (_sample(kept, 4), "A1"),
        (_sample(kept, 5), "A2"),
    ]
    item = more[0]
    assert (item.item_kind, item.status, item.patient, item.lot_id, item.culture_id) == (
        "retained_sample",
        "stored",
        PATIENT,
        kept.lot_id,
        kept.culture_id,
    )
    [entry, *_] = _entries(kept, "sample.retain")
    assert (entry.entity_type, entry.entity_id) == ("retained_sample", _sample(kept, 1))
    assert entry.new["position"] == f"{BOX}:A8"
    assert (entry.new["lot"], entry.new["status"]) == (kept.lot_id, "stored")
    box = kept.read(storage.show_location, path=BOX)
    assert [s.position for s in box.positions] == ["A1", "A2", "A8", "A9", "B1"]
    assert [s.short for s in box.positions][:1] == ["L1-R04"]


def test_an_occupied_or_missing_position_refuses_the_whole_retention(kept: Quality, lab: Lab):
    _retain(kept, 1, into=f"{BOX}:B2")
    before = kept.lab.audit_count()
    with pytest.raises(RuleViolation, match=rf"^box {BOX}: position B2 already holds an item"):
        _retain(kept, 3, into=f"{BOX}:B1")
    with pytest.raises(RuleViolation, match="has 2 position"):
        _retain(kept, 3, into=f"{BOX}:I8")
    with pytest.raises(BadInput, match=r"^into: must be a position within A1-I9"):
        _retain(kept, 1, into=f"{BOX}:J1")
    with pytest.raises(BadInput, match=rf"^into: must be a box with positions: {RACK} is a rack"):
        _retain(kept, 1, into=RACK)
    with pytest.raises(NotFound, match=r"^no storage location LN2-1/rack-3/box-99$"):
        _retain(kept, 1, into=f"{RACK}/box-99")
    with pytest.raises(BadInput, match=r"^count: must be a whole number from 1 to 100"):
        _retain(kept, 101)
    assert kept.lab.audit_count() == before
    assert len(kept.read(samples.list_samples, lot=kept.lot_id)) == 1


def test_samples_are_retained_after_formulation_and_late_ones_say_why(kept: Quality, lab: Lab):
    with pytest.raises(BadInput, match=r"^at: must be after lot .*'s formulation"):
        _retain(kept, at=day(25))
    lab.set_site(records={"late_entry_hours": 24})
    with pytest.raises(BadInput, match=r"^late-reason: required for a late entry"):
        _retain(kept, at=day(26) + timedelta(hours=1))
    [late] = _retain(kept, at=day(26) + timedelta(hours=1), late_reason="sheet found today")
    assert late.late_entry
    assert late.stored_at == late.placed_at == day(26) + timedelta(hours=1)


def test_no_samples_of_a_rejected_lot_are_kept(kept: Quality, lab: Lab):
    lab.login("rita")
    kept.run(lots.reject, lot=kept.lot_id, password=PASSWORD, reason="sterility positive")
    lab.login("tom")
    with pytest.raises(RuleViolation, match=rf"^lot {kept.lot_id} is rejected: no samples"):
        _retain(kept)


def test_a_removed_sample_frees_its_position_and_stays_on_record(kept: Quality):
    _retain(kept, 2)
    removed = kept.run(samples.remove_sample, sample=_sample(kept, 1).lower(), reason="retest")
    assert (removed.status, removed.place, removed.ended_by, removed.end_reason) == (
        "removed",
        None,
        "tom",
        "retest",
    )
    [entry] = _entries(kept, "sample.remove")
    assert (entry.old, entry.new["position"], entry.new["removed_from"]) == (
        {"status": "stored"},
        None,
        f"{BOX}:A1",
    )
    assert [s.position for s in _retain(kept, 1)] == ["A1"]  # free again
    listed = kept.read(samples.list_samples, lot=kept.lot_id)
    assert [(s.item, s.status) for s in listed] == [
        (_sample(kept, 1), "removed"),
        (_sample(kept, 2), "stored"),
        (_sample(kept, 3), "stored"),
    ]
    with pytest.raises(RuleViolation, match="is removed; it is no longer in storage"):
        kept.run(samples.remove_sample, sample=_sample(kept, 1), reason="again")
    with pytest.raises(RuleViolation, match="is removed; it is no longer in storage"):
        kept.run(storage.move_item, item=_sample(kept, 1), to=f"{BOX}:I9", reason="back")


def test_lot_show_lists_its_samples_and_patient_show_what_is_stored(kept: Quality):
    _retain(kept, 2)
    kept.run(samples.remove_sample, sample=_sample(kept, 2), reason="retest")
    [vial] = freeze(kept.lab, kept.culture_id, 1, f"{BOX}:C3")
    detail = kept.read(lots.show_lot, lot=kept.lot_id)
    assert _places(detail.retained_samples) == {
        _sample(kept, 1): f"{BOX}:A1",
        _sample(kept, 2): None,
    }
    patient = kept.read(patients.show_patient, code=PATIENT)
    assert _places(patient.stored_items) == {vial: f"{BOX}:C3", _sample(kept, 1): f"{BOX}:A1"}
    assert [item.item_kind for item in patient.stored_items] == ["bank_vial", "retained_sample"]


# --- moving ------------------------------------------------------------------------------------


def test_an_item_moves_to_a_free_position_and_the_trail_says_from_where(kept: Quality, lab: Lab):
    add_box(lab, "LN2-2/rack-1/box-01", rows=2, columns=2)
    _retain(kept, 1)
    [vial] = freeze(lab, kept.culture_id, 1, f"{BOX}:D4")
    moved = kept.run(
        storage.move_item, item=vial, to="ln2-2/rack-1/box-01:b2", reason="tank 1 emptied"
    )
    assert (moved.moved_from, moved.item.place, moved.item.item_kind) == (
        f"{BOX}:D4",
        "LN2-2/rack-1/box-01:B2",
        "bank_vial",
    )
    sample = kept.run(
        storage.move_item, item=_sample(kept, 1), to="LN2-2/rack-1/box-01", reason="together"
    )
    assert sample.item.place == "LN2-2/rack-1/box-01:A1"  # PATH alone: its first free one
    [entry, _] = _entries(kept, "storage.move")
    assert (entry.entity_type, entry.entity_id, entry.old, entry.new, entry.reason) == (
        "bank_vial",
        vial,
        {"position": f"{BOX}:D4"},
        {"position": "LN2-2/rack-1/box-01:B2"},
        "tank 1 emptied",
    )
    assert kept.read(storage.show_location, path=BOX).positions == []


def test_a_move_is_refused_to_a_taken_position_or_a_place_that_is_none(kept: Quality):
    _retain(kept, 2)
    item = _sample(kept, 1)
    before = kept.lab.audit_count()
    with pytest.raises(RuleViolation, match=rf"^box {BOX}: position A2 already holds an item"):
        kept.run(storage.move_item, item=item, to=f"{BOX}:A2", reason="x")
    with pytest.raises(RuleViolation, match="position A1 already holds an item"):
        kept.run(storage.move_item, item=item, to=f"{BOX}:A1", reason="where it is")
    with pytest.raises(BadInput, match=r"^to: must be a position within A1-I9"):
        kept.run(storage.move_item, item=item, to=f"{BOX}:A10", reason="x")
    with pytest.raises(BadInput, match=r"^to: must be a position such as A1"):
        kept.run(storage.move_item, item=item, to=f"{BOX}:10A", reason="x")
    with pytest.raises(NotFound, match=r"^no storage location LN2-9$"):
        kept.run(storage.move_item, item=item, to="LN2-9:A1", reason="x")
    with pytest.raises(BadInput, match=r"^item: must be a bank vial id such as"):
        kept.run(storage.move_item, item=f"{kept.lot_id}-V01", to=f"{BOX}:I9", reason="x")
    with pytest.raises(NotFound, match=rf"^no retained sample {kept.lot_id}-R09$"):
        kept.run(storage.move_item, item=f"{kept.lot_id}-R09", to=f"{BOX}:I9", reason="x")
    with pytest.raises(BadInput, match=r"^reason: must not be empty"):
        kept.run(storage.move_item, item=item, to=f"{BOX}:I9", reason=" ")
    assert kept.lab.audit_count() == before


def test_admin_keeps_the_register_but_does_no_bench_work(kept: Quality, lab: Lab):
    _retain(kept, 1)
    lab.login("admin")
    with pytest.raises(NotPermitted):
        kept.run(storage.move_item, item=_sample(kept, 1), to=f"{BOX}:I9", reason="x")
    with pytest.raises(NotPermitted):
        _retain(kept, 1)
    with pytest.raises(NotPermitted):
        kept.run(samples.remove_sample, sample=_sample(kept, 1), reason="x")


# --- finding -----------------------------------------------------------------------------------


def test_items_are_found_by_patient_donation_culture_lot_and_their_own_id(kept: Quality):
    _retain(kept, 2)
    kept.run(samples.remove_sample, sample=_sample(kept, 2), reason="retest")
    child = kept.run(
        cultures.split_culture,
        culture=kept.culture_id,
        seeded=2_000_000,
        vessels=1,
        area_cm2=175,
        at=day(21),
    ).summary.culture_id
    kept.passage(child, day(24), harvested=6_000_000)  # 2,000,000 not reseeded: frozen below
    [parents] = freeze(kept.lab, kept.culture_id, 1, f"{BOX}:E1")
    [childs] = freeze(kept.lab, child, 1, f"{BOX}:E2")
    other_lot = kept.new_lot("PT-0002").summary.lot_id
    kept.run(samples.retain_samples, lot=other_lot, count=1, into=BOX)

    def found(text: str, **values: Any) -> set[str]:
        return {item.item for item in kept.read(storage.find_items, item=text, **values)}

    ours = {parents, childs, _sample(kept, 1)}
    assert found(PATIENT) == ours
    assert found(LotId.parse(kept.lot_id).din.display) == ours
    assert found(kept.culture_id) == ours  # and what was split from it
    assert found(child) == {childs}
    # Its harvest: what was frozen from it and split from it (the lot came from a later one).
    assert found(f"{kept.culture_id}-P2") == {parents, childs}
    assert found(kept.lot_id) == {_sample(kept, 1)}
    assert found(kept.lot_id, all_items=True) == {_sample(kept, 1), _sample(kept, 2)}
    assert found(parents.lower()) == {parents}
    assert found(_sample(kept, 2)) == set()
    assert found("PT-0002") == {f"{other_lot}-R01"}
    with pytest.raises(BadInput, match=r"^item: must be a bank vial, .* a vial is not kept"):
        found(f"{kept.lot_id}-V01")
    with pytest.raises(NotFound):
        found("PT-0099")


# --- bound to the trail ------------------------------------------------------------------------


def _disagreement(kept: Quality) -> Any:
    verification = kept.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


def test_an_honest_history_of_locations_and_samples_agrees_with_the_trail(kept: Quality):
    _retain(kept, 3)
    kept.run(storage.move_item, item=_sample(kept, 1), to=f"{BOX}:I9", reason="x")
    kept.run(samples.remove_sample, sample=_sample(kept, 2), reason="retest")
    assert _disagreement(kept) is None


@pytest.mark.parametrize(
    ("statement", "table", "column"),
    [
        (
            "UPDATE storage_positions SET grid_column = 5",
            "retained_samples",
            "storage_positions",
        ),
        ("DELETE FROM storage_positions", "retained_samples", "storage_positions"),
        ("UPDATE retained_samples SET status = 'removed'", "retained_samples", "status"),
        (
            f"UPDATE storage_locations SET grid_rows = 3 WHERE path = '{BOX}'",
            "storage_locations",
            "grid_rows",
        ),
        (
            "UPDATE storage_locations SET kind = 'rack', grid_rows = NULL, grid_columns = NULL "
            f"WHERE path = '{BOX}'",
            "storage_locations",
            "kind",
        ),
    ],
)
def test_a_hand_edit_is_reported_and_refused_by_the_commands_relying_on_it(
    kept: Quality, statement: str, table: str, column: str
):
    _retain(kept, 1)
    kept.sql(statement)
    disagreement = _disagreement(kept)
    assert (disagreement.table, disagreement.column) == (table, column)
    before = kept.lab.audit_count()
    refusal = f"^{bindings.REFUSAL}{table} "
    if table == "storage_locations":
        with pytest.raises(RuleViolation, match=refusal):
            _retain(kept, 1, into=f"{BOX}:A5")
        with pytest.raises(RuleViolation, match=refusal):
            add_location(kept.lab, f"{BOX}/shelf-1", "shelf")
    else:
        with pytest.raises(RuleViolation, match=refusal):
            kept.run(storage.move_item, item=_sample(kept, 1), to=f"{BOX}:I9", reason="x")
        with pytest.raises(RuleViolation, match=refusal):
            kept.run(samples.remove_sample, sample=_sample(kept, 1), reason="x")
    assert kept.lab.audit_count() == before


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM storage_positions",
        "UPDATE storage_positions SET grid_row = 2",
    ],
)
def test_a_position_freed_by_hand_is_not_filled_again(kept: Quality, statement: str):
    _retain(kept, 1, into=f"{BOX}:A1")
    kept.sql(statement)
    before = kept.lab.audit_count()
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}retained_samples "):
        freeze(kept.lab, kept.culture_id, 1, f"{BOX}:A1")
    assert kept.lab.audit_count() == before


def test_a_location_added_by_hand_is_not_on_record(kept: Quality):
    kept.sql(
        "INSERT INTO storage_locations (path, kind, added_at, added_by) "
        "VALUES ('LN2-9', 'tank', :at, 'admin')",
        at=day(1),
    )
    disagreement = _disagreement(kept)
    assert (disagreement.table, disagreement.id, disagreement.column) == (
        "storage_locations",
        "LN2-9",
        None,
    )
