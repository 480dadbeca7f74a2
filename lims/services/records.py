"""The one way a bench record is created: stamped with who recorded it and when, and audited.

Patients, aspirates, reagent lots, cultures, passages, lots and retained samples each carry
recorded_at and recorded_by, and each is born with an entry in the trail
saying what it holds; both are written here, so they cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from lims import audit
from lims.auth import Actor
from lims.models import Aspirate, Culture, Lot, Passage, Patient, ReagentLot, RetainedSample
from lims.services import late_entries

Recorded = Patient | Aspirate | ReagentLot | Culture | Passage | Lot | RetainedSample


def subject(record: Recorded) -> audit.Subject:
    """What the trail calls a record: an aspirate goes by its DIN, a reagent lot by NAME:LOT."""
    if isinstance(record, Aspirate):
        return "aspirate", record.din
    if isinstance(record, ReagentLot):
        return "reagent_lot", f"{record.name}:{record.lot}"
    kind = {
        Patient: "patient",
        Culture: "culture",
        Passage: "passage",
        Lot: "lot",
        RetainedSample: "retained_sample",
    }[type(record)]
    return kind, record.code


def create(
    session: Session,
    record: Recorded,
    action: str,
    *,
    by: Actor,
    at: datetime,
    new: dict[str, Any],
    late_reason: str | None = None,
    stated_at: datetime | None = None,
) -> None:
    """Save a new record as recorded by `by` at `at`, with the entry saying what it holds,
    and, for a step dated `stated_at` that late_entries.reason_for found late, its mark.

    The record is flushed, so it has its id when this returns.
    """
    record.recorded_at, record.recorded_by = at, by.username
    audit.record_created(session, record, subject(record), action, by=by.username, new=new)
    if late_reason is not None:
        assert stated_at is not None, "a late entry states the time it is dated"
        late_entries.record(
            session,
            late_reason,
            action=action,
            subject=subject(record),
            at=stated_at,
            entered_at=at,
            by=by.username,
        )
