"""A lab for tests: a database with an admin (copied from a template) and its users.

The lab is a lims.scenario.Scenario on the tests' clock; Lab adds what tests ask of
it in their own words (users named after their role's test persona, one password).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

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
# A lab built by a fixture is kept, per test process, for the next test that asks for the same
# one; it is built again once its station session could be near its idle limit (30 min).
SNAPSHOT_MAX_AGE_SECONDS = 15 * 60
Built = TypeVar("Built")


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
    """A database made once per test process and copied into each test's: by default as
    `lims init` leaves it (schema at head, site records, the admin), its site settings
    hashing passwords at argon2's lowest cost.

    Migrating and initialising took most of a short test's time. SQLite copies the
    file; PostgreSQL replays, in the test's own schema, the statements that making it
    executed (those that succeeded), which gives the same rows, audit chain included.
    """

    sqlite_file: Path | None = None
    statements: list[tuple[str, Any, bool]] = field(default_factory=list)
    digest: str | None = None  # the SQLite file's SHA-256: a lab still holding it is untouched
    # PostgreSQL: the trail's length it leaves; a lab whose trail is no longer is untouched.
    audit_entries: int | None = None

    @classmethod
    def build(
        cls, directory: Path, database_url: str, make: Callable[[Settings], object] | None = None
    ) -> LabTemplate:
        """The database make(settings) leaves (by default `lims init`'s, with the admin)."""
        make = make or _initialise
        with station_environment(directory / "home", database_url):
            settings = load_settings(
                security=CHEAP_PASSWORD_HASHING,
                records={"late_entry_hours": TESTS_LATE_ENTRY_HOURS},
            )
            template = cls(sqlite_file=settings.sqlite_path)
            if template.sqlite_file is None:
                template._record_statements(settings, make)
                template.audit_entries = _audit_entries(settings)
            else:
                make(settings)
            db.dispose_engines()  # the last connection's close checkpoints the WAL away
            if template.sqlite_file is not None:
                template.digest = _digest(template.sqlite_file)
        return template

    def _record_statements(self, settings: Settings, make: Callable[[Settings], object]) -> None:
        from sqlalchemy import event

        def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
            self.statements.append((statement, parameters, rest[-1]))

        engine = db.engine_for(settings, create=True)
        event.listen(engine, "after_cursor_execute", record)
        try:
            make(settings)
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
            for statement, parameters, many in self._batched():
                if many:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters)
            connection.commit()
        finally:
            connection.close()

    def _batched(self) -> Iterator[tuple[str, Any, bool]]:
        """The statements, each run of those without parameters (the schema's DDL) joined
        into one: a round trip per statement was most of a replay's time."""
        plain: list[str] = []
        for statement, parameters, many in self.statements:
            if not many and not parameters:
                # Run with empty parameters the driver read %% as %; run without, it does not.
                plain.append(statement if parameters is None else statement.replace("%%", "%"))
                continue
            if plain:
                yield ";\n".join(plain), None, False
                plain = []
            yield statement, parameters, many
        if plain:
            yield ";\n".join(plain), None, False


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _audit_entries(settings: Settings) -> int:
    from sqlalchemy import text

    with db.engine_for(settings).connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM audit_entries")).scalar_one())


@dataclass(frozen=True)
class _Rows:
    """One PostgreSQL table's rows, as a snapshot keeps them."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _tables() -> list[Any]:
    from sqlmodel import SQLModel

    import lims.models  # noqa: F401 - every table in the metadata

    return list(SQLModel.metadata.sorted_tables)


def _read_rows(settings: Settings) -> tuple[_Rows, ...]:
    connection = db.engine_for(settings).raw_connection()
    try:
        cursor = connection.cursor()
        kept = []
        for table in _tables():
            columns = tuple(column.name for column in table.columns)
            cursor.execute(f'SELECT {", ".join(columns)} FROM "{table.name}"')
            kept.append(_Rows(table.name, columns, list(cursor.fetchall())))
        return tuple(kept)
    finally:
        connection.close()


def _write_rows(settings: Settings, snapshot: tuple[_Rows, ...]) -> None:
    """Every table as the snapshot holds it. In the replication role no trigger fires: the
    trail's append-only guard and the foreign keys (whose order has a cycle) stand aside
    while the rows a consistent database held are put back. Setting the role takes a
    superuser, as the tests' server user (postgres) is."""
    connection = db.engine_for(settings).raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SET LOCAL session_replication_role = replica")
        for kept in snapshot:  # a handful of rows each: DELETE is quicker than TRUNCATE
            cursor.execute(f'DELETE FROM "{kept.table}"')
        for kept in snapshot:
            if kept.rows:
                marks = ", ".join(["%s"] * len(kept.columns))
                cursor.executemany(
                    f'INSERT INTO "{kept.table}" ({", ".join(kept.columns)}) VALUES ({marks})',
                    kept.rows,
                )
            if "id" in kept.columns:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 1), "
                    f'MAX(id) IS NOT NULL) FROM "{kept.table}"',
                    (kept.table,),
                )
        connection.commit()
    finally:
        connection.close()


@dataclass(frozen=True)
class _Snapshot:
    """A lab as a fixture left it: its database (a copy of the SQLite file, or every
    PostgreSQL table's rows), its station's login and people, and what the fixture returned
    (rebound to each lab it is restored into)."""

    database: Path | tuple[_Rows, ...]
    token: str | None
    people: dict[str, Person]
    built: Any
    taken: float


_SNAPSHOTS: dict[tuple[str, str], _Snapshot] = {}


def _rebound(value: Any, lab: Lab) -> Any:
    """value with every reference to the lab it was built on pointing at `lab` instead."""
    if isinstance(value, Lab):
        return lab
    if hasattr(value, "__dataclass_fields__") and hasattr(value, "__dict__"):
        moved = copy.copy(value)
        for name, field_value in vars(value).items():
            object.__setattr__(moved, name, _rebound(field_value, lab))
        return moved
    if hasattr(value, "scenario") and hasattr(value, "__dict__"):  # a Bench and its kind
        moved = copy.copy(value)
        moved.__dict__.update(
            {name: _rebound(field_value, lab) for name, field_value in vars(value).items()}
        )
        return moved
    if isinstance(value, Scenario):
        return lab.scenario
    if isinstance(value, Settings):
        return lab.settings
    return value


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
        self._template = template
        template.copy_into(settings)
        self.scenario = Scenario(settings, CLOCK, {ADMIN.username: ADMIN})

    def built(self, name: str, build: Callable[[], Built]) -> Built:
        """What build() makes of this lab, which must be as the template left it: built once
        per test process and then restored, database, login and all, from a copy (SQLite's
        file; on PostgreSQL, every table's rows).

        Building the same lab step by step for every test took most of their time. A lab
        that was changed first is built as asked.
        """
        key = (name, self.settings.timezone)
        if not self._untouched():
            return build()
        saved = _SNAPSHOTS.get(key)
        if saved is not None and time.monotonic() - saved.taken < SNAPSHOT_MAX_AGE_SECONDS:
            if isinstance(saved.database, Path):
                target = self.settings.sqlite_path
                assert target is not None
                shutil.copyfile(saved.database, target)
            else:
                _write_rows(self.settings, saved.database)
            if saved.token is not None:
                auth.write_token(self.settings, saved.token)
            self.scenario.people = dict(saved.people)
            return _rebound(saved.built, self)  # type: ignore[no-any-return]
        result = build()
        _SNAPSHOTS[key] = self._snapshot(name, _rebound(result, self))  # a copy of its own
        return result

    def _untouched(self) -> bool:
        path = self.settings.sqlite_path
        if (
            self._spec_signer
            or self.scenario.people.keys() != {ADMIN.username}
            or auth.session_file(self.settings).exists()
        ):
            return False
        if path is None:
            return _audit_entries(self.settings) == self._template.audit_entries
        return (
            self._template.digest is not None
            and not Path(f"{path}-wal").exists()
            and _digest(path) == self._template.digest
        )

    def _snapshot(self, name: str, built: Any) -> _Snapshot:
        source = self.settings.sqlite_path
        database: Path | tuple[_Rows, ...]
        if source is None:
            database = _read_rows(self.settings)
        else:
            copy_path = self._template.sqlite_file
            assert copy_path is not None
            database = copy_path.with_name(f"snapshot-{name}-{uuid.uuid4().hex}.db")
            with (
                closing(sqlite3.connect(source)) as live,
                closing(sqlite3.connect(database)) as kept,
            ):
                live.backup(kept)  # a consistent copy, whatever the write-ahead log still holds
        session = auth.session_file(self.settings)
        return _Snapshot(
            database=database,
            token=session.read_text() if session.exists() else None,
            people=dict(self.scenario.people),
            built=built,
            taken=time.monotonic(),
        )

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
