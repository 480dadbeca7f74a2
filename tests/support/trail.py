"""An audit trail to check and to tamper with, as an attacker with database access would."""

from __future__ import annotations

from sqlalchemy import text

from lims import audit, db
from lims.config import Settings
from lims.uow import Schema, unit_of_work
from lims.views.trail import ChainVerification

ENTRIES = 6


def _append(settings: Settings, count: int, *, reason: str | None = None) -> None:
    with unit_of_work(settings, authenticated=False) as uow:
        for number in range(count):
            audit.record(
                uow.session,
                username="tech",
                action="test.step",
                entity_type="thing",
                entity_id=f"T{number}",
                old={"value": number},
                new={"value": number + 1},
                reason=reason,
            )


def _verify(settings: Settings) -> ChainVerification:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.verify(uow.session.connection())


def _tamper(settings: Settings, *statements: str, **params: object) -> None:
    """Change the trail as an attacker with database access would: triggers dropped first."""
    drop = {
        "sqlite": [
            "DROP TRIGGER IF EXISTS audit_entries_no_update",
            "DROP TRIGGER IF EXISTS audit_entries_no_delete",
        ],
        "postgresql": ["DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries"],
    }
    engine = db.engine_for(settings)
    with engine.begin() as connection:
        for statement in [*drop[engine.dialect.name], *statements]:
            connection.execute(text(statement), params)


def new_trail(settings: Settings) -> Settings:
    """A database whose trail holds the upgrade entry plus ENTRIES more."""
    with unit_of_work(settings, authenticated=False, schema=Schema.UPGRADE):
        pass
    _append(settings, ENTRIES)
    return settings
