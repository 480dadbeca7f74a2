"""Late entries: a bench or vial step whose stated time (`--at`) lies more than
records.late_entry_hours before it is typed needs `--late-reason`, and is kept marked.

A step calls `reason_for` before it writes anything (so a missing reason refuses the
step cleanly), then `record` beside its own record, in the same transaction. The mark is
a late_entries row with an entry of its own in the step's record's trail.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from lims import audit
from lims.domain.timeliness import entered_late
from lims.errors import BadInput
from lims.models import LONG_TEXT_MAX, LateEntry
from lims.timeutil import show_time
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views.records import LateEntryView

FIELD = "late-reason"
ACTION = "late_entry.record"


def reason_for(
    uow: UnitOfWork, at: datetime, entered_at: datetime, late_reason: str | None
) -> str | None:
    """The reason to keep for a step dated `at` typed at `entered_at`; None when on time.

    A late step without a reason, or a reason given for a step on time, is bad input.
    """
    hours = uow.settings.records.late_entry_hours
    if not entered_late(at, entered_at, hours):
        if late_reason is not None:
            raise BadInput(
                FIELD,
                f"only for a step dated more than {hours:g} h before it is entered "
                f"(records.late_entry_hours); this one is dated {show_time(at, uow.tz)}",
            )
        return None
    if late_reason is None:
        raise BadInput(
            FIELD,
            f"required for a late entry: the step is dated {show_time(at, uow.tz)}, "
            f"more than {hours:g} h ago (records.late_entry_hours); give --late-reason TEXT",
        )
    return free_text(FIELD, late_reason, max_length=LONG_TEXT_MAX)


def record(
    session: Session,
    reason: str | None,
    *,
    action: str,
    subject: audit.Subject,
    at: datetime,
    entered_at: datetime,
    by: str,
) -> None:
    """Mark the step `action` on `subject` as entered late, when `reason_for` gave a reason."""
    if reason is None:
        return
    entity_type, entity_id = subject
    mark = LateEntry(
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        at=at,
        entered_at=entered_at,
        entered_by=by,
        reason=reason,
    )
    audit.record_created(
        session,
        mark,
        subject,
        ACTION,
        by=by,
        new={"action": action, "at": at, "entered_at": entered_at, "reason": reason},
    )


def marks(
    session: Session, entity_type: str, entity_ids: Iterable[str]
) -> dict[str, list[LateEntryView]]:
    """Every late entry on these records, oldest first, by record id."""
    wanted = list(entity_ids)
    found: dict[str, list[LateEntryView]] = {}
    if not wanted:
        return found
    rows = session.exec(
        select(LateEntry)
        .where(col(LateEntry.entity_type) == entity_type, col(LateEntry.entity_id).in_(wanted))
        .order_by(col(LateEntry.id))
    ).all()
    for row in rows:
        found.setdefault(row.entity_id, []).append(
            LateEntryView(
                action=row.action,
                at=row.at,
                entered_at=row.entered_at,
                entered_by=row.entered_by,
                reason=row.reason,
            )
        )
    return found
