"""The equipment register: add, calibrate, out-of-service, return, retire, list, show."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from lims.cli.common import (
    JsonOption,
    alarm,
    new_area,
    print_alarms,
    print_record,
    print_table,
    print_view,
)
from lims.cli.options import ReasonOption, service_options
from lims.cli.service import read, run
from lims.cli.tables import Columns, print_columns
from lims.domain.equipment import CALIBRATION_RESULTS, EQUIPMENT_KINDS
from lims.domain.states import EQUIPMENT

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.equipment import (
        CalibrationRecorded,
        CalibrationView,
        EquipmentDetail,
        EquipmentSummary,
        EquipmentUseView,
    )

app = new_area(
    "The equipment register and its calibrations: add, calibrate, out-of-service, return, "
    "retire, list, show. A step names what it used with --equipment ID."
)

EquipmentArgument = Annotated[
    str, typer.Argument(metavar="ID", help="The piece's id in the register, e.g. INC-01.")
]
KIND_FORMS = "|".join(EQUIPMENT_KINDS)
# How each calibration state reads, and whether it is drawn as an alarm.
STATE_WORDS = {
    "in_calibration": ("in calibration", False),
    "overdue": ("overdue", True),
    "failed": ("failed", True),
    "never_calibrated": ("never calibrated", True),
    "not_required": ("not required", False),
}


def state_shown(summary: EquipmentSummary) -> Any:
    """The piece's calibration state in words: due in N days, overdue (in red), ..."""
    state, days = summary.calibration_state, summary.due_in_days
    if state is None:
        return None
    if state == "due_soon" and days is not None:
        return "due today" if days == 0 else f"due in {days} day{'s' if days != 1 else ''}"
    words, alarming = STATE_WORDS[state]
    return alarm(words) if alarming else words


def _status(summary: EquipmentSummary) -> Any:
    shown = summary.status.replace("_", " ")
    return alarm(shown) if EQUIPMENT.alarming(summary.status) else shown


def calibrated_shown(calibration: CalibrationView | None, zone: tzinfo) -> str | None:
    """When a calibration was made, as it was typed: its day alone when only the day was."""
    from lims.timeutil import as_utc, show_time

    if calibration is None:
        return None
    if calibration.calibrated_date_only:
        return as_utc(calibration.calibrated_at).astimezone(zone).date().isoformat()
    return show_time(calibration.calibrated_at, zone)


def _last(summary: EquipmentSummary, zone: tzinfo) -> str | None:
    last = summary.last_calibration
    if last is None:
        return None
    return f"{calibrated_shown(last, zone)} ({last.result})"


def _columns(zone: tzinfo) -> Columns:
    return [
        ("id", "equipment_id"),
        "kind",
        "name",
        "serial",
        "location",
        ("status", _status),
        ("last calibration", lambda summary: _last(summary, zone)),
        ("due", "due_on"),
        ("calibration", state_shown),
    ]


def _summary_fields(summary: EquipmentSummary, zone: tzinfo) -> dict[str, Any]:
    from lims.timeutil import show_time

    interval = summary.calibration_interval_days
    return {
        "id": summary.equipment_id,
        "kind": summary.kind,
        "name": summary.name,
        "serial": summary.serial,
        "location": summary.location,
        "calibration interval": None if interval is None else f"{interval} days",
        "status": _status(summary),
        "last calibration": _last(summary, zone),
        "due": summary.due_on,
        "calibration": state_shown(summary),
        "added": f"{show_time(summary.added_at, zone)} by {summary.added_by}",
    }


def _print_summary(summary: EquipmentSummary, title: str, zone: tzinfo) -> None:
    print_record(title, _summary_fields(summary, zone))


def _calibration_rows(calibrations: list[CalibrationView], zone: tzinfo) -> list[list[Any]]:
    return [
        [
            calibrated_shown(calibration, zone),
            calibration.due_on,
            calibration.result if calibration.result == "pass" else alarm(calibration.result),
            calibration.certificate,
            calibration.recorded_by,
        ]
        for calibration in calibrations
    ]


def under(use: EquipmentUseView) -> str:
    """The calibration a step used a piece under: its certificate and due date, or why none."""
    calibration = use.calibration
    if calibration is None:
        return "none required"
    named = f"certificate {calibration.certificate}, " if calibration.certificate else ""
    return f"{named}due {calibration.due_on}"


def _print_uses(uses: list[EquipmentUseView], title: str, zone: tzinfo) -> None:
    from lims.cli.tables import Moment

    columns: Columns = [
        ("used", Moment("used_at")),
        ("step", "action"),
        "record",
        ("culture", "culture_id"),
        ("lot", "lot_id"),
        ("count taken by", "count_taken_by"),
        ("by", "recorded_by"),
        ("calibration", under),
    ]
    print_columns(uses, title, columns, zone)


def _print_detail(detail: EquipmentDetail, zone: tzinfo) -> None:
    _print_summary(detail.summary, f"Equipment {detail.summary.equipment_id}", zone)
    print_table(
        "Calibrations, newest first",
        ["calibrated", "due", "result", "certificate", "recorded by"],
        _calibration_rows(detail.calibrations, zone),
    )
    _print_uses(detail.uses, "Steps that used it, newest first", zone)


def _print_calibration(recorded: CalibrationRecorded, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    summary = recorded.summary
    print_table(
        f"Calibration of {summary.equipment_id} recorded",
        ["calibrated", "due", "result", "certificate", "recorded by"],
        _calibration_rows([recorded.calibration], zone),
    )
    print_record(
        f"Equipment {summary.equipment_id}",
        {"status": _status(summary), "calibration": state_shown(summary)},
    )
    if recorded.calibration.result == "pass":
        return
    since = (
        f"since its last passing calibration ({show_time(recorded.last_pass_at, zone)})"
        if recorded.last_pass_at is not None
        else "ever (no calibration of it passed)"
    )
    count = len(recorded.uses_since_last_pass)
    print_alarms([f"FAILED: {count} step{'s' if count != 1 else ''} used it {since}"])
    if recorded.uses_since_last_pass:
        _print_uses(recorded.uses_since_last_pass, "Steps that used it", zone)
    print_alarms(
        f"deviation {deviation.deviation_id} opened on {deviation.subject}"
        for deviation in recorded.deviations
    )


@app.command("add")
def add(
    ctx: typer.Context,
    equipment: EquipmentArgument,
    kind: Annotated[str, typer.Option("--kind", metavar=KIND_FORMS, help="What it is.")],
    name: Annotated[str, typer.Option("--name", help="Make and model, e.g. 'Heracell 240i'.")],
    serial: Annotated[
        str | None,
        typer.Option(
            "--serial",
            help="The maker's serial number; a cell counter's is matched against the serial "
            "in the files it exports (`lims count import`).",
        ),
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", help="Where it stands, e.g. 'room 2.14'.")
    ] = None,
    calibration_interval_days: Annotated[
        str | None,
        typer.Option(
            "--calibration-interval-days",
            metavar="N",
            help="Calibrate at least every N days (1-3650): from then on the piece is used only "
            "within a passing calibration. Without it, a piece needs calibrating once one "
            "is recorded.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Put a piece of equipment in the register (QA or admin).

    Once the register holds a piece of a kind, the steps the site setting
    equipment.required lists for that kind must name one (--equipment ID).

    \b
    Example:
      lims equipment add INC-01 --kind incubator --name "Heracell 240i" \\
        --serial 42178653 --location "room 2.14" --calibration-interval-days 365
      lims equipment add CC-01 --kind cell_counter --name "Vi-CELL BLU" --serial VB-20231234
    """
    from lims.services import equipment as register

    summary, zone = run(register.add_equipment, **service_options(ctx))
    print_view(summary, as_json, _print_summary, f"Equipment {summary.equipment_id} added", zone)


@app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    equipment: EquipmentArgument,
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="ISO",
            help="When it was calibrated: a day (2026-11-20) or a time, not in the future; "
            "after its latest calibration.",
        ),
    ],
    due: Annotated[
        str | None,
        typer.Option(
            "--due",
            metavar="DATE",
            help="The last day the calibration covers (inclusive). Default for a piece with "
            "a calibration interval: that many days after --at, which is also the latest.",
        ),
    ] = None,
    certificate: Annotated[
        str | None, typer.Option("--certificate", metavar="TEXT", help="Its certificate.")
    ] = None,
    result: Annotated[
        str,
        typer.Option(
            "--result",
            metavar="|".join(CALIBRATION_RESULTS),
            help="fail: no step may use it until a calibration passes, and a deviation is "
            "opened on each lot and culture it touched since its last passing calibration.",
        ),
    ] = "pass",
    as_json: JsonOption = False,
) -> None:
    """Record a calibration or certification of a piece (QA or admin).

    A failed calibration lists every step that used the piece since its last passing
    calibration and opens a deviation on each lot (and each culture with no lot) whose
    product went through them, unless all its vials are administered or destroyed.

    \b
    Example:
      lims equipment calibrate INC-01 --at 2026-11-20 --due 2027-11-20 --certificate C-2291
      lims equipment calibrate BSC-01 --at 2026-11-25T09:30 --result fail --json
    """
    from lims.services import equipment as register

    recorded, zone = run(register.calibrate, **service_options(ctx))
    print_view(recorded, as_json, _print_calibration, zone)


def _status_change(service: Any, title: str, ctx: typer.Context, as_json: bool) -> None:
    summary, zone = run(service, **service_options(ctx))
    print_view(summary, as_json, _print_summary, title.format(summary.equipment_id), zone)


@app.command("out-of-service")
def out_of_service(
    ctx: typer.Context,
    equipment: EquipmentArgument,
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Take a piece out of service (anyone may): no step may use it until it is returned.

    \b
    Example:
      lims equipment out-of-service INC-01 --reason "CO2 alarm, door seal torn"
    """
    from lims.services import equipment as register

    _status_change(register.take_out_of_service, "Equipment {} taken out of service", ctx, as_json)


@app.command("return")
def return_(
    ctx: typer.Context,
    equipment: EquipmentArgument,
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Return a piece to service (QA or admin); its calibration still decides each use.

    \b
    Example:
      lims equipment return INC-01 --reason "seal replaced, CO2 verified (WO-1183)"
    """
    from lims.services import equipment as register

    _status_change(register.return_to_service, "Equipment {} returned to service", ctx, as_json)


@app.command("retire")
def retire(
    ctx: typer.Context,
    equipment: EquipmentArgument,
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Retire a piece for good (QA or admin): no step may use it again.

    \b
    Example:
      lims equipment retire INC-01 --reason "replaced by INC-03"
    """
    from lims.services import equipment as register

    _status_change(register.retire, "Equipment {} retired", ctx, as_json)


@app.command("list")
def list_(
    kind: Annotated[
        str | None, typer.Option("--kind", metavar=KIND_FORMS, help="Only pieces of this kind.")
    ] = None,
    due_within_days: Annotated[
        str | None,
        typer.Option(
            "--due-within-days",
            metavar="N",
            help="Only pieces whose calibration is due within N days, overdue, failed or "
            "never done (retired ones left out).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the register: each piece's status, last calibration, due date and whether it
    is in calibration.

    \b
    Example:
      lims equipment list --due-within-days 30
      lims equipment list --kind incubator --json
    """
    from lims.services import equipment as register

    views, zone = read(register.list_equipment, kind=kind, due_within_days=due_within_days)
    print_view(views, as_json, print_columns, "Equipment", _columns(zone), zone)


@app.command("show")
def show(equipment: EquipmentArgument, as_json: JsonOption = False) -> None:
    """Show a piece: its calibrations, and every step that used it under which calibration.

    \b
    Example:
      lims equipment show INC-01
    """
    from lims.services import equipment as register

    detail, zone = read(register.show_equipment, equipment=equipment)
    print_view(detail, as_json, _print_detail, zone)
