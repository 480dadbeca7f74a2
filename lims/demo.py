"""A guided tour on a fresh database: what lims records, start to finish, so far."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from lims import audit, auth
from lims.config import Settings, load_settings
from lims.errors import RuleViolation
from lims.models import Patient, Vial
from lims.services import (
    aspirates,
    cultures,
    lookup,
    lots,
    patients,
    printing,
    qc,
    reagents,
    reports,
    sessions,
    users,
    vials,
)
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views.demo import DemoResult, DemoUser

DEMO_USERS = (
    ("admin", "Ada Admin", "admin"),
    ("tech", "Tom Tech", "technician"),
    ("qa", "Quinn QA", "qa"),
)


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
    people = [
        DemoUser(username=name, full_name=full, role=role, password=secrets.token_urlsafe(12))
        for name, full, role in DEMO_USERS
    ]
    admin, *staff = people

    users.initialise(
        settings, username=admin.username, full_name=admin.full_name, password=admin.password
    )
    _login(settings, admin)
    with unit_of_work(settings) as uow:
        for user in staff:
            users.create_user(
                uow,
                username=user.username,
                full_name=user.full_name,
                role=user.role,
                password=user.password,
            )
    technician = next(user for user in staff if user.role == "technician")
    _login(settings, technician)
    collected = (utcnow() - timedelta(days=DEMO_FORMULATION_DAY + 1)).replace(
        minute=0, second=0, microsecond=0
    )
    patient, aspirate, culture = _bench_work(settings, collected)
    lot_id = _formulate_and_test(settings, culture.summary.culture_id, collected)
    reviewer = next(user for user in staff if user.role == "qa")
    _login(settings, reviewer)
    with unit_of_work(settings) as uow:
        lot = lots.release(uow, lot=lot_id, password=reviewer.password)
    batch_record = directory.resolve() / f"batch-record-{lot_id}.pdf"
    with unit_of_work(settings) as uow:
        written = reports.write_batch_record(uow, lot=lot_id, out=batch_record)
    written.files.publish()
    _login(settings, technician)
    label_files, verification_of_vial = _label_and_verify(settings, directory.resolve(), lot_id)
    with unit_of_work(settings, authenticated=False) as uow:
        sessions.logout(uow)
    auth.remove_token(settings)

    with unit_of_work(settings, write=False, authenticated=False) as uow:
        verification = audit.verify(uow.session.connection())
        trail = audit.entries(uow.session)
    return DemoResult(
        settings=settings,
        users=people,
        patient=patient,
        aspirate=aspirate,
        culture=culture,
        lot=lot,
        batch_record=written.path,
        batch_record_pages=written.pages,
        labels=label_files,
        scan=verification_of_vial,
        trail=trail,
        verification=verification,
    )


def _label_and_verify(
    settings: Settings, directory: Path, lot_id: str
) -> tuple[list[Path], vials.Verification]:
    """Labels as a PDF sheet and PNG files, and the first vial's QR scanned against its patient."""
    out = directory / "labels"
    out.mkdir(exist_ok=True)
    files: list[Path] = []
    for fmt in ("png", "pdf"):  # the PDF sheet, printed second, shows the reprint marks
        with unit_of_work(settings) as uow:
            job = printing.print_labels(uow, lot=lot_id, fmt=fmt, out=out)
        job.files.publish()
        files += job.files.paths
    with unit_of_work(settings) as uow:
        found = lookup.lot(uow.session, lot_id)
        patient = uow.session.get(Patient, found.patient_id)
        first = uow.session.exec(
            select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
        ).first()
        assert patient is not None
        assert first is not None
        payload = printing.label_for(settings, found, patient, first, found.status).payload
        result = vials.verify(uow, scan=payload, patient=patient.code)
    return files, result


def _formulate_and_test(settings: Settings, culture_id: str, collected: datetime) -> str:
    """The technician's final harvest into vials and the QC lab's results."""
    formulated_at = collected + timedelta(days=DEMO_FORMULATION_DAY)
    with unit_of_work(settings) as uow:
        lot = lots.formulate(
            uow,
            culture=culture_id,
            harvested=1_100_000_000,
            viability=93,
            vials=4,
            cells_per_vial=50_000_000,
            volume_ml=2,
            at=formulated_at,
            reagents=["TrypLE Express:2409B"],
        )
        for test, value, method in DEMO_QC:
            qc.record_result(
                uow,
                lot=lot.summary.lot_id,
                test=test,
                value=value,
                method=method,
                at=formulated_at + timedelta(hours=3),
            )
    return lot.summary.lot_id


def _login(settings: Settings, user: DemoUser) -> None:
    with unit_of_work(settings, authenticated=False) as uow:
        token, _ = sessions.login(uow, username=user.username, password=user.password)
    auth.write_token(settings, token)


# Reagent lots of a Pittenger-style expansion: gradient, medium, serum, dissociation enzyme.
DEMO_REAGENTS = (
    ("Percoll 1.073", "P-1107", "Cytiva"),
    ("MEM alpha", "2411A", "Gibco"),
    ("FBS MSC-qualified", "F-0932", "Gibco"),
    ("TrypLE Express", "2409B", "Gibco"),
)
# Three passages a technician would log: (days after collection, harvested, viability %,
# reseeded, vessels, area cm²). Reseeding stays near Pittenger's 5,000 cells/cm².
DEMO_PASSAGES = (
    (12, 4_200_000, 94.0, 4_200_000, 5, 875.0),
    (17, 29_000_000, 93.0, 26_000_000, 30, 5_250.0),
    (22, 190_000_000, 91.0, 150_000_000, 5, 31_800.0),
)
# The final harvest five days after P3, into four vials of 5x10^7 cells in 2 mL.
DEMO_FORMULATION_DAY = 27
DEMO_QC = (
    ("viability", "92.4", "trypan blue"),
    ("sterility", "negative", "BacT/ALERT, 7 d"),
    ("mycoplasma", "negative", "NAT"),
    ("endotoxin", "0.8", "LAL kinetic chromogenic"),
    ("cd73", "99.2", "flow cytometry"),
    ("cd90", "98.7", "flow cytometry"),
    ("cd105", "97.1", "flow cytometry"),
    ("cd45", "0.6", "flow cytometry"),
    ("cd34", "0.4", "flow cytometry"),
    ("cd14", "0.9", "flow cytometry"),
    ("cd19", "0.2", "flow cytometry"),
    ("hla_dr", "0.7", "flow cytometry"),
)


def _bench_work(
    settings: Settings, collected: datetime
) -> tuple[patients.PatientView, aspirates.AspirateView, cultures.CultureDetail]:
    """A patient, an aspirate, a primary culture and three passages, as the technician."""
    with unit_of_work(settings) as uow:
        patient = patients.add_patient(
            uow,
            code="DEMO-0001",
            initials="MR",
            birth_year=1958,
            consent_date=(collected - timedelta(days=7)).date(),
            study="MSC-ALS demo",
        )
        aspirate = aspirates.receive(
            uow,
            patient=patient.code,
            collected_at=collected,
            received_at=collected + timedelta(hours=2),
            volume_ml=30,
            anticoagulant="sodium heparin",
            tnc=610_000_000,
            temperature_c=18,
        )
        for name, lot, supplier in DEMO_REAGENTS:
            reagents.add_reagent(
                uow,
                name=name,
                lot=lot,
                expires=(collected + timedelta(days=180)).date(),
                supplier=supplier,
            )
        culture = cultures.start_culture(
            uow,
            din=aspirate.din.code,
            mnc=240_000_000,
            vessels=5,
            area_cm2=875,
            at=collected + timedelta(hours=5),
            reagents=["Percoll 1.073:P-1107", "MEM alpha:2411A", "FBS MSC-qualified:F-0932"],
        )
        code = culture.summary.culture_id
    for days, harvested, viability, seeded, vessels, area in DEMO_PASSAGES:
        # One command, one transaction, as at the bench.
        with unit_of_work(settings) as uow:
            cultures.log_passage(
                uow,
                culture=code,
                harvested=harvested,
                viability=viability,
                seeded=seeded,
                vessels=vessels,
                area_cm2=area,
                confluence=85,
                at=collected + timedelta(days=days),
                reagents=["TrypLE Express:2409B", "MEM alpha:2411A"],
            )
    with unit_of_work(settings, write=False) as uow:
        detail = cultures.show_culture(uow, culture=code)
        aspirate = aspirates.show_aspirate(uow, din=aspirate.din.code)
    return patient, aspirate, detail
