"""What follow-up shows: an event in a patient's life after administration (`event record`,
`event list`, `patient show`, the batch record's follow-up section)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# What a serious adverse event the product may have caused calls for, besides a deviation.
EXPEDITED_REPORT = "an expedited safety report may be due (21 CFR 312.32; EU Regulation 536/2014)"


@dataclass(frozen=True, kw_only=True)
class EventView:
    event_id: int
    patient: str
    vial_id: str | None  # the vial it followed, when one was named
    lot_id: str | None  # that vial's lot
    kind: str  # adverse_event or observation
    severity: str | None  # an adverse event's grade: mild ... fatal
    serious: bool
    related: str | None  # to the product: unrelated, unlikely, possible, probable, definite
    description: str
    occurred_at: datetime
    recorded_at: datetime
    recorded_by: str
    deviations: list[int]  # the deviations it opened on the lots it may be related to
    # Serious and possibly related to the product: an IND safety report (21 CFR 312.32) or
    # a SUSAR report (EU Regulation 536/2014, Art. 42) may be due within days.
    expedited_report_may_be_due: bool
