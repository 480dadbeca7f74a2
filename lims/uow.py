"""A unit of work: one command's transaction, its settings and the user it runs as.

It is the only way lims opens a transaction that writes: the schema is checked
(or brought to the newest), a lims older than the database's write format is
turned away, writers queue behind one another so each audit entry lands on the
chain's true head, the site's settings and specification in force are laid over
the station's, and the station's session is authenticated under them, all before
the command's own work.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from enum import Enum
from typing import TYPE_CHECKING

from sqlmodel import Session

from lims import auth, db, site
from lims.config import Settings, load_settings, warn_ignored_site_keys

if TYPE_CHECKING:
    from lims.views.database import Upgrade


class Schema(Enum):
    """What a unit of work asks of the database's schema before it begins."""

    CURRENT = "current"  # the newest this lims knows; anything else is refused
    ANY_KNOWN = "any known"  # an older one too: a backup is taken before `lims db upgrade`
    UPGRADE = "upgrade"  # brought to the newest, the database created if there is none


@dataclass
class UnitOfWork:
    session: Session
    settings: Settings
    actor: auth.Actor | None
    upgrade: Upgrade | None = None  # what Schema.UPGRADE did, from which revision to which
    # The versions of the site's records in settings; None before `lims init` stores them,
    # or on a schema older than the records (a backup before `lims db upgrade`).
    site_version: int | None = None
    spec_version: int | None = None

    @property
    def tz(self) -> tzinfo:
        return self.settings.tz

    def require(self, permission: str) -> auth.Actor:
        return auth.require(self.actor, permission)


@contextmanager
def unit_of_work(
    settings: Settings | None = None,
    *,
    write: bool = True,
    authenticated: bool = True,
    schema: Schema = Schema.CURRENT,
    while_password_change_due: bool = False,
) -> Iterator[UnitOfWork]:
    """Open the database, check its schema and the station's session, and hold one transaction.

    A command that saves anything is a writer: it queues behind other writers,
    so its audit entry lands on the chain's true head. A database that
    Schema.UPGRADE created is removed again if its first transaction fails.
    A user whose password must be changed is refused here, unless the command is one
    that may run meanwhile (while_password_change_due: `lims passwd`, `lims whoami`).
    """
    settings = settings or load_settings()
    creating = schema is Schema.UPGRADE and db.absent(settings)
    engine = db.engine_for(settings, create=schema is Schema.UPGRADE)
    try:
        # Authenticating restarts the session's idle clock: a write, even for a read-only command.
        upgrading = schema is Schema.UPGRADE
        writes = write or authenticated or upgrading
        with db.transaction(engine, write=writes, migrate=upgrading) as session:
            upgrade = db.upgrade_schema(session) if upgrading else None
            revision = db.SCHEMA_HEAD
            if schema is Schema.ANY_KNOWN:
                revision = db.check_known_schema(session, settings)
            elif schema is Schema.CURRENT:
                db.check_schema(session, settings)
            if write:
                db.serialise_writers(session)
            # An older schema has no write format yet: `lims db upgrade` brings it.
            if writes and revision == db.SCHEMA_HEAD:
                db.check_write_format(session, writer=write)
            records = site.InForce(settings, None, None)
            if revision == db.SCHEMA_HEAD:
                records = site.in_force(session, settings)
                if records.site_version is not None:
                    warn_ignored_site_keys(records.settings)
            settings = records.settings
            actor = (
                auth.authenticate(
                    session,
                    settings,
                    while_password_change_due=while_password_change_due,
                    older_schema=revision != db.SCHEMA_HEAD,
                )
                if authenticated
                else None
            )
            yield UnitOfWork(
                session, settings, actor, upgrade, records.site_version, records.spec_version
            )
    except BaseException:
        if creating:
            db.remove_sqlite_database(settings)
        raise
