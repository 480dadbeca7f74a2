"""A guided tour on a fresh database: what lims records, start to finish, so far."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from lims import audit, auth
from lims.config import Settings, load_settings
from lims.errors import RuleViolation
from lims.uow import unit_of_work

DEMO_USERS = (
    ("admin", "Ada Admin", "admin"),
    ("tech", "Tom Tech", "technician"),
    ("qa", "Quinn QA", "qa"),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: str
    password: str


@dataclass(frozen=True)
class DemoResult:
    settings: Settings
    users: list[DemoUser]
    trail: list[audit.AuditView]
    verification: audit.Verification


def demo_settings(directory: Path) -> Settings:
    directory = directory.resolve()
    return load_settings(home=directory, database_url=f"sqlite:///{directory / 'lims.db'}")


def run_demo(directory: Path) -> DemoResult:
    """Create the database in directory, its users, and walk through the work so far."""
    settings = demo_settings(directory)
    assert settings.sqlite_path is not None
    if settings.sqlite_path.exists():
        raise RuleViolation(
            f"{directory} already holds a lims database; give --dir a new or empty directory"
        )
    users = [
        DemoUser(name, full, role, secrets.token_urlsafe(12)) for name, full, role in DEMO_USERS
    ]
    admin, *staff = users

    auth.initialise(
        settings, username=admin.username, full_name=admin.full_name, password=admin.password
    )
    with unit_of_work(settings, authenticated=False) as uow:
        token, _ = auth.login(
            uow.session, settings, username=admin.username, password=admin.password
        )
    auth.write_token(settings, token)
    with unit_of_work(settings) as uow:
        for user in staff:
            auth.create_user(
                uow.session,
                settings,
                actor=uow.actor,
                username=user.username,
                full_name=user.full_name,
                role=user.role,
                password=user.password,
            )
    with unit_of_work(settings, authenticated=False) as uow:
        auth.logout(uow.session, settings)
    auth.remove_token(settings)

    with unit_of_work(settings, write=False, authenticated=False) as uow:
        verification = audit.verify(uow.session.connection())
        trail = audit.entries(uow.session)
    return DemoResult(settings, users, trail, verification)
