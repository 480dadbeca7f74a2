"""A sick database gives a clear message: read-only, full disk, locked, damaged, unreachable.

Each case runs a writing command the way a user would and expects one line on
stderr that says what is wrong, exit 5 (the database is unavailable), no
traceback, and nothing saved. (A missing database and one from a newer lims:
tests/system/test_migrations.py.) Every branch of the error boundary
(lims.cli.errors.describe) is checked on constructed errors in
tests/cli/test_errors.py, where an error that is none of these conditions is a
bug, exit 70.

The read-only and full-disk cases use the real conditions: an immutable file
(chattr +i) and a small tmpfs filled to the brim in a private mount namespace.
Both need root; where the machine cannot make them, the test is skipped and
says so, and an in-process stand-in (query_only, max_page_count) still checks
the message for the same SQLite error.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lims import db
from lims.cli.errors import UNAVAILABLE
from lims.config import Settings
from tests.support.cli import invoke
from tests.support.lab import ON_POSTGRES, Lab

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="a SQLite file's conditions")
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="a PostgreSQL server's conditions")
DUMP_SCRIPT = 'import sqlite3, sys; print(*sqlite3.connect(sys.argv[1]).iterdump(), sep="\\n")'
PATIENT_ADD = (
    "patient",
    "add",
    "PT-0042",
    "--initials",
    "AB",
    "--birth-year",
    "1960",
    "--consent-date",
    "2020-01-15",
)


@pytest.fixture
def tech_lab(lab: Lab) -> Lab:
    lab.add_user("tom", "technician")
    lab.login("tom")
    return lab


def dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def run_lims(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lims", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def assert_one_line(stderr: str, *expected: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for fragment in expected:
        assert fragment in lines[0], stderr


def _tool(name: str) -> str:
    return shutil.which(name) or name


def _can(*command: str) -> bool:
    """Whether this machine lets the test make the condition (root, the tool, the kernel)."""
    return (
        os.geteuid() == 0
        and shutil.which(command[0]) is not None
        and subprocess.run([_tool(command[0]), *command[1:]], capture_output=True).returncode == 0
    )


@sqlite_only
def test_a_read_only_database_file_is_named_not_a_traceback(
    tech_lab: Lab, settings: Settings
) -> None:
    db.dispose_engines()
    assert settings.sqlite_path is not None
    before = dump(settings.sqlite_path)
    if not _can("chattr", "+i", str(settings.sqlite_path)):
        pytest.skip("chattr +i is not available here (needs root and an ext4-like file system)")
    try:
        finished = run_lims(*PATIENT_ADD)
    finally:
        subprocess.run([_tool("chattr"), "-i", str(settings.sqlite_path)], check=False)
    assert finished.returncode == UNAVAILABLE
    assert_one_line(finished.stderr, "cannot be written", "read-only")
    assert dump(settings.sqlite_path) == before


@sqlite_only
def test_a_query_only_connection_gets_the_read_only_message(
    tech_lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same SQLITE_READONLY error, made in-process where chattr is not available."""
    db.dispose_engines()
    monkeypatch.setattr(db, "_SQLITE_PRAGMAS", (*db._SQLITE_PRAGMAS, "PRAGMA query_only=ON"))
    result = invoke(*PATIENT_ADD)
    assert result.exit_code == UNAVAILABLE
    assert_one_line(result.stderr, "cannot be written", "read-only")


@sqlite_only
def test_a_full_disk_is_named_and_nothing_is_saved(tech_lab: Lab, settings: Settings) -> None:
    """A 4 MB tmpfs in a private mount namespace, filled to the last byte, holds the database."""
    if not _can("unshare", "-m", "true"):
        pytest.skip("unshare -m is not available here (needs root)")
    db.dispose_engines()
    assert settings.sqlite_path is not None
    disk = settings.sqlite_path.parent / "disk"
    disk.mkdir()
    folder = settings.sqlite_path.parent
    dump_to = f"{sys.executable} -c '{DUMP_SCRIPT}' {disk}/lims.db >"
    script = textwrap.dedent(
        f"""
        set -e
        mount -t tmpfs -o size=4m tmpfs {disk}
        cp {settings.sqlite_path} {disk}/lims.db
        {dump_to} {disk}/before.sql
        dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null || true
        export LIMS_DATABASE_URL=sqlite:///{disk}/lims.db
        set +e
        {sys.executable} -m lims {" ".join(PATIENT_ADD)} 2> {folder}/stderr
        echo $? > {folder}/code
        set -e
        rm {disk}/filler
        {dump_to} {disk}/after.sql
        cmp {disk}/before.sql {disk}/after.sql
        """
    )
    finished = subprocess.run([_tool("unshare"), "-m", "bash", "-c", script], capture_output=True)
    assert finished.returncode == 0, finished.stderr.decode()
    assert (folder / "code").read_text().strip() == str(UNAVAILABLE)
    assert_one_line((folder / "stderr").read_text(), "disk")


@sqlite_only
def test_a_database_at_its_size_limit_gets_the_full_message(
    tech_lab: Lab, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_FULL made in-process: the database may not grow by a single page."""
    db.dispose_engines()
    assert settings.sqlite_path is not None
    pages = sqlite3.connect(settings.sqlite_path).execute("PRAGMA page_count").fetchone()[0]
    limit = f"PRAGMA max_page_count={pages}"
    monkeypatch.setattr(db, "_SQLITE_PRAGMAS", (*db._SQLITE_PRAGMAS, limit))
    for number in range(1000):  # until a page is needed that the limit does not allow
        before = dump(settings.sqlite_path)
        result = invoke(
            "patient", "add", f"PT-{number:04d}", "--initials", "AB", "--birth-year", "1960",
            "--consent-date", "2020-01-15", "--study", "x" * 100,
        )  # fmt: skip
        if result.exit_code != 0:
            break
    assert result.exit_code == UNAVAILABLE
    assert_one_line(result.stderr, "the disk holding the database is full")
    db.dispose_engines()
    assert dump(settings.sqlite_path) == before


@sqlite_only
def test_a_database_held_too_long_by_another_station_says_busy(
    tech_lab: Lab, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stations wait for each other (10 s); past that, one clear line, not "database is locked"."""
    db.dispose_engines()
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    pragmas = tuple(p for p in db._SQLITE_PRAGMAS if "busy_timeout" not in p)
    monkeypatch.setattr(db, "_SQLITE_PRAGMAS", (*pragmas, "PRAGMA busy_timeout=200"))
    assert settings.sqlite_path is not None
    other_station = sqlite3.connect(settings.sqlite_path, isolation_level=None)
    other_station.execute("BEGIN IMMEDIATE")
    try:
        result = invoke(*PATIENT_ADD)
    finally:
        other_station.execute("ROLLBACK")
        other_station.close()
    assert result.exit_code == UNAVAILABLE
    assert_one_line(result.stderr, "the database is busy", "try again")
    assert "locked" not in result.stderr


@sqlite_only
def test_a_file_that_is_not_a_database_is_named(settings: Settings) -> None:
    assert settings.sqlite_path is not None
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    settings.sqlite_path.write_bytes(b"these are somebody's notes, not a database\n" * 100)
    finished = run_lims(*PATIENT_ADD)
    assert finished.returncode == UNAVAILABLE
    assert_one_line(finished.stderr, "not a SQLite database")


@sqlite_only
def test_a_damaged_database_points_to_the_backup(tech_lab: Lab, settings: Settings) -> None:
    db.dispose_engines()
    assert settings.sqlite_path is not None
    data = bytearray(settings.sqlite_path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data), page):  # every page after the schema's
        data[offset : offset + 64] = b"\xff" * 64
    settings.sqlite_path.write_bytes(bytes(data))
    finished = run_lims(*PATIENT_ADD)
    assert finished.returncode == UNAVAILABLE
    assert_one_line(finished.stderr)


def test_an_unreachable_postgresql_server_is_named() -> None:
    env = {**os.environ, "LIMS_DATABASE_URL": "postgresql://postgres:s3cret@127.0.0.1:1/lims"}
    finished = run_lims(*PATIENT_ADD, env=env)
    assert finished.returncode == UNAVAILABLE
    assert_one_line(finished.stderr, "cannot open the database")
    assert "s3cret" not in finished.stderr


@postgres_only
def test_a_read_only_postgresql_database_is_named(
    tech_lab: Lab, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on a hot standby: every transaction of this connection is read-only."""
    db.dispose_engines()
    monkeypatch.setenv(
        "LIMS_DATABASE_URL", f"{database_url}%20-cdefault_transaction_read_only%3Don"
    )
    result = invoke(*PATIENT_ADD)
    assert result.exit_code == UNAVAILABLE
    assert_one_line(result.stderr, "cannot be written", "read-only transaction")
    db.dispose_engines()
    monkeypatch.setenv("LIMS_DATABASE_URL", database_url)
    assert invoke("patient", "show", "PT-0042").exit_code == 3
