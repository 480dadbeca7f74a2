"""Passages: log a harvest and reseeding, correct one with a reason."""

from __future__ import annotations

from typing import Annotated

import typer

from lims.cli.common import (
    AtOption,
    JsonOption,
    ReagentOption,
    new_area,
    print_alarms,
    print_json,
)

app = new_area("Passages of a culture: log, correct. Growth values are derived, never typed.")

HarvestedOption = Annotated[
    str, typer.Option("--harvested", metavar="N", help="Viable cells harvested, e.g. 3.2e7.")
]
ViabilityOption = Annotated[
    str, typer.Option("--viability", metavar="PCT", help="Viability by trypan blue, 0-100.")
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


@app.command("log")
def log(
    culture: Annotated[str, typer.Argument(help="The culture id, e.g. A999926000001-C1.")],
    harvested: HarvestedOption,
    viability: ViabilityOption,
    seeded: SeededOption,
    vessels: VesselsOption,
    area_cm2: AreaOption,
    confluence: ConfluenceOption = None,
    at: AtOption = None,
    reagent: ReagentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log a passage: the cells plated at the previous step harvested now, and reseeded.

    \b
    Example:
      lims passage log A999926000001-C1 --harvested 2.9e7 --viability 94 \\
        --seeded 2.6e7 --vessels 30 --area-cm2 5250 --confluence 85 --reagent "TrypLE:2409B"
    """
    from lims.cli import expansion
    from lims.services import cultures
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work() as uow:
        view = cultures.log_passage(
            uow,
            culture=culture,
            harvested=harvested,
            viability=viability,
            seeded=seeded,
            vessels=vessels,
            area_cm2=area_cm2,
            confluence=confluence,
            at=at,
            reagents=reagent or (),
        )
    if as_json:
        print_json(to_json(view))
        return
    expansion.show_passage(view, f"Passage {view.passage_id} logged", uow.tz)


@app.command("correct")
def correct(
    passage: Annotated[str, typer.Argument(help="The passage id, e.g. A999926000001-C1-P2.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")],
    harvested: Annotated[str | None, typer.Option("--harvested", metavar="N")] = None,
    viability: Annotated[str | None, typer.Option("--viability", metavar="PCT")] = None,
    seeded: Annotated[str | None, typer.Option("--seeded", metavar="N")] = None,
    vessels: Annotated[str | None, typer.Option("--vessels", metavar="N")] = None,
    area_cm2: Annotated[str | None, typer.Option("--area-cm2", metavar="CM2")] = None,
    confluence: ConfluenceOption = None,
    at: Annotated[
        str | None, typer.Option("--at", metavar="ISO", help="The corrected harvest time.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a passage's typed values; it and every later passage are recomputed.

    \b
    Example:
      lims passage correct A999926000001-C1-P2 --harvested 2.7e7 --reason "count sheet misread"
    """
    from lims.cli import expansion
    from lims.cli.common import print_table
    from lims.services import cultures
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work() as uow:
        correction = cultures.correct_passage(
            uow,
            passage=passage,
            reason=reason,
            harvested=harvested,
            viability=viability,
            seeded=seeded,
            vessels=vessels,
            area_cm2=area_cm2,
            confluence=confluence,
            at=at,
        )
    if as_json:
        print_json(to_json(correction))
        return
    print_table(
        f"Corrected {correction.passage.passage_id}",
        ["value", "was", "now"],
        [
            (name, expansion.value(old), expansion.value(new))
            for name, (old, new) in correction.changed.items()
        ],
    )
    expansion.show_passage(correction.passage, "After the correction", uow.tz)
    if correction.recomputed:
        typer.echo("Recomputed from it: " + ", ".join(correction.recomputed))
    print_alarms(
        f"FLAGGED: {flag.description} — deviation {flag.deviation_id} opened on the culture"
        for flag in correction.flagged_later
    )
