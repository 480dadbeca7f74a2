"""Deviations on aspirates, cultures and lots: open, list, close (a QA signature)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, PasswordStdinOption, new_area, print_view, read_password
from lims.cli.options import service_options
from lims.cli.service import read, run

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.deviations import DeviationView

app = new_area("Deviations on cultures and lots: open, list, close.")


def _print_deviation(deviation: DeviationView, title: str, zone: tzinfo) -> None:
    from lims.cli import quality

    quality.show_deviations([deviation], title, zone)


@app.command("open")
def open_(
    ctx: typer.Context,
    description: Annotated[str, typer.Option("--description", help="What happened.")],
    lot: Annotated[str | None, typer.Option("--lot", help="The lot it is on.")] = None,
    culture: Annotated[str | None, typer.Option("--culture", help="The culture it is on.")] = None,
    criterion: Annotated[
        str | None,
        typer.Option("--criterion", metavar="TEST", help="The release criterion it concerns."),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity", metavar="minor|major|critical", help="How much it matters (major)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Open a deviation on a lot or a culture; an open deviation blocks release.

    \b
    Example:
      lims deviation open --lot A999926000001-L1 --criterion cd105 \\
        --description "CD105 92 %: antibody lot near expiry"
    """
    from lims.services import deviations

    opened, zone = run(deviations.open_deviation, **service_options(ctx))
    print_view(opened, as_json, _print_deviation, "Deviation opened", zone)


@app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="Only open deviations.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List deviations on aspirates, cultures and lots.

    \b
    Example:
      lims deviation list --open
    """
    from lims.cli import quality
    from lims.services import deviations

    views, zone = read(deviations.list_deviations, open_only=open_only)
    title = "Open deviations" if open_only else "Deviations"
    print_view(views, as_json, quality.show_deviations, title, zone)


@app.command("close")
def close(
    ctx: typer.Context,
    deviation_id: Annotated[str, typer.Argument(metavar="ID", help="The deviation number.")],
    resolution: Annotated[str, typer.Option("--resolution", help="How it was resolved.")],
    invalidate: Annotated[
        bool,
        typer.Option(
            "--invalidate",
            help="Out-of-specification result: a lab error is proven, the result no longer "
            "counts; the investigation's results and later retests do.",
        ),
    ] = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Out-of-specification result: it stands; the lot can only be rejected, "
            "unless --waive.",
        ),
    ] = False,
    waive: Annotated[
        bool,
        typer.Option(
            "--waive",
            help="With --confirm: accept the failure of a waivable criterion, so release may "
            "proceed (never sterility, mycoplasma or endotoxin). Needs --physician-request; "
            "another QA user releases the lot.",
        ),
    ] = False,
    physician_request: Annotated[
        str | None,
        typer.Option(
            "--physician-request",
            metavar="TEXT",
            help="With --waive: the treating physician's documented request to use the "
            "product despite the failure (EU GMP Part IV 11.5).",
        ),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Close a deviation with your signature (QA only; asks your password again).

    \b
    Example:
      lims deviation close 3 --resolution "incubator alarm: temperature held; no impact"
      lims deviation close 4 --invalidate --resolution "sample mislabelled: INV-7"
      lims deviation close 5 --confirm --waive --resolution "CD105 92 %: see CAPA-12" \\
          --physician-request "Dr Rossi, letter of 2026-12-01: use despite CD105"
    """
    from lims.services import deviations

    password = read_password(password_stdin, prompt="Password to sign the closure")
    closed, zone = run(deviations.close_deviation, **service_options(ctx), password=password)
    print_view(closed, as_json, _print_deviation, "Deviation closed", zone)
