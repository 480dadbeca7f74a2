"""Counts from cell counters: import an instrument's export, list the counts, show one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_record, print_view
from lims.cli.options import EquipmentOption
from lims.cli.service import read, run
from lims.cli.tables import Columns, fixed, print_columns
from lims.domain.cell_counting import AUTO, INSTRUMENTS, status_ok

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.counts import CountView

app = new_area("Counts from cell counters' exports: import, list, show.")


def _analysed(view: CountView, zone: tzinfo) -> str:
    """When the sample was counted: the day alone where the file gives no time of day."""
    from lims.timeutil import show_time

    if view.analysed_date_only:
        return f"{view.analysed_at.astimezone(zone).date().isoformat()} (day only)"
    return show_time(view.analysed_at, zone)


def _per_ml(value: float | None) -> str | None:
    return None if value is None else f"{value:,.0f}"


def _status(view: CountView) -> Any:
    return view.status if status_ok(view.status) else alarm(view.status)


def _columns(zone: tzinfo) -> Columns:
    return [
        ("count", "count_id"),
        ("analysed", lambda view: _analysed(view, zone)),
        "sample",
        ("viable/mL", lambda view: _per_ml(view.viable_per_ml)),
        ("total/mL", lambda view: _per_ml(view.total_per_ml)),
        ("viability %", lambda view: fixed(view.viability, 1)),
        ("status", _status),
        "instrument",
        ("file", "file_name"),
        ("used by", "used_by"),
    ]


def _print_counts(views: list[CountView], title: str, zone: tzinfo) -> None:
    print_columns(views, title, _columns(zone), zone)


def _print_count(view: CountView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time
    from lims.views.counts import volume

    print_record(
        title,
        {
            "count": view.count_id,
            "instrument": f"{view.instrument} ({INSTRUMENTS[view.instrument]})",
            "model": view.model,
            "serial": view.serial,
            "operator": view.operator,
            "analysed": _analysed(view, zone),
            "sample": view.sample,
            "sample name": view.sample_name,
            "viable/mL": _per_ml(view.viable_per_ml),
            "total/mL": _per_ml(view.total_per_ml),
            "viability %": fixed(view.viability, 1),
            "diameter µm": fixed(view.diameter_um, 2),
            "dilution": None if view.dilution is None else f"{view.dilution:g}",
            "status": _status(view),
            "file": view.file_name,
            "SHA-256": view.file_sha256,
            "imported": f"{show_time(view.imported_at, zone)} by {view.imported_by}",
            "used by": view.used_by,
            "used": show_time(view.used_at, zone) if view.used_at else None,
            "suspension mL": None if view.suspension_ml is None else volume(view.suspension_ml),
        },
    )


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="The instrument's export as it wrote it (CSV, text report, xls or xlsx "
            "workbook, or an Allotrope cell-counting JSON document), at most 10 MB.",
        ),
    ],
    instrument: Annotated[
        str,
        typer.Option(
            "--instrument",
            metavar="|".join((AUTO, *INSTRUMENTS)),
            help="The export's format; auto finds it from the content. "
            + "; ".join(f"{name}: {what}" for name, what in INSTRUMENTS.items())
            + ".",
        ),
    ] = AUTO,
    sample: Annotated[
        list[str] | None,
        typer.Option(
            "--sample",
            metavar="ID",
            help="Import only this sample (repeat for each): matched against the file's "
            "sample ids, then NC-View's NAME. Default: every sample in the file.",
        ),
    ] = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a cell counter's export: one count (CNT-…) per sample, and the file kept.

    The file's bytes are kept with their SHA-256, and a file is imported once. Analysis
    times use the zone the file gives, else the station's. Refused, with nothing kept: a
    file no format reads (exit 2), a sample it does not hold (exit 3), an implausible value
    or a time in the future (exit 2), a file imported before (exit 1). Each count is a use
    of the cell counter in the register whose serial the file gives, and of any --equipment
    named, at its analysis time: one out of service or out of calibration then refuses the
    import (exit 1).

    \b
    Example:
      lims count import vicell-2026-11-25.csv --sample P2-harvest
      lims count import nc202-export.csv --instrument nc-202 --json
    """
    from lims.cli.common import settings
    from lims.services import counts, instrument_files
    from lims.timeutil import utcnow

    read(counts.may_import)
    content = instrument_files.load(file)
    # Read outside the transaction that keeps it: the reader takes seconds to load, and
    # other stations' writers would queue behind it.
    reading = instrument_files.read(content, file.name, instrument, settings().tz, utcnow())
    views, zone = run(
        counts.store,
        file_name=file.name,
        content=content,
        read=reading,
        samples=sample or (),
        equipment=equipment or (),
    )
    title = f"Imported {len(views)} count{'s' if len(views) != 1 else ''} from {file.name}"
    print_view(views, as_json, _print_counts, title, zone)


@app.command("list")
def list_(
    unused: Annotated[
        bool, typer.Option("--unused", help="Only counts no step has taken its numbers from.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List imported counts, oldest import first.

    \b
    Example:
      lims count list --unused
    """
    from lims.services import counts

    views, zone = read(counts.list_counts, unused=unused)
    print_view(views, as_json, _print_counts, "Counts", zone)


@app.command("show")
def show(
    count: Annotated[str, typer.Argument(metavar="COUNT", help="The count id, e.g. CNT-000123.")],
    as_json: JsonOption = False,
) -> None:
    """Show one count: the instrument's values, its file, and the step that used it.

    \b
    Example:
      lims count show CNT-000123 --json
    """
    from lims.services import counts

    view, zone = read(counts.show_count, count=count)
    print_view(view, as_json, _print_count, f"Count {view.count_id}", zone)
