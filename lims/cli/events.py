"""Follow-up after administration: record an adverse event or an observation, list them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, alarm, new_area, print_alarms, print_record, print_view
from lims.cli.options import service_options
from lims.cli.service import run
from lims.cli.tables import Columns, Moment, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.events import EventView

app = new_area("Follow-up of patients after administration: record, list.")


def _deviations(view: EventView) -> str | None:
    return ", ".join(str(number) for number in view.deviations) or None


LIST_COLUMNS: Columns = [
    ("#", "event_id"),
    ("occurred", Moment("occurred_at")),
    "patient",
    ("vial", "vial_id"),
    "kind",
    "severity",
    ("serious", lambda view: alarm("SERIOUS") if view.serious else None),
    "related",
    "description",
    ("deviations", _deviations),
]


def _print_event(view: EventView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time
    from lims.views.events import EXPEDITED_REPORT

    print_record(
        title,
        {
            "event": view.event_id,
            "patient": view.patient,
            "vial": view.vial_id,
            "lot": view.lot_id,
            "kind": view.kind,
            "severity": view.severity,
            "serious": alarm("SERIOUS") if view.serious else None,
            "related": view.related,
            "description": view.description,
            "occurred": show_time(view.occurred_at, zone),
            "recorded": f"{show_time(view.recorded_at, zone)} by {view.recorded_by}",
            "deviations": _deviations(view),
        },
    )
    if view.expedited_report_may_be_due:
        print_alarms(
            [
                f"SERIOUS ADVERSE EVENT, relation to the product {view.related}: critical "
                f"deviation {_deviations(view)} opened; {EXPEDITED_REPORT}."
            ]
        )


@app.command("record")
def record(
    ctx: typer.Context,
    patient: Annotated[
        str, typer.Option("--patient", metavar="CODE", help="The patient it happened to.")
    ],
    at: Annotated[
        str,
        typer.Option(
            "--at",
            metavar="ISO",
            help="When it happened, e.g. 2026-11-25T14:30 (station's zone unless an offset "
            "is given); not in the future, not before the patient's consent, and not before "
            "the vial's administration.",
        ),
    ],
    kind: Annotated[
        str, typer.Option("--kind", metavar="adverse_event|observation", help="What it is.")
    ],
    description: Annotated[
        str, typer.Option("--description", metavar="TEXT", help="What happened.")
    ],
    vial: Annotated[
        str | None,
        typer.Option(
            "--vial",
            metavar="ID",
            help="The vial it followed: one administered to the patient before it.",
        ),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity",
            metavar="mild|moderate|severe|life_threatening|fatal",
            help="An adverse event's grade (required for one; an observation has none); a "
            "life_threatening or fatal one is serious: give --serious too.",
        ),
    ] = None,
    serious: Annotated[
        bool,
        typer.Option(
            "--serious",
            help="A serious adverse event: death, life-threatening, hospitalisation, "
            "disability, a congenital anomaly, or important medically.",
        ),
    ] = False,
    related: Annotated[
        str | None,
        typer.Option(
            "--related",
            metavar="unrelated|unlikely|possible|probable|definite",
            help="How likely the product caused the adverse event.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record what happened to a patient after administration.

    A serious adverse event related `possible`, `probable` or `definite` opens a critical
    deviation on the lot of its vial (without --vial, on every lot the patient was given a
    vial of before it), which holds the lot's other vials, and says that an expedited safety
    report may be due (21 CFR 312.32; EU Regulation 536/2014). Follow-up is recorded after
    a patient withdraws consent too.

    \b
    Example:
      lims event record --patient PT-0001 --vial A999926000001-L1-V01 --at 2026-12-03T09:00 \\
        --kind adverse_event --severity moderate --related unlikely \\
        --description "headache for 24 h after the injection"
    """
    from lims.services import events

    view, zone = run(events.record_event, **service_options(ctx))
    print_view(view, as_json, _print_event, f"Event {view.event_id} recorded", zone)


@app.command("list")
def list_(
    patient: Annotated[
        str | None, typer.Option("--patient", metavar="CODE", help="Only this patient's.")
    ] = None,
    lot: Annotated[
        str | None,
        typer.Option(
            "--lot",
            metavar="LOT",
            help="Only those that followed a vial of this lot (or no vial, once the lot's "
            "first vial was given to its patient).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List follow-up events, oldest first.

    \b
    Example:
      lims event list --patient PT-0001 --json
    """
    from lims.services import events

    print_list(
        events.list_events, as_json, "Follow-up events", LIST_COLUMNS, patient=patient, lot=lot
    )
