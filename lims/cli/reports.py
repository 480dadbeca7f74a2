"""Reports: the batch record of a lot as PDF."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view, say
from lims.cli.options import LotArgument

if TYPE_CHECKING:
    from lims.views.quality import WrittenReport

app = new_area("Reports for QA and the trial file: batch.")


@app.command("batch")
def batch(
    lot: LotArgument,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="FILE.pdf", help="Where to write the PDF.", dir_okay=False),
    ],
    as_json: JsonOption = False,
) -> None:
    """Print a lot's batch record to PDF: its whole history, QC, deviations and signatures.

    \b
    Example:
      lims report batch A999926000001-L1 --out A999926000001-L1.pdf
    """
    from lims.services import reports
    from lims.staging import published_on_commit

    written = published_on_commit(lambda uow: reports.write_batch_record(uow, lot=lot, out=out))
    print_view(written, as_json, _say_written)


def _say_written(written: WrittenReport) -> None:
    say(f"Batch record of {written.lot_id} written to {written.path} ({written.pages} pages).")
