"""The database itself: its schema revision, an upgrade, a backup and a restore."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lims.views import hidden, inline, renamed, shown_as


@dataclass(frozen=True, kw_only=True)
class SchemaState:
    """`lims db current`: the database's schema revision and the newest this lims knows,
    and the write format of this lims against the lowest the database accepts."""

    json_properties: ClassVar[tuple[str, ...]] = ("up_to_date",)

    database: str  # the SQLite file, or the server's URL with its password masked
    current: str | None  # None: a blank database
    head: str
    write_format: int  # what this lims writes
    minimum_write_format: int | None  # the lowest the database lets write; None: not recorded

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True, kw_only=True)
class Upgrade:
    """What bringing the schema to the newest did: from which revision (None: blank) to which."""

    from_revision: str | None = renamed("from")
    to_revision: str = renamed("to")


@dataclass(frozen=True, kw_only=True)
class CopyFacts:
    """What a database file that passed every check holds."""

    audit_entries: int
    head_hash: str
    revision: str


def _database(path: Path) -> dict[str, str]:
    return {"database": str(path)}


@dataclass(frozen=True, kw_only=True)
class BackupResult:
    path: Path = shown_as(lambda path: {"file": str(path)}, merged=True)
    size: int = renamed("bytes")
    sha256: str
    facts: CopyFacts = inline()


@dataclass(frozen=True, kw_only=True)
class LiveDatabase:
    """The configured database as a restore finds it."""

    json_properties: ClassVar[tuple[str, ...]] = ("healthy",)

    path: Path = shown_as(_database, merged=True)
    exists: bool = renamed("existed")
    problem: str | None = None
    revision: str | None = hidden(default=None)
    audit_entries: int | None = None
    head_hash: str | None = None

    @property
    def healthy(self) -> bool:
        """Present, intact and at a schema this lims knows: replacing it needs an admin."""
        return self.exists and self.problem is None


def _backup_facts(facts: CopyFacts) -> dict[str, object]:
    return {"backup_audit_entries": facts.audit_entries, "backup_head_hash": facts.head_hash}


@dataclass(frozen=True, kw_only=True)
class RestorePlan:
    """A checked backup about to replace the live database; shown before confirming.

    Its JSON is the first part of the restore's: the database replaced and the backup's facts.
    """

    replaces: LiveDatabase = shown_as(lambda live: _database(live.path), merged=True)
    source: Path = shown_as(str)
    sha256: str
    size: int = renamed("bytes")
    facts: CopyFacts = shown_as(_backup_facts, merged=True)
    restored_by: str = hidden()
    authorised: str = hidden()  # how: the station's admin session, or a backup admin's password


@dataclass(frozen=True, kw_only=True)
class RestoreResult:
    """The plan carried out: the restored trail, the schema it is at, the sessions it ended."""

    json_properties: ClassVar[tuple[str, ...]] = ("restored_by", "replaced")

    plan: RestorePlan = inline()
    audit_entries: int
    head_hash: str
    revision: str
    upgraded_from: str | None  # the backup's older schema, None if it was the newest
    sessions_ended: int

    @property
    def restored_by(self) -> str:
        return self.plan.restored_by

    @property
    def replaced(self) -> LiveDatabase:
        return self.plan.replaces
