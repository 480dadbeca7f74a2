"""How a record shows that it was entered late (lims.services.late_entries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

LATE_ENTRY = "late entry"


@dataclass(frozen=True, kw_only=True)
class LateEntryView:
    action: str  # the step, as its audit entry names it (e.g. passage.log)
    at: datetime  # the time the step states
    entered_at: datetime  # when it was typed
    entered_by: str
    reason: str
