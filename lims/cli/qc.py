"""QC results against the release specification: record, show."""

from __future__ import annotations

from typing import Annotated

import typer

from lims.cli.common import AtOption, JsonOption, new_area, print_json
from lims.views import to_json

app = new_area("QC results against the release specification: record, show.")

LotArgument = Annotated[str, typer.Argument(help="The lot id, e.g. A999926000001-L1.")]


@app.command("record")
def record(
    lot: LotArgument,
    test: Annotated[str, typer.Argument(help="The test: viability, sterility, cd73, ...")],
    value: Annotated[str, typer.Argument(help="The result: a number, or e.g. negative.")],
    unit: Annotated[
        str | None, typer.Option("--unit", help="Checked against the specification's unit.")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="How it was tested.")] = None,
    at: AtOption = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Required for a retest; kept in the audit.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record a QC result; recording a test again is a retest and needs --reason.

    \b
    Example:
      lims qc record A999926000001-L1 viability 92.5 --unit %
      lims qc record A999926000001-L1 sterility negative --method "BacT/ALERT 14 d"
    """
    from lims.cli import quality
    from lims.services import qc
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        verdict = qc.record_result(
            uow,
            lot=lot,
            test=test,
            value=value,
            unit=unit,
            method=method,
            at=at,
            reason=reason,
        )
    if as_json:
        print_json(to_json(verdict))
        return
    quality.show_verdict(verdict)


@app.command("show")
def show(lot: LotArgument, as_json: JsonOption = False) -> None:
    """Each criterion with its spec, result and verdict, and whether the lot is releasable.

    \b
    Example:
      lims qc show A999926000001-L1 --json
    """
    from lims.cli import quality
    from lims.services import qc
    from lims.uow import unit_of_work

    with unit_of_work(write=False) as uow:
        evaluation = qc.show_evaluation(uow, lot=lot)
    if as_json:
        print_json(to_json(evaluation))
        return
    quality.show_evaluation(evaluation)
