"""Printing vial labels: content from the record, files written beside their destination,
every print audited with who, which vials, format, count and the files' SHA-256.

A print counts (and later prints of a vial say REPRINT n) only once it is whole: its files
staged, and with a printer, every file accepted by `lp`; then its audit entry commits and
the files are published. A print that fails counts nothing and replaces no file. A preview
is watermarked, audited as a preview, and counted as no label.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlmodel import Session, col, func, select

from lims import audit
from lims.config import Settings
from lims.documents import labels
from lims.domain import ids, isbt128
from lims.domain.ids import Din
from lims.domain.payload import Payload
from lims.domain.screening import Statement
from lims.domain.states import EXPIRED, VIAL, LotState, VialState
from lims.errors import (
    AuditedRuleViolation,
    BadInput,
    ConfigError,
    RuleViolation,
    Unavailable,
    shown,
)
from lims.models import LabelReconciliation, Lot, Patient, Vial
from lims.services import consent, deviations, lookup, screening
from lims.services.lots import effective_status, vehicle_din
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.validation import choice
from lims.views.vials import LabelReconciliationView, PrintJob

FORMATS = ("pdf", "png", "svg", "zpl")
WRITTEN_KIND = "label"  # written_files.kind
PREVIEW_SUFFIX = "-preview"  # a preview's files never take a label's names
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
# A vial recalled or rejected with its lot says so whatever its lot shows now.
VIAL_BANNERS: dict[str, str] = {
    VialState.RECALLED: BANNERS[LotState.RECALLED],
    VialState.REJECTED: BANNERS[LotState.REJECTED],
}
NO_PRODUCT_CODE = "product code not assigned"
DEVIATION_KIND = "label_count"  # deviations.kind of one an unbalanced label count opened
LABEL_COUNT_MAX = 100_000  # labels applied or destroyed, stated at one reconciliation


def send_to_printer(printer: str, fmt: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
    """Hand each file to the CUPS queue `printer` (lp reads it from its standard input); what
    lp answered for each. Unavailable when lp is missing or refuses a file, and then the
    jobs it had already accepted for this print are cancelled: a print is whole or nothing."""
    accepted: list[str] = []
    for name, data in files:
        command = ["lp", "-d", printer, "-t", name]
        if fmt == "zpl":
            command += ["-o", "raw"]  # Zebra printers take ZPL as is
        try:
            done = subprocess.run(command, input=data, check=True, capture_output=True)
        except FileNotFoundError:
            raise Unavailable(
                "`lp` (CUPS) is not installed: no label was printed or counted"
            ) from None
        except subprocess.CalledProcessError as error:
            # One line, whatever lp printed: the refusal is shown as one.
            answer = " ".join(
                (error.stderr or error.stdout or b"").decode(errors="replace").split()
            )
            raise Unavailable(
                f"lp refused {name} for {printer}: {answer or f'exit {error.returncode}'}; "
                f"no label was counted{_cancelled(accepted)}"
            ) from None
        accepted.append(" ".join(done.stdout.decode(errors="replace").split()))
    return accepted


_REQUEST_ID = re.compile(r"request id is (\S+)")


def _cancelled(accepted: Sequence[str]) -> str:
    """Cancel the jobs lp accepted for a print that failed; what became of them."""
    jobs = [match[1] for answer in accepted if (match := _REQUEST_ID.search(answer))]
    if not jobs:
        return ""
    command = ["cancel", *jobs]
    try:
        cancelled = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError:
        cancelled = None
    if cancelled is not None and cancelled.returncode == 0:
        return f" (jobs {', '.join(jobs)} it had accepted were cancelled)"
    return f" (jobs {', '.join(jobs)} it had accepted could not be cancelled: check the printer)"


def banner_for(vial: Vial, lot_status: str) -> str | None:
    return VIAL_BANNERS.get(vial.status) or BANNERS.get(lot_status)


def label_for(
    settings: Settings,
    lot: Lot,
    patient: Patient,
    vial: Vial,
    *,
    banner: str | None,
    vehicle: Din | None,
    statement: Statement,
    preview: bool = False,
) -> labels.Label:
    """What a vial's label says; `vehicle` is the DIN of the CSF the lot is suspended in
    (lots.vehicle_din), printed under the dose (the 2-D code names the cells' DIN only)."""
    din = ids.LotId.parse(lot.code).din
    zone = settings.tz
    site = settings.labels
    product = (
        None
        if site.product_code is None
        else isbt128.ProductCode(site.product_code, statement.collection_type, vial.division)
    )
    if site.symbology == "datamatrix":
        assert product is not None  # the site setting requires it
        symbol = isbt128.compound_message(din, product, lot.expires_at)
    else:
        symbol = Payload(vial.code, din.code, patient.code, lot.expires_at).encode()
    fields: list[tuple[str, str, bool]] = [
        ("product", site.product, True),
        ("vial", f"Vial {vial.code}", False),
        (
            "product_code",
            product.eye_readable
            if product
            else f"{NO_PRODUCT_CODE}, division {isbt128.division_text(vial.division)}",
            False,
        ),
        (
            "patient",
            f"Patient {patient.code}  {patient.initials}  born {patient.birth_year}",
            False,
        ),
        ("dose", f"{vial.cells:,} cells in {vial.volume_ml:g} mL {lot.vehicle}", False),
    ]
    if vehicle is not None:
        fields.append(("vehicle", f"CSF DIN {vehicle.display}, {lot.vehicle_ml:g} mL", False))
    expiry = lot.expires_at.astimezone(zone).isoformat(sep=" ", timespec="minutes")
    fields += [
        ("expiry", f"EXP {expiry}", True),
        ("storage", site.storage, False),
        ("route", site.route, False),
        ("facility", settings.facility.name, False),
        ("address", settings.facility.address, False),
        ("autologous", "FOR AUTOLOGOUS USE ONLY", True),
    ]
    if statement.label_text is not None:
        fields.append(("infectious", statement.label_text, True))
    fields.append(("caution", site.caution, False))
    return labels.Label(
        vial_id=vial.code,
        symbol=symbol,
        symbology=site.symbology,
        din=f"{din.fin} {din.year:02d} {din.sequence:06d}",
        din_check=din.check,
        linear=din.isbt128 if site.isbt128_barcode else None,
        fields=tuple(fields),
        banner=banner,
        reprint=vial.labels_printed,
        preview=preview,
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
    template: str | None = None,
    preview: bool = False,
) -> PrintJob:
    """Render a lot's labels (or the named vials') into out (made if missing), audited in the
    same transaction, and with a printer sent to it before that commits; force replaces
    label files lims wrote, and nothing else. A preview is watermarked and counts nothing."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    choice("format", fmt, FORMATS)
    if printer is not None and not PRINTER_NAME.fullmatch(printer):
        raise BadInput(
            "printer",
            f"must be a CUPS queue name: 1-{PRINTER_NAME_MAX} ASCII letters, digits, - and _ "
            f"(got {shown(printer)})",
        )
    if template is not None and not template.strip():
        raise BadInput("template", "must name a template: cryovial, bag, or a .toml file's path")
    if preview and printer is not None:
        raise BadInput("printer", "a preview is not a label and is never printed: leave it out")
    directory = _label_directory(out)
    template_name = settings.labels.template if template is None else template
    layout = _template(template_name, given=template is not None)
    found = lookup.lot(session, lot)
    patient = consent.require_in_force(session, settings.tz, found.patient_id, "label print")
    chosen = _vials(session, found, vials)
    status = effective_status(found, utcnow())
    vehicle = vehicle_din(session, found)
    assert patient.id is not None
    statement = screening.statement_for(session, settings, patient.id)
    content = [
        label_for(
            settings,
            found,
            patient,
            vial,
            banner=banner_for(vial, status),
            vehicle=vehicle,
            statement=statement,
            preview=preview,
        )
        for vial in chosen
    ]
    files = StagedFiles(force=force, database=settings.sqlite_path)
    with files.discarded_on_error():
        try:
            directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            written = _stage(
                files, fmt, found.code, settings, layout, content, directory, on_label, preview
            )
        except OSError as error:
            raise Unavailable(
                f"cannot write labels to {shown(str(directory))}: {error.strerror}"
            ) from None
        files.record(session, kind=WRITTEN_KIND, by=actor.username)
        printer_jobs = [] if printer is None else send_to_printer(printer, fmt, written)
        job = PrintJob(
            lot_id=found.code,
            format=fmt,
            vials=[v.code for v in chosen],
            reprints={}
            if preview
            else {label.vial_id: label.reprint for label in content if label.reprint},
            files=files,
            printer=printer,
            template=template_name,
            preview=preview,
            printer_jobs=printer_jobs,
        )
        if not preview:
            for vial in chosen:
                vial.labels_printed += 1
                session.add(vial)
        audit.record_about(
            session,
            ("lot", found.code),
            "label.preview" if preview else "label.print",
            by=actor.username,
            new={
                "format": fmt,
                "template": template_name,
                "count": 0 if preview else len(chosen),
                "vials": job.vials,
                "reprints": job.reprints,
                "printer": printer,
                "printer_jobs": printer_jobs,
                "files": [str(path) for path in files.paths],
                "sha256": [files.sha256(path) for path in files.paths],
            },
        )
    return job


def _template(name: str, *, given: bool) -> labels.Template:
    """The layout to print with; one named for this print only is bad input if unknown."""
    try:
        return labels.load_template(name)
    except ConfigError as error:
        if given:
            raise BadInput("template", error.message.removeprefix("labels.template: ")) from None
        raise


def _vials(session: Session, found: Lot, named: Sequence[str]) -> list[Vial]:
    """The vials to label: those named (each once, of this lot), else all the lot's; every
    one in a state that takes a label."""
    if named:
        chosen = [lookup.vial(session, code) for code in named]
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
    return chosen


class LabelCountOff(AuditedRuleViolation):
    """A label count that does not balance: refused, with the count and its deviation on
    record (the transaction commits)."""

    def __init__(self, view: LabelReconciliationView) -> None:
        unaccounted = view.printed - view.applied - view.destroyed
        super().__init__(
            f"label count of {view.lot_id} does not balance: {view.printed} printed, "
            f"{view.applied} applied, {view.destroyed} destroyed ({unaccounted:+d}); "
            f"deviation {view.deviation} opened"
        )
        self.view = view


def reconcile(
    uow: UnitOfWork, *, lot: str, applied: int, destroyed: int
) -> LabelReconciliationView:
    """Close a lot's label count: every label printed for it so far was applied to a vial or
    destroyed. A count that does not balance opens a deviation on the lot and is refused."""
    session = uow.session
    actor = uow.require("record_bench_work")
    for field, value in (("applied", applied), ("destroyed", destroyed)):
        if not 0 <= value <= LABEL_COUNT_MAX:
            raise BadInput(
                field, f"must be a whole number of labels, 0 to {LABEL_COUNT_MAX:,} (got {value})"
            )
    found = lookup.lot(session, lot)
    printed = int(
        session.exec(
            select(func.coalesce(func.sum(col(Vial.labels_printed)), 0)).where(
                col(Vial.lot_id) == found.id
            )
        ).one()
    )
    balanced = printed == applied + destroyed
    deviation = None
    if not balanced:
        deviation = deviations.open_on_lot(
            session,
            actor,
            found,
            kind=DEVIATION_KIND,
            criterion=None,
            result_id=None,
            description=(
                f"label count of {found.code} does not balance: {printed} labels printed, "
                f"{applied} applied to vials and {destroyed} destroyed "
                f"({printed - applied - destroyed:+d} unaccounted for): find every label "
                "before any vial of the lot is used"
            ),
        ).deviation_id
    assert found.id is not None
    session.add(
        LabelReconciliation(
            lot_id=found.id,
            printed=printed,
            applied=applied,
            destroyed=destroyed,
            deviation_id=deviation,
            recorded_at=utcnow(),
            recorded_by=actor.username,
        )
    )
    view = LabelReconciliationView(
        lot_id=found.code,
        printed=printed,
        applied=applied,
        destroyed=destroyed,
        balanced=balanced,
        deviation=deviation,
        recorded_by=actor.username,
    )
    audit.record_about(
        session,
        ("lot", found.code),
        "label.reconcile",
        by=actor.username,
        new={
            "printed": printed,
            "applied": applied,
            "destroyed": destroyed,
            "balanced": balanced,
            "deviation": deviation,
        },
    )
    session.flush()
    if not balanced:
        raise LabelCountOff(view)
    return view


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
    files: StagedFiles,
    fmt: str,
    lot: str,
    settings: Settings,
    template: labels.Template,
    content: Sequence[labels.Label],
    directory: Path,
    on_label: Callable[[str], None] | None,
    preview: bool,
) -> list[tuple[str, bytes]]:
    """Stage the print's files; their names and bytes, as a printer is sent them."""
    written: list[tuple[str, bytes]] = []
    suffix = PREVIEW_SUFFIX if preview else ""
    progress = on_label or (lambda _: None)

    def stage(name: str, data: bytes) -> None:
        files.write(directory / name, data)
        written.append((name, data))

    if fmt == "pdf":
        sheet = labels.render_pdf(template, settings.labels.stock, content, f"Labels {lot}")
        stage(f"{lot}-labels{suffix}.pdf", sheet)
        for label in content:
            progress(label.vial_id)
    elif fmt == "zpl":
        blocks = []
        for label in content:
            blocks.append(labels.render_zpl(template, label))
            progress(label.vial_id)
        stage(f"{lot}-labels{suffix}.zpl", ("\n".join(blocks) + "\n").encode())
    else:
        render = labels.render_png if fmt == "png" else labels.render_svg
        for label in content:
            stage(f"{label.vial_id}{suffix}.{fmt}", render(template, label))
            progress(label.vial_id)
    return written
