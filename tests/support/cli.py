"""`lims ARGS` in this process, as a user would type it, and how to judge what it printed."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import typer
from typer.testing import CliRunner

from lims.cli.app import app
from lims.scenario import CSF_BEFORE_FORMULATION, CSF_IN_TRANSIT


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
    # An exception lims let through, which a shell would have shown as a traceback.
    escaped: Exception | None = None


@cache
def _root_command() -> Any:
    """The root command, built once per process as lims.cli.app builds each area's:
    typer's CliRunner.invoke would build it again for each of the tests' thousands of runs."""
    return typer.main.get_command(app)


def run_lims(args: Sequence[str], input: str | bytes | None = None) -> Invocation:
    """`lims ARGS` in this process, isolated as typer's CliRunner.invoke isolates a run."""
    runner = CliRunner()
    command = _root_command()
    escaped = None
    with runner.isolation(input=input) as (stdout, stderr, _):
        try:
            command.main(args=list(args), prog_name=runner.get_default_prog_name(command))
            exit_code = 0
        except SystemExit as exit:  # lims exits with its code, 0 included
            exit_code = exit.code if isinstance(exit.code, int) else 1
        except Exception as error:
            escaped, exit_code = error, 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        printed = stdout.getvalue(), stderr.getvalue()
    out, err = (text.decode(runner.charset, "replace").replace("\r\n", "\n") for text in printed)
    return Invocation(exit_code, out, err, escaped)


def invoke(*args: str, input: str | None = None) -> Invocation:
    """Run `lims ARGS` in this process, as a user would from the shell."""
    return run_lims(args, input)


def ok(*args: str, input: str | None = None) -> Any:
    """`lims ARGS --json` that must succeed; its JSON."""
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout)


def refused(result: Invocation, code: int, *words: str) -> str:
    """A one-line `error: ...` on stderr with this exit code, naming each word; the line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def plain(printed: str) -> str:
    """What tables printed, read as text: box-drawing borders and the whitespace where a
    cell wraps made single spaces, so that a folded value reads as one line."""
    unboxed = "".join(
        " " if "\u2500" <= character <= "\u257f" else character for character in printed
    )
    return " ".join(unboxed.split())


def csf_vehicle(
    patient: str, formulated_at: datetime, *receipt: str, vehicle_ml: str = "8"
) -> tuple[str, ...]:
    """`lims aspirate receive --material csf` (and the options in `receipt`) for the patient's
    CSF, collected a few hours before a formulation at `formulated_at` (lims.scenario's
    timing), and the options that formulation names it by."""
    collected = formulated_at - CSF_BEFORE_FORMULATION
    received = ok(
        *("aspirate", "receive", "--patient", patient, "--material", "csf"),
        *("--collected-at", collected.isoformat()),
        *("--received-at", (collected + CSF_IN_TRANSIT).isoformat()),
        *("--volume-ml", "10"),
        *receipt,
    )
    return ("--vehicle-din", received["din"], "--vehicle-ml", vehicle_ml)
