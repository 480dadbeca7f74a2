"""Patients: register under a pseudonymous code, show, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, new_area, print_record, print_view
from lims.cli.options import service_options
from lims.cli.service import read, run
from lims.cli.tables import Columns, print_list

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.bench import PatientView

app = new_area("Patients, by pseudonymous code: add, show, list.")


def _print_patient(view: PatientView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        title,
        {
            "code": view.code,
            "initials": view.initials,
            "birth year": view.birth_year,
            "consent date": view.consent_date,
            "study": view.study,
            "aspirates": ", ".join(view.aspirates) or None,
            "recorded": f"{show_time(view.recorded_at, zone)} by {view.recorded_by}",
        },
    )


@app.command("add")
def add(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The pseudonymous patient code.")],
    initials: Annotated[str, typer.Option("--initials", help="1-4 upper-case letters.")],
    birth_year: Annotated[str, typer.Option("--birth-year", metavar="YEAR", help="e.g. 1958.")],
    consent_date: Annotated[
        str | None,
        typer.Option("--consent-date", metavar="DATE", help="Date informed consent was signed."),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study or protocol the patient is in.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a patient. No name, SSN or medical record number is stored.

    \b
    Example:
      lims patient add PT-0001 --initials MR --birth-year 1958 --consent-date 2026-11-02
    """
    from lims.services import patients

    view, zone = run(patients.add_patient, **service_options(ctx))
    print_view(view, as_json, _print_patient, "Patient added", zone)


@app.command("show")
def show(
    code: Annotated[str, typer.Argument(help="The patient code.")], as_json: JsonOption = False
) -> None:
    """Show a patient and their aspirates.

    \b
    Example:
      lims patient show PT-0001
    """
    from lims.services import patients

    view, zone = read(patients.show_patient, code=code)
    print_view(view, as_json, _print_patient, f"Patient {view.code}", zone)


LIST_COLUMNS: Columns = [
    "code",
    "initials",
    ("birth year", "birth_year"),
    ("consent", "consent_date"),
    "study",
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
