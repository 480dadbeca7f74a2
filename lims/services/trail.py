"""Reading the audit trail: entries for those who may read records.

Verifying the chain needs no session (it reveals only whether the trail is
intact) and is lims.audit.verify; reading what the entries say is this.
"""

from __future__ import annotations

from typing import Unpack

from lims import audit
from lims.timeutil import parse_date_start
from lims.uow import UnitOfWork
from lims.views.trail import AuditView


def log(
    uow: UnitOfWork, *, since: str | None = None, **filters: Unpack[audit.Filters]
) -> list[AuditView]:
    """Entries matching every filter given, oldest first; `since` is a date as typed."""
    uow.require("read_records")
    since_moment = parse_date_start("since", since, uow.tz) if since else None
    return audit.entries(uow.session, since=since_moment, **filters)
