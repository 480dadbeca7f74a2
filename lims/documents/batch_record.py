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

from lims.timeutil import show_time
from lims.views.bench import AspirateView
from lims.views.quality import LotDetail
from lims.views.trail import AuditView


@dataclass(frozen=True)
class BatchRecord:
    facility: str
    lot: LotDetail
    aspirate: AspirateView
    trail: Sequence[AuditView]
    printed_at: datetime
    printed_by: str
    zone: tzinfo


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


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def render(record: BatchRecord) -> RenderedPdf:
    """The batch record as a PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as pdf_canvas
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    lot = record.lot.summary
    zone = record.zone
    footer = (
        f"{record.facility} — batch record of lot {lot.lot_id} — printed "
        f"{show_time(record.printed_at, zone)} by {record.printed_by}"
    )

    pages = [0]  # filled in by the canvas when it saves

    class NumberedCanvas(pdf_canvas.Canvas):
        """Writes 'page N of M' once the number of pages is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            pages[0] = len(self._pages)
            for page in self._pages:
                self.__dict__.update(page)
                self.setFont("Helvetica", 7)
                self.drawString(15 * mm, 10 * mm, footer)
                self.drawRightString(
                    A4[0] - 15 * mm, 10 * mm, f"page {self._pageNumber} of {len(self._pages)}"
                )
                super().showPage()
            super().save()

    def text(value: Any) -> Paragraph:
        from xml.sax.saxutils import escape

        return Paragraph(escape("—" if value is None else str(value)), small)

    def table(
        header: Sequence[str] | None,
        rows: Sequence[Sequence[Any]],
        widths: Sequence[float] | None = None,
    ) -> Table:
        data = ([[text(h) for h in header]] if header else []) + [
            [text(c) for c in row] for row in rows
        ]
        built = Table(data, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
        style = [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")))
        built.setStyle(TableStyle(style))
        return built

    def fields(pairs: Sequence[tuple[str, Any]]) -> Table:
        return table(None, pairs, widths=[45 * mm, 130 * mm])

    def heading(title: str) -> list[Any]:
        return [Spacer(1, 4 * mm), Paragraph(title, styles["Heading2"])]

    aspirate = record.aspirate
    culture = record.lot.culture
    started = culture.summary
    story: list[Any] = [
        Paragraph(f"Batch record — lot {lot.lot_id}", styles["Title"]),
        fields(
            [
                ("facility", record.facility),
                ("status", lot.status.upper()),
                ("product", f"autologous bone-marrow MSC, {lot.vials} vials"),
                ("recipient", f"{lot.patient} ({lot.initials}, born {lot.birth_year})"),
                ("DIN", lot.din.display),
            ]
        ),
        *heading("1. Aspirate"),
        fields(
            [
                ("collected", show_time(aspirate.collected_at, zone)),
                ("received", f"{show_time(aspirate.received_at, zone)} by {aspirate.recorded_by}"),
                ("volume", f"{aspirate.volume_ml:g} mL"),
                ("site", aspirate.site),
                ("anticoagulant", aspirate.anticoagulant),
                ("total nucleated cells", None if aspirate.tnc is None else f"{aspirate.tnc:,}"),
                (
                    "temperature on arrival",
                    None if aspirate.temperature_c is None else f"{aspirate.temperature_c:g} °C",
                ),
            ]
        ),
        *heading(f"2. Culture {culture.summary.culture_id}"),
        fields(
            [
                ("kind", started.kind),
                (
                    "started",
                    f"{show_time(started.started_at, zone)} by {started.recorded_by}",
                ),
                (
                    "plated",
                    f"{started.cells_plated:,} cells in {started.vessels} vessels, "
                    f"{started.area_cm2:,g} cm²",
                ),
                ("method", culture.summary.method),
                ("reagents at start", ", ".join(culture.reagents) or None),
            ]
        ),
        *heading("3. Passages"),
        table(
            [
                "passage",
                "harvested at",
                "harvested",
                "viab. %",
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
                    f"P{p.passage_number}" + (f" (corr. {p.corrections})" if p.corrections else ""),
                    show_time(p.harvested_at, zone),
                    f"{p.harvested:,}",
                    f"{p.viability:g}",
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
        ),
    ]
    if len(culture.passages) >= 2:
        story += [
            *heading("4. Growth"),
            Image(io.BytesIO(growth_chart_png(record)), width=170 * mm, height=73 * mm),
        ]
    story += [
        *heading("5. Formulation"),
        fields(
            [
                ("formulated", f"{show_time(lot.formulated_at, zone)} by {lot.recorded_by}"),
                ("final harvest", f"{lot.harvested:,} viable cells, {lot.viability:g} % viable"),
                (
                    "vials",
                    f"{lot.vials} × {lot.cells_per_vial:,} cells in {lot.volume_ml:g} mL "
                    f"{lot.vehicle}",
                ),
                ("final passage", f"P{lot.final_passage}"),
                ("expires", show_time(lot.expires_at, zone)),
                ("reagents", ", ".join(record.lot.reagents) or None),
            ]
        ),
        *heading(f"6. Quality control against release specification version {lot.spec_version}"),
        table(
            ["test", "criterion", "spec", "result", "verdict", "tested / recorded"],
            [
                (
                    v.test,
                    v.description,
                    v.spec,
                    None if v.result is None else f"{v.result} {v.unit or ''}".strip(),
                    v.verdict + (f" (waived, deviation {v.waived_by})" if v.waived_by else ""),
                    "; ".join(
                        f"{show_time(r.tested_at, zone)} by {r.recorded_by}"
                        + (f" (retest: {r.reason})" if r.reason else "")
                        for r in v.history
                    )
                    or None,
                )
                for v in record.lot.evaluation.criteria
            ],
        ),
        Paragraph(
            "Releasable."
            if record.lot.evaluation.releasable
            else "Not releasable: " + "; ".join(record.lot.evaluation.blocking),
            small,
        ),
        *heading("7. Deviations"),
        table(
            ["id", "on", "status", "description", "resolution"],
            [
                (
                    d.deviation_id,
                    d.subject,
                    d.status + (" (waived)" if d.waived else ""),
                    d.description,
                    None
                    if d.resolution is None
                    else f"{d.resolution} — {d.closed_by}, {show_time(d.closed_at, zone)}",
                )
                for d in record.lot.deviations
            ]
            or [("—", "", "none", "", "")],
        ),
        *heading("8. Signatures"),
        *(
            [
                Paragraph(
                    s.manifestation
                    + ("" if s.linked and s.record_unchanged else " — NOT VALID FOR THIS RECORD")
                    + f"<br/>record SHA-256 {s.record_hash}",
                    small,
                )
                for s in record.lot.signatures
            ]
            or [Paragraph("Not signed.", small)]
        ),
        *heading("9. Vials"),
        table(
            ["vial", "status", "cells", "volume mL"],
            [(v.vial_id, v.status, f"{v.cells:,}", f"{v.volume_ml:g}") for v in record.lot.vials],
        ),
        *heading("10. Audit trail of this lot"),
        table(
            ["#", "time", "user", "action", "record", "reason"],
            [
                (
                    e.seq,
                    show_time(e.moment, zone),
                    e.username,
                    e.action,
                    f"{e.entity_type}:{e.entity_id}",
                    e.reason,
                )
                for e in record.trail
            ],
            widths=[12 * mm, 38 * mm, 18 * mm, 30 * mm, 50 * mm, 32 * mm],
        ),
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=f"Batch record {lot.lot_id}",
        author=record.facility,
    )
    document.build(story, canvasmaker=NumberedCanvas)
    return RenderedPdf(buffer.getvalue(), pages[0])
