"""A unit of work: one command's transaction, its settings and the user it runs as."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo

from sqlmodel import Session

from lims import auth, db
from lims.config import Settings, load_settings


@dataclass
class UnitOfWork:
    session: Session
    settings: Settings
    actor: auth.Actor | None

    @property
    def tz(self) -> tzinfo:
        return self.settings.tz

    def require(self, permission: str) -> auth.Actor:
        return auth.require(self.actor, permission)


@contextmanager
def unit_of_work(
    settings: Settings | None = None, *, write: bool = True, authenticated: bool = True
) -> Iterator[UnitOfWork]:
    """Open the database, check its schema and the station's session, and hold one transaction.

    A command that saves anything is a writer: it queues behind other writers,
    so its audit entry lands on the chain's true head.
    """
    settings = settings or load_settings()
    engine = db.engine_for(settings)
    # Authenticating restarts the session's idle clock: a write, even for a read-only command.
    with db.transaction(engine, write=write or authenticated) as session:
        db.check_schema(session, settings)
        if write:
            db.serialise_writers(session)
        actor = auth.authenticate(session, settings) if authenticated else None
        yield UnitOfWork(session, settings, actor)
