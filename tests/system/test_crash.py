"""Crash safety: a `lims passage log` or `lims lot formulate` killed (SIGKILL) at random moments.

After every kill the database must be whole: PRAGMA integrity_check and
foreign_key_check clean (SQLite), the audit chain verifies, every record has
its audit entry and every audit entry its record, and a lot has all the vials
its formulation names, or the lot is not there at all.

Most kills land in a child forked after lims is imported, timed over the run
of the command itself (reading the session, the transaction, the commit),
where a crash can do harm; a few kill a cold `python -m lims` process at any
moment of its life, start-up included. PostgreSQL has no integrity_check: the
server rolls back a killed client's transaction, and the rest is checked alike.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

import pytest
from sqlalchemy import text

from lims import audit, db
from lims.config import Settings
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.lab import Lab

KILLS_PER_COMMAND = 24
COLD_KILLS_PER_COMMAND = 3
PASSAGE_DAYS = (12, 17, 22)
FORMULATED_DAY = 27

# Each record a command writes, the audit action that must come with it.
AUDITED_RECORDS = {
    "passages": ("passage.log", "passage"),
    "lots": ("lot.formulate", "lot"),
    "cultures": ("culture.start", "culture"),
}


def _run_command(args: Sequence[str]) -> None:
    """The child: lims already imported, as in a station's process once started."""
    from lims.cli.app import app

    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the child's whole life
    app(list(args))


def _forked(args: Sequence[str]) -> BaseProcess:
    db.dispose_engines()  # the child opens its own connections, as a new process would
    process = multiprocessing.get_context("fork").Process(target=_run_command, args=(args,))
    process.start()
    return process


def _duration(args: Sequence[str]) -> float:
    started = time.perf_counter()
    process = _forked(args)
    process.join()
    assert process.exitcode == 0
    return time.perf_counter() - started


def _kill_at(process: BaseProcess | subprocess.Popen[bytes], delay: float) -> None:
    time.sleep(delay)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    if isinstance(process, subprocess.Popen):
        process.wait()
    else:
        process.join()


def _iso(days: float) -> str:
    return day(days).isoformat()


def _passage_args(culture: str, days: float) -> list[str]:
    return [
        "passage", "log", culture, "--harvested", "8e7", "--viability", "94",
        "--seeded", "2.6e7", "--vessels", "30", "--area-cm2", "5250", "--at", _iso(days),
    ]  # fmt: skip


def _formulate_args(bench: Bench, culture: str) -> list[str]:
    """The culture's formulation, in its patient's CSF received for it now."""
    vehicle = bench.vehicle(day(FORMULATED_DAY))
    return [
        "lot", "formulate", culture, "--harvested", "2.0e8", "--viability", "93",
        "--vials", "4", "--cells-per-vial", "4e7", "--volume-ml", "2",
        "--at", _iso(FORMULATED_DAY), "--vehicle-din", vehicle["vehicle_din"],
        "--vehicle-ml", str(vehicle["vehicle_ml"]),
    ]  # fmt: skip


def assert_whole(settings: Settings) -> None:
    """Everything a crash could break, checked on the database as the killed process left it."""
    if settings.sqlite_path is not None:
        connection = sqlite3.connect(settings.sqlite_path)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            connection.close()
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        session = uow.session
        verification = audit.verify(session.connection())
        assert verification.intact, verification.problem
        for table, (action, entity_type) in AUDITED_RECORDS.items():
            records = set(session.execute(text(f"SELECT code FROM {table}")).scalars())
            audited = set(
                session.execute(
                    text(
                        "SELECT entity_id FROM audit_entries "
                        "WHERE action = :action AND entity_type = :entity_type"
                    ),
                    {"action": action, "entity_type": entity_type},
                ).scalars()
            )
            assert records == audited, table
        formulations = session.execute(
            text("SELECT entity_id, new_value FROM audit_entries WHERE action = 'lot.formulate'")
        ).all()
        for lot_code, new_value in formulations:
            vials = session.execute(
                text(
                    "SELECT v.code FROM vials v JOIN lots l ON v.lot_id = l.id "
                    "WHERE l.code = :lot ORDER BY v.number"
                ),
                {"lot": lot_code},
            ).scalars()
            assert list(vials) == json.loads(new_value)["vials"], lot_code


@pytest.fixture
def bench(lab: Lab) -> Bench:
    bench = Bench(lab)
    bench.patient()
    return bench


def _new_culture(bench: Bench, passages: Sequence[float] = ()) -> str:
    din = bench.aspirate().din.code
    culture = bench.culture(din).summary.culture_id
    for days in passages:
        bench.passage(
            culture, day(days), harvested=80_000_000, seeded=26_000_000, vessels=30, area_cm2=5250
        )
    return str(culture)


def _kill_repeatedly(bench: Bench, tries: Sequence[list[str]], typical_seconds: float) -> None:
    """One forked command per try, killed at a random moment within its usual run time."""
    rounds = random.Random(20261127)
    for args in tries:
        _kill_at(_forked(args), rounds.uniform(0, 1.2 * typical_seconds))
        assert_whole(bench.settings)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")
def test_passage_log_killed_at_random_moments_leaves_the_database_whole(bench: Bench) -> None:
    cultures = [_new_culture(bench) for _ in range(KILLS_PER_COMMAND + 1)]
    typical = _duration(_passage_args(cultures.pop(), PASSAGE_DAYS[0]))
    tries = [_passage_args(culture, PASSAGE_DAYS[0]) for culture in cultures]
    _kill_repeatedly(bench, tries, typical)
    assert _count(bench, "passages") - 1 < KILLS_PER_COMMAND, "no kill landed before a commit"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")
def test_lot_formulate_killed_at_random_moments_leaves_the_database_whole(bench: Bench) -> None:
    cultures = [_new_culture(bench, PASSAGE_DAYS) for _ in range(KILLS_PER_COMMAND + 1)]
    typical = _duration(_formulate_args(bench, cultures.pop()))
    _kill_repeatedly(bench, [_formulate_args(bench, culture) for culture in cultures], typical)
    assert _count(bench, "lots") - 1 < KILLS_PER_COMMAND, "no kill landed before a commit"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_cold_lims_process_killed_at_any_moment_leaves_the_database_whole(bench: Bench) -> None:
    rounds = random.Random(1127)
    for _ in range(COLD_KILLS_PER_COMMAND):
        passage = subprocess.Popen(
            [sys.executable, "-m", "lims", *_passage_args(_new_culture(bench), PASSAGE_DAYS[0])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _kill_at(passage, rounds.uniform(0, 1.5))
        assert_whole(bench.settings)
        formulate = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lims",
                *_formulate_args(bench, _new_culture(bench, PASSAGE_DAYS)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _kill_at(formulate, rounds.uniform(0, 1.5))
        assert_whole(bench.settings)


def test_the_check_finds_a_record_without_its_audit_entry(bench: Bench) -> None:
    """The crash check itself must fail on what a half-written commit would leave."""
    culture = _new_culture(bench, PASSAGE_DAYS[:1])
    assert_whole(bench.settings)
    bench.sql("DELETE FROM passages WHERE code = :code", code=f"{culture}-P1")
    with pytest.raises(AssertionError, match="passages"):
        assert_whole(bench.settings)


def _count(bench: Bench, table: str) -> int:
    return int(bench.sql(f"SELECT count(*) FROM {table}").scalar_one())
