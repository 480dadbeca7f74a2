"""Bench stations working at once: each a process logging passages and receiving aspirates.

Used by tests/system/test_concurrency.py (small numbers) and by the benchmark (8 stations
of 50 passages). The lab is set up by lims.scenario; then a station runs the real
CLI in its own process, with its own LIMS_HOME (its own session file) and its own
technician, as a bench PC would, typing the scenario's values as options.

    python -m tests.support.stations STATION CULTURES PASSAGES  # one station; env: home and db
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lims.config import Settings
    from lims.scenario import Clock

REPOSITORY = Path(__file__).resolve().parents[2]

# Every culture's aspirate was collected this long ago: all five passages of the
# scenario's schedule (the last on day 32) are in the past.
COLLECTED_DAYS_AGO = 60


@dataclass(frozen=True)
class Outcome:
    stations: int
    passages_expected: int
    aspirates_expected: int
    seconds: float
    failures: list[str]
    passages: int
    passage_audits: int
    aspirates: int
    din_sequences: list[int]
    audit_intact: bool
    audit_problem: str | None

    @property
    def dins_gap_free(self) -> bool:
        return self.din_sequences == list(range(1, len(self.din_sequences) + 1))

    @property
    def ok(self) -> bool:
        return (
            not self.failures
            and self.passages == self.passage_audits == self.passages_expected
            and self.aspirates == self.aspirates_expected
            and self.dins_gap_free
            and self.audit_intact
        )


def technician(station: int) -> str:
    return f"tech{station}"


def patient(station: int) -> str:
    return f"ST-{station:04d}"


PASSWORD = "station password 1"


def prepare(database_url: str, root: Path, stations: int) -> list[dict[str, str]]:
    """A lab with a technician and a patient per station; each station logged in. Their envs."""
    from lims.config import load_settings
    from lims.scenario import STAFF, Person, Scenario
    from tests.support.lab import CHEAP_PASSWORD_HASHING, TESTS_LATE_ENTRY_HOURS

    def settings(home: str) -> Settings:
        # The stations type a month of passages at once: contemporaneous for this lab. Its
        # passwords are hashed at argon2's lowest cost, as the tests' labs are: the stations
        # only present their session tokens, and each of the dozens of hashes and checks
        # that setting up their technicians takes cost a third of a second at the real cost.
        return load_settings(
            home=root / home,
            database_url=database_url,
            security=CHEAP_PASSWORD_HASHING,
            records={"late_entry_hours": TESTS_LATE_ENTRY_HOURS},
        )

    technicians = [
        Person(technician(station), f"Station {station} Technician", "technician", PASSWORD)
        for station in range(stations)
    ]
    admin = Person(*STAFF[0], PASSWORD)
    lab = Scenario.initialise(settings("admin"), [admin, *technicians], clock())
    lab.login(technician(0))
    lab.add_reagents()
    environments = []
    for station in range(stations):
        at_station = lab.station(settings(f"station{station}"))
        at_station.login(technician(station))
        at_station.patient(code=patient(station))
        environments.append(
            {
                **os.environ,
                "LIMS_HOME": str(at_station.settings.home),
                "LIMS_DATABASE_URL": database_url,
                "PYTHONPATH": str(REPOSITORY),
            }
        )
    return environments


def clock() -> Clock:
    from lims.scenario import Clock

    return Clock.days_ago(COLLECTED_DAYS_AGO)


def run(database_url: str, root: Path, stations: int, cultures: int, passages: int) -> Outcome:
    """Start every station at once, wait for all, and check what landed."""
    from lims.scenario import PASSAGES

    if not 1 <= passages <= len(PASSAGES):
        raise ValueError(f"passages per culture: 1-{len(PASSAGES)}")
    environments = prepare(database_url, root, stations)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.stations",
                str(station),
                str(cultures),
                str(passages),
            ],
            env=env,
            cwd=REPOSITORY,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for station, env in enumerate(environments)
    ]
    failures = []
    for station, process in enumerate(processes):
        _, err = process.communicate()
        if process.returncode != 0 or err.strip():
            failures.append(f"station {station}: exit {process.returncode}: {err.strip()}")
    seconds = time.perf_counter() - started
    return _check(database_url, root, stations, cultures, passages, seconds, failures)


def _check(
    database_url: str,
    root: Path,
    stations: int,
    cultures: int,
    passages: int,
    seconds: float,
    failures: list[str],
) -> Outcome:
    from sqlalchemy import func
    from sqlmodel import col, select

    from lims import audit
    from lims.config import load_settings
    from lims.models import Aspirate, AuditEntry, Passage
    from lims.uow import unit_of_work

    settings = load_settings(home=root / "admin", database_url=database_url)
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        session = uow.session
        passage_count = session.exec(select(func.count()).select_from(Passage)).one()
        passage_audits = session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(col(AuditEntry.action) == "passage.log")
        ).one()
        sequences = list(
            session.exec(select(Aspirate.sequence).order_by(col(Aspirate.sequence))).all()
        )
        verification = audit.verify(session.connection())
    return Outcome(
        stations=stations,
        passages_expected=stations * cultures * passages,
        aspirates_expected=stations * cultures,
        seconds=seconds,
        failures=failures,
        passages=passage_count,
        passage_audits=passage_audits,
        aspirates=len(sequences),
        din_sequences=sequences,
        audit_intact=verification.intact,
        audit_problem=verification.problem,
    )


def _lims(*args: str) -> dict[str, object]:
    """One command in this process, as typed at the bench; a failure ends the station."""
    from tests.support.cli import run_lims

    result = run_lims([*args, "--json"])
    if result.exit_code != 0:
        sys.stderr.write(f"lims {' '.join(args)}: exit {result.exit_code}: {result.stderr}")
        raise SystemExit(1)
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def options(values: Mapping[str, Any]) -> list[str]:
    """A service's keyword values as its command's options: area_cm2 as --area-cm2 875,
    a time in ISO 8601 with its offset, and one --reagent per reagent lot."""
    typed: list[str] = []
    for name, value in values.items():
        if name == "reagents":
            typed += [word for lot in value for word in ("--reagent", lot)]
        elif value is not None:
            shown = value.isoformat() if isinstance(value, datetime) else str(value)
            typed += [f"--{name.replace('_', '-')}", shown]
    return typed


def station(number: int, cultures: int, passages: int) -> None:
    """Receive an aspirate, start its culture and log its passages, cultures times over."""
    from lims.config import load_settings
    from lims.scenario import Scenario

    lab = Scenario(load_settings(), clock())
    received = {**lab.aspirate_values(), "patient": patient(number)}
    for _ in range(cultures):
        aspirate = _lims("aspirate", "receive", *options(received))
        culture = _lims("culture", "start", str(aspirate["din"]), *options(lab.culture_values()))
        for passage in range(1, passages + 1):
            logged = lab.passage_values(passage)
            _lims("passage", "log", str(culture["culture_id"]), *options(logged))


def main(argv: Sequence[str]) -> None:
    number, cultures, passages = (int(value) for value in argv)
    station(number, cultures, passages)


if __name__ == "__main__":
    main(sys.argv[1:])
