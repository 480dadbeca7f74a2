"""Passages: log a harvest and reseeding, correct one with a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_alarms, print_table, print_view
from lims.cli.options import (
    AtOption,
    CountOption,
    CultureArgument,
    EquipmentOption,
    LateReasonOption,
    ReagentOption,
    ReasonOption,
    SuspensionOption,
    service_options,
)
from lims.cli.service import run

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import Correction

app = new_area("Passages of a culture: log, correct. Growth values are derived, never typed.")

HarvestedOption = Annotated[
    str | None,
    typer.Option(
        "--harvested", metavar="N", help="Viable cells harvested, e.g. 3.2e7 (or --count)."
    ),
]
ViabilityOption = Annotated[
    str | None,
    typer.Option(
        "--viability", metavar="PCT", help="Viability by trypan blue, 0-100 (or --count)."
    ),
]
SeededOption = Annotated[
    str, typer.Option("--seeded", metavar="N", help="Cells reseeded (at most those harvested).")
]
VesselsOption = Annotated[str, typer.Option("--vessels", metavar="N", help="Vessels reseeded.")]
AreaOption = Annotated[
    str, typer.Option("--area-cm2", metavar="CM2", help="Total growth area reseeded.")
]
ConfluenceOption = Annotated[
    str | None,
    typer.Option("--confluence", metavar="PCT", help="Confluence at harvest, 0-100."),
]
ConfirmUnusualOption = Annotated[
    bool,
    typer.Option(
        "--confirm-unusual",
        help="The counts are right although beyond expansion.max_harvest_density_per_cm2 or "
        "expansion.min_doubling_time_hours: record them and open a deviation.",
    ),
]


@app.command("log")
def log(
    ctx: typer.Context,
    culture: CultureArgument,
    seeded: SeededOption,
    vessels: VesselsOption,
    area_cm2: AreaOption,
    harvested: HarvestedOption = None,
    viability: ViabilityOption = None,
    count: CountOption = None,
    suspension_ml: SuspensionOption = None,
    confluence: ConfluenceOption = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    confirm_unusual: ConfirmUnusualOption = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why counts confirmed as unusual are right (audited)."),
    ] = None,
    reagents: ReagentOption = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log a passage: the cells plated at the previous step harvested now, and reseeded.

    The viable cells harvested and their viability are typed, or taken from a count
    imported from the cell counter (--count, with the volume counted): not both.

    \b
    Example:
      lims passage log A999926000001-C1 --harvested 2.9e7 --viability 94 \\
        --seeded 2.6e7 --vessels 30 --area-cm2 5250 --confluence 85 --reagent "TrypLE:2409B" \\
        --equipment BSC-01 --equipment INC-01
      lims passage log A999926000001-C1 --count CNT-000012 --suspension-ml 10 \\
        --seeded 2.6e7 --vessels 30 --area-cm2 5250
    """
    from lims.cli import expansion
    from lims.services import cultures

    view, zone = run(cultures.log_passage, **service_options(ctx))
    print_view(view, as_json, expansion.show_passage, f"Passage {view.passage_id} logged", zone)


@app.command("correct")
def correct(
    ctx: typer.Context,
    passage: Annotated[str, typer.Argument(help="The passage id, e.g. A999926000001-C1-P2.")],
    reason: ReasonOption,
    harvested: Annotated[str | None, typer.Option("--harvested", metavar="N")] = None,
    viability: Annotated[str | None, typer.Option("--viability", metavar="PCT")] = None,
    seeded: Annotated[str | None, typer.Option("--seeded", metavar="N")] = None,
    vessels: Annotated[str | None, typer.Option("--vessels", metavar="N")] = None,
    area_cm2: Annotated[str | None, typer.Option("--area-cm2", metavar="CM2")] = None,
    confluence: ConfluenceOption = None,
    at: Annotated[
        str | None, typer.Option("--at", metavar="ISO", help="The corrected harvest time.")
    ] = None,
    confirm_unusual: ConfirmUnusualOption = False,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a passage's typed values; it and every later passage are recomputed.

    Cells and viability taken from an imported count (passage log --count) are the
    instrument's: they are not retyped (open a deviation on the culture instead), and a
    corrected time stays within counts.max_age_hours of the count.

    \b
    Example:
      lims passage correct A999926000001-C1-P2 --harvested 2.7e7 --reason "count sheet misread"
    """
    from lims.services import cultures

    correction, zone = run(cultures.correct_passage, **service_options(ctx))
    print_view(correction, as_json, _print_correction, zone)


def _print_correction(correction: Correction, zone: tzinfo) -> None:
    from lims.cli import expansion

    print_table(
        f"Corrected {correction.passage.passage_id}",
        ["value", "was", "now"],
        [
            (name, expansion.value(old), expansion.value(new))
            for name, (old, new) in correction.changed.items()
        ],
    )
    expansion.show_passage(correction.passage, "After the correction", zone)
    if correction.recomputed:
        typer.echo("Recomputed from it: " + ", ".join(correction.recomputed))
    print_alarms(
        f"FLAGGED: {flag.description} — deviation {flag.deviation_id} opened on the culture"
        for flag in correction.flagged_later
    )
