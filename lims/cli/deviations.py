"""Deviations on cultures and lots: open, list, close (a QA signature)."""

from __future__ import annotations

from typing import Annotated

import typer

from lims.cli.common import JsonOption, PasswordStdinOption, new_area, print_json, read_password

app = new_area("Deviations on cultures and lots: open, list, close.")


@app.command("open")
def open_(
    description: Annotated[str, typer.Option("--description", help="What happened.")],
    lot: Annotated[str | None, typer.Option("--lot", help="The lot it is on.")] = None,
    culture: Annotated[str | None, typer.Option("--culture", help="The culture it is on.")] = None,
    criterion: Annotated[
        str | None,
        typer.Option("--criterion", metavar="TEST", help="The release criterion it concerns."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Open a deviation on a lot or a culture; an open deviation blocks release.

    \b
    Example:
      lims deviation open --lot A999926000001-L1 --criterion cd105 \\
        --description "CD105 92 %: antibody lot near expiry"
    """
    from lims.cli import quality
    from lims.services import deviations
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work() as uow:
        opened = deviations.open_deviation(
            uow,
            lot=lot,
            culture=culture,
            description=description,
            criterion=criterion,
        )
    if as_json:
        print_json(to_json(opened))
        return
    quality.show_deviations("Deviation opened", [opened], uow.tz)


@app.command("list")
def list_(
    open_only: Annotated[bool, typer.Option("--open", help="Only open deviations.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List deviations on cultures and lots.

    \b
    Example:
      lims deviation list --open
    """
    from lims.cli import quality
    from lims.services import deviations
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work(write=False) as uow:
        views = deviations.list_deviations(uow, open_only=open_only)
    if as_json:
        print_json(to_json(views))
        return
    quality.show_deviations("Open deviations" if open_only else "Deviations", views, uow.tz)


@app.command("close")
def close(
    deviation_id: Annotated[str, typer.Argument(metavar="ID", help="The deviation number.")],
    resolution: Annotated[str, typer.Option("--resolution", help="How it was resolved.")],
    waive: Annotated[
        bool,
        typer.Option(
            "--waive",
            help="Accept the failed criterion it names, so release may proceed "
            "(never sterility, mycoplasma or endotoxin).",
        ),
    ] = False,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Close a deviation with your signature (QA only; asks your password again).

    \b
    Example:
      lims deviation close 3 --resolution "repeat count within spec; no impact"
      lims deviation close 4 --waive --resolution "CD105 92 %: accepted by QP, see CAPA-12"
    """
    from lims.cli import quality
    from lims.services import deviations
    from lims.uow import unit_of_work
    from lims.views import to_json

    password = read_password(password_stdin, prompt="Password to sign the closure")
    with unit_of_work() as uow:
        closed = deviations.close_deviation(
            uow,
            deviation_id=deviation_id,
            resolution=resolution,
            password=password,
            waive=waive,
        )
    if as_json:
        print_json(to_json(closed))
        return
    quality.show_deviations("Deviation closed", [closed], uow.tz)
