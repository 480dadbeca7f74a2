"""The audit trail: an entry as `lims audit log` shows it, and what verifying the chain found."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from lims.views import hidden, renamed


@dataclass(frozen=True, kw_only=True)
class AuditView:
    seq: int
    moment: datetime = renamed("at")
    username: str | None = renamed("user")
    full_name: str | None  # the user's, looked up: the entry itself keeps only the user name
    action: str
    entity_type: str
    entity_id: str
    old: Any
    new: Any
    reason: str | None

    @property
    def who(self) -> str:
        """Full name and user name, as signatures show them; "lims" for what lims did itself."""
        if self.username is None:
            return "lims"
        if self.full_name is None:
            return self.username
        return f"{self.full_name} ({self.username})"


@dataclass(frozen=True, kw_only=True)
class Disagreement:
    """A bound row that is not what the audit trail last stated of it (lims.bindings).

    `id` is what the trail calls the row (a lot's or vial's code, a deviation's number, a
    user's name) or, for a row with no entity of its own (a QC result, a signature), its
    primary key; None for a row the trail records and the table lacks. `column` is None when
    the whole row is at odds: one the trail never recorded, or one it recorded that is gone.
    The values are for a logged-in user's refusal only: `audit verify` runs without a login.
    """

    table: str
    id: str | None
    column: str | None
    row_value: Any = hidden(default=None)
    trail_value: Any = hidden(default=None)
    detail: str = hidden(default="")

    def describe(self, *, values: bool) -> str:
        """Table, id and column; with values, what the row and the trail each say."""
        where = self.table if self.id is None else f"{self.table} {self.id}"
        if self.column is None:
            return f"{where}: {self.detail}"
        if not values:
            return f"{where} {self.column}"
        return (
            f"{where} {self.column}: the row says {_said(self.row_value)}, "
            f"the trail says {_said(self.trail_value)}"
        )


def _said(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, kw_only=True)
class ChainVerification:
    """The outcome of a walk along the chain; when broken, head_* is the last good entry.

    `disagreement` is the first bound row that differs from the trail (None: none does, or
    only the chain was checked). Not the vial's verification (a scan against a patient):
    this one is the trail's.
    """

    json_properties: ClassVar[tuple[str, ...]] = ("intact",)

    entries: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
    disagreement: Disagreement | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad_seq is None and self.disagreement is None
