"""A culture split from another culture's harvest carries its lineage on.

A split child is seeded from cells harvested at a passage of its parent (its source
passage). It is no fresh start: its passages are numbered on from the source passage,
so they count against the same passage limit, and its population doublings add to the
source passage's cumulative PD. The source harvest is shared: what the parent reseeded
and what every child was seeded with together cannot exceed what was harvested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Inheritance:
    """What a culture carries on from the passage it was seeded from (none: its own start)."""

    passage_number: int = 0
    cumulative_population_doublings: float = 0.0


FRESH_START = Inheritance()


def last_passage_number(own: Sequence[int], inherited: Inheritance) -> int:
    """The number of the culture's latest passage, counting those of its lineage."""
    return own[-1] if own else inherited.passage_number


def overdrawn(harvested: int, reseeded: int, split_off: Iterable[int]) -> int:
    """How many cells more than the harvest its parent and children were seeded with (0: none)."""
    return max(0, reseeded + sum(split_off) - harvested)


def left_to_split(harvested: int, reseeded: int, split_off: Iterable[int]) -> int:
    """Cells of a harvest not yet reseeded in the parent nor seeded into a child."""
    return max(0, harvested - reseeded - sum(split_off))
