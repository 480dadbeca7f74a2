"""The audit trail: an entry as `lims audit log` shows it, and what verifying the chain found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from lims.views import renamed


@dataclass(frozen=True, kw_only=True)
class AuditView:
    seq: int
    moment: datetime = renamed("at")
    username: str | None = renamed("user")
    action: str
    entity_type: str
    entity_id: str
    old: Any
    new: Any
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ChainVerification:
    """The outcome of a walk along the chain; when broken, head_* is the last good entry.

    Not the vial's verification (a scan against a patient): this one is the trail's.
    """

    json_properties: ClassVar[tuple[str, ...]] = ("intact",)

    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_seq is None
