"""`lims ARGS` in this process, as a user would type it, and how to judge what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from lims.cli.app import app


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str, input: str | None = None) -> Invocation:
    """Run `lims ARGS` in this process, as a user would from the shell."""
    result = CliRunner().invoke(app, list(args), input=input)
    return Invocation(result.exit_code, result.stdout, result.stderr)


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
