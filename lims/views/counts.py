"""What an imported count shows (`count import`, `count list`, `count show`), and where a
step's numbers came from (passage table, `culture show`, `lot show`, the batch record)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TYPED = "typed"  # a step's numbers were typed, not taken from a count


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
    """Where a step's numbers came from: a count, or typed at the bench (count_id None)."""

    count_id: str | None
    instrument: str | None
    serial: str | None
    file_name: str | None
    file_sha256: str | None
    suspension_ml: float | None

    @property
    def typed(self) -> bool:
        return self.count_id is None
