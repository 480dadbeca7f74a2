"""Start-up: `lims --help`, and a cold `lims passage log`, process start to committed and audited.

The passage log row also breaks down, with `python -X importtime`, what the
process imports beyond `import sqlmodel` (its floor).
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence

from common import (
    LIMS,
    Bench,
    Report,
    Row,
    paired_medians,
    ratio_row,
    run_process,
    set_up_lab,
    start_cultures,
    timed,
)

from tests.support.stations import options

IMPORT_SQLMODEL = [sys.executable, "-c", "import sqlmodel"]


def help_rows(bench: Bench) -> list[Row]:
    database = bench.database("help")  # never opened: --help reads no database
    env = database.env()
    python_pass, import_typer, lims_help = paired_medians(
        [
            run_process([sys.executable, "-c", "pass"], env),
            run_process([sys.executable, "-c", "import typer"], env),
            run_process([*LIMS, "--help"], env),
        ],
        bench.runs,
    )
    return [
        ratio_row("`lims --help`", lims_help, "`python -c pass`", python_pass, 7, "ms"),
        # The CLI framework's own import is most of it: show what lims adds on top.
        ratio_row(
            "`lims --help`", lims_help, "`python -c 'import typer'`", import_typer, None, "ms"
        ),
    ]


class PassageSlots:
    """Fresh, valid `passage log` commands: the scenario's P1-P5 of one culture, then the next."""

    def __init__(self, bench: Bench, count: int) -> None:
        from lims.scenario import LATE_REASON, PASSAGES, Clock

        self.database = bench.database("passages")
        self.env = self.database.env()
        lab = set_up_lab(self.database, Clock.days_ago(400))
        patients = [f"PL-{index:04d}" for index in range(math.ceil(count / len(PASSAGES)))]
        self._slots: Iterator[list[str]] = iter(
            [
                # Dated on the scenario's clock, 400 days back: late entries, with their reason.
                [
                    *LIMS,
                    *("passage", "log", code),
                    *options(on_its_clock.passage_values(number)),
                    *("--late-reason", LATE_REASON),
                ]
                for code, on_its_clock in start_cultures(lab, patients)
                for number in range(1, len(PASSAGES) + 1)
            ]
        )
        self.logged = 0

    def next(self) -> list[str]:
        self.logged += 1
        return next(self._slots)

    def log(self) -> None:
        run_process(self.next(), self.env)()


def passage_log_rows(bench: Bench) -> list[Row]:
    importtime_runs = 1 if bench.quick else 5
    with timed(bench, "setting up the passage log database"):
        slots = PassageSlots(bench, 1 + bench.runs + importtime_runs)
    baseline = [import_times(IMPORT_SQLMODEL, slots.env) for _ in range(importtime_runs)]
    logged = [import_times(slots.next(), slots.env) for _ in range(importtime_runs)]
    # The same modules imported, in the same order, and nothing done: what the imports cost.
    modules = [name for name in logged[0] if name.split(".")[0] not in ("__main__", "runpy")]
    modules = [name for name in modules if name != "lims.__main__"]
    imports_only = [
        sys.executable,
        "-c",
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"  # looked for at start-up and absent, e.g. sitecustomize
        "        pass\n",
    ]
    log, floor, imports = paired_medians(
        [
            slots.log,
            run_process(IMPORT_SQLMODEL, slots.env),
            run_process(imports_only, slots.env),
        ],
        bench.runs,
    )
    _check_logged(slots)
    _check_nothing_heavy(logged)
    bench.reports.append(importtime_report(baseline, logged, log, floor, imports))
    return [
        ratio_row(
            "cold `lims passage log` (start to committed and audited)",
            log,
            "`python -c 'import sqlmodel'`",
            floor,
            1.25,
            "ms",
        ),
        ratio_row(
            "  its imports alone (the same modules, nothing run)",
            imports,
            "`python -c 'import sqlmodel'`",
            floor,
            None,
            "ms",
        ),
    ]


def _check_logged(slots: PassageSlots) -> None:
    """Every timed command saved its passage and its audit entry."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from lims import audit
    from lims.models import AuditEntry, Passage
    from lims.uow import unit_of_work

    settings = slots.database.settings()
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        passages = uow.session.exec(select(func.count()).select_from(Passage)).one()
        logged = uow.session.exec(
            select(func.count())
            .select_from(AuditEntry)
            .where(col(AuditEntry.action) == "passage.log")
        ).one()
        verification = audit.verify(uow.session.connection())
    assert passages == logged == slots.logged, (passages, logged, slots.logged)
    assert verification.intact, verification.problem


# What a bench command must never load: the instrument-file reader (seconds) and the documents.
HEAVY_FOR_THE_BENCH = ("allotropy", "pandas", "reportlab", "matplotlib")


def _check_nothing_heavy(logged: list[dict[str, int]]) -> None:
    loaded = {name.split(".")[0] for run in logged for name in run}
    assert not loaded & set(HEAVY_FOR_THE_BENCH), sorted(loaded & set(HEAVY_FOR_THE_BENCH))


# --- where the time goes: python -X importtime ------------------------------------------


def import_times(command: Sequence[str], env: dict[str, str]) -> dict[str, int]:
    """Each module's own import time in µs, from one run of command under -X importtime."""
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    own: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, _cumulative, name = line.removeprefix("import time:").split("|")
        own[name.strip()] = own.get(name.strip(), 0) + int(self_us)
    return own


def importtime_report(
    baseline: list[dict[str, int]],
    logged: list[dict[str, int]],
    log: float,
    floor: float,
    imports: float,
) -> Report:
    """Own import time per module that `import sqlmodel` does not import, by package.

    -X importtime slows imports down somewhat: the shares are what to read. The
    wall times come from the rows: the command's own work (settings, database,
    transaction, rendering) is the passage log less its imports alone.
    """
    runs = len(logged)
    imported = set().union(*baseline)
    extra: dict[str, float] = {
        module: statistics.median(run.get(module, 0) for run in logged)
        for module in set().union(*logged) - imported
    }
    by_package: dict[str, float] = defaultdict(float)
    for module, micros in extra.items():
        by_package[module.split(".")[0]] += micros
    lims_modules = sorted(
        ((module, micros) for module, micros in extra.items() if module.split(".")[0] == "lims"),
        key=lambda item: -item[1],
    )
    total = sum(extra.values())
    rows = [
        ("wall: cold `lims passage log`", f"{log * 1000:.0f} ms", "100%"),
        (
            "wall: `import sqlmodel` (the floor)",
            f"{floor * 1000:.0f} ms",
            f"{floor / log:.0%}",
        ),
        (
            "wall: the log's other imports (its imports alone − the floor)",
            f"{(imports - floor) * 1000:.0f} ms",
            f"{(imports - floor) / log:.0%}",
        ),
        (
            "wall: the command's own work (the log − its imports alone)",
            f"{(log - imports) * 1000:.0f} ms",
            f"{(log - imports) / log:.0%}",
        ),
        (
            "importtime: `import sqlmodel`",
            f"{statistics.median(sum(run.values()) for run in baseline) / 1000:.1f} ms",
            f"{len(imported)} modules",
        ),
        ("importtime: all imports beyond it", f"{total / 1000:.1f} ms", f"{len(extra)} modules"),
    ]
    for package, micros in sorted(by_package.items(), key=lambda item: -item[1]):
        count = sum(1 for module in extra if module.split(".")[0] == package)
        rows.append((f"  package {package}", f"{micros / 1000:.1f} ms", f"{count} modules"))
    rows += [(f"    {module}", f"{micros / 1000:.1f} ms", "") for module, micros in lims_modules]
    return Report(
        "Where a cold `lims passage log` spends its time: wall medians from the rows; "
        f"beyond `import sqlmodel`, python -X importtime's own time per module (median of {runs})",
        ("part", "time", "share / modules"),
        rows,
    )
