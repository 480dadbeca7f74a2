"""Stations at once: every passage lands, DINs stay gap-free, the chain verifies, no lock errors.

Eight station processes, each with its own session and technician, receive
aspirates, start cultures and log passages at the same moment on the backend
under test. Writers queue (BEGIN IMMEDIATE and a busy timeout on SQLite, a row
lock on the audit head on PostgreSQL), so none of them may see "database is
locked" or a serialization error. The benchmark runs the same with 400 passages.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from lims import db
from lims.config import load_settings
from tests import stations

HOLD_SECONDS = 3.0


def test_eight_stations_at_once_lose_nothing(database_url: str, tmp_path: Path) -> None:
    outcome = stations.run(database_url, tmp_path, stations=8, cultures=2, passages=3)

    assert outcome.failures == []
    assert outcome.passages == outcome.passage_audits == 8 * 2 * 3
    assert outcome.aspirates == 8 * 2
    assert outcome.din_sequences == list(range(1, 17))
    assert outcome.audit_intact, outcome.audit_problem
    assert outcome.ok


def test_a_station_waits_for_a_long_writer_instead_of_failing(
    database_url: str, tmp_path: Path
) -> None:
    """Another writer holds the write lock for seconds: the station queues, then lands."""
    environments = stations.prepare(database_url, tmp_path, stations=1)
    holder = db.engine_for(load_settings(home=tmp_path / "holder", database_url=database_url))
    held, released = threading.Event(), []

    def hold_the_write_lock() -> None:
        with db.transaction(holder, write=True) as session:
            session.execute(text("SELECT 1"))
            db.serialise_writers(session)
            held.set()
            time.sleep(HOLD_SECONDS)
            released.append(time.monotonic())

    thread = threading.Thread(target=hold_the_write_lock)
    thread.start()
    assert held.wait(10)
    finished = subprocess.run(
        [sys.executable, "-m", "tests.stations", "0", "1", "1"],
        env=environments[0],
        cwd=stations.REPOSITORY,
        capture_output=True,
        text=True,
    )
    landed = time.monotonic()
    thread.join()

    assert (finished.returncode, finished.stderr) == (0, "")
    assert landed > released[0]
