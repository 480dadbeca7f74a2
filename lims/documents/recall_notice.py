"""The recall notice of a lot as a PDF: for the treating physician, which vials reached the
patient, when and from whose hands, and that every other vial is recalled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from xml.sax.saxutils import escape

from lims.documents.pdf import Layout, RenderedPdf, build
from lims.domain.states import VialState
from lims.timeutil import show_time
from lims.views.quality import LotSummary, SignatureView

ADMINISTERED = VialState.ADMINISTERED


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
    """A vial of a recalled lot; who gave it to the patient and when, if anyone did."""

    vial_id: str
    status: str
    administered_at: datetime | None
    administered_by: str | None  # full name (username)


@dataclass(frozen=True)
class RecallNotice:
    facility: str
    product: str
    lot: LotSummary
    recall: Recall
    vials: Sequence[RecalledVial]
    printed_at: datetime
    printed_by: str
    zone: tzinfo


def render(notice: RecallNotice) -> RenderedPdf:
    """The recall notice as a PDF."""
    from reportlab.lib.units import mm

    layout = Layout()
    lot, zone = notice.lot, notice.zone
    given = [vial for vial in notice.vials if vial.status == ADMINISTERED]
    signature = notice.recall.signature
    story = [
        layout.markup(f"Recall notice — lot {escape(lot.lot_id)}", layout.styles["Title"]),
        layout.markup(
            f"LOT RECALLED: {escape(notice.recall.reason)}"
            + ("" if signature.linked and signature.record_unchanged else " (SIGNATURE NOT VALID)"),
            layout.alarm,
        ),
        layout.fields(
            [
                ("facility", notice.facility),
                ("lot", lot.lot_id),
                ("patient", lot.patient),
                ("DIN", lot.din.display),
                ("product", notice.product),
                ("dose", f"{lot.cells_per_vial:,} cells in {lot.volume_ml:g} mL {lot.vehicle}"),
                ("recalled", notice.recall.signed(zone)),
                ("reason", notice.recall.reason),
            ]
        ),
        *layout.heading("Vials"),
        layout.table(
            ["vial", "status", "patient", "administered at", "administered by"],
            [
                (
                    vial.vial_id,
                    vial.status,
                    lot.patient if vial.status == ADMINISTERED else None,
                    None if vial.administered_at is None else show_time(vial.administered_at, zone),
                    vial.administered_by,
                )
                for vial in notice.vials
            ],
            widths=[45 * mm, 25 * mm, 25 * mm, 42 * mm, 43 * mm],
            marked=[n for n, vial in enumerate(notice.vials) if vial.status == ADMINISTERED],
        ),
        *layout.heading(
            f"{len(given)} of {len(notice.vials)} vials were administered to patient {lot.patient}."
        ),
        layout.markup(
            "Every vial not administered was recalled with the lot: it may not be given to "
            "any patient and may only be destroyed.",
            layout.styles["BodyText"],
        ),
    ]
    footer = (
        f"{notice.facility} — recall notice of lot {lot.lot_id} — printed "
        f"{show_time(notice.printed_at, zone)} by {notice.printed_by}"
    )
    return build(story, title=f"Recall notice {lot.lot_id}", author=notice.facility, footer=footer)
