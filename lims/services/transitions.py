"""The one way a status changes: the lifecycle table decides, the audit trail records.

Whatever moves a culture, lot, vial, deviation, piece of equipment, bank vial,
retained sample or shipment calls change_status in the
transaction of the command that moves it. A change that carries others with
it (a lot's vials released with the lot) makes one call, and one entry, per
record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from lims import audit
from lims.domain.states import Lifecycle
from lims.models import (
    BankVial,
    Culture,
    Deviation,
    Equipment,
    Lot,
    RetainedSample,
    Shipment,
    Vial,
)

Stateful = Culture | Lot | Vial | Deviation | Equipment | BankVial | RetainedSample | Shipment


def _trail_id(record: Stateful) -> str:
    """The id a record goes by in messages and in the trail: a deviation's is its number."""
    return str(record.id) if isinstance(record, Deviation) else record.code


def change_status(
    session: Session,
    lifecycle: Lifecycle,
    record: Stateful,
    action: str,
    *,
    by: str,
    new: Mapping[str, Any] | None = None,
    reason: str | None = None,
    facts: Mapping[str, Any] | None = None,
    **detail: object,
) -> str:
    """`by` takes `action` on the record if its lifecycle allows it; returns the status it left.

    `new` adds to the entry's new value beside the status, `facts` feed the action's guards.
    """
    code = _trail_id(record)
    row = lifecycle.check(action, code=code, status=record.status, facts=facts, **detail)
    if row.target is None:
        raise ValueError(f"{lifecycle.kind}.{action} changes no status")
    left = record.status
    record.status = row.target
    session.add(record)
    audit.record_about(
        session,
        (lifecycle.entity_type, code),
        lifecycle.audit_action(action),
        by=by,
        old={"status": left},
        new={"status": row.target, **(new or {})},
        reason=reason,
    )
    return left
