"""What an imported count shows (`count import`, `count list`, `count show`), and where a
step's numbers came from (passage table, `culture show`, `lot show`, the batch record)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from lims.domain.cell_counting import INSTRUMENTS
from lims.timeutil import show_time
from lims.views import to_json

TYPED = "typed"  # a step's numbers were typed, not taken from a count
SHA256_IN_TABLES = 12  # hex digits of a file's SHA-256 a table shows; JSON and the batch
# record have all 64


@dataclass(frozen=True, kw_only=True)
class CountView:
    count_id: str  # CNT-000123
    instrument: str  # lims.domain.cell_counting.INSTRUMENTS key
    model: str | None
    serial: str | None
    operator: str | None  # as written in the file
    analysed_at: datetime
    analysed_date_only: bool  # the file gives the day only; analysed_at is its start
    sample: str
    sample_name: str | None
    viable_per_ml: float
    total_per_ml: float | None
    viability: float
    diameter_um: float | None
    dilution: float | None
    status: str  # "ok" or the instrument's own status
    file_name: str
    file_sha256: str
    used_by: str | None  # the step that took its numbers, e.g. "passage A999926000001-C1-P2"
    used_at: datetime | None
    suspension_ml: float | None  # the volume its densities were multiplied by
    imported_at: datetime
    imported_by: str


@dataclass(frozen=True, kw_only=True)
class CountSource:
    """Where a step's numbers came from: a count, or typed at the bench (count_id None).

    A step's view holds one (source_keys): its JSON has `count_id` (null when typed) and
    `count`, this object (null when typed).
    """

    count_id: str | None
    instrument: str | None
    serial: str | None
    file_name: str | None
    file_sha256: str | None
    suspension_ml: float | None
    # What the count said, for the arithmetic to be checked: the step's cells are the
    # densities × suspension_ml.
    analysed_at: datetime | None
    analysed_date_only: bool | None
    viable_per_ml: float | None
    total_per_ml: float | None

    @property
    def typed(self) -> bool:
        return self.count_id is None

    @property
    def label(self) -> str:
        """For a table's column: the count's id, or typed."""
        return TYPED if self.count_id is None else self.count_id

    def described(self, zone: tzinfo, *, total: bool = False, sha256_digits: int = 64) -> str:
        """Where the numbers came from in a line: the count, its instrument, its file (its
        SHA-256's first sha256_digits) and the arithmetic, viable (or `total`) cells/mL ×
        the volume; or typed."""
        if self.count_id is None:
            return f"{TYPED} at the bench"
        assert self.file_sha256 is not None
        assert self.suspension_ml is not None
        instrument = INSTRUMENTS.get(self.instrument or "", self.instrument or "instrument")
        if self.serial:
            instrument += f" S/N {self.serial}"
        sha256 = self.file_sha256[:sha256_digits] + ("…" if sha256_digits < 64 else "")
        analysed = show_time(self.analysed_at, zone)
        if self.analysed_date_only:
            analysed = f"on {analysed[:10]} (day only)"
        per_ml = self.total_per_ml if total else self.viable_per_ml
        assert per_ml is not None
        return (
            f"count {self.count_id}: {instrument}, file {self.file_name} (SHA-256 {sha256}), "
            f"analysed {analysed}; {density(per_ml)} {'total' if total else 'viable'} "
            f"cells/mL × {volume(self.suspension_ml)} mL"
        )


def density(per_ml: float) -> str:
    """A count's cells/mL exactly as stored: a whole number grouped, anything else as is."""
    return f"{int(per_ml):,}" if per_ml.is_integer() else repr(per_ml)


def volume(ml: float) -> str:
    """A suspension's volume exactly as typed (1234.5678, not 1234.57): the step's cells are
    the density × this, and whoever checks the arithmetic needs every digit."""
    return format(Decimal(repr(ml)).normalize(), "f")


def source_keys(source: CountSource) -> dict[str, Any]:
    """A step's provenance in its JSON: the count's id and the count, or two nulls."""
    return {"count_id": source.count_id, "count": None if source.typed else to_json(source)}
