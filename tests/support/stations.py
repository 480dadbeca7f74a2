"""Bench stations working at once: each a process logging passages and receiving aspirates.

Used by tests/system/test_concurrency.py (small numbers) and by the benchmark (8 stations
of 50 passages). A station runs the real CLI in its own process, with its own
LIMS_HOME (its own session file) and its own technician, as a bench PC would.

    python -m tests.support.stations STATION CULTURES PASSAGES  # one station; env: home and db
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

# A culture's timeline, in hours after the aspirate was collected: realistic for
# Pittenger's protocol (primary culture 12 days, then a passage every 5 days).
RECEIVED_H, STARTED_H = 2, 4
PASSAGE_DAYS = (12, 17, 22, 27, 32)
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
    from lims import auth
    from lims.config import load_settings
    from lims.services import patients, sessions, users
    from lims.uow import unit_of_work

    admin_settings = load_settings(home=root / "admin", database_url=database_url)
    users.initialise(admin_settings, username="admin", full_name="Ada Admin", password=PASSWORD)
    with unit_of_work(admin_settings, authenticated=False) as uow:
        token, _ = sessions.login(uow, username="admin", password=PASSWORD)
    auth.write_token(admin_settings, token)
    with unit_of_work(admin_settings) as uow:
        for station in range(stations):
            users.create_user(
                uow,
                username=technician(station),
                full_name=f"Station {station} Technician",
                role="technician",
                password=PASSWORD,
            )
    environments = []
    for station in range(stations):
        settings = load_settings(home=root / f"station{station}", database_url=database_url)
        with unit_of_work(settings, authenticated=False) as uow:
            token, _ = sessions.login(uow, username=technician(station), password=PASSWORD)
        auth.write_token(settings, token)
        with unit_of_work(settings) as uow:
            patients.add_patient(
                uow,
                code=patient(station),
                initials="ST",
                birth_year="1970",
                consent_date=(datetime.now(UTC) - timedelta(days=90)).date().isoformat(),
                study=None,
            )
        environments.append(
            {
                **os.environ,
                "LIMS_HOME": str(settings.home),
                "LIMS_DATABASE_URL": database_url,
                "PYTHONPATH": str(REPOSITORY),
            }
        )
    return environments


def run(database_url: str, root: Path, stations: int, cultures: int, passages: int) -> Outcome:
    """Start every station at once, wait for all, and check what landed."""
    if not 1 <= passages <= len(PASSAGE_DAYS):
        raise ValueError(f"passages per culture: 1-{len(PASSAGE_DAYS)}")
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
    from typer.testing import CliRunner

    from lims.cli.app import app

    result = CliRunner().invoke(app, [*args, "--json"])
    if result.exit_code != 0:
        sys.stderr.write(f"lims {' '.join(args)}: exit {result.exit_code}: {result.stderr}")
        raise SystemExit(1)
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def station(number: int, cultures: int, passages: int) -> None:
    """Receive an aspirate, start its culture and log its passages, cultures times over."""
    collected = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(
        days=COLLECTED_DAYS_AGO
    )
    for _ in range(cultures):
        aspirate = _lims(
            "aspirate", "receive", "--patient", patient(number),
            "--collected-at", _iso(collected), "--volume-ml", "50",
            "--received-at", _iso(collected + timedelta(hours=RECEIVED_H)),
        )  # fmt: skip
        culture = _lims(
            "culture", "start", str(aspirate["din"]), "--mnc", "2.4e8", "--vessels", "5",
            "--area-cm2", "875", "--at", _iso(collected + timedelta(hours=STARTED_H)),
        )  # fmt: skip
        for day in PASSAGE_DAYS[:passages]:
            _lims(
                "passage", "log", str(culture["culture_id"]), "--harvested", "2.1e8",
                "--viability", "94", "--seeded", "2.6e7", "--vessels", "30",
                "--area-cm2", "5250", "--confluence", "85",
                "--at", _iso(collected + timedelta(days=day)),
            )  # fmt: skip


def main(argv: Sequence[str]) -> None:
    number, cultures, passages = (int(value) for value in argv)
    station(number, cultures, passages)


if __name__ == "__main__":
    main(sys.argv[1:])
