"""Growth kinetics derived from counts, and the projection to a target dose."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain.growth import Harvest, NoProjection, Plating, kinetics, project

T0 = datetime(2026, 3, 2, 9, 0)


def hours(count: float) -> datetime:
    return T0 + timedelta(hours=count)


# kinetics(): a primary culture


def test_primary_first_harvest_has_no_doublings():
    (first,) = kinetics(
        True,
        Plating(T0, 50_000_000),
        [Harvest(hours(240), harvested=2_000_000, seeded=1_000_000, area_cm2=200.0)],
    )
    assert first.population_doublings is None
    assert first.fold_expansion is None
    assert first.doubling_time_hours is None
    assert first.cumulative_population_doublings == 0.0
    assert first.seeding_density_per_cm2 == pytest.approx(5_000.0)


def test_primary_later_harvests_count_from_the_previous_reseeding():
    derived = kinetics(
        True,
        Plating(T0, 50_000_000),
        [
            # Primary harvest: 1e6 of the cells reseeded on 200 cm² at 240 h.
            Harvest(hours(240), harvested=2_000_000, seeded=1_000_000, area_cm2=200.0),
            # 1e6 → 8e6 in 72 h: fold 8, PD 3, 24 h per doubling; 2e6 reseeded on 400 cm².
            Harvest(hours(312), harvested=8_000_000, seeded=2_000_000, area_cm2=400.0),
            # 2e6 → 8e6 in 96 h: fold 4, PD 2, 48 h per doubling; cumulative 3 + 2 = 5.
            Harvest(hours(408), harvested=8_000_000, seeded=1_500_000, area_cm2=500.0),
        ],
    )
    second, third = derived[1], derived[2]

    assert second.fold_expansion == pytest.approx(8.0)
    assert second.population_doublings == pytest.approx(3.0)
    assert second.doubling_time_hours == pytest.approx(24.0)
    assert second.cumulative_population_doublings == pytest.approx(3.0)
    assert second.seeding_density_per_cm2 == pytest.approx(5_000.0)

    assert third.fold_expansion == pytest.approx(4.0)
    assert third.population_doublings == pytest.approx(2.0)
    assert third.doubling_time_hours == pytest.approx(48.0)
    assert third.cumulative_population_doublings == pytest.approx(5.0)
    assert third.seeding_density_per_cm2 == pytest.approx(3_000.0)


def test_primary_with_non_integer_doublings():
    # 1e6 → 3e6 in 60 h: PD log2(3) ≈ 1.585, DT 60 / 1.585 ≈ 37.856 h.
    derived = kinetics(
        True,
        Plating(T0, 40_000_000),
        [
            Harvest(hours(200), harvested=1_500_000, seeded=1_000_000, area_cm2=175.0),
            Harvest(hours(260), harvested=3_000_000, seeded=1_000_000, area_cm2=175.0),
        ],
    )
    assert derived[1].population_doublings == pytest.approx(1.5849625007)
    assert derived[1].doubling_time_hours == pytest.approx(37.8557852143)
    assert derived[1].fold_expansion == pytest.approx(3.0)


def test_no_harvests_give_no_kinetics():
    assert kinetics(True, Plating(T0, 1_000_000), []) == []
    assert kinetics(False, Plating(T0, 1_000_000), []) == []


# kinetics(): a culture seeded from known cells


def test_seeded_culture_counts_from_its_first_harvest():
    derived = kinetics(
        False,
        Plating(T0, 1_000_000),
        [
            # 1e6 → 8e6 in 72 h: PD 3, DT 24 h, fold 8.
            Harvest(hours(72), harvested=8_000_000, seeded=2_000_000, area_cm2=400.0),
            # 2e6 → 16e6 in 120 h: PD 3, DT 40 h, fold 8; cumulative 6.
            Harvest(hours(192), harvested=16_000_000, seeded=4_000_000, area_cm2=1_000.0),
        ],
    )
    first, second = derived

    assert first.population_doublings == pytest.approx(3.0)
    assert first.fold_expansion == pytest.approx(8.0)
    assert first.doubling_time_hours == pytest.approx(24.0)
    assert first.cumulative_population_doublings == pytest.approx(3.0)
    assert first.seeding_density_per_cm2 == pytest.approx(5_000.0)

    assert second.population_doublings == pytest.approx(3.0)
    assert second.doubling_time_hours == pytest.approx(40.0)
    assert second.cumulative_population_doublings == pytest.approx(6.0)
    assert second.seeding_density_per_cm2 == pytest.approx(4_000.0)


def test_seeded_and_primary_differ_only_in_the_first_harvest():
    start = Plating(T0, 1_000_000)
    harvests = [
        Harvest(hours(72), harvested=8_000_000, seeded=2_000_000, area_cm2=400.0),
        Harvest(hours(168), harvested=8_000_000, seeded=2_000_000, area_cm2=400.0),
    ]
    primary = kinetics(True, start, harvests)
    seeded = kinetics(False, start, harvests)

    assert primary[0].population_doublings is None
    assert seeded[0].population_doublings == pytest.approx(3.0)
    assert primary[1].population_doublings == seeded[1].population_doublings
    assert primary[1].cumulative_population_doublings == pytest.approx(2.0)
    assert seeded[1].cumulative_population_doublings == pytest.approx(5.0)


# kinetics(): no growth


def test_harvest_smaller_than_seeding_gives_negative_doublings_and_no_doubling_time():
    (shrunk,) = kinetics(
        False,
        Plating(T0, 4_000_000),
        [Harvest(hours(48), harvested=1_000_000, seeded=1_000_000, area_cm2=200.0)],
    )
    assert shrunk.population_doublings == pytest.approx(-2.0)
    assert shrunk.fold_expansion == pytest.approx(0.25)
    assert shrunk.doubling_time_hours is None
    assert shrunk.cumulative_population_doublings == pytest.approx(-2.0)


def test_harvest_equal_to_seeding_gives_zero_doublings_and_no_doubling_time():
    (flat,) = kinetics(
        False,
        Plating(T0, 2_000_000),
        [Harvest(hours(48), harvested=2_000_000, seeded=1_000_000, area_cm2=200.0)],
    )
    assert flat.population_doublings == 0.0
    assert flat.fold_expansion == pytest.approx(1.0)
    assert flat.doubling_time_hours is None


def test_a_passage_that_shrank_lowers_the_cumulative_doublings():
    derived = kinetics(
        False,
        Plating(T0, 1_000_000),
        [
            Harvest(hours(72), harvested=8_000_000, seeded=4_000_000, area_cm2=800.0),
            Harvest(hours(144), harvested=2_000_000, seeded=1_000_000, area_cm2=200.0),
        ],
    )
    assert [item.cumulative_population_doublings for item in derived] == pytest.approx([3.0, 2.0])
    assert derived[1].doubling_time_hours is None


# kinetics(): properties

counts = st.integers(min_value=1, max_value=10**12)
harvest_steps = st.lists(
    st.tuples(
        st.floats(min_value=1.0, max_value=2_000.0),  # hours since the previous plating
        counts,  # harvested
        counts,  # seeded
        st.floats(min_value=1.0, max_value=100_000.0),  # area
    ),
    max_size=12,
)


def _harvests(steps: list[tuple[float, int, int, float]]) -> list[Harvest]:
    at = T0
    harvests = []
    for gap, harvested, seeded, area in steps:
        at += timedelta(hours=gap)
        harvests.append(Harvest(at, harvested=harvested, seeded=seeded, area_cm2=area))
    return harvests


@given(st.booleans(), counts, harvest_steps)
def test_cumulative_doublings_are_the_running_sum_of_defined_doublings(
    primary: bool, start_cells: int, steps: list[tuple[float, int, int, float]]
):
    derived = kinetics(primary, Plating(T0, start_cells), _harvests(steps))
    assert len(derived) == len(steps)
    running = 0.0
    for item in derived:
        if item.population_doublings is not None:
            running += item.population_doublings
        assert item.cumulative_population_doublings == pytest.approx(running, abs=1e-9)


@given(st.booleans(), counts, harvest_steps)
def test_doublings_are_log2_of_the_fold_and_every_value_is_finite(
    primary: bool, start_cells: int, steps: list[tuple[float, int, int, float]]
):
    harvests = _harvests(steps)
    derived = kinetics(primary, Plating(T0, start_cells), harvests)
    previous_cells = start_cells
    for index, (item, harvest) in enumerate(zip(derived, harvests, strict=True)):
        if primary and index == 0:
            assert item.population_doublings is None
            assert item.fold_expansion is None
        else:
            assert item.fold_expansion == pytest.approx(harvest.harvested / previous_cells)
            assert item.population_doublings == pytest.approx(math.log2(item.fold_expansion))
            if item.population_doublings > 0:
                assert item.doubling_time_hours is not None
                assert item.doubling_time_hours > 0
            else:
                assert item.doubling_time_hours is None
        for value in (
            item.population_doublings,
            item.cumulative_population_doublings,
            item.doubling_time_hours,
            item.fold_expansion,
            item.seeding_density_per_cm2,
        ):
            assert value is None or math.isfinite(value)
        assert item.seeding_density_per_cm2 == pytest.approx(harvest.seeded / harvest.area_cm2)
        previous_cells = harvest.seeded


# project()


def test_project_hand_example():
    since = hours(100)
    projection = project(
        Plating(since, 1_000_000),
        [(2.0, 48.0), (2.0, 48.0)],
        target_cells=8_000_000,
        reseeding_density_per_cm2=5_000.0,
    )
    assert projection.doubling_time_hours == pytest.approx(24.0)
    assert projection.doublings_per_passage == pytest.approx(2.0)
    assert projection.doublings_needed == pytest.approx(3.0)
    assert projection.passages_needed == 2
    assert projection.expected_at == since + timedelta(hours=72)
    # 8e6 at the end of a passage of 2 doublings needs 2e6 reseeded, on 400 cm² at 5000/cm².
    assert projection.area_cm2_at_last_reseeding == pytest.approx(400.0)
    assert projection.target_cells == 8_000_000
    assert projection.cells_now == 1_000_000
    assert projection.since == since
    assert projection.basis_passages == 2


def test_project_pools_rates_over_total_hours_not_mean_of_doubling_times():
    # Doubling times 48 h and 16 h average 32 h; pooled, 96 h over 4 PD is 24 h.
    projection = project(
        Plating(T0, 1_000_000),
        [(1.0, 48.0), (3.0, 48.0)],
        target_cells=16_000_000,
        reseeding_density_per_cm2=4_000.0,
    )
    assert projection.doubling_time_hours == pytest.approx(24.0)
    assert projection.doublings_per_passage == pytest.approx(2.0)
    assert projection.doublings_needed == pytest.approx(4.0)
    assert projection.passages_needed == 2
    assert projection.expected_at == T0 + timedelta(hours=96)
    assert projection.area_cm2_at_last_reseeding == pytest.approx(1_000.0)


def test_project_rounds_passages_up():
    # 1e6 → 1.6e7 is 4 PD; at 3 PD per passage that takes 2 passages, not 1.33.
    projection = project(
        Plating(T0, 1_000_000),
        [(3.0, 72.0)],
        target_cells=16_000_000,
        reseeding_density_per_cm2=5_000.0,
    )
    assert projection.doublings_needed == pytest.approx(4.0)
    assert projection.passages_needed == 2
    assert projection.expected_at == T0 + timedelta(hours=96)
    # 16e6 / 2**3 = 2e6 reseeded, at 5000/cm² is 400 cm².
    assert projection.area_cm2_at_last_reseeding == pytest.approx(400.0)


def test_project_exact_multiple_of_a_passage_is_not_rounded_up():
    projection = project(
        Plating(T0, 1_000_000),
        [(2.0, 48.0)],
        target_cells=4_000_000,
        reseeding_density_per_cm2=5_000.0,
    )
    assert projection.passages_needed == 1


def test_project_float_rounding_does_not_add_a_passage():
    """log2(243) / log2(3) comes out as 5.000000000000001 in floating point."""
    projection = project(
        Plating(T0, 1_000_000),
        [(math.log2(3), 40.0)],
        target_cells=243_000_000,
        reseeding_density_per_cm2=5_000.0,
    )
    assert projection.doublings_needed == pytest.approx(5 * math.log2(3))
    assert projection.passages_needed == 5


@pytest.mark.parametrize("target", [1_000_000, 500_000])
def test_project_nothing_needed_when_target_already_reached(target: int):
    since = hours(50)
    projection = project(
        Plating(since, 1_000_000),
        [(2.0, 48.0)],
        target_cells=target,
        reseeding_density_per_cm2=5_000.0,
    )
    assert projection.doublings_needed == 0.0
    assert projection.passages_needed == 0
    assert projection.expected_at == since


def test_project_refuses_without_recent_growth():
    with pytest.raises(ValueError, match="no recent growth"):
        project(
            Plating(T0, 1_000_000),
            [],
            target_cells=8_000_000,
            reseeding_density_per_cm2=5_000.0,
        )


@pytest.mark.parametrize(
    "recent",
    [
        [(2.0, 48.0), (0.0, 72.0)],
        [(1.0, 48.0), (-0.5, 48.0)],
        [(0.5, 48.0), (-1.0, 48.0), (0.2, 48.0)],
    ],
    ids=["last-passage-flat", "last-passage-shrank", "pooled-shrinking"],
)
def test_project_refuses_a_culture_that_stopped_growing(recent: list[tuple[float, float]]) -> None:
    with pytest.raises(NoProjection, match="not growing"):
        project(
            Plating(hours(0), 1_000_000), recent, target_cells=10**8, reseeding_density_per_cm2=5e3
        )


def test_project_refuses_growth_too_slow_for_the_horizon() -> None:
    """A doubling every 1,000 h needs ~10 doublings to reach 1e9: over a year away."""
    with pytest.raises(NoProjection, match="too slow"):
        project(
            Plating(hours(0), 1_000_000),
            [(0.1, 100.0)],
            target_cells=10**9,
            reseeding_density_per_cm2=5e3,
        )
