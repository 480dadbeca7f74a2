"""Labels and scanning: `lims label print` of a 100-vial lot to PDF, and `lims scan` per line.

A released lot of 100 vials is made by lims.scenario, as at the bench:
patient, aspirate, culture, three passages, the patient's CSF received and the
formulation suspended in it, QC, QA release. A second patient's lot (in
quarantine) gives the scans that must MISMATCH.
"""

from __future__ import annotations

from datetime import timedelta

from common import (
    LIMS,
    Bench,
    Database,
    Row,
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
LABEL_TARGET_SECONDS = 0.008  # a label beyond the first on a PDF sheet (issue 17)
# Small vials, so that one harvest fills a hundred: 10^7 cells in 1 mL each.
VIAL = {"cells_per_vial": 10_000_000, "volume_ml": 1}


def label_rows(bench: Bench) -> list[Row]:
    vials = 20 if bench.quick else 100
    with timed(bench, f"making a released lot of {vials} vials"):
        database = bench.database("labels")
        lot, _ = make_lots(database, vials)
    out = database.home / "labels"
    out.mkdir()
    # Run after run into one directory: each replaces the sheet the run before wrote.
    command = [*LIMS, "label", "print", lot, "--format", "pdf", "--out", str(out), "--force"]
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
            "≤ 8 ms",
            f"{per_label * 1000:.1f} ms/label",
            f"{many / vials * 1000:.1f} ms/label",
            "—",
            verdict(per_label, LABEL_TARGET_SECONDS),
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
    lab = set_up_lab(database)
    patients = ["PT-LABEL-1", "PT-LABEL-2"][: 2 if mismatching else 1]
    formulated = now() - timedelta(hours=2)
    lots = []
    for (culture, on_its_clock), count in zip(
        start_cultures(lab, patients), [vials, mismatching], strict=False
    ):
        on_its_clock.expand(culture, 3)
        lot = lab.formulate(culture, vials=count, **VIAL, at=formulated).summary.lot_id
        lab.record_qc(lot, at=formulated + timedelta(hours=1))
        lots.append(lot)
    lab.release(lots[0], signer="qa")
    lab.login("tech")
    return lots[0], [lab.label_payloads(lot) for lot in lots]
