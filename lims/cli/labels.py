"""Vial labels: print (or preview) and reconcile the count."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view, say
from lims.cli.options import ForceOption

if TYPE_CHECKING:
    from lims.views.vials import LabelReconciliationView, PrintJob

app = new_area("Vial labels (QR or ISBT 128 Data Matrix): print, preview, reconcile.")

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
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="NAME",
            help="For this print only: cryovial, bag, or a template file's path "
            "(default: the site's labels.template).",
        ),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Watermarked PREVIEW — NOT A LABEL; audited, counted as no label."
        ),
    ] = False,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print a lot's vial labels; every print is audited and reprints are marked.

    A print counts (later prints say REPRINT n) only once its files are written and, with
    --printer, lp has accepted every one; a print that fails counts nothing and replaces
    no file. Vials administered, destroyed, lost or in transit get no label; a recalled or
    rejected vial's label says so.

    A label file already in DIR is refused (exit 1) unless --force, which replaces only
    label files lims wrote there itself and recorded (their SHA-256 unchanged); a directory,
    symbolic link or device at a file's name is refused (exit 2). Files appear only once
    the print is on record.

    \b
    Example:
      lims label print A999926000001-L1 --format pdf --out labels/
      lims label print A999926000001-L1 --format png --out /tmp --preview
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
                template=template,
                preview=preview,
            )
        )
    print_view(job, as_json, _say_printed, out)


def _say_printed(job: PrintJob, out: Path) -> None:
    if job.preview:
        say(
            f"{len(job.vials)} label previews ({job.format}, {job.template}) written to {out}, "
            "watermarked and counted as no label:"
        )
    else:
        reprints = f", {len(job.reprints)} reprinted" if job.reprints else ""
        where = f" and accepted by {job.printer}" if job.printer else ""
        say(
            f"{len(job.vials)} labels ({job.format}, {job.template}{reprints}) written to "
            f"{out}{where}:"
        )
    for path in job.files.paths:
        say(f"  {path}")


@app.command("reconcile")
def reconcile(
    lot: Annotated[str, typer.Argument(help="The lot id.")],
    applied: Annotated[
        int, typer.Option("--applied", metavar="N", help="Labels applied to the lot's vials.")
    ],
    destroyed: Annotated[
        int,
        typer.Option("--destroyed", metavar="M", help="Labels destroyed (spoilt, spare)."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Close a lot's label count: labels printed must equal applied + destroyed.

    A count that does not balance is refused (exit 1) and opens a deviation on the lot;
    both stay on record.

    \b
    Example:
      lims label reconcile A999926000001-L1 --applied 4 --destroyed 1
    """
    from lims.cli.service import run
    from lims.services import printing

    view, _ = run(printing.reconcile, lot=lot, applied=applied, destroyed=destroyed)
    print_view(view, as_json, _say_reconciled)


def _say_reconciled(view: LabelReconciliationView) -> None:
    say(
        f"Labels of {view.lot_id} reconciled: {view.printed} printed = {view.applied} applied "
        f"+ {view.destroyed} destroyed"
    )


def _progress(stack: ExitStack, known: int | None, quiet: bool) -> Callable[[str], None] | None:
    """A progress callback: a bar on a terminal for batches, else nothing."""
    import sys

    if quiet or not sys.stderr.isatty() or (known is not None and known < PROGRESS_FROM):
        return None
    from rich.progress import Progress

    bar = stack.enter_context(Progress(transient=True))
    task = bar.add_task("labels", total=None)
    return lambda _vial: bar.advance(task)
