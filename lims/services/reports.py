"""Printed records: each print is audited with what was printed, by whom, and its SHA-256."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import col, select

from lims import audit
from lims.domain.states import LOT
from lims.errors import BadInput, RuleViolation, Unavailable, shown
from lims.models import Culture, Lot, User, Vial
from lims.services import (
    aspirates,
    cultures,
    equipment_use,
    events,
    lookup,
    lots,
    shipments,
    storage,
    trace,
)
from lims.services import vials as vial_rules
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.views.bench import AncestorView, AspirateView
from lims.views.counts import CountSource
from lims.views.events import EventView
from lims.views.quality import LotDetail, WrittenReport

WRITTEN_KIND = "report"  # written_files.kind

if TYPE_CHECKING:
    from lims.auth import Actor
    from lims.documents.batch_record import ConditionalRelease
    from lims.documents.pdf import RenderedPdf
    from lims.documents.recall_notice import Recall


def _subjects(
    detail: LotDetail, aspirate: AspirateView, follow_up: list[EventView]
) -> list[tuple[str, str]]:
    """Every record a lot's history is made of, as audit subjects: the counts its steps took
    their numbers from (imported, then used) among them."""
    culture = detail.culture
    sources = [
        aspirate.count,
        *(source for ancestor in culture.lineage for source in _counts_of(ancestor)),
        culture.summary.count,
        *(passage.count for passage in culture.passages),
        detail.summary.count,
    ]
    thawed = culture.thawed_from
    return [
        ("patient", detail.summary.patient),
        ("aspirate", detail.summary.din.code),
        ("culture", culture.summary.culture_id),
        # The vial its cells were thawed from: frozen, (moved,) thawed.
        *([("bank_vial", thawed.bank_vial_id)] if thawed is not None else []),
        *(("passage", passage.passage_id) for passage in culture.passages),
        ("lot", detail.summary.lot_id),
        *(("count", source.count_id) for source in sources if source.count_id is not None),
        *(("deviation", str(deviation.deviation_id)) for deviation in detail.deviations),
        *(("event", str(event.event_id)) for event in follow_up),
    ]


def _counts_of(ancestor: AncestorView) -> list[CountSource]:
    """Where the numbers of a culture the lot's culture descends from came from: its start
    and its passages (the one whose harvest seeded the next culture down among them)."""
    return [ancestor.count, *(passage.count for passage in ancestor.passages)]


def _writable(out: Path) -> Path:
    """OUT as a file that can be written: a name in a directory that exists."""
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
    return target


def _staged(
    uow: UnitOfWork,
    actor: Actor,
    action: str,
    lot: str,
    target: Path,
    rendered: RenderedPdf,
    *,
    force: bool,
    document: str,
) -> WrittenReport:
    """The report (the `document` named) staged at TARGET, recorded, and its print audited
    about the lot, as one."""
    files = StagedFiles(force=force, database=uow.settings.sqlite_path)
    with files.discarded_on_error():
        try:
            files.write(target, rendered.data)
        except OSError as error:
            raise Unavailable(f"cannot write {shown(str(target))}: {error.strerror}") from None
        files.record(uow.session, kind=WRITTEN_KIND, by=actor.username)
        digest = files.sha256(target)
        audit.record_about(
            uow.session,
            ("lot", lot),
            action,
            by=actor.username,
            new={"file": str(target.resolve()), "pages": rendered.pages, "sha256": digest},
        )
    return WrittenReport(
        lot_id=lot,
        document=document,
        files=files,
        path=target,
        pages=rendered.pages,
        sha256=digest,
    )


def _recall(detail: LotDetail) -> Recall | None:
    """QA's signature recalling the lot and its reason, if the lot was recalled."""
    from lims.documents.recall_notice import Recall

    # A release's meaning is typed by QA and may read "recalled: ...": only the status says
    # that the lot was recalled.
    if detail.summary.status != LOT.action("recall").target:
        return None
    recalls = [s for s in detail.signatures if s.meaning.startswith(lots.RECALLED)]
    if not recalls:
        return None
    # A recalled lot is locked: there is one recall signature, and it is the lot's last.
    return Recall(recalls[-1], recalls[-1].meaning.removeprefix(lots.RECALLED))


def write_batch_record(
    uow: UnitOfWork, *, lot: str, out: Path, force: bool = False
) -> WrittenReport:
    from lims.documents import batch_record

    session, settings = uow.session, uow.settings
    actor = uow.require("read_records")
    target = _writable(out)
    detail = lots.show_lot(uow, lot=lot)
    found = lookup.lot(session, detail.summary.lot_id)
    follow_up = events.of_lot(session, found)
    culture = session.get(Culture, found.culture_id)
    assert culture is not None
    lineage = [culture, *(ancestor for ancestor, _ in cultures.ancestors(session, culture))]
    aspirate = aspirates.show_aspirate(uow, din=detail.summary.din.code)
    rendered = batch_record.render(
        batch_record.BatchRecord(
            facility=settings.facility.name,
            lot=detail,
            aspirate=aspirate,
            trail=audit.entries_about(session, _subjects(detail, aspirate, follow_up)),
            printed_at=utcnow(),
            printed_by=f"{actor.full_name} ({actor.username})",
            zone=settings.tz,
            recall=_recall(detail),
            conditional=_conditional(found),
            follow_up=follow_up,
            equipment=equipment_use.equipment_of_lot(session, found),
            stored=storage.of_lot(session, found, [c.id for c in lineage if c.id is not None]),
            shipments=shipments.of_lot(session, found),
            custody=trace.tree_of_lot(session, found),
        )
    )
    return _staged(
        uow,
        actor,
        "report.batch",
        detail.summary.lot_id,
        target,
        rendered,
        force=force,
        document="batch record",
    )


def _conditional(lot: Lot) -> ConditionalRelease | None:
    """A release on interim results: the tests pending at release, and QA's completion."""
    from lims.documents.batch_record import ConditionalRelease

    if lot.pending_at_release is None:
        return None
    return ConditionalRelease(
        pending=lots.pending_at_release(lot),
        completed_at=lot.release_completed_at,
        completed_by=lot.release_completed_by,
    )


def write_recall_notice(
    uow: UnitOfWork, *, lot: str, out: Path, force: bool = False
) -> WrittenReport:
    """For the treating physicians: every vial of a recalled lot, or of a released lot on hold,
    and who administered which, when, by which route and on whose order."""
    from lims.documents import recall_notice

    session, settings = uow.session, uow.settings
    actor = uow.require("read_records")
    target = _writable(out)
    detail = lots.show_lot(uow, lot=lot)
    summary = detail.summary
    found = lookup.lot(session, summary.lot_id)
    # A lot is recalled by QA's signature saying so; a held one may still be recalled.
    recall = _recall(detail)
    if recall is None and not (LOT.allows("recall", found.status) and detail.on_hold):
        raise RuleViolation(
            f"lot {summary.lot_id} is {summary.status}: only a recalled lot, or a released lot "
            "on hold, has a notice for the physician"
        )
    vials = session.exec(
        select(Vial).where(col(Vial.lot_id) == found.id).order_by(col(Vial.number))
    ).all()
    travels = vial_rules.travels_of(session, vials)
    givers = {v.administered_by for v in vials if v.administered_by is not None}
    names = dict(
        session.exec(
            select(User.username, User.full_name).where(col(User.username).in_(givers))
        ).all()
    )
    rendered = recall_notice.render(
        recall_notice.RecallNotice(
            facility=settings.facility.name,
            product=settings.labels.product,
            lot=summary,
            recall=recall,
            hold_reasons=detail.hold_reasons,
            vials=[
                recall_notice.RecalledVial(
                    vial_id=vial.code,
                    status=vial.status,
                    administered_at=vial.administered_at,
                    administered_by=None
                    if vial.administered_by is None
                    else f"{names[vial.administered_by]} ({vial.administered_by})",
                    route=vial.route,
                    physician=vial.physician,
                    shipment=None
                    if vial.code not in travels
                    else f"{travels[vial.code].code} to {travels[vial.code].site_code}",
                )
                for vial in vials
            ],
            printed_at=utcnow(),
            printed_by=f"{actor.full_name} ({actor.username})",
            zone=settings.tz,
        )
    )
    action = "report.recall" if recall is not None else "report.hold"
    return _staged(
        uow,
        actor,
        action,
        summary.lot_id,
        target,
        rendered,
        force=force,
        document="recall notice" if recall is not None else "hold notice",
    )
