"""Printing vial labels: content from the record, files written beside their destination,
every print audited with who, which vials, format and count; reprints counted and marked."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlmodel import col, select

from lims import audit
from lims.config import Settings
from lims.documents import labels
from lims.domain import ids
from lims.domain.ids import Din
from lims.domain.payload import Payload
from lims.domain.states import EXPIRED, VIAL, LotState
from lims.errors import BadInput, RuleViolation, Unavailable, shown
from lims.models import Lot, Patient, Vial
from lims.services import consent, lookup
from lims.services.lots import effective_status, vehicle_din
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.validation import choice
from lims.views.vials import PrintJob

FORMATS = ("pdf", "png", "svg", "zpl")
WRITTEN_KIND = "label"  # written_files.kind
PRINTER_NAME_MAX = 127  # CUPS's limit on a queue name
# ASCII only: str.isalnum() also passes "zébra" or "١٢", which lp then refuses after the
# labels were written and audited.
PRINTER_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{PRINTER_NAME_MAX}}}")
BANNERS = {
    LotState.QUARANTINE: "QUARANTINE — NOT FOR ADMINISTRATION",
    LotState.REJECTED: "REJECTED — DO NOT USE",
    LotState.RECALLED: "RECALLED — DO NOT USE",
    EXPIRED: "EXPIRED — DO NOT USE",
}


def send_to_printer(job: PrintJob) -> None:
    """Hand the written files to CUPS; without `lp`, or if it refuses them, Unavailable.

    The labels are written and recorded by then: what failed is the station's printing.
    """
    if job.printer is None:
        return
    command = ["lp", "-d", job.printer]
    if job.format == "zpl":
        command += ["-o", "raw"]  # Zebra printers take ZPL as is
    try:
        subprocess.run(
            [*command, *map(str, job.files.paths)], check=True, capture_output=True, text=True
        )
    except FileNotFoundError:
        raise Unavailable(
            f"labels written to {job.files.paths[0].parent}, but `lp` (CUPS) is not installed"
        ) from None
    except subprocess.CalledProcessError as error:
        raise Unavailable(
            f"labels written to {job.files.paths[0].parent}, but lp refused them: "
            f"{(error.stderr or error.stdout).strip()}"
        ) from None


def label_for(
    settings: Settings, lot: Lot, patient: Patient, vial: Vial, status: str, vehicle: Din | None
) -> labels.Label:
    """What a vial's label says; `vehicle` is the DIN of the CSF the lot is suspended in
    (lots.vehicle_din), printed under the dose (the QR payload names the cells' DIN only)."""
    din = ids.LotId.parse(lot.code).din
    zone = settings.tz
    payload = Payload(vial.code, din.code, patient.code, lot.expires_at).encode()
    suspended_in = (
        []
        if vehicle is None
        else [(f"CSF DIN {vehicle.eye_readable}, {lot.vehicle_ml:g} mL", False)]
    )
    lines = [
        (settings.labels.product, True),
        (f"Vial {vial.code}", False),
        (f"DIN {din.eye_readable}", False),
        (f"Patient {patient.code}  {patient.initials}  born {patient.birth_year}", False),
        (f"{vial.cells:,} cells in {vial.volume_ml:g} mL {lot.vehicle}", False),
        *suspended_in,
        (
            f"EXP {lot.expires_at.astimezone(zone).isoformat(sep=' ', timespec='minutes')}",
            True,
        ),
        (settings.labels.storage, False),
        (settings.facility.name, False),
        ("FOR AUTOLOGOUS USE ONLY", True),
        (settings.labels.caution, False),
    ]
    return labels.Label(
        vial_id=vial.code,
        payload=payload,
        isbt128=din.isbt128 if settings.labels.isbt128_barcode else None,
        lines=lines,
        banner=BANNERS.get(status),
        reprint=vial.labels_printed,
    )


def print_labels(
    uow: UnitOfWork,
    *,
    lot: str,
    fmt: str,
    out: Path,
    vials: Sequence[str] = (),
    printer: str | None = None,
    on_label: Callable[[str], None] | None = None,
    force: bool = False,
) -> PrintJob:
    """Render a lot's labels (or the named vials') into out (made if missing), audited in the
    same transaction; force replaces label files lims wrote, and nothing else."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    choice("format", fmt, FORMATS)
    if printer is not None and not PRINTER_NAME.fullmatch(printer):
        raise BadInput(
            "printer",
            f"must be a CUPS queue name: 1-{PRINTER_NAME_MAX} ASCII letters, digits, - and _ "
            f"(got {shown(printer)})",
        )
    directory = _label_directory(out)
    template = labels.load_template(settings.labels.template)
    found = lookup.lot(session, lot)
    patient = consent.require_in_force(session, settings.tz, found.patient_id, "label print")
    if vials:
        chosen = [lookup.vial(session, code) for code in vials]
        codes = [vial.code for vial in chosen]
        twice = sorted({code for code in codes if codes.count(code) > 1})
        if twice:
            raise BadInput("vial", f"{', '.join(twice)} named more than once")
        strangers = [v.code for v in chosen if v.lot_id != found.id]
        if strangers:
            raise BadInput("vial", f"{', '.join(strangers)} not of lot {found.code}")
    else:
        chosen = list(
            session.exec(
                select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
            )
        )
    unlabelled: dict[str, list[str]] = {}
    for vial in chosen:
        if not VIAL.allows("label", vial.status):
            unlabelled.setdefault(vial.status, []).append(vial.code)
    if unlabelled:
        raise RuleViolation(
            "; ".join(
                VIAL.refusal("label", code=", ".join(codes), status=status) or ""
                for status, codes in unlabelled.items()
            )
        )
    status = effective_status(found, utcnow())
    vehicle = vehicle_din(session, found)
    content = [label_for(settings, found, patient, vial, status, vehicle) for vial in chosen]
    job = PrintJob(
        lot_id=found.code,
        format=fmt,
        vials=[v.code for v in chosen],
        reprints={label.vial_id: label.reprint for label in content if label.reprint},
        files=StagedFiles(force=force, database=settings.sqlite_path),
        printer=printer,
    )
    with job.files.discarded_on_error():
        try:
            directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            _stage(job, template, content, directory, on_label or (lambda _: None))
        except OSError as error:
            raise Unavailable(
                f"cannot write labels to {shown(str(directory))}: {error.strerror}"
            ) from None
        job.files.record(session, kind=WRITTEN_KIND, by=actor.username)
        for vial in chosen:
            vial.labels_printed += 1
            session.add(vial)
        audit.record_about(
            session,
            ("lot", found.code),
            "label.print",
            by=actor.username,
            new={
                "format": fmt,
                "count": len(chosen),
                "vials": job.vials,
                "reprints": job.reprints,
                "printer": printer,
                "files": [str(path) for path in job.files.paths],
                "sha256": [job.files.sha256(path) for path in job.files.paths],
            },
        )
    return job


def _label_directory(out: Path) -> Path:
    """OUT as a directory to write labels into: one that exists, or a name to make it at."""
    if any(unicodedata.category(character) == "Cc" for character in str(out)):
        raise BadInput(
            "out", f"must be a directory name without control characters (got {shown(str(out))})"
        )
    try:
        directory = out.expanduser()
        a_file = next(
            (p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), None
        )
    except RuntimeError:  # ~name of no user
        raise BadInput(
            "out", f"names a home directory of no user (got {shown(str(out))})"
        ) from None
    except OSError as error:  # e.g. a name too long for the file system
        raise BadInput(
            "out",
            f"must be a directory that can be written (got {shown(str(out))}: {error.strerror})",
        ) from None
    if a_file == directory:
        raise BadInput("out", f"must be a directory, not the file {shown(str(directory))}")
    if a_file is not None:
        raise BadInput(
            "out", f"must be a directory (got {shown(str(out))}; {shown(str(a_file))} is a file)"
        )
    return directory


def _stage(
    job: PrintJob,
    template: labels.Template,
    content: Sequence[labels.Label],
    directory: Path,
    on_label: Callable[[str], None],
) -> None:
    def stage(name: str, data: bytes) -> None:
        job.files.write(directory / name, data)

    if job.format == "pdf":
        sheet = labels.render_pdf(template, content, f"Labels {job.lot_id}")
        stage(f"{job.lot_id}-labels.pdf", sheet)
        for label in content:
            on_label(label.vial_id)
    elif job.format == "zpl":
        blocks = []
        for label in content:
            blocks.append(labels.render_zpl(template, label))
            on_label(label.vial_id)
        stage(f"{job.lot_id}-labels.zpl", ("\n".join(blocks) + "\n").encode())
    else:
        render = labels.render_png if job.format == "png" else labels.render_svg
        for label in content:
            stage(f"{label.vial_id}.{job.format}", render(template, label))
            on_label(label.vial_id)
