"""Patients: register under a pseudonymous code, correct, withdraw consent, show, list."""

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
    say,
)
from lims.cli.options import AtOption, ReasonOption, service_options
from lims.cli.service import read, run
from lims.cli.tables import Columns, print_columns, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import PatientRecord, PatientView
    from lims.views.patients import PatientDetail
    from lims.views.screening import ScreeningResultView, ScreeningStatementView, ScreeningView

app = new_area(
    "Patients, by pseudonymous code: add, correct, withdraw, screen (donor tests), show, list."
)

SCREENED_NEGATIVE = "screened negative on every test"

CodeArgument = Annotated[str, typer.Argument(help="The pseudonymous patient code.")]
BirthYearOption = Annotated[str, typer.Option("--birth-year", metavar="YEAR", help="e.g. 1958.")]
ConsentDateOption = Annotated[
    str, typer.Option("--consent-date", metavar="DATE", help="Date informed consent was signed.")
]
WeightOption = Annotated[
    str | None,
    typer.Option(
        "--weight-kg",
        metavar="KG",
        help="Body weight in kg, within the site's range (default 2-250); a dose per kg "
        "is judged by it.",
    ),
]


def _record_fields(view: PatientRecord, zone: tzinfo) -> dict[str, Any]:
    from lims.timeutil import show_time

    withdrawn = None
    if view.withdrawn_at is not None:
        withdrawn = alarm(
            f"CONSENT WITHDRAWN {show_time(view.withdrawn_at, zone)} by {view.withdrawn_by}: "
            f"{view.withdraw_reason}"
        )
    return {
        "code": view.code,
        "initials": view.initials,
        "birth year": view.birth_year,
        "consent date": view.consent_date or alarm("none on record: no aspirate is received"),
        "weight": f"{view.weight_kg:g} kg" if view.weight_kg is not None else None,
        "study": view.study,
        "withdrawn": withdrawn,
        "recorded": f"{show_time(view.recorded_at, zone)} by {view.recorded_by}",
    }


def _print_patient(view: PatientView, title: str, zone: tzinfo) -> None:
    print_record(
        title, {**_record_fields(view, zone), "aspirates": ", ".join(view.aspirates) or None}
    )


def _print_detail(view: PatientDetail, title: str, zone: tzinfo) -> None:
    from lims.cli import aspirates
    from lims.timeutil import show_time
    from lims.views.records import LATE_ENTRY

    print_record(title, _record_fields(view, zone))
    if view.aspirates:
        print_table(
            "Aspirates",
            ["DIN", "material", "collected", "received", "conditions", "left mL", "used by"],
            [
                (
                    a.din.display,
                    aspirates.MATERIAL_SHOWN[a.material],
                    show_time(a.collected_at, zone),
                    show_time(a.received_at, zone),
                    ", ".join(
                        mark
                        for mark, shown in (
                            ("nonconforming", a.nonconforming),
                            (LATE_ENTRY, a.late_entry),
                        )
                        if shown
                    )
                    or None,
                    None if a.volume_left_ml is None else f"{a.volume_left_ml:g}",
                    ", ".join([*a.cultures, *(draw.lot_id for draw in a.drawn_by)]) or None,
                )
                for a in view.aspirates
            ],
        )
    # The patient's materials as their own lists show them.
    from lims.cli import cultures, events, lots, storage, vials

    for title, rows, columns in (
        ("Cultures", view.cultures, cultures.LIST_COLUMNS),
        ("Lots", view.lots, lots.LIST_COLUMNS),
        ("Vials", view.vials, vials.LIST_COLUMNS),
        ("In storage", view.stored_items, storage.ITEM_COLUMNS),
    ):
        if rows:
            print_columns(rows, title, columns, zone)
    if view.deviations:
        print_table(
            "Deviations",
            ["#", "on", "kind", "status", "description"],
            [(d.deviation_id, d.subject, d.kind, d.status, d.description) for d in view.deviations],
        )
    if view.events:
        print_columns(view.events, "Follow-up", events.LIST_COLUMNS, zone)
    _print_screening(view.screening, view.screening_statement, zone)


def _print_screening(
    results: list[ScreeningResultView], statement: ScreeningStatementView, zone: tzinfo
) -> None:
    """Each test's latest result (the full history is in --json and the trail), the tests
    found reactive, and what labels say."""
    from lims.timeutil import show_time

    latest = {row.test: row for row in results}  # in the order tests were first screened
    unscreened = [test for test in statement.not_performed if test not in latest]
    print_table(
        "Donor screening: each test's latest result",
        ["test", "result", "performed", "recorded by"],
        [
            *(
                (
                    row.test,
                    _shown_result(row.result, row.test in statement.reactive),
                    show_time(row.performed_at, zone),
                    row.recorded_by,
                )
                for row in latest.values()
            ),
            *((test, "no result", None, None) for test in unscreened),
        ],
    )
    if statement.reactive:
        print_alarms([f"Reactive: {', '.join(statement.reactive)}"])
    if statement.label_text is None:
        say(f"Labels: {SCREENED_NEGATIVE}")
    elif statement.reactive:
        print_alarms([f"Labels: {statement.label_text}"])
    else:
        say(f"Labels: {statement.label_text}")


def _shown_result(result: str, found_reactive: bool) -> Any:
    if result == "reactive":
        return alarm(result)
    # A later negative retest leaves a reactive donor marked.
    return alarm(f"{result}, reactive before") if found_reactive else result


def _print_screened(view: ScreeningView, title: str, zone: tzinfo) -> None:
    say(title)
    _print_screening(view.results, view.statement, zone)


@app.command("screen")
def screen(
    code: CodeArgument,
    test: Annotated[
        str, typer.Option("--test", metavar="TEST", help="One of the site's screening.tests.")
    ],
    result: Annotated[
        str, typer.Option("--result", metavar="RESULT", help="negative, reactive or not_done.")
    ],
    at: AtOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a donor screening result (21 CFR 1271.85); labels printed from now on say
    what the patient's results do.

    Until every test of the site's screening.tests has a result, labels read NOT
    EVALUATED FOR INFECTIOUS SUBSTANCES; a reactive result adds the biohazard legend,
    names the tests, and makes the ISBT 128 collection type X. A later negative result
    does not unmark a reactive one.

    \b
    Example:
      lims patient screen PT-0001 --test hiv --result negative --at 2026-11-02
    """
    from lims.services import screening

    view, zone = run(screening.record, patient=code, test=test, result=result, at=at)
    print_view(
        view, as_json, _print_screened, f"Patient {view.patient}: {view.test} {view.result}", zone
    )


@app.command("add")
def add(
    ctx: typer.Context,
    code: CodeArgument,
    initials: Annotated[str, typer.Option("--initials", help="1-4 upper-case letters.")],
    birth_year: BirthYearOption,
    consent_date: ConsentDateOption,
    study: Annotated[
        str | None, typer.Option("--study", help="Study or protocol the patient is in.")
    ] = None,
    weight_kg: WeightOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a patient. No name, SSN or medical record number is stored.

    The code is ASCII and must not read as another patient's (letter O for zero,
    letter I for one, or case) nor as a DIN, culture, lot or vial id.

    \b
    Example:
      lims patient add PT-0001 --initials MR --birth-year 1958 --consent-date 2026-11-02
    """
    from lims.services import patients

    view, zone = run(patients.add_patient, **service_options(ctx))
    print_view(view, as_json, _print_patient, "Patient added", zone)


@app.command("correct")
def correct(
    ctx: typer.Context,
    code: CodeArgument,
    reason: ReasonOption,
    initials: Annotated[
        str | None, typer.Option("--initials", help="1-4 upper-case letters.")
    ] = None,
    birth_year: Annotated[
        str | None, typer.Option("--birth-year", metavar="YEAR", help="e.g. 1958.")
    ] = None,
    consent_date: Annotated[
        str | None,
        typer.Option("--consent-date", metavar="DATE", help="Date informed consent was signed."),
    ] = None,
    weight_kg: WeightOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct a patient's record; the audit trail keeps the old and new values and the reason.

    \b
    Example:
      lims patient correct PT-0001 --birth-year 1985 --reason "digits swapped at entry"
    """
    from lims.services import patients

    view, zone = run(patients.correct_patient, **service_options(ctx))
    print_view(view, as_json, _print_patient, f"Patient {view.code} corrected", zone)


@app.command("withdraw")
def withdraw(
    ctx: typer.Context, code: CodeArgument, reason: ReasonOption, as_json: JsonOption = False
) -> None:
    """Record that the patient withdrew consent: no further manufacturing step on their
    materials, and their vials fail verification. Disposal, reads, trace and reports
    stay possible.

    \b
    Example:
      lims patient withdraw PT-0001 --reason "consent withdrawn in writing, form of 2026-11-30"
    """
    from lims.services import patients

    view, zone = run(patients.withdraw_patient, **service_options(ctx))
    print_view(view, as_json, _print_patient, f"Patient {view.code}: consent withdrawn", zone)


@app.command("show")
def show(code: CodeArgument, as_json: JsonOption = False) -> None:
    """Show everything about a patient: aspirates, cultures, lots, vials, deviations and
    follow-up events.

    \b
    Example:
      lims patient show PT-0001
    """
    from lims.services import patients

    view, zone = read(patients.show_patient, code=code)
    print_view(view, as_json, _print_detail, f"Patient {view.code}", zone)


LIST_COLUMNS: Columns = [
    "code",
    "initials",
    ("birth year", "birth_year"),
    ("consent", "consent_date"),
    "study",
    ("withdrawn", lambda view: "WITHDRAWN" if view.withdrawn else None),
    ("aspirates", lambda view: len(view.aspirates)),
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List patients.

    \b
    Example:
      lims patient list --json
    """
    from lims.services import patients

    print_list(patients.list_patients, as_json, "Patients", LIST_COLUMNS)
