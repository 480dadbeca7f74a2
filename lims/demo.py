"""A guided tour on a fresh database: what lims records, start to finish, so far.

The tour is lims.scenario's full path, narrated by `lims demo` (lims/cli/demo.py).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from lims.config import Settings, load_settings
from lims.errors import RuleViolation
from lims.scenario import Clock, Scenario, staff
from lims.services import aspirates, cultures
from lims.views.demo import DemoResult, DemoUser

DEMO_PATIENT = {"code": "DEMO-0001", "study": "MSC-ALS demo"}
PASSAGES_BEFORE_HARVEST = 3  # the final harvest is five days after P3


def demo_settings(directory: Path) -> Settings:
    directory = directory.resolve()
    return load_settings(home=directory, database_url=f"sqlite:///{directory / 'lims.db'}")


def run_demo(directory: Path) -> DemoResult:
    """Create the database in directory, its users, and walk through the work so far."""
    settings = demo_settings(directory)
    assert settings.sqlite_path is not None
    if settings.sqlite_path.exists():
        raise RuleViolation(
            f"{directory} already holds a lims database; give --dir a new or empty directory"
        )
    people = staff()
    _, technician, reviewer = (person.username for person in people)
    lab = Scenario.initialise(settings, people, Clock.formulating_yesterday())

    lab.login(technician)
    patient = lab.patient(**DEMO_PATIENT)
    din = lab.aspirate(patient=patient.code).din.code
    lab.add_reagents()
    culture = lab.culture(din).summary.culture_id
    lab.expand(culture, PASSAGES_BEFORE_HARVEST)
    # As the technician saw them before the final harvest: the culture still active.
    received = lab.read(aspirates.show_aspirate, din=din)
    grown = lab.read(cultures.show_culture, culture=culture)
    lot = lab.formulate(culture).summary.lot_id
    lab.record_qc(lot)
    released = lab.release(lot, signer=reviewer)
    written = lab.batch_record(lot, settings.home / f"batch-record-{lot}.pdf")
    lab.login(technician)
    labels = lab.labels(lot, settings.home / "labels")
    scan = lab.scan(lot, patient.code)
    lab.logout()
    return DemoResult(
        settings=settings,
        users=[DemoUser(**asdict(person)) for person in people],
        patient=patient,
        aspirate=received,
        culture=grown,
        lot=released,
        batch_record=written.path,
        batch_record_pages=written.pages,
        labels=labels,
        scan=scan,
        trail=lab.audit_trail(),
        verification=lab.verify_trail(),
    )
