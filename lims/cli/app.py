"""The `lims` command: areas loaded on demand, errors rendered in one place.

Each area's module (and the store behind it) is imported only when one of
its commands runs, so `lims --help` and a bench command stay quick.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any

import typer
from typer.core import TyperGroup

from lims import __version__
from lims.cli.common import new_app

# name -> (module:attribute, one-line help shown in `lims --help`). The attribute is
# a Typer app (an area with subcommands) or a function (a single command).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("lims.cli.session:init", "Create the database and its first administrator."),
    "login": ("lims.cli.session:login", "Log in at this station."),
    "logout": ("lims.cli.session:logout", "End this station's session."),
    "whoami": ("lims.cli.session:whoami", "Show who is logged in at this station."),
    "passwd": ("lims.cli.session:passwd", "Change your own password."),
    "demo": ("lims.cli.demo:demo", "Create a demo database and walk through lims."),
    "user": (
        "lims.cli.users:app",
        "Users: add, list, deactivate, unlock, set-role, reset-password.",
    ),
    "patient": ("lims.cli.patients:app", "Patients by pseudonymous code: add, show, list."),
    "aspirate": ("lims.cli.aspirates:app", "Aspirates and their DINs: receive, show, list."),
    "reagent": ("lims.cli.reagents:app", "Reagent lots: add, list."),
    "culture": ("lims.cli.cultures:app", "Cultures: start, split, freeze, list, show, project."),
    "passage": ("lims.cli.passages:app", "Passages: log, correct."),
    "bank": ("lims.cli.bank:app", "Bank vials of frozen cells: list, show, thaw, discard."),
    "count": (
        "lims.cli.counts:app",
        "Counts from cell counters' exports: import, list, show.",
    ),
    "equipment": (
        "lims.cli.equipment:app",
        "Equipment: add, calibrate, list, show, out-of-service, retire.",
    ),
    "lot": ("lims.cli.lots:app", "Product lots: formulate, show, list, correct, release, reject."),
    "qc": ("lims.cli.qc:app", "QC results against the release specification: record, show."),
    "deviation": ("lims.cli.deviations:app", "Deviations: open, list, close."),
    "event": ("lims.cli.events:app", "Follow-up after administration: record, list."),
    "report": ("lims.cli.reports:app", "Reports as PDF: batch record, recall or hold notice."),
    "vial": (
        "lims.cli.vials:app",
        "Vials: list, show, verify, issue, administer, destroy.",
    ),
    "scan": ("lims.cli.vials:scan", "Scanner loop: MATCH or MISMATCH for each scanned vial."),
    "ship": (
        "lims.cli.shipments:app",
        "Shipments: create, add, dispatch, receive, lost, show, list.",
    ),
    "storage": (
        "lims.cli.storage:app",
        "Storage locations, stored items: add, show, list, move, find.",
    ),
    "sample": ("lims.cli.samples:app", "Retained samples of a lot: retain, remove, list."),
    "label": ("lims.cli.labels:app", "Vial labels (PDF, PNG, SVG, ZPL): print."),
    "trace": (
        "lims.cli.trace:trace",
        "Trace any id both ways: the patient's materials in one tree.",
    ),
    "audit": ("lims.cli.audit:app", "The audit trail: log, verify."),
    "db": ("lims.cli.database:app", "The database: current, upgrade, backup, restore."),
    "site": ("lims.cli.site:site_app", "The site's settings, versioned records: show, set."),
    "spec": ("lims.cli.site:spec_app", "The release specification, versioned: show, history, set."),
    "config": ("lims.cli.config:app", "The effective configuration: show."),
}


def load_command(name: str) -> typer.Typer:
    """The area or command called name, as a Typer app."""
    module_name, attribute = COMMANDS[name][0].split(":")
    target = getattr(importlib.import_module(module_name), attribute)
    if isinstance(target, typer.Typer):
        return target
    single = new_app()
    single.command(name)(target)
    return single


@cache
def _area_command(name: str) -> Any:
    """The area's click command, built once per process: building resolves every command's
    annotations, which a process running lims many times (a scanner loop, the tests) would
    otherwise pay on each run."""
    command = typer.main.get_command(load_command(name))
    command.name = name
    return command


class LimsGroup(TyperGroup):
    """The root command: finds areas lazily and turns any failure into one line and an exit code."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return _area_command(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # usage errors: bad option, missing argument
            code = _fail(error.format_message(), error.exit_code)
        except typer.Abort:
            code = _fail("aborted", 1)
        except Exception as error:
            if os.environ.get("LIMS_DEBUG") == "1":
                raise
            from lims.cli.errors import describe

            code = _fail(*describe(error))
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, code: int) -> int:
    typer.echo(f"error: {message}", err=True)
    return code


app = new_app()
app.info.cls = LimsGroup


def _version(show: bool) -> None:
    if show:
        typer.echo(f"lims {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """lims: records an autologous MSC product from bone-marrow aspirate to labelled vial.

    Every change is audited. Exit codes: 0 ok, 1 refused by a rule, 2 bad input,
    3 not found, 4 not permitted, 5 database or environment unavailable (read-only,
    full, busy, damaged, unreachable), 70 internal error (a bug: please report it).

    \b
    Example:
      lims demo
      lims login tech
      lims user --help
    """


def main() -> None:
    app()
