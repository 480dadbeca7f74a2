"""What every benchmark row shares: timing, fresh databases, a lab set up through the services.

A row function takes the Bench and returns its rows; run.py calls them in
order. Each figure is a median, set against a floor measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

LIMS = [sys.executable, "-m", "lims"]
PASSWORD = "benchmark password 1"
TIMEZONE = "UTC"


@dataclass(frozen=True)
class Row:
    measure: str
    floor: str
    target: str  # e.g. "≤ 7×", "≤ 50 ms", "—" (reported only)
    median: str
    floor_median: str
    ratio: str
    verdict: str  # ok, OVER or — (no target)


def ratio_row(
    measure: str, value: float, floor: str, floor_value: float, target: float | None, unit: str
) -> Row:
    """A row whose figure is value / floor_value, against a target ratio (None: reported only)."""
    ratio = value / floor_value
    return Row(
        measure,
        floor,
        f"≤ {target:g}×" if target is not None else "—",
        show(value, unit),
        show(floor_value, unit),
        f"{ratio:.2f}×",
        verdict(ratio, target),
    )


def verdict(value: float, target: float | None) -> str:
    if target is None:
        return "—"
    return "ok" if value <= target else "OVER"


def show(seconds: float, unit: str) -> str:
    return f"{seconds * 1000:.1f} ms" if unit == "ms" else f"{seconds:.2f} s"


@dataclass(frozen=True)
class Report:
    """A second table printed after the rows: a breakdown behind one of them."""

    title: str
    columns: Sequence[str]
    rows: Sequence[tuple[str, ...]]


@dataclass
class Database:
    """A fresh lims database of its own, with the home directory its station keeps a session in."""

    name: str
    url: str
    home: Path

    def settings(self) -> Any:
        from lims.config import load_settings

        return load_settings(home=self.home, database_url=self.url, timezone=TIMEZONE)

    def env(self) -> dict[str, str]:
        return environment(self.home, self.url)


def environment(home: Path, database_url: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("LIMS_")}
    env |= {"LIMS_HOME": str(home), "LIMS_DATABASE_URL": database_url, "LIMS_TIMEZONE": TIMEZONE}
    # Users' installs keep compiled bytecode; measure that, not a recompile on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@dataclass
class Bench:
    """One run of the benchmarks: its mode, scratch directory and databases."""

    quick: bool
    scratch: Path
    server_url: str | None  # a PostgreSQL database to make schemas in, or None: SQLite files
    notes: list[str] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)
    server_version: str = ""
    _schemas: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        """Timed runs of a process that takes about a second or less."""
        return 3 if self.quick else 21

    @property
    def slow_runs(self) -> int:
        """Timed runs of a process that takes seconds."""
        return 2 if self.quick else 9

    @property
    def backend(self) -> str:
        return "PostgreSQL" if self.server_url else "SQLite"

    def database(self, name: str) -> Database:
        """A new, empty database: a SQLite file in the scratch directory, or a PostgreSQL schema."""
        home = self.scratch / name
        home.mkdir()
        if self.server_url is None:
            return Database(name, f"sqlite:///{home / 'lims.db'}", home)
        from sqlalchemy import create_engine, text

        from lims.config import normalise_database_url

        schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        base = normalise_database_url(self.server_url)
        admin = create_engine(base)
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
            self.server_version = connection.execute(text("SHOW server_version")).scalar_one()
        admin.dispose()
        self._schemas.append(schema)
        separator = "&" if "?" in base else "?"
        return Database(name, f"{base}{separator}options=-csearch_path%3D{schema}", home)

    def drop_databases(self) -> None:
        from lims import db

        db.dispose_engines()
        if not self._schemas:
            return
        from sqlalchemy import create_engine, text

        from lims.config import normalise_database_url

        assert self.server_url is not None
        admin = create_engine(normalise_database_url(self.server_url))
        with admin.begin() as connection:
            for schema in self._schemas:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
        self._schemas.clear()


RowFunction = Callable[[Bench], list[Row]]


# --- timing -----------------------------------------------------------------------------


def run_process(
    command: Sequence[str],
    env: dict[str, str],
    *,
    stdin: bytes | None = None,
    ok: Sequence[int] = (0,),
) -> Callable[[], None]:
    def action() -> None:
        result = subprocess.run(
            command,
            env=env,
            input=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if result.returncode not in ok:
            raise RuntimeError(
                f"{' '.join(command[:6])[:200]} … exited {result.returncode}: "
                f"{result.stderr.decode(errors='replace').strip()}"
            )

    return action


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches (bytecode, page cache) before timing
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def paired_medians(actions: Sequence[Callable[[], object]], runs: int) -> list[float]:
    """Medians of actions timed in turn, round after round, so that noise falls on all alike."""
    for action in actions:
        action()  # warm-up
    timings: list[list[float]] = [[] for _ in actions]
    for _ in range(runs):
        for action, taken in zip(actions, timings, strict=True):
            start = time.perf_counter()
            action()
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in timings]


@contextmanager
def timed(bench: Bench, what: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    bench.notes.append(f"{what} took {time.perf_counter() - started:.1f} s")


# --- a lab: users and a station logged in, set up in this process through the services ----

USERS = (
    ("admin", "Ada Admin", "admin"),
    ("tech", "Tom Tech", "technician"),
    ("qa", "Quinn QA", "qa"),
)


def set_up_lab(database: Database) -> None:
    """Initialise the database with an admin, a technician and QA; the station logged in as tech."""
    from lims.services import users
    from lims.uow import unit_of_work

    settings = database.settings()
    users.initialise(settings, username="admin", full_name="Ada Admin", password=PASSWORD)
    login(database, "admin")
    with unit_of_work(settings) as uow:
        for username, full_name, role in USERS[1:]:
            users.create_user(
                uow,
                username=username,
                full_name=full_name,
                role=role,
                password=PASSWORD,
            )
    login(database, "tech")


def login(database: Database, username: str) -> None:
    from lims import auth
    from lims.services import sessions
    from lims.uow import unit_of_work

    settings = database.settings()
    with unit_of_work(settings, authenticated=False) as uow:
        token, _ = sessions.login(uow, username=username, password=PASSWORD)
    auth.write_token(settings, token)


def now() -> datetime:
    from lims.timeutil import utcnow

    return utcnow().replace(microsecond=0)


def days(count: float) -> timedelta:
    return timedelta(days=count)


# Reagent lots of a Pittenger-style expansion, as the demo has them.
REAGENTS = (
    ("Percoll 1.073", "P-1107", "Cytiva"),
    ("MEM alpha", "2411A", "Gibco"),
    ("FBS MSC-qualified", "F-0932", "Gibco"),
    ("TrypLE Express", "2409B", "Gibco"),
)
START_REAGENTS = ("Percoll 1.073:P-1107", "MEM alpha:2411A", "FBS MSC-qualified:F-0932")
PASSAGE_REAGENTS = ("TrypLE Express:2409B",)
# Five passages at the bench, none breaking a bench limit: (harvested, viability %, reseeded,
# vessels, area cm²); reseeding near Pittenger's 5,000 cells/cm².
BENCH_PASSAGES = (
    (4_200_000, 94.0, 4_200_000, 5, 875.0),
    (29_000_000, 93.0, 26_000_000, 30, 5_250.0),
    (190_000_000, 91.0, 150_000_000, 5, 31_800.0),
    (600_000_000, 92.0, 150_000_000, 5, 31_800.0),
    (640_000_000, 90.0, 150_000_000, 5, 31_800.0),
)
PASSAGE_DAYS = 5


def start_cultures(
    database: Database, patients: Sequence[str], started: datetime
) -> list[tuple[str, datetime]]:
    """One patient, aspirate and primary culture per code, as the technician: (culture id, start).

    The cultures start an hour apart from `started`."""
    from lims.services import aspirates, cultures, reagents
    from lims.services import patients as patient_rules
    from lims.uow import unit_of_work

    settings = database.settings()
    codes = []
    with unit_of_work(settings) as uow:
        for name, lot, supplier in REAGENTS:
            reagents.add_reagent(
                uow,
                name=name,
                lot=lot,
                expires=(started + days(3 * 365)).date(),
                supplier=supplier,
            )
        for index, patient in enumerate(patients):
            collected = started + timedelta(hours=index)
            patient_rules.add_patient(uow, code=patient, initials="MR", birth_year=1958)
            aspirate = aspirates.receive(
                uow,
                patient=patient,
                collected_at=collected - timedelta(hours=5),
                received_at=collected - timedelta(hours=3),
                volume_ml=30,
                anticoagulant="sodium heparin",
                tnc=610_000_000,
                temperature_c=18,
            )
            culture = cultures.start_culture(
                uow,
                din=aspirate.din.code,
                mnc=240_000_000,
                vessels=5,
                area_cm2=875,
                at=collected,
                reagents=START_REAGENTS,
            )
            codes.append((culture.summary.culture_id, collected))
    return codes


def passage_arguments(culture: str, number: int, started: datetime) -> list[str]:
    """`passage log` arguments for passage `number` (1-5) of a culture started at `started`."""
    harvested, viability, seeded, vessels, area = BENCH_PASSAGES[number - 1]
    return [
        "passage",
        "log",
        culture,
        "--harvested",
        str(harvested),
        "--viability",
        f"{viability:g}",
        "--seeded",
        str(seeded),
        "--vessels",
        str(vessels),
        "--area-cm2",
        f"{area:g}",
        "--confluence",
        "85",
        "--at",
        (started + days(PASSAGE_DAYS * number)).isoformat(),
        *(option for reagent in PASSAGE_REAGENTS for option in ("--reagent", reagent)),
    ]


def log_passages(database: Database, culture: str, started: datetime, count: int) -> None:
    """Passages 1 to count of a culture started at `started`, one transaction each."""
    from lims.services import cultures
    from lims.uow import unit_of_work

    settings = database.settings()
    for number in range(1, count + 1):
        harvested, viability, seeded, vessels, area = BENCH_PASSAGES[number - 1]
        with unit_of_work(settings) as uow:
            cultures.log_passage(
                uow,
                culture=culture,
                harvested=harvested,
                viability=viability,
                seeded=seeded,
                vessels=vessels,
                area_cm2=area,
                confluence=85,
                at=started + days(PASSAGE_DAYS * number),
                reagents=PASSAGE_REAGENTS,
            )
