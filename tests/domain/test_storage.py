"""Storage paths, positions in a box's grid, row-major order and where items go (pure)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lims.domain import ids, storage
from lims.domain.storage import Position
from lims.errors import BadInput, RuleViolation

GRIDS = st.tuples(
    st.integers(1, storage.BOX_ROWS_MAX), st.integers(1, storage.BOX_COLUMNS_MAX)
).flatmap(
    lambda grid: st.tuples(
        st.just(grid), st.builds(Position, st.integers(1, grid[0]), st.integers(1, grid[1]))
    )
)


@settings(max_examples=25)
@given(GRIDS)
def test_a_position_reads_back_from_its_label_in_any_case(grid_and_at):
    (rows, columns), at = grid_and_at
    assert storage.position(at.label, rows, columns, "to") == at
    assert storage.position(f" {at.label.lower()} ", rows, columns, "to") == at


@settings(max_examples=25)
@given(st.integers(1, 26), st.integers(1, 99), st.integers(1, 26), st.integers(1, 99))
def test_a_position_outside_the_grid_is_bad_input_naming_the_grid(rows, columns, row, column):
    assume(row > rows or column > columns)
    span = storage.grid_span(rows, columns)
    with pytest.raises(BadInput, match=f"^to: must be a position within {span}"):
        storage.position(Position(row, column).label, rows, columns, "to")


@pytest.mark.parametrize(
    "typed", ["", " ", "A", "1", "1A", "AA1", "A100", "A-1", "A 1", "Ä1", "A١", "A1:"]
)
def test_a_malformed_position_is_bad_input(typed):
    with pytest.raises(BadInput, match=r"^to: must be a position such as A1"):
        storage.position(typed, 9, 9, "to")


def test_a_box_spans_a1_to_its_last_row_letter_and_column():
    assert storage.grid_span(9, 9) == "A1-I9"
    assert storage.grid_span(26, 99) == "A1-Z99"
    with pytest.raises(BadInput, match="within A1-H12"):
        storage.position("I1", 8, 12, "into")
    with pytest.raises(BadInput, match="within A1-H12"):
        storage.position("A13", 8, 12, "into")


@settings(max_examples=25)
@given(st.integers(1, 8), st.integers(1, 12), st.data())
def test_row_major_goes_row_by_row_from_the_start(rows, columns, data):
    start = data.draw(st.builds(Position, st.integers(1, rows), st.integers(1, columns)))
    every = list(storage.row_major(rows, columns))
    assert every == sorted(every)
    assert len(every) == rows * columns
    assert list(storage.row_major(rows, columns, start)) == every[every.index(start) :]


def test_items_go_from_the_start_on_in_row_major_order():
    taken = storage.positions_for(3, 2, 3, set(), start=Position(1, 2), box="b")
    assert [at.label for at in taken] == ["A2", "A3", "B1"]


def test_without_a_start_items_go_in_the_first_free_positions():
    occupied = {Position(1, 1), Position(1, 3)}
    taken = storage.positions_for(3, 2, 3, occupied, start=None, box="b")
    assert [at.label for at in taken] == ["A2", "B1", "B2"]


def test_an_occupied_position_among_those_from_the_start_is_refused():
    with pytest.raises(RuleViolation, match="box b: position B1 already holds an item"):
        storage.positions_for(2, 2, 3, {Position(2, 1)}, start=Position(1, 3), box="b")


def test_too_few_positions_are_refused():
    with pytest.raises(RuleViolation, match="2 position"):
        storage.positions_for(3, 2, 3, set(), start=Position(2, 2), box="b")
    full = set(storage.row_major(2, 3)) - {Position(2, 3)}
    with pytest.raises(RuleViolation, match="has 1 free position"):
        storage.positions_for(2, 2, 3, full, start=None, box="b")


@settings(max_examples=25)
@given(GRIDS, st.integers(1, 10), st.data())
def test_positions_chosen_are_free_distinct_and_in_the_grid(grid_and_at, count, data):
    (rows, columns), start = grid_and_at
    every = list(storage.row_major(rows, columns))
    occupied = set(data.draw(st.lists(st.sampled_from(every), max_size=10)))
    given_start = data.draw(st.sampled_from([None, start]))
    try:
        taken = storage.positions_for(count, rows, columns, occupied, start=given_start, box="b")
    except RuleViolation:
        return
    assert len(taken) == len(set(taken)) == count
    assert not set(taken) & occupied
    assert all(1 <= at.row <= rows and 1 <= at.column <= columns for at in taken)
    assert taken == sorted(taken)


def test_paths_read_as_typed_and_name_their_parent():
    assert storage.storage_path(" LN2-1/rack-3/box-07 ") == "LN2-1/rack-3/box-07"
    assert storage.parent_path("LN2-1/rack-3/box-07") == "LN2-1/rack-3"
    assert storage.parent_path("LN2-1") is None
    assert storage.path_name("LN2-1/rack-3/box-07") == "box-07"
    assert storage.child_path("LN2-1/rack-3", "box-07") == "LN2-1/rack-3/box-07"
    assert storage.child_path(None, "LN2-1") == "LN2-1"
    assert storage.path_key("LN2-1/Rack-3") == storage.path_key("ln2-1/rack-3")


@pytest.mark.parametrize(
    "typed",
    [
        *("", " ", "/", "LN2-1/", "/LN2-1", "LN2-1//box", "LN2 1", "-LN2", "LN2-1/rack:3"),
        *("ä", "a" * 41, "/".join(["a"] * 9)),
    ],
)
def test_a_malformed_path_is_bad_input(typed):
    with pytest.raises(BadInput, match=r"^path: must be"):
        storage.storage_path(typed)


def test_a_place_is_a_path_and_an_optional_position():
    assert storage.split_place("LN2-1/box-1:b4", "into") == ("LN2-1/box-1", "b4")
    assert storage.split_place("LN2-1/box-1", "into") == ("LN2-1/box-1", None)
    with pytest.raises(BadInput, match=r"^into: must give a position after ':'"):
        storage.split_place("LN2-1/box-1:", "into")
    assert storage.place_label("LN2-1/box-1", Position(2, 4)) == "LN2-1/box-1:B4"


def test_a_grid_shows_what_an_id_adds_to_its_din():
    assert ids.after_din("A999926000001-C1-B01") == "C1-B01"
    assert ids.after_din("A999926000001-L12-R103") == "L12-R103"
    with pytest.raises(ValueError, match="not an id of a donation"):
        ids.after_din("CNT-000001")
