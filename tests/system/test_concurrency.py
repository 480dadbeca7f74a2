"""Stations at once: every passage lands, DINs stay gap-free, the chain verifies, no lock errors.

Eight station processes, each with its own session and technician, receive
aspirates, start cultures and log passages at the same moment on the backend
under test. Writers queue (BEGIN IMMEDIATE and a busy timeout on SQLite, a row
lock on the audit head on PostgreSQL), so none of them may see "database is
locked" or a serialization error. The benchmark runs the same with 400 passages.

Below them, the two sequences that must stay whole under concurrent writers on
their own: DINs handed out by the aspirate service, and the audit chain.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from lims import audit, db
from lims.config import Settings, load_settings
from lims.models import LoginSession
from lims.services import aspirates
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support import stations
from tests.support.bench import Bench
from tests.support.cli import invoke
from tests.support.lab import Lab
from tests.support.trail import ENTRIES, _verify

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
        [sys.executable, "-m", "tests.support.stations", "0", "1", "1"],
        env=environments[0],
        cwd=stations.REPOSITORY,
        capture_output=True,
        text=True,
    )
    landed = time.monotonic()
    thread.join()

    assert (finished.returncode, finished.stderr) == (0, "")
    assert landed > released[0]


def test_a_reader_ending_an_expired_session_does_not_deadlock_a_writer(lab: Lab) -> None:
    """The reader ends the session on record: it must queue for the chain's head like a writer.

    Taking the session row first and the head second, it deadlocked (PostgreSQL aborted
    one side) against a writer holding the head and touching the same session row.
    """
    lab.add_user("tom", "technician")
    lab.login("tom")
    with unit_of_work(lab.settings, authenticated=False) as uow:
        for login in uow.session.exec(select(LoginSession)).all():
            login.last_seen_at = utcnow() - timedelta(days=1)
            uow.session.add(login)
    writer = db.engine_for(
        load_settings(home=lab.settings.home, database_url=lab.settings.database_url)
    )
    held, failures = threading.Event(), []

    def write_holding_the_head() -> None:
        try:
            with db.transaction(writer, write=True) as session:
                session.execute(text("SELECT 1"))
                db.serialise_writers(session)
                held.set()
                time.sleep(HOLD_SECONDS)
                session.execute(text("UPDATE login_sessions SET last_seen_at = last_seen_at"))
        except Exception as error:
            failures.append(error)

    thread = threading.Thread(target=write_holding_the_head)
    thread.start()
    assert held.wait(10)
    result = invoke("patient", "list")
    thread.join()

    assert failures == []
    assert result.exit_code == 4, result.stderr
    assert "session expired" in result.stderr


# --- DINs: stations receiving aspirates through the service at once ----------------------------


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return Bench(lab)


_RECEIVER = """
import sys
from datetime import datetime, timedelta, timezone
from lims.services import aspirates
from lims.uow import unit_of_work
collected = datetime.now(timezone.utc) - timedelta(days=1)
for _ in range(int(sys.argv[1])):
    with unit_of_work() as uow:
        aspirates.receive(uow, patient="PT-0001",
                          collected_at=collected, volume_ml=25)
"""


@pytest.mark.slow
def test_stations_receiving_at_once_get_unique_gap_free_dins(bench: Bench) -> None:
    bench.patient()
    stations, each = 4, 6
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _RECEIVER, str(each)],
            env=dict(os.environ),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(stations)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=180)
        assert process.returncode == 0, errors
    received = bench.read(aspirates.list_aspirates)
    assert sorted(view.din.sequence for view in received) == list(range(1, stations * each + 1))
    with unit_of_work(bench.settings, write=False, authenticated=False) as uow:
        assert audit.verify(uow.session.connection()).intact


# --- the audit chain: writers appending at once -------------------------------------------------


_WRITER = """
import sys
from lims import audit
from lims.uow import unit_of_work
for number in range(int(sys.argv[1])):
    with unit_of_work(authenticated=False) as uow:
        audit.record(uow.session, username="station", action="test.concurrent",
                     entity_type="thing", entity_id=sys.argv[2] + str(number))
"""


@pytest.mark.slow
def test_concurrent_writers_never_fork_the_chain(trail: Settings) -> None:
    writers, each = 4, 15
    env = {**os.environ, "LIMS_DATABASE_URL": trail.database_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(each), f"W{writer}-"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(writers)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    result = _verify(trail)
    assert result.intact, result.problem
    assert result.entries == ENTRIES + 1 + writers * each
