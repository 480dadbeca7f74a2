"""Growth kinetics of an expanding culture, derived from the counts (never typed).

A culture is plated (its start), then at each passage the cells plated at the
step before are harvested and some of them reseeded:

    population doublings   PD = log2(harvested / previously seeded)
    cumulative PD          the sum of PDs so far
    doubling time          hours since the previous seeding / PD
    fold expansion         harvested / previously seeded
    seeding density        reseeded / growth area (cells/cm²)

A primary culture plates mononuclear cells of which only a small fraction
adhere, so its first harvest has no PD: cumulative PD starts at 0 there and
counts from the next passage. A culture seeded from known cells counts from
its first harvest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Plating:
    """Cells put into vessels: the culture's start or a passage's reseeding."""

    at: datetime
    cells: int


@dataclass(frozen=True)
class Harvest:
    at: datetime
    harvested: int
    seeded: int
    area_cm2: float


@dataclass(frozen=True)
class Kinetics:
    population_doublings: float | None
    cumulative_population_doublings: float
    doubling_time_hours: float | None
    fold_expansion: float | None
    seeding_density_per_cm2: float


def kinetics(
    primary: bool,
    start: Plating,
    harvests: Sequence[Harvest],
    inherited_doublings: float = 0.0,
) -> list[Kinetics]:
    """The derived values of each harvest in order, from the culture's start; cumulative PD
    counts on from `inherited_doublings`, those of the harvest a split culture came from."""
    derived = []
    previous = start
    cumulative = inherited_doublings
    for index, harvest in enumerate(harvests):
        if primary and index == 0:
            doublings = fold = doubling_time = None
        else:
            fold = harvest.harvested / previous.cells
            doublings = math.log2(fold)
            cumulative += doublings
            hours = (harvest.at - previous.at).total_seconds() / SECONDS_PER_HOUR
            doubling_time = hours / doublings if doublings > 0 else None
        derived.append(
            Kinetics(
                population_doublings=doublings,
                cumulative_population_doublings=cumulative,
                doubling_time_hours=doubling_time,
                fold_expansion=fold,
                seeding_density_per_cm2=harvest.seeded / harvest.area_cm2,
            )
        )
        previous = Plating(harvest.at, harvest.seeded)
    return derived


@dataclass(frozen=True)
class Projection:
    """When a culture reaches a dose, if it keeps growing as it has lately."""

    target_cells: int
    cells_now: int  # seeded at the last passage
    since: datetime  # when they were seeded
    basis_passages: int  # how many recent passages the rates come from
    doubling_time_hours: float
    doublings_per_passage: float
    doublings_needed: float
    passages_needed: int
    expected_at: datetime
    area_cm2_at_last_reseeding: float


RECENT_PASSAGES = 3
HORIZON_HOURS = 365 * 24


class NoProjection(ValueError):
    """The recent growth gives no sensible projection."""


def project(
    last_plating: Plating,
    recent: Sequence[tuple[float, float]],
    *,
    target_cells: int,
    reseeding_density_per_cm2: float,
) -> Projection:
    """Project from recent (population doublings, hours) pairs, oldest first.

    Rates pool the recent passages (total PD over total hours) so a short
    passage does not weigh as much as a long one. Raises NoProjection when the
    culture has stopped growing or would take longer than the horizon.
    """
    if not recent:
        raise ValueError("no recent growth to project from")
    total_doublings = sum(doublings for doublings, _ in recent)
    total_hours = sum(hours for _, hours in recent)
    if recent[-1][0] <= 0 or total_doublings <= 0:
        raise NoProjection("the culture is not growing")
    doubling_time = total_hours / total_doublings
    per_passage = total_doublings / len(recent)
    needed = max(0.0, math.log2(target_cells / last_plating.cells))
    if needed * doubling_time > HORIZON_HOURS:
        raise NoProjection(
            f"growth is too slow: {needed * doubling_time / 24:,.0f} days at a doubling time of "
            f"{doubling_time:,.0f} h, beyond the {HORIZON_HOURS // 24} days lims projects"
        )
    passages = math.ceil(needed / per_passage - 1e-9) if needed > 0 else 0
    fold_per_passage = 2**per_passage
    return Projection(
        target_cells=target_cells,
        cells_now=last_plating.cells,
        since=last_plating.at,
        basis_passages=len(recent),
        doubling_time_hours=doubling_time,
        doublings_per_passage=per_passage,
        doublings_needed=needed,
        passages_needed=passages,
        expected_at=last_plating.at + timedelta(hours=needed * doubling_time),
        area_cm2_at_last_reseeding=target_cells / fold_per_passage / reseeding_density_per_cm2,
    )


# --- plausibility --------------------------------------------------------------------------


UNUSUAL_COUNT = "unusual_count"


def harvested_areas(start_area_cm2: float, reseeded_areas_cm2: Sequence[float]) -> list[float]:
    """The growth area each harvest came off: the culture's start area for the first, then
    the area reseeded at the passage before."""
    return [start_area_cm2, *reseeded_areas_cm2[:-1]][: len(reseeded_areas_cm2)]


def implausible(
    *,
    harvested: int,
    harvested_area_cm2: float,
    doubling_time_hours: float | None,
    max_harvest_density_per_cm2: float,
    min_doubling_time_hours: float,
) -> list[str]:
    """Why a harvest's counts are beyond what MSC can reach (a typo, unless confirmed).

    Fold expansion alone is no test: MSC seeded at a few cells/cm² really do expand several
    hundred-fold in one passage. Density at harvest and doubling time are.
    """
    reasons = []
    density = harvested / harvested_area_cm2
    if density > max_harvest_density_per_cm2:
        reasons.append(
            f"{harvested:,} cells harvested from {harvested_area_cm2:,g} cm² is "
            f"{density:,.0f} cells/cm², above expansion.max_harvest_density_per_cm2 "
            f"({max_harvest_density_per_cm2:,.0f})"
        )
    if doubling_time_hours is not None and doubling_time_hours < min_doubling_time_hours:
        reasons.append(
            f"a doubling time of {doubling_time_hours:.1f} h is below "
            f"expansion.min_doubling_time_hours ({min_doubling_time_hours:g} h)"
        )
    return reasons
