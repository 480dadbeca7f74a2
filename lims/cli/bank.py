"""The cell bank: bank vials frozen from a culture's harvest (`lims culture freeze`): list,
show, thaw, discard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, late_entry_note, new_area, print_record, print_view
from lims.cli.options import (
    AtOption,
    EquipmentOption,
    LateReasonOption,
    ReagentOption,
    ReasonOption,
    service_options,
)
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, cells, print_columns, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bank import BankVialView

app = new_area("Bank vials of frozen cells: list, show, thaw, discard.")

BankVialArgument = Annotated[
    str, typer.Argument(help="The bank vial id, e.g. A999926000001-C1-B01.")
]


def _kept(view: BankVialView) -> str | None:
    """Where the vial is, or what became of it."""
    if view.position is not None:
        return view.position
    if view.thawed_into is not None:
        return f"thawed into {view.thawed_into}"
    return view.status


LIST_COLUMNS: Columns = [
    ("bank vial", "bank_vial_id"),
    "patient",
    ("frozen from", "passage_id"),
    ("cells", lambda view: cells(view.cells)),
    ("frozen", Moment("frozen_at")),
    "status",
    ("position", _kept),
    LATE_COLUMN,
]


def print_vials(views: Sequence[BankVialView], title: str, zone: tzinfo) -> None:
    print_columns(views, title, LIST_COLUMNS, zone)


def _print_vial(view: BankVialView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    ended = None
    if view.ended_at is not None:
        ended = f"{view.status} {show_time(view.ended_at, zone)} by {view.ended_by}"
    print_record(
        f"Bank vial {view.bank_vial_id}",
        {
            "culture": view.culture_id,
            "patient": view.patient,
            "frozen from": f"the harvest of {view.passage_id} (passage {view.passage_number}, "
            f"cumulative PD {view.cumulative_population_doublings:.2f})",
            "cells": cells(view.cells),
            "medium": view.medium,
            "frozen": f"{show_time(view.frozen_at, zone)} by {view.recorded_by}",
            "status": view.status,
            "position": view.position,
            "ended": ended,
            "thawed into": view.thawed_into,
            "viability after thawing": (
                None if view.thaw_viability is None else f"{view.thaw_viability:g} %"
            ),
            "reason": view.end_reason,
            **{
                f"{mark.action} at {show_time(mark.at, zone)}": late_entry_note(
                    mark.entered_at, mark.entered_by, mark.reason, zone
                )
                for mark in view.late_entries
            },
        },
    )


@app.command("list")
def list_(
    culture: Annotated[
        str | None,
        typer.Option("--culture", metavar="CULTURE", help="Only the vials of this culture."),
    ] = None,
    include_ended: Annotated[
        bool, typer.Option("--all", help="Thawed and discarded vials too, not only those stored.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the bank vials in storage, with where each is kept.

    \b
    Example:
      lims bank list --culture A999926000001-C1
      lims bank list --all --json
    """
    from lims.services import bank

    print_list(
        bank.list_bank_vials,
        as_json,
        "Bank vials" if include_ended else "Bank vials in storage",
        LIST_COLUMNS,
        culture=culture,
        include_ended=include_ended,
    )


@app.command("show")
def show(bank_vial: BankVialArgument, as_json: JsonOption = False) -> None:
    """Show a bank vial: its cells, the harvest they came from, where it is or what became of it.

    \b
    Example:
      lims bank show A999926000001-C1-B01
    """
    from lims.services import bank

    view, zone = read(bank.show_bank_vial, bank_vial=bank_vial)
    print_view(view, as_json, _print_vial, zone)


@app.command("thaw")
def thaw(
    ctx: typer.Context,
    bank_vial: BankVialArgument,
    viability: Annotated[
        str, typer.Option("--viability", metavar="PCT", help="Viability counted after thawing.")
    ],
    seeded: Annotated[str, typer.Option("--seeded", metavar="N", help="Cells of the vial plated.")],
    vessels: Annotated[str, typer.Option("--vessels", metavar="N", help="Vessels plated.")],
    area_cm2: Annotated[
        str, typer.Option("--area-cm2", metavar="CM2", help="Total growth area plated.")
    ],
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    reagents: ReagentOption = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Thaw a bank vial into a child culture; prints the culture.

    The child keeps the passage number and cumulative PD of the harvest the vial was frozen
    from (and its passage limit). A viability below expansion.viability_flag_below_percent
    (site setting, default 80) opens a deviation on the child.

    \b
    Example:
      lims bank thaw A999926000001-C1-B01 --viability 91 --seeded 4.5e6 \\
        --vessels 1 --area-cm2 175 --equipment BSC-01 --equipment INC-01
    """
    from lims.cli import expansion
    from lims.services import bank

    detail, zone = run(bank.thaw, **service_options(ctx))
    print_view(detail, as_json, expansion.show_culture, zone)


@app.command("discard")
def discard(
    ctx: typer.Context,
    bank_vial: BankVialArgument,
    reason: ReasonOption,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Discard a bank vial; its position in the box is freed.

    \b
    Example:
      lims bank discard A999926000001-C1-B02 --reason "cracked in the tank"
    """
    from lims.services import bank

    view, zone = run(bank.discard, **service_options(ctx))
    print_view(view, as_json, _print_vial, zone)
