"""Reagent lots: add, list."""

from __future__ import annotations

from typing import Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_json, print_record, print_table

app = new_area("Reagent lots and their expiry: add, list.")


@app.command("add")
def add(
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
    from lims.timeutil import show_time
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work() as uow:
        view = reagents.add_reagent(
            uow,
            name=name,
            lot=lot,
            expires=expires,
            supplier=supplier,
        )
    if as_json:
        print_json(to_json(view))
        return
    print_record(
        "Reagent lot added",
        [
            ("reagent", view.label),
            ("supplier", view.supplier),
            ("expires", view.expires_on),
            ("usable until", show_time(view.expires_at, uow.tz)),
        ],
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List reagent lots; expired ones are marked.

    \b
    Example:
      lims reagent list
    """
    from lims.services import reagents
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work(write=False) as uow:
        views = reagents.list_reagents(uow)
    if as_json:
        print_json(to_json(views))
        return
    print_table(
        "Reagent lots",
        ["name", "lot", "supplier", "expires", "state"],
        [
            (
                v.name,
                v.lot,
                v.supplier,
                v.expires_on,
                alarm("EXPIRED") if v.expired else "in date",
            )
            for v in views
        ],
    )
