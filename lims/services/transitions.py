"""The one way a status changes: the lifecycle table decides, the audit trail records.

Whatever moves a culture, lot, vial or deviation calls change_status in the
transaction of the command that moves it. A change that carries others with
it (a lot's vials released with the lot) makes one call, and one entry, per
record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlmodel import Session

from lims import audit
from lims.domain.states import Lifecycle


class _Stateful(Protocol):
    status: str


def change_status(
    session: Session,
    lifecycle: Lifecycle,
    record: _Stateful,
    action: str,
    *,
    code: str,
    username: str,
    new: Mapping[str, Any] | None = None,
    reason: str | None = None,
    facts: Mapping[str, Any] | None = None,
    **detail: object,
) -> str:
    """Take `action` on the record if its lifecycle allows it; returns the status it left.

    `code` names the record in messages and in the trail; `new` adds to the entry's
    new value beside the status, `facts` feed the action's guards.
    """
    row = lifecycle.check(action, code=code, status=record.status, facts=facts, **detail)
    if row.target is None:
        raise ValueError(f"{lifecycle.kind}.{action} changes no status")
    left = record.status
    record.status = row.target
    session.add(record)
    audit.record(
        session,
        username=username,
        action=lifecycle.audit_action(action),
        entity_type=lifecycle.kind,
        entity_id=code,
        old={"status": left},
        new={"status": row.target, **(new or {})},
        reason=reason,
    )
    return left
