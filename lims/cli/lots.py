"""Product lots: formulate, show, list, release, reject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    AtOption,
    JsonOption,
    PasswordStdinOption,
    ReagentOption,
    new_area,
    print_json,
    print_table,
    read_password,
)
from lims.views import to_json

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.quality import LotDetail

app = new_area("Product lots: formulate, show, list, correct, release, reject.")

LotArgument = Annotated[str, typer.Argument(help="The lot id, e.g. A999926000001-L1.")]


def _show(detail: LotDetail, zone: tzinfo, as_json: bool) -> None:
    if as_json:
        print_json(to_json(detail))
        return
    from lims.cli import quality

    quality.show_lot(detail, zone)


@app.command("formulate")
def formulate(
    culture: Annotated[str, typer.Argument(help="The culture id, e.g. A999926000001-C1.")],
    harvested: Annotated[
        str, typer.Option("--harvested", metavar="N", help="Viable cells at the final harvest.")
    ],
    viability: Annotated[str, typer.Option("--viability", metavar="PCT", help="0-100.")],
    vials: Annotated[str, typer.Option("--vials", metavar="N", help="Vials filled.")],
    cells_per_vial: Annotated[
        str, typer.Option("--cells-per-vial", metavar="N", help="Viable cells in each vial.")
    ],
    volume_ml: Annotated[
        str, typer.Option("--volume-ml", metavar="ML", help="Volume in each vial.")
    ],
    vehicle: Annotated[
        str | None,
        typer.Option("--vehicle", help="What the cells are suspended in (lot.vehicle)."),
    ] = None,
    shelf_life_hours: Annotated[
        str | None,
        typer.Option("--shelf-life-hours", metavar="H", help="Default: lot.shelf_life_hours."),
    ] = None,
    at: AtOption = None,
    reagent: ReagentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Formulate a culture's final harvest into a lot of vials for its patient (quarantine).

    \b
    Example:
      lims lot formulate A999926000001-C1 --harvested 1.1e9 --viability 93 \\
        --vials 4 --cells-per-vial 5e7 --volume-ml 2
    """
    from lims.services import lots
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        detail = lots.formulate(
            uow,
            culture=culture,
            harvested=harvested,
            viability=viability,
            vials=vials,
            cells_per_vial=cells_per_vial,
            volume_ml=volume_ml,
            vehicle=vehicle,
            shelf_life_hours=shelf_life_hours,
            at=at,
            reagents=reagent or (),
        )
    _show(detail, uow.tz, as_json)


@app.command("show")
def show(lot: LotArgument, as_json: JsonOption = False) -> None:
    """Everything QA reviews on one screen: QC against spec, deviations, signatures, vials.

    \b
    Example:
      lims lot show A999926000001-L1
    """
    from lims.services import lots
    from lims.uow import unit_of_work

    with unit_of_work(write=False) as uow:
        detail = lots.show_lot(uow, lot=lot)
    _show(detail, uow.tz, as_json)


@app.command("list")
def list_(
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only lots in this state: quarantine, released, rejected, expired."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List lots with their state, patient and expiry.

    \b
    Example:
      lims lot list --status quarantine
    """
    from lims.services import lots
    from lims.timeutil import show_time
    from lims.uow import unit_of_work

    with unit_of_work(write=False) as uow:
        summaries = lots.list_lots(uow, status=status)
    if as_json:
        print_json(to_json(summaries))
        return
    print_table(
        "Lots",
        ["lot", "status", "patient", "culture", "vials", "cells/vial", "expires"],
        [
            (
                s.lot_id,
                s.status,
                s.patient,
                s.culture_id,
                s.vials,
                f"{s.cells_per_vial:,}",
                show_time(s.expires_at, uow.tz),
            )
            for s in summaries
        ],
    )


@app.command("correct")
def correct(
    lot: LotArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")],
    harvested: Annotated[str | None, typer.Option("--harvested", metavar="N")] = None,
    viability: Annotated[str | None, typer.Option("--viability", metavar="PCT")] = None,
    cells_per_vial: Annotated[str | None, typer.Option("--cells-per-vial", metavar="N")] = None,
    volume_ml: Annotated[str | None, typer.Option("--volume-ml", metavar="ML")] = None,
    vehicle: Annotated[str | None, typer.Option("--vehicle")] = None,
    as_json: JsonOption = False,
) -> None:
    """Correct what was typed at formulation while the lot is in quarantine.

    \b
    Example:
      lims lot correct A999926000001-L1 --harvested 1.05e9 --reason "count sheet misread"
    """
    from lims.services import lots
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        detail = lots.correct_lot(
            uow,
            lot=lot,
            reason=reason,
            harvested=harvested,
            viability=viability,
            cells_per_vial=cells_per_vial,
            volume_ml=volume_ml,
            vehicle=vehicle,
        )
    _show(detail, uow.tz, as_json)


@app.command("release")
def release(
    lot: LotArgument,
    meaning: Annotated[
        str | None,
        typer.Option(
            "--meaning", help='What the signature means. Default: "approved for release".'
        ),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Release a lot with your signature (QA only; asks your password again).

    \b
    Example:
      lims lot release A999926000001-L1
    """
    from lims.services import lots
    from lims.uow import unit_of_work

    password = read_password(password_stdin, prompt="Password to sign the release")
    with unit_of_work() as uow:
        detail = lots.release(uow, lot=lot, password=password, meaning=meaning)
    _show(detail, uow.tz, as_json)


@app.command("reject")
def reject(
    lot: LotArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why; printed with the signature.")],
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Reject a lot with your signature (QA only; asks your password again).

    \b
    Example:
      lims lot reject A999926000001-L1 --reason "sterility positive on day 7"
    """
    from lims.services import lots
    from lims.uow import unit_of_work

    password = read_password(password_stdin, prompt="Password to sign the rejection")
    with unit_of_work() as uow:
        detail = lots.reject(uow, lot=lot, password=password, reason=reason)
    _show(detail, uow.tz, as_json)
