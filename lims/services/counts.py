"""Imported counts kept: a cell counter's file and one record per sample it reports.

A file is kept whole (its bytes, name and SHA-256) in the database, so every station of a
multi-station deployment sees the original, and it is imported once: the same bytes again
are refused, naming the counts they became. Each sample's result is a count (CNT-…) that
one step may later take its numbers from (lims.services.count_use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlmodel import Session, col, select

from lims import audit
from lims.domain.cell_counting import CountFileReading, CountReading, chosen, formula_like
from lims.domain.ids import CountId
from lims.errors import BadInput, RuleViolation, shown
from lims.models import COUNT_FILE_NAME_MAX, CellCount, CountFile
from lims.services import equipment_use, lookup
from lims.timeutil import json_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views.counts import CountSource, CountView

AUDIT_SUBJECT = "count"
IMPORT = "count.import"


def code_of(count: CellCount) -> str:
    assert count.id is not None
    return CountId(count.id).code


def store(
    uow: UnitOfWork,
    *,
    file_name: str,
    content: bytes,
    read: CountFileReading,
    samples: Sequence[str] = (),
    equipment: Sequence[str] = (),
) -> list[CountView]:
    """Keep the file and a count for each of its readings (all samples, or those chosen),
    with one audit entry each, in the caller's transaction; refused if these bytes were
    imported before.

    `samples` chooses by the file's sample id, then by its second name (NC-View's NAME);
    a name the file lacks is not found. Each count keeps its sample's place in the file.
    Each count used the equipment named and the cell counter in the register whose serial
    the file gives, at its analysis time: each must be usable then.
    """
    session = uow.session
    actor = uow.require("record_bench_work")
    free_text("file", file_name, max_length=COUNT_FILE_NAME_MAX)
    # Refused as a formula in the file is: the name is shown in lists and the batch record.
    if formula_like(file_name):
        raise BadInput("file", f"name {shown(file_name)} begins like a spreadsheet formula")
    sha256 = hashlib.sha256(content).hexdigest()
    earlier = session.exec(select(CountFile).where(col(CountFile.sha256) == sha256)).first()
    if earlier is not None:
        codes = [code_of(count) for count in _counts_of(session, earlier)]
        raise RuleViolation(
            f"file {file_name} (SHA-256 {sha256[:12]}…) was imported on "
            f"{json_time(earlier.imported_at)} as {', '.join(codes)}"
        )
    places = chosen(read.readings, samples, file_name)
    used = equipment_use.for_counts(
        uow, equipment=equipment, readings=[read.readings[place] for place in places]
    )
    now = utcnow()
    kept = CountFile(
        file_name=file_name,
        sha256=sha256,
        content=content,
        size_bytes=len(content),
        instrument=read.instrument,
        parser=read.parser,
        imported_at=now,
        imported_by=actor.username,
    )
    session.add(kept)
    session.flush()
    assert kept.id is not None
    counts = [_count(kept.id, place + 1, read.readings[place]) for place in places]
    for count in counts:
        session.add(count)
    session.flush()
    for count, named in zip(counts, used, strict=True):
        subject = (AUDIT_SUBJECT, code_of(count))
        audit.record_about(
            session,
            subject,
            IMPORT,
            by=actor.username,
            new={**_stated(count, kept), **equipment_use.stated(named)},
        )
        equipment_use.record(
            session,
            named,
            action=IMPORT,
            subject=subject,
            culture=None,
            lot=None,
            by=actor.username,
        )
    return views(session, counts)


def _count(file_id: int, position: int, reading: CountReading) -> CellCount:
    return CellCount(
        file_id=file_id,
        position=position,
        instrument=reading.instrument,
        model=reading.model,
        serial=reading.serial,
        operator=reading.operator,
        analysed_at=reading.analysed_at,
        analysed_date_only=reading.date_only,
        sample=reading.sample,
        sample_name=reading.sample_name,
        viable_per_ml=reading.viable_per_ml,
        total_per_ml=reading.total_per_ml,
        viability=reading.viability,
        diameter_um=reading.diameter_um,
        dilution=reading.dilution,
        status=reading.status,
    )


def _stated(count: CellCount, file: CountFile) -> dict[str, object]:
    """What the trail records of an imported count: every value a step may take."""
    return {
        "file_name": file.file_name,
        "file_sha256": file.sha256,
        "position": count.position,
        "instrument": count.instrument,
        "serial": count.serial,
        "operator": count.operator,
        "analysed_at": json_time(count.analysed_at),
        "analysed_date_only": count.analysed_date_only,
        "sample": count.sample,
        "sample_name": count.sample_name,
        "viable_per_ml": count.viable_per_ml,
        "total_per_ml": count.total_per_ml,
        "viability": count.viability,
        "diameter_um": count.diameter_um,
        "dilution": count.dilution,
        "status": count.status,
    }


def _counts_of(session: Session, file: CountFile) -> Sequence[CellCount]:
    return session.exec(
        select(CellCount).where(col(CellCount.file_id) == file.id).order_by(col(CellCount.id))
    ).all()


def may_import(uow: UnitOfWork) -> None:
    """Refuse, before a file is read (seconds), anyone who may not record bench work."""
    uow.require("record_bench_work")


def list_counts(uow: UnitOfWork, *, unused: bool = False) -> list[CountView]:
    """Every imported count in the order imported, or only those no step has used."""
    uow.require("read_records")
    query = select(CellCount).order_by(col(CellCount.id))
    if unused:
        query = query.where(col(CellCount.used_by).is_(None))
    return views(uow.session, uow.session.exec(query).all())


def show_count(uow: UnitOfWork, *, count: str) -> CountView:
    uow.require("read_records")
    [view] = views(uow.session, [lookup.count(uow.session, count)])
    return view


def views(session: Session, counts: Sequence[CellCount]) -> list[CountView]:
    """The counts as shown, with their files', in the order given."""
    file_ids = {count.file_id for count in counts}
    files = {
        file.id: file
        for file in session.exec(select(CountFile).where(col(CountFile.id).in_(file_ids))).all()
    }
    return [_view(count, files[count.file_id]) for count in counts]


def _view(count: CellCount, file: CountFile) -> CountView:
    return CountView(
        count_id=code_of(count),
        instrument=count.instrument,
        model=count.model,
        serial=count.serial,
        operator=count.operator,
        analysed_at=count.analysed_at,
        analysed_date_only=count.analysed_date_only,
        sample=count.sample,
        sample_name=count.sample_name,
        viable_per_ml=count.viable_per_ml,
        total_per_ml=count.total_per_ml,
        viability=count.viability,
        diameter_um=count.diameter_um,
        dilution=count.dilution,
        status=count.status,
        file_name=file.file_name,
        file_sha256=file.sha256,
        used_by=count.used_by,
        used_at=count.used_at,
        suspension_ml=count.suspension_ml,
        imported_at=file.imported_at,
        imported_by=file.imported_by,
    )


def sources(session: Session, count_ids: Sequence[int | None]) -> list[CountSource]:
    """Where each step's numbers came from, for steps' count_id columns in order."""
    wanted = {count_id for count_id in count_ids if count_id is not None}
    if not wanted:  # typed, every one: most steps are
        return [_source(None) for _ in count_ids]
    found = {
        view.count_id: view
        for view in views(
            session,
            session.exec(select(CellCount).where(col(CellCount.id).in_(wanted))).all(),
        )
    }
    return [
        _source(None if count_id is None else found[CountId(count_id).code])
        for count_id in count_ids
    ]


def _source(view: CountView | None) -> CountSource:
    if view is None:
        return CountSource(
            count_id=None,
            instrument=None,
            serial=None,
            file_name=None,
            file_sha256=None,
            suspension_ml=None,
            analysed_at=None,
            analysed_date_only=None,
            viable_per_ml=None,
            total_per_ml=None,
        )
    return CountSource(
        count_id=view.count_id,
        instrument=view.instrument,
        serial=view.serial,
        file_name=view.file_name,
        file_sha256=view.file_sha256,
        suspension_ml=view.suspension_ml,
        analysed_at=view.analysed_at,
        analysed_date_only=view.analysed_date_only,
        viable_per_ml=view.viable_per_ml,
        total_per_ml=view.total_per_ml,
    )
