"""Storage locations and the items kept in them: add, show, list, move, find."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_record, print_table, print_view
from lims.cli.options import ReasonOption, service_options
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, cells, print_columns, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.storage import LocationDetail, LocationView, Moved, StoredItem

app = new_area("Storage locations and what is kept in them: add, show, list, move, find.")

PathArgument = Annotated[
    str, typer.Argument(metavar="PATH", help="The location's path, e.g. LN2-1/rack-3/box-07.")
]
FREE = "·"  # a free position in a box's grid


def _kind(item: StoredItem) -> str:
    return item.item_kind.replace("_", " ")


def _status(item: StoredItem) -> object:
    return item.status if item.place is not None else alarm(item.status)


# A stored item's columns wherever a list of them is drawn: `storage find`, `sample list`,
# a box's legend, the bank commands, `lot show` and `patient show`.
ITEM_COLUMNS: Columns = [
    "item",
    ("kind", _kind),
    ("status", _status),
    ("place", "place"),
    "patient",
    ("of", "of"),
    ("cells", lambda item: cells(item.cells)),
    ("since", Moment("placed_at")),
    LATE_COLUMN,
]
# For items that may have left storage: when, by whom and why.
ENDED_COLUMNS: Columns = [
    *ITEM_COLUMNS,
    ("left storage", Moment("ended_at")),
    ("by", "ended_by"),
    ("why", "end_reason"),
]
# A box's legend: the grid above says where each position is.
LEGEND_COLUMNS: Columns = [
    ("position", "position"),
    *(column for column in ITEM_COLUMNS if column != ("place", "place")),
]
LOCATION_COLUMNS: Columns = [
    "path",
    "kind",
    ("grid", "grid"),
    ("°C", lambda view: None if view.temperature_c is None else f"{view.temperature_c:g}"),
    ("occupied", "occupancy"),
]


def print_items(items: list[StoredItem], title: str, zone: tzinfo) -> None:
    """A list of stored items; with the columns of leaving storage when any has left."""
    ended = any(item.ended_at is not None for item in items)
    print_columns(items, title, ENDED_COLUMNS if ended else ITEM_COLUMNS, zone)


def _location_fields(view: LocationView) -> dict[str, object]:
    return {
        "path": view.path,
        "kind": view.kind,
        "grid": view.grid,
        "temperature": None if view.temperature_c is None else f"{view.temperature_c:g} °C",
        "occupied": view.occupancy or "no box positions",
    }


def _print_added(view: LocationView, zone: tzinfo) -> None:
    print_record("Storage location added", _location_fields(view))


def print_location(detail: LocationDetail, zone: tzinfo) -> None:
    location = detail.location
    print_record(f"Storage {location.path}", _location_fields(location))
    if location.rows is not None and location.columns is not None:
        _print_grid(detail, location.rows, location.columns)
        if detail.positions:
            print_columns(detail.positions, "In the box", LEGEND_COLUMNS, zone)
        return
    if detail.children:
        print_columns(detail.children, f"In {location.path}", LOCATION_COLUMNS)
    else:
        typer.echo(f"{location.path} holds no location yet.")


def _print_grid(detail: LocationDetail, rows: int, columns: int) -> None:
    """The box as it is seen from above: a row per letter, each cell its item's short id."""
    from lims.domain.storage import Position

    held = {item.position: item.short for item in detail.positions}
    print_table(
        "Positions (· free)",
        ["", *(str(column) for column in range(1, columns + 1))],
        [
            [
                Position(row, 1).label[0],
                *(held.get(Position(row, column).label, FREE) for column in range(1, columns + 1)),
            ]
            for row in range(1, rows + 1)
        ],
    )


@app.command("add")
def add(
    ctx: typer.Context,
    path: PathArgument,
    kind: Annotated[
        str, typer.Option("--kind", help="tank, freezer, rack, box or shelf.", metavar="KIND")
    ],
    rows: Annotated[
        str | None,
        typer.Option("--rows", metavar="R", help="A box's rows, 1-26 (lettered A-Z)."),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option("--columns", metavar="C", help="A box's columns, 1-99."),
    ] = None,
    temperature_c: Annotated[
        str | None,
        typer.Option("--temperature-c", metavar="T", help="Where it is kept, -200 to 60 °C."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add a storage location (QA or admin) inside the one its path names, or at the top.

    A box has positions (--rows, --columns); nothing goes inside a box but the items in
    them. A path that differs from an existing one only in letter case is refused.

    \b
    Example:
      lims storage add LN2-1 --kind tank --temperature-c -190
      lims storage add LN2-1/rack-3 --kind rack
      lims storage add LN2-1/rack-3/box-07 --kind box --rows 9 --columns 9
    """
    from lims.services import storage

    view, zone = run(storage.add_location, **service_options(ctx))
    print_view(view, as_json, _print_added, zone)


@app.command("show")
def show(path: PathArgument, as_json: JsonOption = False) -> None:
    """Show a location: a box as a grid of its positions with what is in each, any other
    location the locations inside it and how full their boxes are.

    \b
    Example:
      lims storage show LN2-1/rack-3/box-07
    """
    from lims.services import storage

    detail, zone = read(storage.show_location, path=path)
    print_view(detail, as_json, print_location, zone)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List every storage location with its kind and how full its boxes are.

    \b
    Example:
      lims storage list
    """
    from lims.services import storage

    print_list(storage.list_locations, as_json, "Storage locations", LOCATION_COLUMNS)


@app.command("move")
def move(
    ctx: typer.Context,
    item: Annotated[
        str,
        typer.Argument(
            metavar="ITEM", help="A bank vial or retained sample, e.g. A999926000001-C1-B01."
        ),
    ],
    to: Annotated[
        str,
        typer.Argument(
            metavar="PATH:POSITION",
            help="A free position, e.g. LN2-1/rack-3/box-07:B4 (PATH alone: its first free one).",
        ),
    ],
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Move a stored item to a free position; the trail keeps where it was and why.

    \b
    Example:
      lims storage move A999926000001-C1-B01 LN2-2/rack-1/box-01:A1 --reason "tank 1 emptied"
    """
    from lims.services import storage

    view, zone = run(storage.move_item, **service_options(ctx))
    print_view(view, as_json, _print_moved, zone)


def _print_moved(view: Moved, zone: tzinfo) -> None:
    typer.echo(
        f"{_kind(view.item).capitalize()} {view.item.item}: {view.moved_from} -> {view.item.place}"
    )


@app.command("find")
def find(
    ctx: typer.Context,
    item: Annotated[
        str,
        typer.Argument(
            metavar="ITEM|DIN|PATIENT",
            help="A bank vial, retained sample, culture, passage, lot or DIN (its items and "
            "those of what derives from it), or a patient code (all of theirs).",
        ),
    ],
    all_items: Annotated[
        bool,
        typer.Option("--all", help="Also items that left storage, with when and why."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Find stored items: where each is (PATH:POSITION), its kind, status, patient and what
    it was made from. An argument that reads as a lims id is taken as one.

    \b
    Example:
      lims storage find PT-0001
      lims storage find A999926000001-C1 --all --json
    """
    from lims.services import storage

    found, zone = read(storage.find_items, **service_options(ctx))
    print_view(found, as_json, print_items, f"Stored items of {item.strip()}", zone)
