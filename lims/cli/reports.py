"""Reports: the batch record of a lot as PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_json, say
from lims.views import to_json

app = new_area("Reports for QA and the trial file: batch.")


@app.command("batch")
def batch(
    lot: Annotated[str, typer.Argument(help="The lot id, e.g. A999926000001-L1.")],
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
    if as_json:
        print_json(to_json(written))
        return
    say(f"Batch record of {written.lot_id} written to {written.path} ({written.pages} pages).")
