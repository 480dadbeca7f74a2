"""The notice of a recalled or held lot as a PDF: for the treating physician, which vials
reached the patient, when, from whose hands, by which route and on whose order, and that every
other vial is recalled, or held while QA decides.

A released lot is held at once by what would block its release now (a failed final result of
a test pending at release opens a critical deviation): the physician is told then, before QA
decides whether to recall it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from xml.sax.saxutils import escape

from lims.documents.pdf import Layout, RenderedPdf, build
from lims.domain.states import VialState
from lims.timeutil import show_time
from lims.views.quality import LotSummary, SignatureView

ADMINISTERED, SHIPPED = VialState.ADMINISTERED, VialState.SHIPPED
# The vials' table: vial, status, patient, administered at and by, route, physician.
VIAL_WIDTHS_MM = (36, 22, 20, 30, 27, 20, 25)


@dataclass(frozen=True)
class Recall:
    """QA's signature recalling a lot, and the reason it gives."""

    signature: SignatureView
    reason: str

    def signed(self, zone: tzinfo) -> str:
        signer = self.signature
        return f"{show_time(signer.signed_at, zone)} by {signer.full_name} ({signer.username})"


@dataclass(frozen=True)
class RecalledVial:
    """A vial of a recalled or held lot; who gave it to the patient, when, by which route and
    on whose order, if anyone did."""

    vial_id: str
    status: str
    administered_at: datetime | None
    administered_by: str | None  # full name (username)
    route: str | None
    physician: str | None
    shipment: str | None  # the shipment it went in and where to: SHP-000001 to OR-1


@dataclass(frozen=True)
class RecallNotice:
    """A recalled lot's notice (`recall`), or a released lot's while it is on hold (`recall`
    None, and the `hold_reasons`)."""

    facility: str
    product: str
    lot: LotSummary
    recall: Recall | None
    hold_reasons: Sequence[str]
    vials: Sequence[RecalledVial]
    printed_at: datetime
    printed_by: str
    zone: tzinfo

    @property
    def name(self) -> str:
        return "recall notice" if self.recall is not None else "hold notice"


def render(notice: RecallNotice) -> RenderedPdf:
    """The recall or hold notice as a PDF."""
    from reportlab.lib.units import mm

    layout = Layout()
    lot, zone = notice.lot, notice.zone
    given = [vial for vial in notice.vials if vial.status == ADMINISTERED]
    story = [
        layout.markup(
            f"{notice.name.capitalize()} — lot {escape(lot.lot_id)}", layout.styles["Title"]
        ),
        *_why(notice, layout),
        layout.fields(
            [
                ("facility", notice.facility),
                ("lot", lot.lot_id),
                ("patient", lot.patient),
                ("DIN", lot.din.display),
                ("product", notice.product),
                ("dose", f"{lot.cells_per_vial:,} cells in {lot.volume_ml:g} mL {lot.vehicle}"),
                *(
                    [("recalled", notice.recall.signed(zone)), ("reason", notice.recall.reason)]
                    if notice.recall is not None
                    else [("held because", "; ".join(notice.hold_reasons))]
                ),
            ]
        ),
        *layout.heading("Vials"),
        layout.table(
            [
                "vial",
                "status",
                "patient",
                "administered at",
                "administered by",
                "route",
                "physician",
            ],
            [
                (
                    vial.vial_id,
                    vial.status,
                    lot.patient if vial.status == ADMINISTERED else None,
                    None if vial.administered_at is None else show_time(vial.administered_at, zone),
                    vial.administered_by,
                    vial.route,
                    vial.physician,
                )
                for vial in notice.vials
            ],
            widths=[width * mm for width in VIAL_WIDTHS_MM],
            marked=[n for n, vial in enumerate(notice.vials) if vial.status == ADMINISTERED],
        ),
        *layout.heading(
            f"{len(given)} of {len(notice.vials)} vials were administered to patient {lot.patient}."
        ),
        layout.markup(
            "Every vial not administered was recalled with the lot: it may not be given to "
            "any patient and may only be destroyed."
            if notice.recall is not None
            else "Every vial not administered is held with the lot: it may not be given to any "
            "patient. QA decides whether to recall the lot or to resolve what holds it; a "
            "recall notice follows a recall.",
            layout.styles["BodyText"],
        ),
        *(
            layout.markup(
                f"Vial {vial.vial_id} went in shipment {escape(vial.shipment)}: "
                f"it is {vial.status}.",
                layout.styles["BodyText"],
            )
            for vial in notice.vials
            if vial.shipment is not None and vial.status != SHIPPED
        ),
        *(
            layout.markup(
                f"Vial {vial.vial_id} is in transit ({escape(vial.shipment or '')}): "
                + (
                    "it is recalled when the shipment is received, and the site receiving it "
                    "must not give it."
                    if notice.recall is not None
                    else "the site receiving it must not give it while the lot is held."
                ),
                layout.alarm,
            )
            for vial in notice.vials
            if vial.status == SHIPPED
        ),
    ]
    footer = (
        f"{notice.facility} — {notice.name} of lot {lot.lot_id} — printed "
        f"{show_time(notice.printed_at, zone)} by {notice.printed_by}"
    )
    return build(
        story,
        title=f"{notice.name.capitalize()} {lot.lot_id}",
        author=notice.facility,
        footer=footer,
    )


def _why(notice: RecallNotice, layout: Layout) -> list[Any]:
    """The line the physician must not miss: the lot is recalled, or on hold, and why."""
    if notice.recall is None:
        return [
            layout.markup("LOT ON HOLD:", layout.alarm),
            *(layout.markup(escape(reason), layout.alarm) for reason in notice.hold_reasons),
        ]
    signature = notice.recall.signature
    return [
        layout.markup(
            f"LOT RECALLED: {escape(notice.recall.reason)}"
            + ("" if signature.linked and signature.record_unchanged else " (SIGNATURE NOT VALID)"),
            layout.alarm,
        )
    ]
