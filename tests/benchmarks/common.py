"""What every benchmark row shares: timing, fresh databases, a lab set up by lims.scenario.

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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lims.scenario import Clock, Scenario

# The rows use the suite's station script and its helpers (tests.support).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

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


# --- a lab: lims.scenario's staff, its station logged in as the technician -----------------


def set_up_lab(database: Database, clock: Clock | None = None) -> Scenario:
    """The scenario's admin, technician and QA in the new database; the station logged in as
    the technician. Aspirates are collected on clock (by default 40 days ago)."""
    from lims.scenario import Clock, Scenario, staff

    clock = clock or Clock.days_ago(40)
    lab = Scenario.initialise(database.settings(), staff(PASSWORD), clock)
    lab.login("tech")
    return lab


def now() -> datetime:
    from lims.timeutil import utcnow

    return utcnow().replace(microsecond=0)


def days(count: float) -> timedelta:
    return timedelta(days=count)


def start_cultures(lab: Scenario, patients: Sequence[str]) -> list[tuple[str, Scenario]]:
    """The reagent lots, then a patient, aspirate and primary culture per code, each collected
    an hour after the one before: each culture's id, and the lab on that culture's clock."""
    from lims.scenario import Clock

    lab.add_reagents()
    started = []
    for index, patient in enumerate(patients):
        on_its_clock = lab.on(Clock(lab.clock.collected + timedelta(hours=index)))
        started.append((on_its_clock.primary_culture(patient).summary.culture_id, on_its_clock))
    return started
