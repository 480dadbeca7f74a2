"""Printed records: each print is audited with what was printed, by whom, and its SHA-256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lims import audit
from lims.errors import BadInput, Unavailable, shown
from lims.services import aspirates, lots
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.views.quality import LotDetail, WrittenReport


def _subjects(detail: LotDetail) -> list[tuple[str, str]]:
    """Every record a lot's history is made of, as audit subjects."""
    culture = detail.culture
    return [
        ("patient", detail.summary.patient),
        ("aspirate", detail.summary.din.code),
        ("culture", culture.summary.culture_id),
        *(("passage", passage.passage_id) for passage in culture.passages),
        ("lot", detail.summary.lot_id),
        *(("deviation", str(deviation.deviation_id)) for deviation in detail.deviations),
    ]


def write_batch_record(uow: UnitOfWork, *, lot: str, out: Path) -> WrittenReport:
    from lims.documents import batch_record

    session, settings = uow.session, uow.settings
    actor = uow.require("read_records")
    try:
        target = out.expanduser()
        target.is_dir() or target.parent.is_dir()
    except RuntimeError:  # ~name of no user
        raise BadInput(
            "out", f"names a home directory of no user (got {shown(str(out))})"
        ) from None
    except OSError as error:  # e.g. a name too long for the file system
        raise BadInput(
            "out",
            f"must be a file name that can be written (got {shown(str(target))}: {error.strerror})",
        ) from None
    if target.is_dir():
        raise BadInput("out", f"must be a file name, not the directory {shown(str(target))}")
    if not target.parent.is_dir():
        raise BadInput("out", f"its directory {shown(str(target.parent))} does not exist")
    detail = lots.show_lot(uow, lot=lot)
    now = utcnow()
    rendered = batch_record.render(
        batch_record.BatchRecord(
            facility=settings.facility.name,
            lot=detail,
            aspirate=aspirates.show_aspirate(uow, din=detail.summary.din.code),
            trail=audit.entries_about(session, _subjects(detail)),
            printed_at=now,
            printed_by=f"{actor.full_name} ({actor.username})",
            zone=settings.tz,
        )
    )
    files = StagedFiles()
    digest = hashlib.sha256(rendered.data).hexdigest()
    with files.discarded_on_error():
        try:
            files.write(target, rendered.data)
        except OSError as error:
            raise Unavailable(f"cannot write {shown(str(target))}: {error.strerror}") from None
        audit.record_about(
            session,
            ("lot", detail.summary.lot_id),
            "report.batch",
            by=actor.username,
            new={"file": str(target.resolve()), "pages": rendered.pages, "sha256": digest},
        )
    return WrittenReport(
        lot_id=detail.summary.lot_id,
        files=files,
        path=target,
        pages=rendered.pages,
        sha256=digest,
    )
