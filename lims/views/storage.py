"""What the storage commands show: locations and what they hold, and the items kept in them.

A stored item (a bank vial or a retained sample) is shown the same way wherever it
appears: a box's grid and legend, `storage find`, `sample list`, the bank commands, `lot
show` and `patient show`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.views import hidden, inline

BANK_VIAL, RETAINED_SAMPLE = "bank_vial", "retained_sample"


@dataclass(frozen=True, kw_only=True)
class StoredItem:
    """A bank vial or a retained sample: what it is, whose, and where it is kept."""

    item: str  # its id, e.g. A999926000001-C1-B01
    item_kind: str  # bank_vial or retained_sample
    short: str = hidden()  # what a box's grid shows of its id: the part after the DIN
    status: str
    patient: str
    culture_id: str  # the culture frozen, or the culture the sample's lot was made from
    lot_id: str | None  # a retained sample's lot
    cells: int | None  # a bank vial's cells
    place: str | None  # PATH:POSITION, as `storage move` takes it; None once out of storage
    path: str | None  # the box it is in
    position: str | None  # its position in the box, e.g. A1
    placed_at: datetime | None  # since when it is in that position
    stored_at: datetime  # when it was frozen or retained
    stored_by: str
    ended_at: datetime | None  # when it left storage (thawed, discarded, removed)
    ended_by: str | None
    end_reason: str | None
    late_entry: bool  # frozen or retained more than records.late_entry_hours before typed

    @property
    def of(self) -> str:
        """What it was made from, as a table names it: a sample's lot, a bank vial's culture."""
        return self.lot_id or self.culture_id


@dataclass(frozen=True, kw_only=True)
class LocationView:
    """A storage location; for a box, its grid. Capacity and occupancy count the positions of
    the boxes at or under it."""

    path: str
    kind: str
    rows: int | None
    columns: int | None
    temperature_c: float | None
    capacity: int  # positions in the boxes at or under it
    occupied: int  # items in them
    added_at: datetime
    added_by: str

    @property
    def grid(self) -> str | None:
        return None if self.rows is None else f"{self.rows} × {self.columns}"

    @property
    def occupancy(self) -> str | None:
        """How full its boxes are, as a table says it."""
        if not self.capacity:
            return None
        return f"{self.occupied} of {self.capacity}"


@dataclass(frozen=True, kw_only=True)
class LocationDetail:
    """A location and what it holds: a box its items by position, any other its children."""

    location: LocationView = inline()
    positions: list[StoredItem]  # the items in a box, in row-major order of their positions
    children: list[LocationView]  # the locations directly inside it


@dataclass(frozen=True, kw_only=True)
class Retention:
    """Samples of a lot retained in one go, each in its position."""

    lot_id: str
    samples: list[StoredItem]


@dataclass(frozen=True, kw_only=True)
class Moved:
    """An item moved, and where it was before."""

    item: StoredItem = inline()
    moved_from: str
