"""A culture split from another culture's harvest carries its lineage on.

A split child is seeded from cells harvested at a passage of its parent (its source
passage). It is no fresh start: its passages are numbered on from the source passage,
so they count against the same passage limit, and its population doublings add to the
source passage's cumulative PD. The source harvest is shared: what the parent reseeded,
what every child was seeded with and what was frozen into bank vials together cannot
exceed what was harvested.

A culture thawed from a bank vial carries the lineage on in the same way, from the
passage whose harvest was frozen; its cells were drawn from that harvest when they were
frozen, so they are not drawn again when thawed.
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


def overdrawn(
    harvested: int, reseeded: int, split_off: Iterable[int], frozen: Iterable[int] = ()
) -> int:
    """How many cells more than the harvest its parent and children were seeded with and its
    bank vials hold (0: none)."""
    return max(0, reseeded + sum(split_off) + sum(frozen) - harvested)


def left_to_split(
    harvested: int, reseeded: int, split_off: Iterable[int], frozen: Iterable[int] = ()
) -> int:
    """Cells of a harvest not yet reseeded in the parent, seeded into a child nor frozen."""
    return max(0, harvested - reseeded - sum(split_off) - sum(frozen))
