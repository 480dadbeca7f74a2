"""Reports as PDF: a lot's batch record, a recalled lot's notice for the physician."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view, say
from lims.cli.options import ForceOption, LotArgument

if TYPE_CHECKING:
    from lims.views.quality import WrittenReport

app = new_area("Reports for QA, the trial file and the physician: batch, recall (or hold).")

OutOption = Annotated[
    Path,
    typer.Option("--out", metavar="FILE.pdf", help="Where to write the PDF.", dir_okay=False),
]


@app.command("batch")
def batch(
    lot: LotArgument,
    out: OutOption,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print a lot's batch record to PDF: its whole history, QC, deviations and signatures.

    An existing FILE is refused (exit 1) unless --force, which replaces only a report lims
    wrote there and recorded (its SHA-256 unchanged); never the database, a directory, a
    symbolic link or a device (exit 2). The file appears only once the print is on record.

    \b
    Example:
      lims report batch A999926000001-L1 --out A999926000001-L1.pdf
    """
    from lims.services import reports
    from lims.staging import published_on_commit

    written = published_on_commit(
        lambda uow: reports.write_batch_record(uow, lot=lot, out=out, force=force)
    )
    print_view(written, as_json, _say_written)


@app.command("recall")
def recall(
    lot: LotArgument,
    out: OutOption,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Print the notice of a recalled lot, or of a released lot on hold, for the physician.

    An existing FILE is refused as by `lims report batch`; --force replaces only a report
    lims wrote there and recorded.

    It lists every vial of the lot and, for each one administered, the patient, the time,
    who administered it, the route and the treating physician. A recalled lot's other vials
    are recalled and may only be destroyed. A released lot on hold (a failed final result, a
    suspected adverse reaction, a QA hold) gets a hold notice saying why, to tell the
    physicians at once, before QA decides whether to recall it. Any other lot is refused.

    \b
    Example:
      lims report recall A999926000001-L1 --out A999926000001-L1-recall.pdf
    """
    from lims.services import reports
    from lims.staging import published_on_commit

    written = published_on_commit(
        lambda uow: reports.write_recall_notice(uow, lot=lot, out=out, force=force)
    )
    print_view(written, as_json, _say_written)


def _say_written(written: WrittenReport) -> None:
    pages = f"{written.pages} page" + ("" if written.pages == 1 else "s")
    say(f"{written.document.capitalize()} of {written.lot_id} written to {written.path} ({pages}).")
