"""Reading the audit trail: entries for those who may read records.

Verifying the chain needs no session (it reveals only whether the trail is
intact) and is lims.audit.verify; reading what the entries say is this.
"""

from __future__ import annotations

from lims import audit
from lims.timeutil import parse_date_start
from lims.uow import UnitOfWork
from lims.views.trail import AuditView


def log(
    uow: UnitOfWork,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    username: str | None = None,
    since: str | None = None,
    last: int | None = None,
) -> list[AuditView]:
    """Entries matching every filter given, oldest first; `last` keeps only the newest N."""
    uow.require("read_records")
    return audit.entries(
        uow.session,
        entity_type=entity_type,
        entity_id=entity_id,
        username=username,
        since=parse_date_start("since", since, uow.tz) if since else None,
        last=last,
    )
