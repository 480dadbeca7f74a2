"""Aspirate receipt with its ISBT 128 DIN: receive, show, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_record, print_view
from lims.cli.options import CountOption, LateReasonOption, SuspensionOption, service_options
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import AspirateView

app = new_area(
    "Donations and their DINs, bone marrow or the CSF lots are suspended in: receive, show, list."
)


def _print_aspirate(view: AspirateView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time
    from lims.views.counts import SHA256_IN_TABLES
    from lims.views.records import LATE_ENTRY

    late = None
    if view.late_entry:
        late = alarm(
            f"{LATE_ENTRY}, entered {show_time(view.entered_at, zone)}: {view.late_reason}"
        )
    print_record(
        title,
        {
            "DIN": view.din.display,
            "patient": view.patient,
            "material": MATERIAL_SHOWN[view.material],
            "collected": show_time(view.collected_at, zone),
            "received": show_time(view.received_at, zone),
            "nonconforming": alarm("NONCONFORMING: see its deviation")
            if view.nonconforming
            else None,
            "late": late,
            "volume": f"{view.volume_ml:g} mL",
            "site": view.site,
            "anticoagulant": view.anticoagulant,
            "TNC": f"{view.tnc:,}" if view.tnc is not None else None,
            "TNC from": None
            if view.tnc is None
            else view.count.described(zone, total=True, sha256_digits=SHA256_IN_TABLES),
            "temperature": f"{view.temperature_c:g} °C" if view.temperature_c is not None else None,
            "cultures": ", ".join(view.cultures) or None,
            "left": None if view.volume_left_ml is None else f"{view.volume_left_ml:g} mL",
            "drawn by": _drawn_by(view),
            "received by": view.recorded_by,
        },
    )


# How tables name each material (aspirates.material).
MATERIAL_SHOWN = {"bone_marrow": "bone marrow", "csf": "CSF"}


def _drawn_by(view: AspirateView) -> str | None:
    """The lots a CSF donation suspends, with the mL each drew."""
    return ", ".join(f"{draw.lot_id} ({draw.vehicle_ml:g} mL)" for draw in view.drawn_by) or None


DinArgument = Annotated[
    str, typer.Argument(help="The DIN, with or without spaces and check character.")
]


@app.command("receive")
def receive(
    ctx: typer.Context,
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
    count: CountOption = None,
    suspension_ml: SuspensionOption = None,
    received_at: Annotated[
        str | None,
        typer.Option("--received-at", metavar="ISO", help="When it arrived. Default: now."),
    ] = None,
    temperature_c: Annotated[
        str | None,
        typer.Option("--temperature-c", metavar="C", help="Temperature on arrival, °C."),
    ] = None,
    nonconforming: Annotated[
        bool,
        typer.Option(
            "--nonconforming",
            help="Keep a sample received more than aspirate.max_transit_hours (site setting, "
            "default 48) after collection; needs --reason and opens a deviation on it.",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why a nonconforming sample is kept (with --nonconforming)."),
    ] = None,
    late_reason: LateReasonOption = None,
    material: Annotated[
        str | None,
        typer.Option(
            "--material",
            metavar="bone_marrow|csf",
            help="What was collected: bone marrow to expand (default), or the patient's CSF "
            "to suspend a lot in (up to aspirate.csf_max_volume_ml, site setting, default 30 "
            "mL; no anticoagulant or TNC).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Receive a donation and give it the next DIN of this facility and year.

    The DIN's year is the collection year at the facility (facility.timezone). The
    collection must not be before the patient's consent date or birth year. The total
    nucleated cells of bone marrow are typed (--tnc), or the total cells of a count imported
    from the cell counter (--count, with the volume counted). CSF (--material csf) is the
    vehicle a lot is suspended in (lot formulate --vehicle-din): it starts no culture.

    \b
    Example:
      lims aspirate receive --patient PT-0001 --collected-at 2026-11-25T08:10 \\
        --volume-ml 30 --anticoagulant "sodium heparin" --tnc 6.1e8 --temperature-c 18
      lims aspirate receive --patient PT-0001 --collected-at 2026-11-25T08:10 \\
        --volume-ml 30 --count CNT-000003 --suspension-ml 30
      lims aspirate receive --patient PT-0001 --material csf \\
        --collected-at 2026-12-22T07:30 --volume-ml 10 --temperature-c 4
    """
    from lims.services import aspirates

    view, zone = run(aspirates.receive, **service_options(ctx))
    print_view(view, as_json, _print_aspirate, "Aspirate received", zone)


@app.command("show")
def show(din: DinArgument, as_json: JsonOption = False) -> None:
    """Show a donation: the cultures started from bone marrow, the lots CSF suspends.

    \b
    Example:
      lims aspirate show "A9999 26 000001"
    """
    from lims.services import aspirates

    view, zone = read(aspirates.show_aspirate, din=din)
    print_view(view, as_json, _print_aspirate, f"Aspirate {view.din.display}", zone)


LIST_COLUMNS: Columns = [
    ("DIN", "din.display"),
    "patient",
    ("material", lambda view: MATERIAL_SHOWN[view.material]),
    ("collected", Moment("collected_at")),
    ("received", Moment("received_at")),
    ("conditions", lambda view: "nonconforming" if view.nonconforming else None),
    LATE_COLUMN,
    ("volume mL", lambda view: f"{view.volume_ml:g}"),
    ("left mL", lambda view: None if view.volume_left_ml is None else f"{view.volume_left_ml:g}"),
    ("cultures", lambda view: ", ".join(view.cultures) or None),
    ("lots suspended", lambda view: ", ".join(draw.lot_id for draw in view.drawn_by) or None),
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List donations by DIN, bone marrow and CSF, with the CSF each has left.

    \b
    Example:
      lims aspirate list
    """
    from lims.services import aspirates

    print_list(aspirates.list_aspirates, as_json, "Aspirates", LIST_COLUMNS)
