"""Retained samples of a lot: retain, remove, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view
from lims.cli.options import (
    AtOption,
    LateReasonOption,
    LotArgument,
    ReasonOption,
    service_options,
)
from lims.cli.service import read, run

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.storage import Retention, StoredItem

app = new_area(
    "Retained samples of a lot, kept in storage for testing later: retain, remove, list."
)


def _print_retention(view: Retention, zone: tzinfo) -> None:
    from lims.cli.storage import print_items

    print_items(view.samples, f"Samples of lot {view.lot_id} retained", zone)


def _print_removed(view: StoredItem, zone: tzinfo) -> None:
    from lims.cli.storage import print_items

    print_items([view], f"Sample {view.item} removed from storage", zone)


@app.command("retain")
def retain(
    ctx: typer.Context,
    lot: LotArgument,
    count: Annotated[str, typer.Option("--count", metavar="N", help="How many samples, 1-100.")],
    into: Annotated[
        str,
        typer.Option(
            "--into",
            metavar="PATH[:POSITION]",
            help="The box, and the first position: the samples go from it on in row-major "
            "order (each must be free); PATH alone: the box's first free positions.",
        ),
    ],
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Keep samples of a lot in a box (…-L1-R01, numbered on across retentions).

    A lot in quarantine, released or recalled; a rejected lot is not kept.

    \b
    Example:
      lims sample retain A999926000001-L1 --count 2 --into LN2-1/rack-3/box-07:C1
    """
    from lims.services import samples

    view, zone = run(samples.retain_samples, **service_options(ctx))
    print_view(view, as_json, _print_retention, zone)


@app.command("remove")
def remove(
    ctx: typer.Context,
    sample: Annotated[str, typer.Argument(help="The retained sample, e.g. A999926000001-L1-R01.")],
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Take a retained sample out of storage (for testing or disposal); its position is freed.

    \b
    Example:
      lims sample remove A999926000001-L1-R01 --reason "sterility retest, deviation 12"
    """
    from lims.services import samples

    view, zone = run(samples.remove_sample, **service_options(ctx))
    print_view(view, as_json, _print_removed, zone)


@app.command("list")
def list_(lot: LotArgument, as_json: JsonOption = False) -> None:
    """List a lot's retained samples, stored or removed, with their positions.

    \b
    Example:
      lims sample list A999926000001-L1
    """
    from lims.cli.storage import print_items
    from lims.services import samples

    found, zone = read(samples.list_samples, lot=lot)
    print_view(found, as_json, print_items, f"Retained samples of {lot.strip().upper()}", zone)
