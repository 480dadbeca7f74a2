"""What every command shares: asking for a password, and printing (--json, tables, records).

Light on purpose: loaded on the way to `lims --help`; rich is imported only
when something is drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar

import typer

from lims.errors import BadInput

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from lims.config import Settings

P = ParamSpec("P")
View = TypeVar("View")

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input instead of prompting.",
    ),
]


def new_area(help_text: str) -> typer.Typer:
    """An area of commands (`lims user ...`): a group even while it has a single command."""
    area = new_app()
    area.callback(help=help_text)(_no_options)
    return area


def _no_options() -> None:
    pass


def new_app() -> typer.Typer:
    """An app with lims's conventions; its callback's docstring, if any, is its help."""
    return typer.Typer(
        no_args_is_help=True,
        rich_markup_mode=None,  # plain help: rich costs ~100 ms at start-up
        pretty_exceptions_enable=False,
        add_completion=False,
    )


def settings() -> Settings:
    from lims.config import load_settings

    return load_settings()


def print_view(
    view: View,
    as_json: bool,
    draw: Callable[Concatenate[View, P], None],
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    """Print what a command returns: JSON for scripts (--json), else draw(view, ...) for people."""
    if as_json:
        from lims.views import to_json

        print_json(to_json(view))
        return
    draw(view, *args, **kwargs)


def read_password(from_stdin: bool, *, prompt: str = "Password", confirm: bool = False) -> str:
    if from_stdin:
        try:
            line = sys.stdin.readline()
        except UnicodeDecodeError:
            raise BadInput("password", "must be UTF-8 text") from None
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise BadInput("password", "--password-stdin found no password on standard input")
    else:
        password = str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    from lims.validation import has_undecodable_bytes

    if has_undecodable_bytes(password) or "\x00" in password:
        raise BadInput("password", "must be UTF-8 text without NUL characters")
    return password


def print_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def say(message: str) -> None:
    typer.echo(message)


def print_record(title: str, fields: Mapping[str, Any]) -> None:
    """One object as a two-column table: each label and its value, in the order given."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in fields.items():
        table.add_row(name, _cell(value))
    _console().print(table)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(value) for value in row))
    _console().print(table)


def print_rich(renderable: Any) -> None:
    """Anything rich draws (a tree), on the console every table is printed on."""
    _console().print(renderable)


def alarm(text: str) -> Any:
    """Text shown in bold red: a flag the person at the bench must not miss."""
    from rich.text import Text

    return Text(text, style="bold red")


def print_alarms(lines: Iterable[str]) -> None:
    console = _console()
    for line in lines:
        console.print(alarm(line))


def _cell(value: Any) -> Any:
    from rich.text import Text

    if isinstance(value, Text):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    # Text, not markup: a value typed at the bench is shown exactly as typed.
    return Text(str(value))


def _console() -> Any:
    from rich.console import Console

    # Piped or captured output is read by people later, not clipped by a window.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def late_entry_note(entered_at: datetime, entered_by: str, reason: str, zone: tzinfo) -> Any:
    """A step entered late, as every view marks it: in red, with when it was typed and why."""
    from lims.timeutil import show_time
    from lims.views.records import LATE_ENTRY

    return alarm(f"{LATE_ENTRY}: entered {show_time(entered_at, zone)} by {entered_by}: {reason}")
