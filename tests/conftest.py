"""Test isolation: every test gets its own LIMS_HOME and its own database.

The backend comes from LIMS_TEST_DATABASE_URL: unset (or sqlite) gives a
SQLite file under tmp_path; a PostgreSQL URL gives a fresh schema in that
database for each test, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lims import db
from lims.config import Settings, load_settings, normalise_database_url
from tests.support import ON_POSTGRES, TEST_DATABASE_URL, Lab


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if not ON_POSTGRES:
        yield f"sqlite:///{tmp_path / 'lims.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(normalise_database_url(TEST_DATABASE_URL))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in TEST_DATABASE_URL else "?"
    base = normalise_database_url(TEST_DATABASE_URL)
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    db.dispose_engines()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


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
def lab(settings: Settings) -> Lab:
    return Lab(settings)
