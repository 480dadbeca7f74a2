"""Reagent lots: add, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_record, print_view
from lims.cli.options import service_options
from lims.cli.service import run
from lims.cli.tables import Columns, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import ReagentView

app = new_area("Reagent lots and their expiry: add, list.")


def _print_reagent(view: ReagentView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        "Reagent lot added",
        {
            "reagent": view.label,
            "supplier": view.supplier,
            "expires": view.expires_on,
            "usable until": show_time(view.expires_at, zone),
        },
    )


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The reagent, e.g. 'MEM alpha'.")],
    lot: Annotated[str, typer.Option("--lot", help="The supplier's lot number.")],
    expires: Annotated[
        str, typer.Option("--expires", metavar="DATE", help="Expiry date; usable through it.")
    ],
    supplier: Annotated[str | None, typer.Option("--supplier", help="Who made it.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a reagent lot so steps can name it with --reagent NAME:LOT.

    \b
    Example:
      lims reagent add "MEM alpha" --lot 2411A --expires 2027-03-31 --supplier Gibco
    """
    from lims.services import reagents

    view, zone = run(reagents.add_reagent, **service_options(ctx))
    print_view(view, as_json, _print_reagent, zone)


LIST_COLUMNS: Columns = [
    "name",
    "lot",
    "supplier",
    ("expires", "expires_on"),
    ("state", lambda view: alarm("EXPIRED") if view.expired else "in date"),
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List reagent lots; expired ones are marked.

    \b
    Example:
      lims reagent list
    """
    from lims.services import reagents

    print_list(reagents.list_reagents, as_json, "Reagent lots", LIST_COLUMNS)
