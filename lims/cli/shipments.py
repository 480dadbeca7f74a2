"""Shipments of released vials to another site: create, add, remove, cancel, dispatch,
receive, lost, show, list."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    alarm,
    late_entry_note,
    new_area,
    print_alarms,
    print_record,
    print_table,
    print_view,
)
from lims.cli.options import AtOption, LateReasonOption, ReasonOption, service_options
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, print_columns
from lims.domain.states import SHIPMENT, VIAL

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import tzinfo

    from lims.views.shipments import ShipmentReceipt, ShipmentSummary, ShipmentView

app = new_area(
    "Shipments of released vials to another site: create, add, remove, cancel, dispatch, "
    "receive, lost, show, list."
)

ShipmentArgument = Annotated[
    str, typer.Argument(metavar="SHP", help="The shipment id, e.g. SHP-000001.")
]
VialArgument = Annotated[str, typer.Argument(help="The vial id, e.g. A999926000001-L1-V01.")]
ScanOption = Annotated[
    str, typer.Option("--scan", metavar="PAYLOAD", help="The vial label's QR code, as scanned.")
]


def _status(status: str) -> object:
    shown = status.upper()
    return alarm(shown) if SHIPMENT.alarming(status) else shown


def _vial_status(status: str) -> object:
    return alarm(status) if VIAL.alarming(status) else status


def _print_shipment(view: ShipmentView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_done, show_time

    temperature = {True: "in range", False: alarm("OUT OF RANGE"), None: None}
    logger_file = view.logger_file
    print_record(
        title,
        {
            "shipment": view.shipment_id,
            "status": _status(view.status),
            "to": f"{view.site_code}: {view.site_name}",
            "address": view.site_address,
            "courier": view.courier,
            "logger": view.logger,
            "made": show_done(view.created_at, view.created_by, zone),
            "dispatched": show_done(view.dispatched_at, view.dispatched_by, zone),
            "received": show_done(view.received_at, view.received_by, zone),
            "temperature": temperature[view.temperature_ok],
            **(
                {
                    "logger file": f"{logger_file.file_name}, {logger_file.size_bytes:,} bytes",
                    "logger file SHA-256": logger_file.sha256,
                }
                if logger_file is not None
                else {}
            ),
            **(
                {view.status: f"{show_done(view.ended_at, view.ended_by, zone)}: {view.end_reason}"}
                if view.ended_at is not None
                else {}
            ),
            **{
                f"{mark.action} at {show_time(mark.at, zone)}": late_entry_note(
                    mark.entered_at, mark.entered_by, mark.reason, zone
                )
                for mark in view.late_entries
            },
        },
    )
    print_table(
        f"Vials of {view.shipment_id}",
        ["vial", "lot", "patient", "status", "packed", "taken out"],
        [
            (
                vial.vial_id,
                vial.lot_id,
                vial.patient,
                _vial_status(vial.status),
                show_done(vial.added_at, vial.added_by, zone),
                None
                if vial.removed_at is None
                else f"{show_done(vial.removed_at, vial.removed_by, zone)}: {vial.remove_reason}",
            )
            for vial in view.vials
        ],
    )


def _print_receipt(view: ShipmentReceipt, zone: tzinfo) -> None:
    shipment = view.shipment
    _print_shipment(shipment, f"Shipment {shipment.shipment_id} received", zone)
    recalled_state = VIAL.action("recall").target
    recalled = [vial.vial_id for vial in shipment.packed if vial.status == recalled_state]
    print_alarms(
        [
            *(
                f"DEVIATION {deviation.deviation_id} opened on lot {deviation.subject}: "
                f"{deviation.description}"
                for deviation in view.deviations
            ),
            *([f"RECALLED on receipt, with their lot: {', '.join(recalled)}"] if recalled else []),
        ]
    )


@app.command("create")
def create(
    ctx: typer.Context,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="SITE",
            help="Where it goes: a site's code in the site setting sites (lims site show).",
        ),
    ],
    courier: Annotated[str, typer.Option("--courier", metavar="TEXT", help="Who carries it.")],
    logger: Annotated[
        str | None,
        typer.Option("--logger", metavar="TEXT", help="The temperature logger's id, if any."),
    ] = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a shipment to another site (SHP-…), open for vials to be packed.

    \b
    Example:
      lims ship create --to OR-1 --courier "hospital porter" --logger TL-0042
    """
    from lims.services import shipments

    view, zone = run(shipments.create_shipment, **service_options(ctx))
    print_view(view, as_json, _print_shipment, f"Shipment {view.shipment_id} made", zone)


@app.command("add")
def add(
    shipment: ShipmentArgument, vial: VialArgument, scan: ScanOption, as_json: JsonOption = False
) -> None:
    """Pack a released vial into an open shipment; its label must be scanned and MATCH.

    A vial packed in a shipment not yet dispatched cannot be issued; a scan that does not
    match is refused (exit 1) and kept in the audit trail.

    \b
    Example:
      lims ship add SHP-000001 A999926000001-L1-V01 --scan "LIMS1/A999926000001-L1-V01/..."
    """
    from lims.services import shipments

    view, zone = run(shipments.add_vial, shipment=shipment, vial=vial, scan=scan)
    print_view(
        view,
        as_json,
        _print_shipment,
        f"Vial {vial.strip().upper()} packed in {view.shipment_id}",
        zone,
    )


@app.command("remove")
def remove(
    shipment: ShipmentArgument,
    vial: VialArgument,
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Take a vial out of a shipment not yet dispatched (the wrong vial packed).

    \b
    Example:
      lims ship remove SHP-000001 A999926000001-L1-V02 --reason "wrong vial packed"
    """
    from lims.services import shipments

    view, zone = run(shipments.remove_vial, shipment=shipment, vial=vial, reason=reason)
    print_view(
        view,
        as_json,
        _print_shipment,
        f"Vial {vial.strip().upper()} taken out of {view.shipment_id}",
        zone,
    )


@app.command("cancel")
def cancel(shipment: ShipmentArgument, reason: ReasonOption, as_json: JsonOption = False) -> None:
    """Call off a shipment not yet dispatched; its vials stay in the lab, released.

    \b
    Example:
      lims ship cancel SHP-000001 --reason "surgery postponed"
    """
    from lims.services import shipments

    view, zone = run(shipments.cancel, shipment=shipment, reason=reason)
    print_view(view, as_json, _print_shipment, f"Shipment {view.shipment_id} cancelled", zone)


@app.command("dispatch")
def dispatch(
    ctx: typer.Context,
    shipment: ShipmentArgument,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a shipment: every vial packed in it is shipped, and can then only be received or
    lost. Refused empty, and while a lot of its vials is on hold or expired.

    \b
    Example:
      lims ship dispatch SHP-000001
    """
    from lims.services import shipments

    view, zone = run(shipments.dispatch, **service_options(ctx))
    print_view(view, as_json, _print_shipment, f"Shipment {view.shipment_id} dispatched", zone)


@app.command("receive")
def receive(
    ctx: typer.Context,
    shipment: ShipmentArgument,
    scans: Annotated[
        list[str],
        typer.Option(
            "--scan",
            metavar="PAYLOAD",
            help="A vial's label as scanned at the receiving site: once for each vial in it.",
        ),
    ],
    temperature_ok: Annotated[
        str,
        typer.Option(
            "--temperature-ok",
            metavar="yes|no",
            help="Whether the temperature stayed in range on the way (the logger's reading); "
            "no opens a deviation on each lot in the shipment, which holds a released lot.",
        ),
    ],
    logger_file: Annotated[
        Path | None,
        typer.Option(
            "--logger-file",
            metavar="FILE",
            help="The temperature logger's export, kept whole with its SHA-256 (at most 10 MB; "
            "a file is kept once).",
        ),
    ] = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Receive a dispatched shipment: every vial in it scanned exactly once.

    A scan of a vial not in it, or of a label that disagrees with its record, is refused
    (exit 1) and kept in the audit trail; so is a vial missed or scanned twice. A vial
    whose lot was recalled on the way is received and recalled; one of a lot on hold is
    received and goes to no patient while the hold stands.

    \b
    Example:
      lims ship receive SHP-000001 --scan "LIMS1/A999926000001-L1-V01/..." \\
        --scan "LIMS1/A999926000001-L1-V02/..." --temperature-ok yes \\
        --logger-file TL-0042.csv
    """
    from lims.services import shipments

    view, zone = run(shipments.receive, **service_options(ctx))
    print_view(view, as_json, _print_receipt, zone)


@app.command("lost")
def lost(shipment: ShipmentArgument, reason: ReasonOption, as_json: JsonOption = False) -> None:
    """Report a dispatched shipment lost: it and every vial in it.

    \b
    Example:
      lims ship lost SHP-000001 --reason "courier reports the box lost in transit"
    """
    from lims.services import shipments

    view, zone = run(shipments.report_lost, shipment=shipment, reason=reason)
    print_view(view, as_json, _print_shipment, f"Shipment {view.shipment_id} lost", zone)


@app.command("show")
def show(shipment: ShipmentArgument, as_json: JsonOption = False) -> None:
    """Show a shipment: where it went, each step, the temperature, its logger file, its vials.

    \b
    Example:
      lims ship show SHP-000001 --json
    """
    from lims.services import shipments

    view, zone = read(shipments.show_shipment, shipment=shipment)
    print_view(view, as_json, _print_shipment, f"Shipment {view.shipment_id}", zone)


def _columns(zone: tzinfo) -> Columns:
    from lims.timeutil import show_time

    def moment(name: str) -> Callable[[ShipmentSummary], str | None]:
        def shown(view: ShipmentSummary) -> str | None:
            at = getattr(view, name)
            return None if at is None else show_time(at, zone)

        return shown

    return [
        ("shipment", "shipment_id"),
        ("status", lambda view: _status(view.status)),
        ("to", "site_code"),
        "courier",
        "logger",
        "vials",
        ("made", moment("created_at")),
        ("dispatched", moment("dispatched_at")),
        ("received", moment("received_at")),
        ("temperature ok", "temperature_ok"),
        LATE_COLUMN,
    ]


def _print_list(views: list[ShipmentSummary], zone: tzinfo) -> None:
    print_columns(views, "Shipments", _columns(zone), zone)


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only shipments in this state: " + ", ".join(SHIPMENT.states) + ".",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List shipments, newest first.

    \b
    Example:
      lims ship list --status dispatched
    """
    from lims.services import shipments

    views, zone = read(shipments.list_shipments, status=status)
    print_view(views, as_json, _print_list, zone)
