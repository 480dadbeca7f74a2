"""Conventions every command keeps: help with an example, one-line errors, a quick start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from lims import resources
from lims.cli.app import COMMANDS, LimsGroup, app, load_command
from lims.cli.errors import INTERNAL_ERROR, UNAVAILABLE
from lims.services import users
from tests.support.cli import invoke
from tests.support.lab import Lab

HEAVY_MODULES = (
    "sqlmodel",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "pydantic",
    "argon2",
    "rich",
    "allotropy",
    "pandas",
)


def _all_commands() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for name in COMMANDS:
        command = typer.main.get_command(load_command(name))
        subcommands = getattr(command, "commands", {})
        if subcommands:
            paths.extend((name, sub) for sub in subcommands)
        else:
            paths.append((name,))
    return paths


def test_every_area_and_command_is_reachable() -> None:
    paths = _all_commands()
    assert ("user", "add") in paths
    assert ("audit", "verify") in paths
    assert ("config", "show") in paths
    assert ("login",) in paths


@pytest.mark.parametrize("path", _all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Example:" in result.stdout
    assert "  lims " + " ".join(path) in result.stdout


def test_top_level_help_lists_every_area() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    for name, (_, short_help) in COMMANDS.items():
        assert name in result.stdout
        assert short_help in result.stdout


def _heavy_modules_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=os.environ
    )
    loaded = result.stdout.splitlines()[-1].split()
    return [name for name in HEAVY_MODULES if name in loaded]


def test_top_level_help_loads_no_store_or_rendering_modules() -> None:
    run_help = (
        "import sys\nsys.argv = ['lims', '--help']\nfrom lims.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _heavy_modules_after(run_help) == []


def test_command_modules_import_nothing_heavy_until_a_command_runs() -> None:
    modules = sorted({target.split(":")[0] for target, _ in COMMANDS.values()})
    assert _heavy_modules_after("\n".join(f"import {module}" for module in modules)) == []


def test_lims_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lims", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("lims ")


def test_usage_errors_are_one_line_with_exit_2() -> None:
    result = invoke("user", "add", "tom")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "--full-name" in result.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    result = invoke("passage", "log")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")


def test_an_unexpected_failure_is_a_bug_exit_70_in_one_line(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.login("admin")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(users, "list_users", broken)
    result = invoke("user", "list")
    assert result.exit_code == INTERNAL_ERROR == 70
    assert result.stderr == (
        "error: unexpected RuntimeError: disk on fire (set LIMS_DEBUG=1 to see where)\n"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_an_os_error_reaching_the_top_is_the_environment_exit_5(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.login("admin")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", "/var/lib/lims/export.csv")

    monkeypatch.setattr(users, "list_users", full)
    result = invoke("user", "list")
    assert result.exit_code == UNAVAILABLE == 5
    assert result.stderr == "error: No space left on device: /var/lib/lims/export.csv\n"


def test_an_installation_missing_its_migrations_is_the_environment_exit_5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources, "_PACKAGE", tmp_path / "site-packages" / "lims")
    result = invoke("db", "upgrade")
    assert result.exit_code == UNAVAILABLE
    assert result.stderr == (
        "error: this lims installation has no migrations/ folder; reinstall lims\n"
    )


def test_the_root_help_lists_every_exit_code() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for code in (
        "0 ok",
        "1 refused by a rule",
        "2 bad input",
        "3 not found",
        "4 not permitted",
        "5 database or environment unavailable",
        "70 internal error",
    ):
        assert code in text, code


def test_lims_debug_shows_the_traceback(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.login("admin")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(users, "list_users", broken)
    monkeypatch.setenv("LIMS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="disk on fire"):
        typer.main.get_command(app).main(["user", "list"], standalone_mode=False)


def test_the_root_command_is_the_error_boundary() -> None:
    assert isinstance(typer.main.get_command(app), LimsGroup)
