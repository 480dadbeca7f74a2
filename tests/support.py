"""Helpers for tests: run the CLI in-process, and set up a lab with users."""

from __future__ import annotations

import os
from dataclasses import dataclass

from typer.testing import CliRunner

from lims import auth
from lims.cli.app import app
from lims.config import Settings
from lims.uow import unit_of_work

PASSWORD = "correct horse battery"
TEST_DATABASE_URL = os.environ.get("LIMS_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str, input: str | None = None) -> Invocation:
    """Run `lims ARGS` in this process, as a user would from the shell."""
    result = CliRunner().invoke(app, list(args), input=input)
    return Invocation(result.exit_code, result.stdout, result.stderr)


class Lab:
    """A database with an admin, and helpers to add users and log in at this station."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        auth.initialise(settings, username="admin", full_name="Ada Admin", password=PASSWORD)

    def login(self, username: str, password: str = PASSWORD) -> None:
        with unit_of_work(self.settings, authenticated=False) as uow:
            token, _ = auth.login(uow.session, self.settings, username=username, password=password)
        auth.write_token(self.settings, token)

    def add_user(self, username: str, role: str, password: str = PASSWORD) -> None:
        """Add a user as admin; the station is left logged in as admin."""
        self.login("admin")
        with unit_of_work(self.settings) as uow:
            auth.create_user(
                uow.session,
                self.settings,
                actor=uow.actor,
                username=username,
                full_name=username.title() + " Tester",
                role=role,
                password=password,
            )

    def audit_count(self) -> int:
        from lims import audit

        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            return len(audit.entries(uow.session))
