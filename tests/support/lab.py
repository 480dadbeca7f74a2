"""A lab for tests: a database with an admin (copied from a template) and its users.

The lab is a lims.scenario.Scenario on the tests' clock; Lab adds what tests ask of
it in their own words (users named after their role's test persona, one password).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lims import auth, db
from lims.config import Settings, load_settings
from lims.scenario import STAFF, Clock, Person, Scenario, temporary
from lims.services import users
from lims.timeutil import utcnow
from lims.uow import UnitOfWork, unit_of_work

PASSWORD = "correct horse battery"
SPEC_SIGNER = "spec-qa"  # the QA user Lab.set_spec signs new specification versions as
ADMIN = Person(*STAFF[0], PASSWORD)
NOW = utcnow().replace(microsecond=0)
# Every test's aspirate was collected 30 days before the suite started: day(14) is two weeks in.
CLOCK = Clock(NOW - timedelta(days=30))
TEST_DATABASE_URL = os.environ.get("LIMS_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgres")
# argon2id at its lowest cost: tests log in and sign thousands of times. Each hash carries its
# parameters, so checking one is the same code path, only cheaper. The template lab's site
# settings (version 1 of its records) carry it; tests of the cost record a new version.
CHEAP_PASSWORD_HASHING = {"argon2_time_cost": 1, "argon2_memory_kib": 8, "argon2_parallelism": 1}
# Tests type a month of bench work at once, dated on the scenario's clock: the template lab
# takes them as contemporaneous. Tests of late entries set the site's limit back to 24 h.
TESTS_LATE_ENTRY_HOURS = 24 * 3650


@contextmanager
def station_environment(home: Path, database_url: str) -> Iterator[None]:
    """The environment every test runs in (see conftest.lims_env), for work outside a test."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("LIMS_") and name != "LIMS_TEST_DATABASE_URL":
                patch.delenv(name)
        patch.setenv("LIMS_HOME", str(home))
        patch.setenv("LIMS_DATABASE_URL", database_url)
        patch.setenv("LIMS_TIMEZONE", "Europe/Rome")
        yield


@dataclass
class LabTemplate:
    """A database as `lims init` leaves it (schema at head, site records, the admin), made once
    and copied; its site settings hash passwords at argon2's lowest cost.

    Migrating and initialising took most of a short test's time. SQLite copies the
    file; PostgreSQL replays, in the test's own schema, the statements that
    initialising executed (those that succeeded), which gives the same rows, audit chain included.
    """

    sqlite_file: Path | None = None
    statements: list[tuple[str, Any, bool]] = field(default_factory=list)

    @classmethod
    def build(cls, directory: Path, database_url: str) -> LabTemplate:
        with station_environment(directory / "home", database_url):
            settings = load_settings(
                security=CHEAP_PASSWORD_HASHING,
                records={"late_entry_hours": TESTS_LATE_ENTRY_HOURS},
            )
            template = cls(sqlite_file=settings.sqlite_path)
            if template.sqlite_file is None:
                template._record_statements(settings)
            else:
                _initialise(settings)
            db.dispose_engines()  # the last connection's close checkpoints the WAL away
        return template

    def _record_statements(self, settings: Settings) -> None:
        from sqlalchemy import event

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            self.statements.append((statement, parameters, rest[-1]))

        engine = db.engine_for(settings, create=True)
        event.listen(engine, "after_cursor_execute", record)
        try:
            _initialise(settings)
        finally:
            event.remove(engine, "after_cursor_execute", record)

    def copy_into(self, settings: Settings) -> None:
        target = settings.sqlite_path
        if target is not None:
            assert self.sqlite_file is not None
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(self.sqlite_file, target)
            target.chmod(0o600)
            return
        connection = db.engine_for(settings).raw_connection()
        try:
            cursor = connection.cursor()
            for statement, parameters, many in self.statements:
                if many:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters)
            connection.commit()
        finally:
            connection.close()


def _initialise(settings: Settings) -> None:
    Scenario.initialise(settings, [ADMIN], CLOCK)


def _actor(uow: UnitOfWork, username: str) -> auth.Actor:
    user = users.get_user(uow.session, username)
    assert user.id is not None
    return auth.Actor(user.id, user.username, user.full_name, user.role)


def _add_person(uow: UnitOfWork, person: Person) -> None:
    """The admin (uow's actor) adds person with a temporary password, and person then changes
    it to their own, as lims requires at a first login."""
    users.create_user(uow, **asdict(replace(person, password=temporary(person))))
    uow.actor = _actor(uow, person.username)
    users.change_password(uow, current=temporary(person), new=person.password)


class Lab:
    """A database with an admin, and helpers to add users and log in at this station."""

    def __init__(self, settings: Settings, template: LabTemplate) -> None:
        self.settings = settings
        self._spec_signer = False
        template.copy_into(settings)
        self.scenario = Scenario(settings, CLOCK, {ADMIN.username: ADMIN})

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.scenario.login(username, password)

    def add_user(self, username: str, role: str, password: str = PASSWORD) -> None:
        """Add a user as admin, who changes the admin's temporary password to `password` as
        at a first login; the station is left logged in as admin.

        Scenario.add_people logs each person in to change it; fixtures add users so often
        that here the change runs as the user, without a station session, in the admin's
        unit of work (each act audited as its own user's).
        """
        person = Person(username, username.title() + " Tester", role, password)
        self.login(ADMIN.username)
        with unit_of_work(self.settings) as uow:
            _add_person(uow, person)
        self.scenario.people[username] = person

    @contextmanager
    def acting_as(self, username: str) -> Iterator[UnitOfWork]:
        """A unit of work run as username without logging in at this station.

        For a test's setup (a new site record), which should leave no login session, no
        login audit entry and no station session behind.
        """
        with unit_of_work(self.settings, authenticated=False) as uow:
            uow.actor = _actor(uow, username)
            yield uow

    def set_site(self, **sections: dict[str, Any]) -> None:
        """Record new site settings as admin through `site set`, a version per key.

        e.g. lab.set_site(security={"lockout_threshold": 3}).
        """
        from lims.services import site

        for section, values in sections.items():
            for name, value in values.items():
                with self.acting_as("admin") as uow:
                    site.set_site(
                        uow, key=f"{section}.{name}", value=json.dumps(value), reason="test"
                    )

    def set_spec(self, tables: dict[str, dict[str, Any]]) -> None:
        """Approve a new specification version through `spec set`: tables by test, laid over
        the version in force, signed by a QA user of its own."""
        from lims.services import site

        if not self._spec_signer:
            signer = Person(SPEC_SIGNER, "Spec Signer", "qa", PASSWORD)
            with self.acting_as("admin") as uow:
                _add_person(uow, signer)
            self._spec_signer = True
        text = "\n".join(
            f"[release.{test}]\n"
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items())
            for test, table in tables.items()
        )
        file = self.settings.home / f"spec-{uuid.uuid4().hex}.toml"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
        with self.acting_as(SPEC_SIGNER) as uow:
            site.set_spec(uow, file=file, reason="test", password=PASSWORD)

    def audit_count(self) -> int:
        return len(self.scenario.audit_trail())
