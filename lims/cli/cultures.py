"""Cultures: start, split, freeze, list, show, project."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_record, print_view
from lims.cli.options import (
    AtOption,
    CountOption,
    CultureArgument,
    EquipmentOption,
    LateReasonOption,
    ReagentOption,
    SuspensionOption,
    service_options,
)
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, cells, fixed, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bank import FreezeView
    from lims.views.bench import CultureSummary, ProjectionView

app = new_area("Cultures expanding from an aspirate: start, split, freeze, list, show, project.")


@app.command("start")
def start(
    ctx: typer.Context,
    din: Annotated[str, typer.Argument(help="The aspirate's DIN.")],
    vessels: Annotated[str, typer.Option("--vessels", metavar="N", help="Vessels plated.")],
    area_cm2: Annotated[
        str, typer.Option("--area-cm2", metavar="CM2", help="Total growth area plated.")
    ],
    mnc: Annotated[
        str | None,
        typer.Option(
            "--mnc", metavar="N", help="Mononuclear cells plated: a primary culture (P0)."
        ),
    ] = None,
    seeded: Annotated[
        str | None,
        typer.Option("--seeded", metavar="N", help="Counted cells plated, e.g. a thawed bank."),
    ] = None,
    count: CountOption = None,
    suspension_ml: SuspensionOption = None,
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            metavar="primary|seeded",
            help="With --count: the culture the counted viable cells start, in place of "
            "--mnc or --seeded.",
        ),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help='How the cells were isolated. Default for --mnc: "density gradient '
            '(Percoll 1.073 g/mL)".',
        ),
    ] = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    reagents: ReagentOption = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a culture from an aspirate; prints its culture id. Cells from a culture's
    harvest are split from it (`lims culture split`), not started anew. The cells plated
    are typed (--mnc or --seeded), or the viable cells of a count imported from the cell
    counter (--count, with the volume counted and --kind).

    \b
    Example:
      lims culture start A999926000001 --mnc 2.4e8 --vessels 5 --area-cm2 875 \\
        --reagent "Percoll:P-1107" --reagent "MEM alpha:2411A" \\
        --equipment BSC-01 --equipment INC-01
      lims culture start A999926000001 --count CNT-000007 --suspension-ml 5 \\
        --kind primary --vessels 5 --area-cm2 875
    """
    from lims.cli import expansion
    from lims.services import cultures

    detail, zone = run(cultures.start_culture, **service_options(ctx))
    print_view(detail, as_json, expansion.show_culture, zone)


@app.command("split")
def split(
    ctx: typer.Context,
    culture: CultureArgument,
    seeded: Annotated[
        str,
        typer.Option("--seeded", metavar="N", help="Cells of the latest passage's harvest plated."),
    ],
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
    """Start a child culture from cells harvested at a culture's latest passage.

    The child keeps the passage number and cumulative PD (and the passage limit); what the
    parent reseeded and its children got cannot exceed that harvest.

    \b
    Example:
      lims culture split A999926000001-C1 --seeded 1e7 --vessels 2 --area-cm2 350
    """
    from lims.cli import expansion
    from lims.services import cultures

    detail, zone = run(cultures.split_culture, **service_options(ctx))
    print_view(detail, as_json, expansion.show_culture, zone)


@app.command("freeze")
def freeze(
    ctx: typer.Context,
    culture: CultureArgument,
    cells_per_vial: Annotated[
        str,
        typer.Option("--cells-per-vial", metavar="N", help="Cells of the latest harvest per vial."),
    ],
    vials: Annotated[str, typer.Option("--vials", metavar="K", help="Bank vials to freeze.")],
    into: Annotated[
        str,
        typer.Option(
            "--into",
            metavar="PATH[:POSITION]",
            help="The box, and the first of K positions filled in row-major order "
            "(A1, A2, ... B1); without a position, the box's first free ones.",
        ),
    ],
    medium: Annotated[
        str | None,
        typer.Option("--medium", metavar="TEXT", help="The freezing medium, e.g. CryoStor CS10."),
    ] = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Freeze cells harvested at a culture's latest passage into bank vials in a box.

    Frozen cells come out of that harvest as a split's do: what the culture reseeded, what
    its split children got and what is frozen cannot exceed it. A vial thawed later
    (`lims bank thaw`) starts a child culture that keeps the passage number and cumulative PD.

    \b
    Example:
      lims culture freeze A999926000001-C1 --cells-per-vial 5e6 --vials 4 \\
        --into LN2-1/rack-3/box-07:A1 --medium "CryoStor CS10" --equipment BSC-01
    """
    from lims.services import bank

    view, zone = run(bank.freeze, **service_options(ctx))
    print_view(view, as_json, _print_freeze, zone)


def _print_freeze(view: FreezeView, zone: tzinfo) -> None:
    from lims.cli import bank

    bank.print_vials(
        view.bank_vials,
        f"Frozen from the harvest of {view.passage_id}: {cells(view.cells)} cells in "
        f"{len(view.bank_vials)} vials, {view.into}",
        zone,
    )
    typer.echo(f"{cells(view.left_in_harvest)} cells of the harvest are left.")


def _open_deviations(summary: CultureSummary) -> object:
    """A culture's open deviations: in red unless there are none."""
    return alarm(str(summary.open_deviations)) if summary.open_deviations else 0


LIST_COLUMNS: Columns = [
    ("culture", "culture_id"),
    "patient",
    "kind",
    "status",
    ("started", Moment("started_at")),
    ("plated", lambda summary: cells(summary.cells_plated)),
    "passages",
    ("cum. PD", lambda summary: fixed(summary.cumulative_population_doublings)),
    ("open deviations", _open_deviations),
    LATE_COLUMN,
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List cultures with their passage count and cumulative PD.

    \b
    Example:
      lims culture list
    """
    from lims.services import cultures

    print_list(cultures.list_cultures, as_json, "Cultures", LIST_COLUMNS)


@app.command("show")
def show(culture: CultureArgument, as_json: JsonOption = False) -> None:
    """Show a culture: passages, growth, reagents, deviations and a growth curve.

    \b
    Example:
      lims culture show A999926000001-C1
    """
    from lims.cli import expansion
    from lims.services import cultures

    detail, zone = read(cultures.show_culture, culture=culture)
    print_view(detail, as_json, expansion.show_culture, zone)


@app.command("project")
def project(
    culture: CultureArgument,
    target_cells: Annotated[
        str, typer.Option("--target-cells", metavar="N", help="The dose to reach, e.g. 1.2e8.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Project when a culture reaches a target dose, from its recent doubling times.

    \b
    Example:
      lims culture project A999926000001-C1 --target-cells 1.2e8
    """
    from lims.services import cultures

    view, zone = read(cultures.project_culture, culture=culture, target_cells=target_cells)
    print_view(view, as_json, _print_projection, zone)


def _print_projection(view: ProjectionView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    if view.passages_needed == 0:
        typer.echo(
            f"{view.culture_id}: the target of {cells(view.target_cells)} cells is already "
            f"reached: {cells(view.cells_now)} cells were seeded at the last passage."
        )
        return
    final = f"P{view.final_passage_number}"
    print_record(
        f"Projection for {view.culture_id}",
        {
            "target": f"{cells(view.target_cells)} cells",
            "from": f"{cells(view.cells_now)} cells seeded {show_time(view.seeded_at, zone)}",
            "doublings needed": f"{view.doublings_needed:.2f}",
            "passages needed": view.passages_needed,
            "final passage": (
                alarm(f"{final}: above the maximum P{view.max_passage}")
                if view.exceeds_max_passage
                else final
            ),
            "expected": show_time(view.expected_at, zone),
            "area at last reseeding": f"{view.area_cm2_at_last_reseeding:,.0f} cm²",
        },
    )
    typer.echo("Assumptions:")
    for assumption in view.assumptions:
        typer.echo(f"  - {assumption}")
