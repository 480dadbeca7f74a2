"""Test isolation: every test gets its own LIMS_HOME and its own database.

The backend comes from LIMS_TEST_DATABASE_URL: unset (or sqlite) gives a
SQLite file under tmp_path; a PostgreSQL URL gives a fresh schema in that
database for each test, dropped afterwards.

Speed: a lab's site settings hash passwords with argon2id at its lowest cost
(tests that check the real cost record a new version), and a lab's database is
copied from one built once per test process rather than migrated and
initialised for every test.

Hypothesis runs without its per-example deadline: on a shared 2-core machine
under xdist an example can take longer than 200 ms for reasons of load alone,
and speed is measured by tests/benchmarks, not by timed tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

from lims import db
from lims.config import Settings, load_settings, normalise_database_url
from tests.support.lab import ON_POSTGRES, TEST_DATABASE_URL, Lab, LabTemplate
from tests.support.trail import new_trail

hypothesis_settings.register_profile("lims", deadline=None)
hypothesis_settings.load_profile("lims")


@cache
def _server() -> Engine:
    from sqlalchemy import create_engine

    return create_engine(normalise_database_url(TEST_DATABASE_URL))


def _new_schema() -> str:
    from sqlalchemy import text

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with _server().begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    return schema


def _drop_schema(schema: str) -> None:
    from sqlalchemy import text

    with _server().begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def _schema_url(schema: str) -> str:
    base = normalise_database_url(TEST_DATABASE_URL)
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'lims.db'}"
        return
    schema = _new_schema()
    yield _schema_url(schema)
    db.dispose_engines()
    _drop_schema(schema)


@pytest.fixture(scope="session")
def lab_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabTemplate]:
    """A database initialised with the lab's admin, built once per test process."""
    directory = tmp_path_factory.mktemp("template")
    if not ON_POSTGRES:
        yield LabTemplate.build(directory, f"sqlite:///{directory / 'lims.db'}")
        return
    schema = _new_schema()
    yield LabTemplate.build(directory, _schema_url(schema))
    _drop_schema(schema)


@pytest.fixture(scope="session")
def trail_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabTemplate]:
    """A database of an audit trail alone (tests.support.trail.new_trail), built once per test
    process: migrating a blank database for each audit test took most of its time."""
    directory = tmp_path_factory.mktemp("trail")
    if not ON_POSTGRES:
        yield LabTemplate.build(directory, f"sqlite:///{directory / 'lims.db'}", new_trail)
        return
    schema = _new_schema()
    yield LabTemplate.build(directory, _schema_url(schema), new_trail)
    _drop_schema(schema)


@pytest.fixture
def trail(settings: Settings, trail_template: LabTemplate) -> Settings:
    """The test's database: one whose trail holds the upgrade entry plus
    tests.support.trail.ENTRIES more."""
    trail_template.copy_into(settings)
    return settings


@pytest.fixture(autouse=True)
def lims_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[None]:
    """No test sees the developer's configuration, home, session or database."""
    for name in list(os.environ):
        if name.startswith("LIMS_") and name != "LIMS_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("LIMS_HOME", str(home))
    monkeypatch.setenv("LIMS_DATABASE_URL", database_url)
    monkeypatch.setenv("LIMS_TIMEZONE", "Europe/Rome")
    monkeypatch.chdir(tmp_path)
    yield
    db.dispose_engines()


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def lab(settings: Settings, lab_template: LabTemplate) -> Lab:
    return Lab(settings, lab_template)
