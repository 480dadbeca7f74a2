"""The arithmetic of a split culture's lineage and the plausibility of a harvest's counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lims.domain import growth, lineage

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_split_culture_numbers_its_passages_on_from_its_source() -> None:
    inherited = lineage.Inheritance(passage_number=2, cumulative_population_doublings=3.0)
    assert lineage.last_passage_number([], inherited) == 2
    assert lineage.last_passage_number([3, 4], inherited) == 4
    assert lineage.last_passage_number([], lineage.FRESH_START) == 0


def test_a_split_cultures_doublings_add_to_those_it_inherits() -> None:
    [first] = growth.kinetics(
        False,
        growth.Plating(T0, 1_000_000),
        [growth.Harvest(T0 + timedelta(hours=96), 8_000_000, 4_000_000, 875)],
        inherited_doublings=3.0,
    )
    assert first.population_doublings == pytest.approx(3.0)
    assert first.cumulative_population_doublings == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("harvested", "reseeded", "split_off", "over", "left"),
    [
        (32_000_000, 20_000_000, [], 0, 12_000_000),
        (32_000_000, 20_000_000, [10_000_000], 0, 2_000_000),
        (32_000_000, 20_000_000, [10_000_000, 2_000_000], 0, 0),
        (32_000_000, 20_000_000, [10_000_000, 3_000_000], 1_000_000, 0),
    ],
)
def test_a_shared_harvest_covers_the_parent_and_every_child(
    harvested: int, reseeded: int, split_off: list[int], over: int, left: int
) -> None:
    assert lineage.overdrawn(harvested, reseeded, split_off) == over
    assert lineage.left_to_split(harvested, reseeded, split_off) == left


@pytest.mark.parametrize(
    ("split_off", "frozen", "over", "left"),
    [
        ([], [5_000_000, 5_000_000], 0, 2_000_000),
        ([4_000_000], [4_000_000, 4_000_000], 0, 0),
        ([4_000_000], [4_000_000, 4_000_001], 1, 0),
        ([], [12_000_001], 1, 0),
    ],
)
def test_cells_frozen_from_a_harvest_are_drawn_from_it_as_a_childs_are(
    split_off: list[int], frozen: list[int], over: int, left: int
) -> None:
    """P2 harvested 3.2e7 and reseeded 2e7: the children and the bank vials share 1.2e7."""
    assert lineage.overdrawn(32_000_000, 20_000_000, split_off, frozen) == over
    assert lineage.left_to_split(32_000_000, 20_000_000, split_off, frozen) == left


def test_each_harvest_comes_off_the_area_plated_before_it() -> None:
    assert growth.harvested_areas(875, [875, 5250, 31_800]) == [875, 875, 5250]
    assert growth.harvested_areas(875, []) == []


LIMITS = {"max_harvest_density_per_cm2": 100_000, "min_doubling_time_hours": 12}


def test_the_typo_of_the_issue_is_implausible_by_density() -> None:
    """3.1e8 harvested off 1,050 cm² is about 295,000 cells/cm²: beyond MSC confluence."""
    [reason] = growth.implausible(
        harvested=310_000_000, harvested_area_cm2=1050, doubling_time_hours=24.0, **LIMITS
    )
    assert "295,238 cells/cm²" in reason
    assert "expansion.max_harvest_density_per_cm2" in reason


def test_a_doubling_time_faster_than_msc_divide_is_implausible() -> None:
    [reason] = growth.implausible(
        harvested=10_000_000, harvested_area_cm2=875, doubling_time_hours=11.9, **LIMITS
    )
    assert "expansion.min_doubling_time_hours" in reason


def test_a_large_fold_expansion_at_low_density_is_plausible() -> None:
    """MSC seeded at a few cells/cm² expand several hundred-fold in one passage."""
    assert not growth.implausible(
        harvested=87_500_000, harvested_area_cm2=875, doubling_time_hours=20.0, **LIMITS
    )
    assert not growth.implausible(
        harvested=87_500_000, harvested_area_cm2=875, doubling_time_hours=None, **LIMITS
    )
