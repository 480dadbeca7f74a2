"""What a deviation shows: on a culture or a lot, open or closed by a QA signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class DeviationView:
    deviation_id: int
    subject: str  # the lot or culture it is on, or else the aspirate's DIN
    kind: str
    severity: str  # minor, major or critical
    criterion: str | None
    description: str
    status: str
    passage_id: str | None  # the passage's code, not its row
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    signed_by: str | None = None  # the closing signature's signer: "Full Name (username)"
    resolution: str | None
    outcome: str | None  # an out-of-specification result's: invalidated or confirmed
    waived: bool
    physician_request: str | None  # what a waiver of a confirmed failure rests on
    event_id: int | None  # the follow-up event that opened it: a serious adverse event
