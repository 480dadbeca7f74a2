"""Benchmarks, each a median measured against a floor taken in the same run.

These machines are noisy, so no figure is an absolute time alone: every row
is a ratio to something measured side by side, timed in turn round after round.

    python tests/benchmarks/run.py           # full: 1,000,000 passages (about 6 minutes)
    python tests/benchmarks/run.py --quick   # what CI runs, so the script cannot rot

A row is a function of the Bench returning its rows (see common.py); add one to ROWS.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Bench, Row, RowFunction
from crowding import crowding_rows
from labelling import label_rows, scan_rows
from scale import scale_rows
from startup import help_rows, passage_log_rows

ROWS: list[RowFunction] = [
    help_rows,
    passage_log_rows,
    scale_rows,
    label_rows,
    scan_rows,
    crowding_rows,
]
COLUMNS = ("measure", "floor", "target", "median", "floor median", "ratio", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few runs (CI)")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database to run the database benchmarks in, each in a schema of "
        "its own, dropped afterwards (default: new SQLite files)",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this row function (repeat)"
    )
    options = parser.parse_args()
    if options.database_url and not options.database_url.startswith("postgres"):
        parser.error("--database-url: give a PostgreSQL URL; SQLite is the default")
    # Nothing of the person's own lims configuration: every database is the benchmark's.
    for name in [name for name in os.environ if name.startswith("LIMS_")]:
        del os.environ[name]

    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lims-bench-") as scratch:
        bench = Bench(quick=options.quick, scratch=Path(scratch), server_url=options.database_url)
        os.environ["LIMS_HOME"] = str(bench.scratch / "home")
        # Nor a ./lims.toml where it is run from: each lims process starts in the scratch directory.
        os.chdir(bench.scratch)
        try:
            for row_function in ROWS:
                if options.only and row_function.__name__ not in options.only:
                    continue
                began = time.perf_counter()
                rows += row_function(bench)
                bench.notes.append(
                    f"{row_function.__name__} took {time.perf_counter() - began:.0f} s in all"
                )
        finally:
            bench.drop_databases()
            os.chdir(Path(__file__).resolve().parent)  # out of the directory about to go
    print_results(bench, rows, time.perf_counter() - started)


def print_results(bench: Bench, rows: list[Row], seconds: float) -> None:
    import sqlite3

    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 160))
    mode = "quick" if bench.quick else "full"
    table = Table(title=f"lims benchmarks ({mode}, {bench.backend}; medians)")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.measure,
            row.floor,
            row.target,
            row.median,
            row.floor_median,
            row.ratio,
            row.verdict,
        )
    console.print(table)
    for report in bench.reports:
        extra = Table(title=report.title)
        for column in report.columns:
            extra.add_column(column)
        for cells in report.rows:
            extra.add_row(*cells)
        console.print(extra)
    for note in bench.notes:
        console.print(f"({note})")
    database = f"SQLite {sqlite3.sqlite_version}"
    if bench.server_version:
        database += f", PostgreSQL {bench.server_version}"
    console.print(
        f"(Python {sys.version.split()[0]}, {database}, "
        f"{os.cpu_count()} cores; the whole run took {seconds:.0f} s)"
    )


if __name__ == "__main__":
    main()
