"""What the bank shows: cryopreserved cells frozen from a harvest, where each vial is kept
and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.views import renamed
from lims.views.records import LateEntryView


@dataclass(frozen=True, kw_only=True)
class BankVialView:
    bank_vial_id: str
    culture_id: str
    patient: str
    passage_id: str  # the harvest its cells were frozen from
    passage_number: int  # what a culture thawed from it carries on
    cumulative_population_doublings: float  # at that harvest, carried on likewise
    cells: int
    medium: str | None
    frozen_at: datetime
    recorded_by: str = renamed("frozen_by")
    status: str
    position: str | None  # PATH:POSITION while stored; None once thawed or discarded
    thawed_into: str | None  # the culture it started
    thaw_viability: float | None  # %, counted after thawing
    ended_at: datetime | None  # thawed or discarded
    ended_by: str | None
    end_reason: str | None  # why it was discarded
    late_entry: bool  # its freeze or discard entered more than records.late_entry_hours late
    late_entries: list[LateEntryView]


@dataclass(frozen=True, kw_only=True)
class FreezeView:
    """Cells of a culture's latest harvest frozen into bank vials, and what is left of it."""

    culture_id: str
    passage_id: str
    frozen_at: datetime
    cells_per_vial: int
    cells: int  # frozen in all
    into: str  # the box
    # Cells of the harvest not reseeded, split into another culture nor frozen.
    left_in_harvest: int
    bank_vials: list[BankVialView]
