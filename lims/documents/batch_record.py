"""The batch record of a lot as a PDF: its whole history on paper for QA and the trial file.

reportlab lays out the pages and matplotlib draws the growth chart; both are
imported here only, when a record is printed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from xml.sax.saxutils import escape

from lims.documents.pdf import Layout, RenderedPdf, build
from lims.documents.recall_notice import Recall
from lims.domain.spec import VALID
from lims.timeutil import show_done, show_time
from lims.views.bench import AspirateView, CultureDetail, PassageView
from lims.views.equipment import CalibrationView, EquipmentUseView
from lims.views.events import EXPEDITED_REPORT, EventView
from lims.views.quality import LotDetail
from lims.views.records import LATE_ENTRY
from lims.views.shipments import ShipmentView
from lims.views.storage import StoredItem
from lims.views.trace import TraceNode, TraceRef
from lims.views.trail import AuditView


@dataclass(frozen=True)
class ConditionalRelease:
    """A release on interim results: the tests whose final results were pending at release,
    and when and by whom QA completed it once they were reviewed (both signatures are the
    lot's)."""

    pending: list[str]
    completed_at: datetime | None
    completed_by: str | None


@dataclass(frozen=True)
class BatchRecord:
    facility: str
    lot: LotDetail
    aspirate: AspirateView
    trail: Sequence[AuditView]
    printed_at: datetime
    printed_by: str
    zone: tzinfo
    recall: Recall | None  # QA's recall, if the lot was recalled
    conditional: ConditionalRelease | None  # if released with final results pending
    follow_up: Sequence[EventView]  # what happened to the patient after administration
    equipment: Sequence[EquipmentUseView]  # every piece the product went through, by step
    stored: Sequence[StoredItem]  # bank vials of its cultures, the lot's retained samples
    shipments: Sequence[ShipmentView]  # each one its vials went in, with only its vials
    custody: TraceNode  # the patient's tree, as `lims trace` gives it


def growth_chart_png(record: BatchRecord) -> bytes:
    """Cumulative population doublings over days since the culture started."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    points = record.lot.culture.growth_curve()
    figure, axes = pyplot.subplots(figsize=(6.5, 2.8), dpi=150)
    try:
        axes.plot([d for d, _ in points], [pd for _, pd in points], marker="o", color="#1f4e79")
        for (day, cumulative), passage in zip(points, record.lot.culture.passages, strict=True):
            axes.annotate(
                f"P{passage.passage_number}",
                (day, cumulative),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        axes.set_xlabel("days since the culture started")
        axes.set_ylabel("cumulative population doublings")
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        pyplot.close(figure)
    return buffer.getvalue()


def _late(reason: str | None, entered_at: datetime, zone: tzinfo) -> str:
    """A step's late-entry mark: when it was typed and why, if it came late."""
    if reason is None:
        return ""
    return f" — {LATE_ENTRY.upper()}, entered {show_time(entered_at, zone)}: {reason}"


def _late_reasons(passages: Sequence[PassageView], zone: tzinfo, layout: Layout) -> list[Any]:
    """Why each passage marked as a late entry was entered late."""
    return [
        layout.text(
            f"P{p.passage_number} {LATE_ENTRY}: harvested {show_time(p.harvested_at, zone)}, "
            f"entered {show_time(p.entered_at, zone)} by {p.recorded_by}: {p.late_reason}"
        )
        for p in passages
        if p.late_reason is not None
    ]


def _counted(passages: Sequence[PassageView], zone: tzinfo, layout: Layout) -> list[Any]:
    """Where each passage's harvest count came from, for those taken from an imported count
    (the others were typed): the count, its instrument and file, in full."""
    return [
        layout.text(f"P{p.passage_number} harvested and viability from {p.count.described(zone)}")
        for p in passages
        if not p.count.typed
    ]


def _origin(culture: CultureDetail, zone: tzinfo) -> tuple[str, str | None]:
    """Where the culture's cells came from, when another culture's harvest gave them."""
    thawed = culture.thawed_from
    if thawed is None:
        return (
            "split from",
            None
            if culture.parent is None
            else f"{culture.parent}, cells harvested at {culture.source_passage}",
        )
    viability = "" if thawed.thaw_viability is None else f", {thawed.thaw_viability:g} % viable"
    return (
        "thawed from",
        f"bank vial {thawed.bank_vial_id}{viability}, frozen {show_time(thawed.frozen_at, zone)} "
        f"by {thawed.frozen_by} from the cells harvested at {thawed.passage_id} of "
        f"{culture.parent}",
    )


def _lineage(record: BatchRecord, layout: Layout) -> list[Any]:
    """The cultures the lot's culture was split from, with their passages and deviations,
    and the lots made from the other cultures of the lineage."""
    culture, zone = record.lot.culture, record.zone
    if not culture.lineage and not culture.sister_lots:
        return []
    story: list[Any] = [layout.markup("<b>Lineage</b>, the first culture first")]
    for ancestor in culture.lineage:
        story += [
            layout.text(
                f"{ancestor.culture_id} ({ancestor.kind}, {ancestor.status}), started "
                f"{show_time(ancestor.started_at, zone)} with {ancestor.cells_plated:,} cells; "
                + (
                    f"split at {ancestor.split_at}"
                    if ancestor.bank_vial is None
                    else f"frozen at {ancestor.split_at} in bank vial {ancestor.bank_vial}"
                )
            ),
            layout.text(f"cells plated from {ancestor.count.described(zone)}"),
            layout.table(
                [
                    "passage",
                    "harvested at",
                    "harvested",
                    "viab. %",
                    "counted",
                    "reseeded",
                    "cum. PD",
                    "by",
                ],
                [
                    (
                        f"P{p.passage_number}" + (f" {LATE_ENTRY.upper()}" if p.late_entry else ""),
                        show_time(p.harvested_at, zone),
                        f"{p.harvested:,}",
                        f"{p.viability:g}",
                        p.count.label,
                        f"{p.seeded:,}",
                        f"{p.cumulative_population_doublings:.2f}",
                        p.recorded_by,
                    )
                    for p in ancestor.passages
                ]
                or [("—", "no passage", "", "", "", "", "", "")],
                marked=[n for n, p in enumerate(ancestor.passages) if p.late_entry],
            ),
            *_late_reasons(ancestor.passages, zone, layout),
            *_counted(ancestor.passages, zone, layout),
            layout.table(
                ["deviation", "status", "kind", "description"],
                [(d.deviation_id, d.status, d.kind, d.description) for d in ancestor.deviations]
                or [("—", "none", "", "")],
            ),
        ]
    story += [
        layout.markup("<b>Sister lots</b>, from the other cultures of the lineage"),
        layout.table(
            ["lot", "culture", "status"],
            [(s.lot_id, s.culture_id, s.status.upper()) for s in culture.sister_lots]
            or [("—", "", "none")],
        ),
    ]
    return story


# The widths of the follow-up table's columns, event number to deviations: the page's 180 mm.
FOLLOW_UP_WIDTHS_MM = (8, 26, 36, 30, 36, 26, 18)
VIAL_WIDTHS_MM = (34, 21, 18, 13, 29, 19, 24, 22)  # the vials' table, vial to acknowledged
CUSTODY_WIDTHS_MM = (48, 20, 20, 34, 16, 42)  # the chain of identity and custody


def _conditional(conditional: ConditionalRelease, still_pending: list[str], zone: tzinfo) -> str:
    """A release on interim results, whether its final results are still pending or in, and
    its completion once QA reviewed them."""
    released = (
        f"released on interim results, final results pending: {', '.join(conditional.pending)}"
    )
    if conditional.completed_at is None:
        if not still_pending:
            return (
                f"released on interim results ({', '.join(conditional.pending)} pending at "
                "release); final results in, not completed: QA has not yet reviewed them"
            )
        return (
            f"released on interim results, final results pending: {', '.join(still_pending)}; "
            "not completed: QA has not yet reviewed the final results"
        )
    return (
        f"{released}; completed {show_time(conditional.completed_at, zone)} by "
        f"{conditional.completed_by}: final results reviewed"
    )


def _graded(event: EventView) -> str:
    """What kind of event, and an adverse event's grade, in a line."""
    return ", ".join(
        part
        for part in (
            event.kind,
            event.severity,
            "SERIOUS" if event.serious else None,
            None if event.related is None else f"related: {event.related}",
        )
        if part is not None
    )


def _follow_up(record: BatchRecord, layout: Layout) -> list[Any]:
    """What happened to the patient after a vial of the lot was given, oldest first."""
    from reportlab.lib.units import mm

    zone, events = record.zone, record.follow_up
    if not events:
        return [layout.text("No follow-up event recorded.")]
    return [
        layout.table(
            ["#", "occurred", "vial", "event", "description", "recorded", "deviations"],
            [
                (
                    e.event_id,
                    show_time(e.occurred_at, zone),
                    e.vial_id,
                    _graded(e),
                    e.description,
                    f"{show_time(e.recorded_at, zone)} by {e.recorded_by}",
                    ", ".join(str(number) for number in e.deviations) or None,
                )
                for e in events
            ],
            widths=[width * mm for width in FOLLOW_UP_WIDTHS_MM],
            marked=[n for n, e in enumerate(events) if e.expedited_report_may_be_due],
            # A description may be 2,000 characters: taller than a page in its column.
            split_rows=True,
        ),
        *(
            layout.markup(
                f"Event {e.event_id}: serious, relation to the product {escape(str(e.related))}: "
                f"{EXPEDITED_REPORT}.",
                layout.alarm,
            )
            for e in events
            if e.expedited_report_may_be_due
        ),
    ]


def _calibration(calibration: CalibrationView | None, zone: tzinfo) -> str:
    """The calibration a piece was used under, as on the day of use."""
    if calibration is None:
        return "none required"
    calibrated = (
        calibration.calibrated_at.astimezone(zone).date().isoformat()
        if calibration.calibrated_date_only
        else show_time(calibration.calibrated_at, zone)
    )
    certificate = calibration.certificate
    return (
        f"{calibration.result} {calibrated}"
        + ("" if certificate is None else f", certificate {certificate}")
        + f", due {calibration.due_on.isoformat()}"
    )


def _equipment(record: BatchRecord, layout: Layout) -> list[Any]:
    """Each piece of equipment the product went through, step by step, with the calibration
    it was used under on that day (21 CFR 1271.200)."""
    from reportlab.lib.units import mm

    if not record.equipment:
        return [layout.text("No equipment named by the steps of this lot.")]
    return [
        layout.table(
            ["equipment", "kind", "serial", "step", "record", "used", "calibration then"],
            [
                (
                    use.equipment_id,
                    use.kind.replace("_", " "),
                    use.serial,
                    use.action,
                    use.record
                    if use.count_taken_by is None
                    else f"{use.record} (for {use.count_taken_by})",
                    show_time(use.used_at, record.zone),
                    _calibration(use.calibration, record.zone),
                )
                for use in record.equipment
            ],
            widths=[w * mm for w in (18, 22, 20, 22, 34, 28, 36)],
        )
    ]


def _left_storage(item: StoredItem, zone: tzinfo) -> str | None:
    if item.ended_at is None:
        return None
    left = f"{show_time(item.ended_at, zone)} by {item.ended_by}"
    return left if item.end_reason is None else f"{left}: {item.end_reason}"


def _stored(record: BatchRecord, layout: Layout) -> list[Any]:
    """The bank vials frozen from the lot's cultures and the lot's retained samples: where
    each is kept, or when and why it left storage."""
    from reportlab.lib.units import mm

    if not record.stored:
        return [layout.text("No bank vial or retained sample of this lot's making.")]
    zone = record.zone
    return [
        layout.table(
            ["item", "kind", "status", "cells", "stored", "box", "position", "left storage"],
            [
                (
                    item.item,
                    item.item_kind.replace("_", " "),
                    item.status,
                    None if item.cells is None else f"{item.cells:,}",
                    f"{show_time(item.stored_at, zone)} by {item.stored_by}",
                    item.path,
                    item.position,
                    _left_storage(item, zone),
                )
                for item in record.stored
            ],
            widths=[w * mm for w in (36, 18, 14, 18, 28, 30, 14, 24)],
            split_rows=True,
        )
    ]


def _custody(record: BatchRecord, layout: Layout) -> list[Any]:
    """The patient's tree as `lims trace` draws it, one record a row, deeper ones indented:
    the donations, cultures, bank vials, lots, vials, shipments and events, each with its
    state, when and by whom; this lot's row marked. A record reached twice is listed once,
    and where it is reached again it reads "see above"."""
    from reportlab.lib.units import mm

    rows: list[tuple[Any, ...]] = []
    marked: list[int] = []

    def walk(node: TraceNode | TraceRef, depth: int) -> None:
        indent = "\u00a0" * 3 * depth  # kept by the table, where spaces would collapse
        if isinstance(node, TraceRef):
            rows.append((f"{indent}{node.ref}", "see above", None, None, None, None))
            return
        if node.id == record.lot.summary.lot_id:
            marked.append(len(rows))
        rows.append(
            (
                f"{indent}{node.id}",
                node.kind.replace("_", " "),
                node.state,
                show_time(node.at, record.zone),
                node.by,
                node.detail,
            )
        )
        for child in node.children:
            walk(child, depth + 1)

    walk(record.custody, 0)
    return [
        layout.text(
            "Every record of the patient, from the donations to the bedside (lims trace); "
            "this lot is marked."
        ),
        layout.table(
            ["record", "kind", "state", "when", "by", "detail"],
            rows,
            widths=[width * mm for width in CUSTODY_WIDTHS_MM],
            marked=marked,
        ),
    ]


def _shipments(record: BatchRecord, layout: Layout) -> list[Any]:
    """Where the lot's vials went, hand-over by hand-over (21 CFR 1271.265(b)-(c) and
    1271.290(b)): the consignee, the courier and logger, who made, dispatched and received
    each shipment and when, the temperature on arrival, the logger's file as kept."""
    if not record.shipments:
        return [layout.text("No vial of this lot was shipped.")]
    zone = record.zone
    temperature = {True: "in range", False: "OUT OF RANGE", None: None}
    story: list[Any] = []
    for shipment in record.shipments:
        kept = shipment.logger_file
        story.append(
            layout.fields(
                [
                    ("shipment", f"{shipment.shipment_id} ({shipment.status})"),
                    (
                        "consignee",
                        f"{shipment.site_code}: {shipment.site_name}, {shipment.site_address}",
                    ),
                    ("courier", shipment.courier),
                    ("logger", shipment.logger),
                    ("made", show_done(shipment.created_at, shipment.created_by, zone)),
                    ("dispatched", show_done(shipment.dispatched_at, shipment.dispatched_by, zone)),
                    ("received", show_done(shipment.received_at, shipment.received_by, zone)),
                    ("temperature on arrival", temperature[shipment.temperature_ok]),
                    (
                        "logger file",
                        None
                        if kept is None
                        else f"{kept.file_name}, {kept.size_bytes:,} bytes, SHA-256 {kept.sha256}",
                    ),
                    *(
                        [
                            (
                                shipment.status,
                                f"{show_done(shipment.ended_at, shipment.ended_by, zone)}: "
                                f"{shipment.end_reason}",
                            )
                        ]
                        if shipment.ended_at is not None
                        else []
                    ),
                    (
                        "vials of this lot",
                        ", ".join(f"{vial.vial_id} ({vial.status})" for vial in shipment.packed),
                    ),
                ]
            )
        )
    return story


def render(record: BatchRecord) -> RenderedPdf:
    """The batch record as a PDF."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Image

    layout = Layout()
    text, table, fields, section = layout.text, layout.table, layout.fields, layout.section
    lot = record.lot.summary
    zone = record.zone
    results = record.lot.evaluation.results
    aspirate = record.aspirate
    culture = record.lot.culture
    started = culture.summary
    story: list[Any] = [
        layout.markup(f"Batch record — lot {escape(lot.lot_id)}", layout.styles["Title"]),
    ]
    if record.recall is not None:
        story.append(
            layout.markup(
                f"RECALLED {escape(record.recall.signed(zone))}: {escape(record.recall.reason)}",
                layout.alarm,
            )
        )
    conditional = record.conditional
    # Pending now, as `lot show` says it: a final result recorded is no longer pending.
    still_pending = record.lot.pending_tests
    if conditional is not None and conditional.completed_at is None:
        story.append(
            layout.markup(
                (
                    f"RELEASED WITH FINAL RESULTS PENDING: {escape(', '.join(still_pending))}"
                    if still_pending
                    else "RELEASED ON INTERIM RESULTS: final results in"
                )
                + "; the release is not completed",
                layout.alarm,
            )
        )
    story += [
        fields(
            [
                ("facility", record.facility),
                ("status", lot.status.upper()),
                ("product", f"autologous bone-marrow MSC, {lot.vials} vials"),
                ("recipient", f"{lot.patient} ({lot.initials}, born {lot.birth_year})"),
                ("DIN", lot.din.display),
                *(
                    [("release", _conditional(conditional, still_pending, zone))]
                    if conditional
                    else []
                ),
            ]
        ),
        *section("Aspirate"),
        fields(
            [
                ("collected", show_time(aspirate.collected_at, zone)),
                ("received", f"{show_time(aspirate.received_at, zone)} by {aspirate.recorded_by}"),
                ("volume", f"{aspirate.volume_ml:g} mL"),
                ("site", aspirate.site),
                ("anticoagulant", aspirate.anticoagulant),
                ("total nucleated cells", None if aspirate.tnc is None else f"{aspirate.tnc:,}"),
                (
                    "total nucleated cells from",
                    None if aspirate.tnc is None else aspirate.count.described(zone, total=True),
                ),
                (
                    "temperature on arrival",
                    None if aspirate.temperature_c is None else f"{aspirate.temperature_c:g} °C",
                ),
            ]
        ),
        *section(f"Culture {culture.summary.culture_id}"),
        fields(
            [
                ("kind", started.kind),
                (
                    "started",
                    f"{show_time(started.started_at, zone)} by {started.recorded_by}"
                    + _late(started.late_reason, started.entered_at, zone),
                ),
                _origin(culture, zone),
                # Where the rest of its harvests went: cells it gave to other cultures.
                ("split into", ", ".join(culture.children) or None),
                (
                    "plated",
                    f"{started.cells_plated:,} cells in {started.vessels} vessels, "
                    f"{started.area_cm2:,g} cm²",
                ),
                ("cells plated from", started.count.described(zone)),
                ("method", culture.summary.method),
                ("reagents at start", ", ".join(culture.reagents) or None),
            ]
        ),
        *section("Passages"),
        table(
            [
                "passage",
                "harvested at",
                "harvested",
                "viab. %",
                "counted",
                "reseeded",
                "cells/cm²",
                "PD",
                "cum. PD",
                "DT h",
                "reagents",
                "by",
            ],
            [
                (
                    f"P{p.passage_number}"
                    + (f" (corr. {p.corrections})" if p.corrections else "")
                    + (f" {LATE_ENTRY.upper()}" if p.late_entry else ""),
                    show_time(p.harvested_at, zone),
                    f"{p.harvested:,}",
                    f"{p.viability:g}",
                    p.count.label,
                    f"{p.seeded:,}",
                    f"{p.seeding_density_per_cm2:,.0f}",
                    None if p.population_doublings is None else f"{p.population_doublings:.2f}",
                    f"{p.cumulative_population_doublings:.2f}",
                    None if p.doubling_time_hours is None else f"{p.doubling_time_hours:.1f}",
                    ", ".join(p.reagents) or None,
                    p.recorded_by,
                )
                for p in culture.passages
            ],
            marked=[n for n, p in enumerate(culture.passages) if p.late_entry],
        ),
        *_late_reasons(culture.passages, zone, layout),
        *_counted(culture.passages, zone, layout),
        *_lineage(record, layout),
    ]
    if len(culture.passages) >= 2:
        story += [
            *section("Growth"),
            Image(io.BytesIO(growth_chart_png(record)), width=170 * mm, height=73 * mm),
        ]
    story += [
        *section("Formulation"),
        fields(
            [
                (
                    "formulated",
                    f"{show_time(lot.formulated_at, zone)} by {lot.recorded_by}"
                    + _late(lot.late_reason, lot.entered_at, zone),
                ),
                ("final harvest", f"{lot.harvested:,} viable cells, {lot.viability:g} % viable"),
                ("final harvest from", lot.count.described(zone)),
                (
                    "vials",
                    f"{lot.vials} × {lot.cells_per_vial:,} cells in {lot.volume_ml:g} mL "
                    f"{lot.vehicle}",
                ),
                # The patient's CSF by its DIN, or the words of a typed vehicle.
                ("vehicle", lot.vehicle_source() or lot.vehicle),
                ("final passage", f"P{lot.final_passage}"),
                ("expires", show_time(lot.expires_at, zone)),
                ("reagents", ", ".join(record.lot.reagents) or None),
            ]
        ),
        *section(f"Quality control against release specification version {lot.spec_version}"),
        table(
            ["test", "criterion", "spec", "result", "verdict"],
            [
                (
                    v.test,
                    v.description,
                    v.spec,
                    None if v.result is None else f"{v.result} {v.unit or ''}".strip(),
                    v.verdict + (f" (waived, deviation {v.waived_by})" if v.waived_by else ""),
                )
                for v in record.lot.evaluation.criteria
            ],
        ),
        text(
            "Releasable."
            if record.lot.evaluation.releasable
            else "Not releasable: " + "; ".join(record.lot.evaluation.blocking)
        ),
        layout.markup("<b>Every result recorded</b>, oldest first"),
        table(
            ["test", "result", "status", "deviation", "tested at", "by", "reason"],
            [
                (
                    r.test,
                    f"{r.value} {r.unit or ''}".strip(),
                    # One that is not the result counting now is in capitals, never left out.
                    r.status if r.status == VALID else r.status.upper(),
                    r.deviation_id,
                    show_time(r.tested_at, zone),
                    r.recorded_by,
                    r.reason,
                )
                for r in results
            ]
            or [("—", "", "none recorded", "", "", "", "")],
            widths=[20 * mm, 20 * mm, 30 * mm, 15 * mm, 36 * mm, 16 * mm, 38 * mm],
            marked=[n for n, r in enumerate(results) if r.status != VALID],
        ),
        *section("Deviations"),
        table(
            ["id", "on", "status", "description", "outcome", "physician's request", "resolution"],
            [
                (
                    d.deviation_id,
                    d.subject,
                    d.status + (" (waived)" if d.waived else ""),
                    d.description,
                    d.outcome,
                    d.physician_request,
                    None
                    if d.resolution is None
                    else f"{d.resolution} — {d.signed_by or d.closed_by}, "
                    + show_time(d.closed_at, zone),
                )
                for d in record.lot.deviations
            ]
            or [("—", "", "none", "", "", "", "")],
        ),
        *section("Holds"),
        table(
            ["hold", "placed", "reason", "lifted", "why lifted"],
            [
                (
                    h.hold_id,
                    f"{show_time(h.placed_at, zone)} by {h.placed_by}",
                    h.reason,
                    None
                    if h.lifted_at is None
                    else f"{show_time(h.lifted_at, zone)} by {h.lifted_by}",
                    h.lift_reason,
                )
                for h in record.lot.holds
            ]
            or [("—", "none placed", "", "", "")],
        ),
        *([text("Held now: " + "; ".join(record.lot.hold_reasons))] if record.lot.on_hold else []),
        *section("Signatures"),
        *(
            [
                layout.markup(
                    escape(s.manifestation)
                    + ("" if s.linked and s.record_unchanged else " — NOT VALID FOR THIS RECORD")
                    + f"<br/>record SHA-256 {s.record_hash}"
                )
                for s in record.lot.signatures
            ]
            or [text("Not signed.")]
        ),
        *([text(_conditional(conditional, still_pending, zone))] if conditional else []),
        *section("Vials"),
        table(
            [
                "vial",
                "status",
                "cells",
                "volume mL",
                "administered",
                "route",
                "physician",
                "pending acknowledged",
            ],
            [
                (
                    v.vial_id,
                    v.status,
                    f"{v.cells:,}",
                    f"{v.volume_ml:g}",
                    None
                    if v.administered_at is None
                    else f"{show_time(v.administered_at, zone)} by {v.administered_by}",
                    v.route,
                    v.physician,
                    ", ".join(v.acknowledged_pending) or None,
                )
                for v in record.lot.vials
            ],
            widths=[width * mm for width in VIAL_WIDTHS_MM],
        ),
        *[
            layout.text(
                f"{v.vial_id} {mark.action} {LATE_ENTRY}: dated {show_time(mark.at, zone)}, "
                f"entered {show_time(mark.entered_at, zone)} by {mark.entered_by}: {mark.reason}"
            )
            for v in record.lot.vials
            for mark in v.late_entries
        ],
        *section("Shipments"),
        *_shipments(record, layout),
        *section("Chain of identity and custody"),
        *_custody(record, layout),
        *section("Equipment"),
        *_equipment(record, layout),
        *section("Storage"),
        *_stored(record, layout),
        *section("Follow-up"),
        *_follow_up(record, layout),
        *section("Audit trail of this lot"),
        table(
            ["#", "time", "user", "action", "record", "reason"],
            [
                (
                    e.seq,
                    show_time(e.moment, zone),
                    e.who,
                    e.action,
                    f"{e.entity_type}:{e.entity_id}",
                    e.reason,
                )
                for e in record.trail
            ],
            widths=[12 * mm, 38 * mm, 18 * mm, 30 * mm, 50 * mm, 32 * mm],
        ),
    ]
    footer = (
        f"{record.facility} — batch record of lot {lot.lot_id} — printed "
        f"{show_time(record.printed_at, zone)} by {record.printed_by}"
    )
    return build(story, title=f"Batch record {lot.lot_id}", author=record.facility, footer=footer)
