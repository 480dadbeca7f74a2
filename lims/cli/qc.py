"""QC results against the release specification: record, show."""

from __future__ import annotations

from typing import Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_view
from lims.cli.options import AtOption, EquipmentOption, LotArgument, service_options
from lims.cli.service import read, run

app = new_area("QC results against the release specification: record, show.")


@app.command("record")
def record(
    ctx: typer.Context,
    lot: LotArgument,
    test: Annotated[str, typer.Argument(help="The test: viability, sterility, cd73, ...")],
    value: Annotated[
        str,
        typer.Argument(
            help="The result: a number, <X or >X beyond the method's range, or e.g. negative; "
            "pending records the test as started."
        ),
    ],
    unit: Annotated[
        str | None, typer.Option("--unit", help="Checked against the specification's unit.")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", help="How it was tested; required for a test started pending."),
    ] = None,
    at: AtOption = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Required for a retest; kept in the audit.")
    ] = None,
    investigation: Annotated[
        str | None,
        typer.Option(
            "--investigation",
            metavar="N",
            help="The open out-of-specification deviation this result is recorded for; it "
            "counts only if QA invalidates the original.",
        ),
    ] = None,
    expected_final: Annotated[
        str | None,
        typer.Option(
            "--expected-final",
            metavar="ISO",
            help="With pending: when the final result is expected (after --at).",
        ),
    ] = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a QC result; recording a test again is a retest and needs --reason.

    A failing result opens an out-of-specification deviation at once; while it is open,
    results of that test are recorded only with --investigation. A number beyond the
    method's range is typed <X or >X: it passes only if every value it may stand for does.
    A failure on a released lot is critical: notify the treating physicians (lims report
    recall LOT --out FILE.pdf).

    The value pending records a test as started (--at, --method), for a test the
    specification lets a lot be released before its final result (sterility, on its
    interim tests gram_stain and sterility_interim). Its final result, recorded later and
    after the start, needs no --reason.

    \b
    Example:
      lims qc record A999926000001-L1 viability 92.5 --unit % --equipment CC-01
      lims qc record A999926000001-L1 sterility negative --method "BacT/ALERT 14 d"
      lims qc record A999926000001-L1 endotoxin "<0.5" --unit EU/mL
      lims qc record A999926000001-L1 cd105 96.1 --investigation 4
      lims qc record A999926000001-L1 sterility pending --method "BacT/ALERT 14 d" \\
        --expected-final 2026-12-18T09:00
    """
    from lims.cli import quality
    from lims.services import qc

    verdict, _ = run(qc.record_result, **service_options(ctx))
    print_view(verdict, as_json, quality.show_verdict)
    if verdict.notice is not None:
        typer.echo(f"ACTION REQUIRED: {verdict.notice}", err=True)


@app.command("show")
def show(lot: LotArgument, as_json: JsonOption = False) -> None:
    """Each criterion with its spec, result and verdict, and whether the lot is releasable.

    \b
    Example:
      lims qc show A999926000001-L1 --json
    """
    from lims.cli import quality
    from lims.services import qc

    evaluation, zone = read(qc.show_evaluation, lot=lot)
    print_view(evaluation, as_json, quality.show_evaluation, zone)
