"""Benchmarks, each a median measured against a floor taken in the same run.

These machines are noisy, so no figure is an absolute time alone: every row
is a ratio to something measured side by side.

    python tests/benchmarks/run.py           # full: 1,000,000 audit entries
    python tests/benchmarks/run.py --quick   # what CI runs, so the script cannot rot
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

LIMS = [sys.executable, "-m", "lims"]


def _environment(home: Path, database_url: str) -> dict[str, str]:
    env = {**os.environ, "LIMS_HOME": str(home), "LIMS_DATABASE_URL": database_url}
    # Users' installs keep compiled bytecode; measure that, not a recompile on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm caches (bytecode, page cache) before timing
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def run_process(command: Sequence[str], env: dict[str, str]) -> Callable[[], object]:
    def action() -> None:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)

    return action


def fill_audit_trail(database_url: str, entries: int) -> None:
    """Append `entries` chained entries through SQLAlchemy Core, in large batches."""
    from sqlalchemy import insert, update

    from lims import audit, db
    from lims.config import load_settings
    from lims.models import AuditEntry, AuditHead

    settings = load_settings(database_url=database_url)
    with db.upgrading(settings):
        pass
    engine = db.engine_for(settings)
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        seq, prev_hash = connection.execute(
            AuditHead.__table__.select()  # type: ignore[attr-defined]
        ).one()[1:]
        batch: list[dict[str, object]] = []
        for number in range(entries):
            seq += 1
            fields = [
                str(seq),
                f"2026-11-25T10:{number // 600_000 % 60:02d}:{number // 10_000 % 60:02d}"
                f".{number % 1_000_000:06d}Z",
                "tech",
                "passage.log",
                "passage",
                f"A999926{number // 100:06d}-C1-P{number % 100}",
                None,
                '{"harvested":12000000,"seeded":3000000,"viability":94.5}',
                None,
            ]
            canonical = audit.encode_fields(fields)
            digest = audit.chain_hash(canonical, prev_hash)
            batch.append(
                dict(zip(audit.CHAINED_COLUMNS, [seq, *fields[1:]], strict=True))
                | {"prev_hash": prev_hash, "hash": digest, "canonical": canonical}
            )
            prev_hash = digest
            if len(batch) == 20_000:
                connection.execute(insert(table), batch)
                batch.clear()
        if batch:
            connection.execute(insert(table), batch)
        connection.execute(update(AuditHead.__table__).values(seq=seq, hash=prev_hash))  # type: ignore[attr-defined]
    db.dispose_engines()


def plain_hash_chain(database_url: str) -> Callable[[], object]:
    """The floor for verification: read the stored bytes in order and chain SHA-256 over them."""
    from lims import db
    from lims.config import load_settings

    engine = db.engine_for(load_settings(database_url=database_url))

    def action() -> str:
        previous = "0" * 64
        with engine.connect() as connection:
            rows = connection.execution_options(
                stream_results=True, yield_per=20_000
            ).exec_driver_sql("SELECT canonical FROM audit_entries ORDER BY seq")
            sha256 = hashlib.sha256
            for (canonical,) in rows:
                previous = sha256(canonical.encode() + previous.encode()).hexdigest()
        return previous

    return action


def lims_verify(database_url: str) -> Callable[[], object]:
    from lims import audit, db
    from lims.config import load_settings

    engine = db.engine_for(load_settings(database_url=database_url))

    def action() -> None:
        with engine.connect() as connection:
            result = audit.verify(connection)
        assert result.intact, result.problem

    return action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few runs (CI)")
    parser.add_argument(
        "--database-url", help="run the database benchmarks here instead of a new SQLite file"
    )
    options = parser.parse_args()
    runs = 5 if options.quick else 21
    entries = 20_000 if options.quick else 1_000_000

    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lims-bench-") as scratch:
        home = Path(scratch)
        database_url = options.database_url or f"sqlite:///{home / 'bench.db'}"
        env = _environment(home, database_url)

        python_pass = median_seconds(run_process([sys.executable, "-c", "pass"], env), runs)
        import_typer = median_seconds(
            run_process([sys.executable, "-c", "import typer"], env), runs
        )
        lims_help = median_seconds(run_process([*LIMS, "--help"], env), runs)
        rows.append(
            (
                "lims --help",
                _ms(lims_help),
                "python -c pass",
                _ms(python_pass),
                _ratio(lims_help, python_pass, 7),
            )
        )
        # The CLI framework's own import is most of it: show what lims adds on top.
        rows.append(
            (
                "lims --help",
                _ms(lims_help),
                "python -c 'import typer'",
                _ms(import_typer),
                _ratio(lims_help, import_typer, None),
            )
        )

        started = time.perf_counter()
        fill_audit_trail(database_url, entries)
        fill_seconds = time.perf_counter() - started
        verify_runs = 3 if options.quick else 5
        floor = median_seconds(plain_hash_chain(database_url), verify_runs)
        verify = median_seconds(lims_verify(database_url), verify_runs)
        rows.append(
            (
                f"audit verify, {entries:,} entries",
                f"{verify:.2f} s ({entries / verify:,.0f}/s)",
                "SHA-256 chain over stored bytes",
                f"{floor:.2f} s",
                _ratio(verify, floor, 2),
            )
        )
        command_verify = median_seconds(run_process([*LIMS, "audit", "verify"], env), verify_runs)
        rows.append(
            (
                f"`lims audit verify` process, {entries:,}",
                f"{command_verify:.2f} s",
                "SHA-256 chain over stored bytes",
                f"{floor:.2f} s",
                _ratio(command_verify, floor, None),
            )
        )

    table = Table(title=f"lims benchmarks ({'quick' if options.quick else 'full'}; medians)")
    for column in ("measure", "median", "floor", "floor median", "ratio (target)"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(f"(filling {entries:,} audit entries took {fill_seconds:.1f} s)")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _ratio(value: float, floor: float, target: float | None) -> str:
    ratio = value / floor
    if target is None:
        return f"{ratio:.2f}×"
    verdict = "ok" if ratio <= target else "OVER"
    return f"{ratio:.2f}× (≤ {target}×: {verdict})"


if __name__ == "__main__":
    main()
