"""When a record is contemporaneous (ALCOA+): a step typed long after the time it states
is a late entry, allowed only with a reason and marked wherever it is shown."""

from __future__ import annotations

from datetime import datetime, timedelta


def entered_late(at: datetime, entered_at: datetime, late_entry_hours: float) -> bool:
    """Whether a step dated `at` and typed at `entered_at` came more than the limit after."""
    return entered_at - at > timedelta(hours=late_entry_hours)
