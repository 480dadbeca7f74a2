"""The audit trail: read it, and prove it has not been tampered with."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_json, print_table, print_view, say
from lims.cli.service import read
from lims.errors import BadInput, RuleViolation

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import tzinfo

    from sqlalchemy.engine import Connection

    from lims.views.trail import AuditView, ChainVerification

app = new_area("The audit trail: every change, who made it, when and why.")

_PROGRESS_THRESHOLD = 100_000


@app.command("log")
def log(
    entity: Annotated[
        str | None,
        typer.Option("--entity", help="TYPE or TYPE:ID, e.g. user or user:tech."),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only entries by this user.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="A date or time; a date means its start, local time."),
    ] = None,
    last: Annotated[
        int | None,
        typer.Option("--last", min=1, max=1_000_000_000, help="Only the newest N entries."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show audit entries, oldest first, optionally filtered.

    \b
    Example:
      lims audit log --entity user:tech
      lims audit log --user ada --since 2026-11-01 --json
    """
    from lims.services import trail

    entity_type, _, entity_id = (entity or "").partition(":")
    if entity is not None and not entity_type:
        raise BadInput("entity", "must be TYPE or TYPE:ID, e.g. user:tech")
    found, zone = read(
        trail.log,
        entity_type=entity_type or None,
        entity_id=entity_id or None,
        username=user,
        since=since,
        last=last,
    )
    print_view(found, as_json, _print_trail, zone)


def _print_trail(found: Sequence[AuditView], zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_table(
        f"Audit trail ({len(found)} entries)",
        ["#", "time", "user", "action", "entity", "change", "reason"],
        [
            (
                view.seq,
                show_time(view.moment, zone),
                view.who,
                view.action,
                f"{view.entity_type}:{view.entity_id}",
                _change(view),
                view.reason,
            )
            for view in found
        ],
    )


def _change(view: AuditView) -> str:
    import json

    def compact(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    if view.old is None and view.new is None:
        return ""
    if view.old is None:
        return compact(view.new)
    return f"{compact(view.old)} → {compact(view.new)}"


@app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Check the whole hash chain and the records bound to it; exit 1 naming what differs.

    Names the first entry that was tampered with, or the first record (table, id, column)
    that disagrees with what the trail last stated of it. Needs no login: it reveals only
    whether the trail and the records are intact, not what they hold.

    \b
    Example:
      lims audit verify
      lims audit verify --json
    """
    from lims.services import bindings
    from lims.uow import unit_of_work

    with unit_of_work(write=False, authenticated=False) as uow:
        connection = uow.session.connection()
        if sys.stderr.isatty():
            result = _verify_with_progress(connection)
        else:
            result = bindings.verify(connection)
    if as_json:
        from lims.views import to_json

        print_json(to_json(result))
    if result.first_bad_seq is not None:
        raise RuleViolation(f"audit trail broken at entry {result.first_bad_seq}: {result.problem}")
    if result.disagreement is not None:
        raise RuleViolation(bindings.REFUSAL + result.disagreement.describe(values=False))
    if not as_json:
        say(
            f"Audit trail intact: {result.entries} entries, "
            f"head #{result.head_seq} {result.head_hash[:16]}…"
        )


def _verify_with_progress(connection: Connection) -> ChainVerification:
    from rich.console import Console
    from rich.progress import Progress

    from lims.services import bindings

    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("Verifying audit trail", total=None)

        def advance(done: int, total: int) -> None:
            if total >= _PROGRESS_THRESHOLD:
                progress.update(task, completed=done, total=total)

        return bindings.verify(connection, on_progress=advance)
