"""Product lots: formulate, show, list, release, reject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, PasswordStdinOption, new_area, print_view, read_password
from lims.cli.options import (
    AtOption,
    CountOption,
    CultureArgument,
    EquipmentOption,
    LateReasonOption,
    LotArgument,
    ReagentOption,
    ReasonOption,
    SuspensionOption,
    service_options,
)
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.quality import LotDetail

app = new_area(
    "Product lots: formulate, show, list, correct, release, complete, reject, hold, recall."
)


# What is typed at formulation.
HarvestedOption = Annotated[
    str | None,
    typer.Option(
        "--harvested", metavar="N", help="Viable cells at the final harvest (or --count)."
    ),
]
ViabilityOption = Annotated[
    str | None, typer.Option("--viability", metavar="PCT", help="0-100 (or --count).")
]
VialsOption = Annotated[str, typer.Option("--vials", metavar="N", help="Vials filled.")]
CellsPerVialOption = Annotated[
    str, typer.Option("--cells-per-vial", metavar="N", help="Viable cells in each vial.")
]
VolumeOption = Annotated[
    str, typer.Option("--volume-ml", metavar="ML", help="Volume in each vial.")
]
VehicleOption = Annotated[
    str | None,
    typer.Option(
        "--vehicle",
        metavar="TEXT",
        help="A typed vehicle (e.g. saline) instead of the patient's CSF: only where the site "
        "allows it (vehicle.allow_non_autologous, default false).",
    ),
]
VehicleDinOption = Annotated[
    str | None,
    typer.Option(
        "--vehicle-din",
        metavar="DIN",
        help="The patient's own CSF the cells are suspended in (aspirate receive --material "
        "csf): collected within vehicle.max_age_hours (default 24) of the formulation.",
    ),
]
VehicleMlOption = Annotated[
    str | None,
    typer.Option(
        "--vehicle-ml",
        metavar="ML",
        help="With --vehicle-din: the mL of that CSF drawn, at most what it has left.",
    ),
]
ShelfLifeOption = Annotated[
    str | None,
    typer.Option("--shelf-life-hours", metavar="H", help="Default: lot.shelf_life_hours."),
]

StatusOption = Annotated[
    str | None,
    typer.Option(
        "--status",
        help="Only lots in this state: quarantine, released, rejected, recalled, expired.",
    ),
]
MeaningOption = Annotated[
    str | None,
    typer.Option(
        "--meaning",
        help='What the signature means. Default: "approved for release"; on interim results '
        '"released", followed in either case by " — final results pending: TESTS".',
    ),
]


def _print_lot(detail: LotDetail, zone: tzinfo) -> None:
    from lims.cli import quality

    quality.show_lot(detail, zone)


@app.command("formulate")
def formulate(
    ctx: typer.Context,
    culture: CultureArgument,
    vials: VialsOption,
    cells_per_vial: CellsPerVialOption,
    volume_ml: VolumeOption,
    harvested: HarvestedOption = None,
    viability: ViabilityOption = None,
    count: CountOption = None,
    suspension_ml: SuspensionOption = None,
    vehicle_din: VehicleDinOption = None,
    vehicle_ml: VehicleMlOption = None,
    vehicle: VehicleOption = None,
    shelf_life_hours: ShelfLifeOption = None,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    reagents: ReagentOption = None,
    equipment: EquipmentOption = None,
    as_json: JsonOption = False,
) -> None:
    """Formulate a culture's final harvest into a lot of vials for its patient (quarantine).

    The viable cells of the final harvest and their viability are typed, or taken from a
    count imported from the cell counter (--count, with the volume counted): not both. The
    cells are suspended in the patient's own CSF, named by its DIN (--vehicle-din, with the
    mL drawn): it must be that patient's CSF, fresh enough and with that much left.

    \b
    Example:
      lims lot formulate A999926000001-C1 --harvested 1.1e9 --viability 93 \\
        --vials 4 --cells-per-vial 5e7 --volume-ml 2 \\
        --vehicle-din A999926000002 --vehicle-ml 8 --equipment BSC-01
      lims lot formulate A999926000001-C1 --count CNT-000015 --suspension-ml 50 \\
        --vials 4 --cells-per-vial 5e7 --volume-ml 2 --vehicle-din A999926000002 --vehicle-ml 8
    """
    from lims.services import lots

    detail, zone = run(lots.formulate, **service_options(ctx))
    print_view(detail, as_json, _print_lot, zone)


@app.command("show")
def show(lot: LotArgument, as_json: JsonOption = False) -> None:
    """Everything QA reviews on one screen: QC against spec, deviations, signatures, vials.

    \b
    Example:
      lims lot show A999926000001-L1
    """
    from lims.services import lots

    detail, zone = read(lots.show_lot, lot=lot)
    print_view(detail, as_json, _print_lot, zone)


LIST_COLUMNS: Columns = [
    ("lot", "lot_id"),
    "status",
    "patient",
    ("culture", "culture_id"),
    "vials",
    ("cells/vial", lambda summary: f"{summary.cells_per_vial:,}"),
    ("expires", Moment("expires_at")),
    LATE_COLUMN,
]


@app.command("list")
def list_(
    status: StatusOption = None,
    as_json: JsonOption = False,
) -> None:
    """List lots with their state, patient and expiry.

    \b
    Example:
      lims lot list --status quarantine
    """
    from lims.services import lots

    print_list(lots.list_lots, as_json, "Lots", LIST_COLUMNS, status=status)


@app.command("correct")
def correct(
    ctx: typer.Context,
    lot: LotArgument,
    reason: ReasonOption,
    harvested: Annotated[str | None, typer.Option("--harvested", metavar="N")] = None,
    viability: Annotated[str | None, typer.Option("--viability", metavar="PCT")] = None,
    cells_per_vial: Annotated[str | None, typer.Option("--cells-per-vial", metavar="N")] = None,
    volume_ml: Annotated[str | None, typer.Option("--volume-ml", metavar="ML")] = None,
    vehicle_din: Annotated[
        str | None,
        typer.Option(
            "--vehicle-din",
            metavar="DIN",
            help="The patient's CSF the cells were in fact suspended in (as at formulation).",
        ),
    ] = None,
    vehicle_ml: Annotated[
        str | None,
        typer.Option("--vehicle-ml", metavar="ML", help="The mL of that CSF in fact drawn."),
    ] = None,
    vehicle: VehicleOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct what was typed at formulation while the lot is in quarantine.

    A final harvest taken from an imported count (lot formulate --count) is the
    instrument's: its cells and viability are not retyped (open a deviation on the lot).
    The vehicle's CSF is checked as at formulation; the mL drawn move from the donation
    named before to the one named now.

    \b
    Example:
      lims lot correct A999926000001-L1 --harvested 1.05e9 --reason "count sheet misread"
      lims lot correct A999926000001-L1 --vehicle-din A999926000003 --vehicle-ml 8 \\
        --reason "second CSF tube was used"
    """
    from lims.services import lots

    detail, zone = run(lots.correct_lot, **service_options(ctx))
    print_view(detail, as_json, _print_lot, zone)


@app.command("release")
def release(
    lot: LotArgument,
    meaning: MeaningOption = None,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Release a lot with your signature (QA only; asks your password again).

    A lot whose only open criteria are tests pending that the specification lets it be
    released without (sterility), their interim tests passing, is released on interim
    results: the signature names the tests pending, its vials are issued only with
    --acknowledge-pending, and QA completes the release once the final results are in
    (lims lot complete).

    \b
    Example:
      lims lot release A999926000001-L1
    """
    from lims.services import lots

    password = read_password(password_stdin, prompt="Password to sign the release")
    detail, zone = run(lots.release, lot=lot, password=password, meaning=meaning)
    print_view(detail, as_json, _print_lot, zone)


@app.command("complete")
def complete(
    lot: LotArgument,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Complete a release on interim results with your signature, "final results reviewed"
    (QA only; asks your password again): once every final result is in and passes, no
    deviation is open and no hold stands.

    \b
    Example:
      lims lot complete A999926000001-L1
    """
    from lims.services import lots

    password = read_password(password_stdin, prompt="Password to sign the completed release")
    detail, zone = run(lots.complete, lot=lot, password=password)
    print_view(detail, as_json, _print_lot, zone)


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

    password = read_password(password_stdin, prompt="Password to sign the rejection")
    detail, zone = run(lots.reject, lot=lot, password=password, reason=reason)
    print_view(detail, as_json, _print_lot, zone)


SignedReasonOption = Annotated[
    str, typer.Option("--reason", help="Why; kept with the signature in the audit trail.")
]


@app.command("hold")
def hold(
    lot: LotArgument,
    reason: SignedReasonOption,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Put a lot on hold with your signature (QA only): its vials go to no patient and it
    is not released until the hold is lifted.

    \b
    Example:
      lims lot hold A999926000001-L1 --reason "incubator 2 excursion under review"
    """
    from lims.services import lots

    password = read_password(password_stdin, prompt="Password to sign the hold")
    detail, zone = run(lots.hold, lot=lot, password=password, reason=reason)
    print_view(detail, as_json, _print_lot, zone)


@app.command("unhold")
def unhold(
    lot: LotArgument,
    reason: SignedReasonOption,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Lift the hold QA placed on a lot, with your signature (QA only). An open deviation
    holds a released lot until it is closed.

    \b
    Example:
      lims lot unhold A999926000001-L1 --reason "excursion 0.4 °C for 6 min: no impact"
    """
    from lims.services import lots

    password = read_password(password_stdin, prompt="Password to sign lifting the hold")
    detail, zone = run(lots.unhold, lot=lot, password=password, reason=reason)
    print_view(detail, as_json, _print_lot, zone)


@app.command("recall")
def recall(
    lot: LotArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why; printed with the signature.")],
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Recall a released lot with your signature (QA only): every vial not yet administered
    is recalled and can only be destroyed; `report recall` lists those administered.

    \b
    Example:
      lims lot recall A999926000001-L1 --reason "late endotoxin 12 EU/mL confirmed"
    """
    from lims.services import lots

    password = read_password(password_stdin, prompt="Password to sign the recall")
    detail, zone = run(lots.recall, lot=lot, password=password, reason=reason)
    print_view(detail, as_json, _print_lot, zone)
