"""Labels and scanning: `lims label print` of a 100-vial lot to PDF, and `lims scan` per line.

A released lot of 100 vials is made through the services, as at the bench:
patient, aspirate, culture, five passages, formulation, QC, QA release. A
second patient's lot (in quarantine) gives the scans that must MISMATCH.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from common import (
    LIMS,
    PASSWORD,
    Bench,
    Database,
    Row,
    days,
    log_passages,
    login,
    now,
    paired_medians,
    ratio_row,
    run_process,
    set_up_lab,
    show,
    start_cultures,
    timed,
    verdict,
)

SCAN_TARGET_SECONDS = 0.050


def label_rows(bench: Bench) -> list[Row]:
    vials = 20 if bench.quick else 100
    with timed(bench, f"making a released lot of {vials} vials"):
        database = bench.database("labels")
        lot, _ = make_lots(database, vials)
    out = database.home / "labels"
    out.mkdir()
    command = [*LIMS, "label", "print", lot, "--format", "pdf", "--out", str(out)]
    width = len(str(vials))
    many, one = paired_medians(
        [
            run_process(command, database.env()),
            run_process([*command, "--vial", f"{lot}-V{1:0{width}d}"], database.env()),
        ],
        bench.slow_runs,
    )
    per_label = (many - one) / (vials - 1)
    return [
        ratio_row(
            f"`lims label print --format pdf`, {vials} vials",
            many,
            "same command, 1 vial",
            one,
            None,
            "s",
        ),
        Row(
            f"  per label: ({vials} vials − 1 vial) / {vials - 1}; and {vials} vials / {vials}",
            "—",
            "report",
            f"{per_label * 1000:.1f} ms/label",
            f"{many / vials * 1000:.1f} ms/label",
            "—",
            "—",
        ),
    ]


def scan_rows(bench: Bench) -> list[Row]:
    lines = 20 if bench.quick else 100
    with timed(bench, "making lots to scan"):
        database = bench.database("scans")
        _, payloads = make_lots(database, 4, mismatching=4)
    matching, mismatching = payloads
    # Alternate a vial of the patient's own lot (MATCH) and one of another patient's (MISMATCH).
    scans = [(matching, mismatching)[n % 2][n // 2 % 4] for n in range(lines)]
    scan = [*LIMS, "scan", "--patient", "PT-LABEL-1"]
    env = database.env()
    many, one = paired_medians(
        [
            run_process(scan, env, stdin="\n".join(scans).encode() + b"\n", ok=(1,)),
            run_process(scan, env, stdin=scans[0].encode() + b"\n", ok=(0,)),
        ],
        bench.slow_runs,
    )
    per_line = (many - one) / (lines - 1)
    return [
        Row(
            f"`lims scan`, per line ({lines} lines, half MISMATCH, in one process)",
            "same process, 1 line",
            "≤ 50 ms",
            f"{show(many, 's')} for {lines}",
            show(one, "s"),
            f"{per_line * 1000:.1f} ms/line",
            verdict(per_line, SCAN_TARGET_SECONDS),
        )
    ]


def make_lots(database: Database, vials: int, mismatching: int = 0) -> tuple[str, list[list[str]]]:
    """A released lot of `vials` for PT-LABEL-1 (and, if asked, a quarantined lot for PT-LABEL-2).

    Returns the released lot's id and the QR payloads of each lot's vials.
    """
    set_up_lab(database)
    patients = ["PT-LABEL-1", "PT-LABEL-2"][: 2 if mismatching else 1]
    started = now() - days(40)
    cultures = start_cultures(database, patients, started)
    for code, start in cultures:
        log_passages(database, code, start, 3)
    formulated = now() - timedelta(hours=2)
    lots = [
        formulate(database, code, count, formulated)
        for (code, _), count in zip(cultures, [vials, mismatching], strict=False)
    ]
    release(database, lots[0], formulated)
    return lots[0], [payloads(database, lot) for lot in lots]


def formulate(database: Database, culture: str, vials: int, at: datetime) -> str:
    from lims.demo import DEMO_QC
    from lims.services import lots, qc
    from lims.uow import unit_of_work

    settings = database.settings()
    with unit_of_work(settings) as uow:
        lot = lots.formulate(
            uow,
            culture=culture,
            harvested=1_100_000_000,
            viability=93,
            vials=vials,
            cells_per_vial=10_000_000,
            volume_ml=1,
            at=at,
            reagents=["TrypLE Express:2409B"],
        )
        for test, value, method in DEMO_QC:
            qc.record_result(
                uow,
                lot=lot.summary.lot_id,
                test=test,
                value=value,
                method=method,
                at=at + timedelta(hours=1),
            )
    return lot.summary.lot_id


def release(database: Database, lot: str, formulated: datetime) -> None:
    from lims.services import lots
    from lims.uow import unit_of_work

    login(database, "qa")
    settings = database.settings()
    with unit_of_work(settings) as uow:
        lots.release(uow, lot=lot, password=PASSWORD)
    login(database, "tech")


def payloads(database: Database, lot: str) -> list[str]:
    from sqlmodel import col, select

    from lims.models import Patient, Vial
    from lims.services import lookup, printing
    from lims.uow import unit_of_work

    settings = database.settings()
    with unit_of_work(settings, write=False) as uow:
        found = lookup.lot(uow.session, lot)
        patient = uow.session.get(Patient, found.patient_id)
        assert patient is not None
        vials = uow.session.exec(
            select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
        ).all()
        return [
            printing.label_for(settings, found, patient, vial, found.status).payload
            for vial in vials
        ]
