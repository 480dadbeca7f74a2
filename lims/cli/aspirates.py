"""Aspirate receipt with its ISBT 128 DIN: receive, show, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_json, print_record, print_table

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import AspirateView

app = new_area("Bone-marrow aspirates and their DINs: receive, show, list.")


def _show(view: AspirateView, title: str, zone: tzinfo, as_json: bool) -> None:
    if as_json:
        from lims.views import to_json

        print_json(to_json(view))
        return
    from lims.timeutil import show_time

    print_record(
        title,
        [
            ("DIN", view.din.display),
            ("patient", view.patient),
            ("collected", show_time(view.collected_at, zone)),
            ("received", show_time(view.received_at, zone)),
            ("volume", f"{view.volume_ml:g} mL"),
            ("site", view.site),
            ("anticoagulant", view.anticoagulant),
            ("TNC", f"{view.tnc:,}" if view.tnc is not None else None),
            (
                "temperature",
                f"{view.temperature_c:g} °C" if view.temperature_c is not None else None,
            ),
            ("cultures", ", ".join(view.cultures) or None),
            ("received by", view.recorded_by),
        ],
    )


DinArgument = Annotated[
    str, typer.Argument(help="The DIN, with or without spaces and check character.")
]


@app.command("receive")
def receive(
    patient: Annotated[str, typer.Option("--patient", metavar="CODE", help="The patient code.")],
    collected_at: Annotated[
        str, typer.Option("--collected-at", metavar="ISO", help="When it was aspirated.")
    ],
    volume_ml: Annotated[str, typer.Option("--volume-ml", metavar="ML", help="Volume received.")],
    site: Annotated[
        str | None,
        typer.Option("--site", help='Aspiration site. Default: "posterior iliac crest".'),
    ] = None,
    anticoagulant: Annotated[
        str | None, typer.Option("--anticoagulant", help="e.g. sodium heparin.")
    ] = None,
    tnc: Annotated[
        str | None, typer.Option("--tnc", metavar="N", help="Total nucleated cells.")
    ] = None,
    received_at: Annotated[
        str | None,
        typer.Option("--received-at", metavar="ISO", help="When it arrived. Default: now."),
    ] = None,
    temperature_c: Annotated[
        str | None,
        typer.Option("--temperature-c", metavar="C", help="Temperature on arrival, °C."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Receive an aspirate and give it the next DIN of this facility and year.

    \b
    Example:
      lims aspirate receive --patient PT-0001 --collected-at 2026-11-25T08:10 \\
        --volume-ml 30 --anticoagulant "sodium heparin" --tnc 6.1e8 --temperature-c 18
    """
    from lims.services import aspirates
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        view = aspirates.receive(
            uow,
            patient=patient,
            collected_at=collected_at,
            volume_ml=volume_ml,
            site=site,
            anticoagulant=anticoagulant,
            tnc=tnc,
            received_at=received_at,
            temperature_c=temperature_c,
        )
    _show(view, "Aspirate received", uow.tz, as_json)


@app.command("show")
def show(din: DinArgument, as_json: JsonOption = False) -> None:
    """Show an aspirate and the cultures started from it.

    \b
    Example:
      lims aspirate show "A9999 26 000001"
    """
    from lims.services import aspirates
    from lims.uow import unit_of_work

    with unit_of_work(write=False) as uow:
        view = aspirates.show_aspirate(uow, din=din)
    _show(view, f"Aspirate {view.din.display}", uow.tz, as_json)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List aspirates by DIN.

    \b
    Example:
      lims aspirate list
    """
    from lims.services import aspirates
    from lims.timeutil import show_time
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work(write=False) as uow:
        views = aspirates.list_aspirates(uow)
    if as_json:
        print_json(to_json(views))
        return
    print_table(
        "Aspirates",
        ["DIN", "patient", "collected", "received", "volume mL", "cultures"],
        [
            (
                v.din.display,
                v.patient,
                show_time(v.collected_at, uow.tz),
                show_time(v.received_at, uow.tz),
                f"{v.volume_ml:g}",
                ", ".join(v.cultures) or None,
            )
            for v in views
        ],
    )
