"""Vial labels: print."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view, say
from lims.cli.options import ForceOption

if TYPE_CHECKING:
    from lims.views.vials import PrintJob

app = new_area("Vial labels with QR code and ISBT 128 DIN: print.")

PROGRESS_FROM = 6  # labels; fewer print before a bar could be read


@app.command("print")
def print_(
    lot: Annotated[str, typer.Argument(help="The lot id.")],
    fmt: Annotated[str, typer.Option("--format", help="pdf (one sheet), png, svg or zpl.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory to write into (made if missing).",
            file_okay=False,
        ),
    ],
    vial: Annotated[
        list[str] | None,
        typer.Option("--vial", metavar="ID", help="Only this vial (repeat for each)."),
    ] = None,
    printer: Annotated[
        str | None,
        typer.Option("--printer", metavar="NAME", help="Also send to this CUPS queue (lp)."),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print a lot's vial labels; every print is audited and reprints are marked.

    A label file already in DIR is refused (exit 1) unless --force, which replaces only
    label files lims wrote there itself and recorded (their SHA-256 unchanged); a directory,
    symbolic link or device at a file's name is refused (exit 2). Files appear only once
    the print is on record.

    \b
    Example:
      lims label print A999926000001-L1 --format pdf --out labels/
      lims label print A999926000001-L1 --vial A999926000001-L1-V02 --format zpl \\
        --out /tmp --printer zebra1
    """
    from lims.services import printing
    from lims.staging import published_on_commit

    with ExitStack() as stack:
        progress = _progress(stack, len(vial) if vial else None, as_json)
        job = published_on_commit(
            lambda uow: printing.print_labels(
                uow,
                lot=lot,
                fmt=fmt,
                out=out,
                vials=vial or (),
                printer=printer,
                on_label=progress,
                force=force,
            )
        )
    printing.send_to_printer(job)
    print_view(job, as_json, _say_printed, out)


def _say_printed(job: PrintJob, out: Path) -> None:
    reprints = f", {len(job.reprints)} reprinted" if job.reprints else ""
    where = f" and sent to {job.printer}" if job.printer else ""
    say(f"{len(job.vials)} labels ({job.format}{reprints}) written to {out}{where}:")
    for path in job.files.paths:
        say(f"  {path}")


def _progress(stack: ExitStack, known: int | None, quiet: bool) -> Callable[[str], None] | None:
    """A progress callback: a bar on a terminal for batches, else nothing."""
    import sys

    if quiet or not sys.stderr.isatty() or (known is not None and known < PROGRESS_FROM):
        return None
    from rich.progress import Progress

    bar = stack.enter_context(Progress(transient=True))
    task = bar.add_task("labels", total=None)
    return lambda _vial: bar.advance(task)
