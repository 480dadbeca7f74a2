"""What QA reviews: lots with their vials, QC, deviations and signatures, and printed reports.

A lot's JSON is its summary's keys, then its vials, reagents, the culture it
came from (the culture's summary and passages only), its QC verdict, its
deviations and signatures: `lot show`, `lot formulate`, `lot correct`, `lot
release` and `lot reject` all print it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from lims.domain import signatures
from lims.domain.ids import Din
from lims.staging import StagedFiles
from lims.views import hidden, inline, renamed, shown_as, to_json
from lims.views.bench import AncestorView, CultureDetail, SisterLot, din_keys
from lims.views.counts import CountSource, source_keys
from lims.views.deviations import DeviationView
from lims.views.records import LateEntryView
from lims.views.release import EvaluationView, ResultView
from lims.views.storage import StoredItem


@dataclass(frozen=True, kw_only=True)
class LotSummary:
    """A lot as `lot list` shows it; the recipient's initials and birth year are for paper."""

    lot_id: str
    status: str  # as shown: `expired` once past expiry in quarantine or released
    patient: str
    initials: str = hidden()
    birth_year: int = hidden()
    din: Din = shown_as(din_keys, merged=True)
    culture_id: str
    formulated_at: datetime
    expires_at: datetime
    harvested: int
    viability: float
    # Where harvested and viability came from: `count_id` and `count` in its JSON.
    count: CountSource = shown_as(source_keys, merged=True)
    vials: int = renamed("vial_count")
    cells_per_vial: int
    volume_ml: float
    vehicle: str
    # The patient's own CSF the cells are suspended in, by its DIN (13 characters, as in
    # every `din` key), and the mL drawn from it; both null for a typed vehicle.
    vehicle_din: Din | None = shown_as(lambda din: None if din is None else din.code)
    vehicle_ml: float | None
    final_passage: int
    spec_version: int  # the release specification version the lot is judged by
    recorded_by: str
    late_entry: bool  # formulated more than records.late_entry_hours before it was typed
    entered_at: datetime
    late_reason: str | None

    def vehicle_source(self) -> str | None:
        """Where the vehicle came from, as records print it: "8 mL of CSF DIN A9999 26
        000002 J"; None for a typed vehicle."""
        if self.vehicle_din is None or self.vehicle_ml is None:
            return None
        return f"{self.vehicle_ml:g} mL of CSF DIN {self.vehicle_din.display}"


@dataclass(frozen=True, kw_only=True)
class LotVial:
    """One vial in a lot's record (`vial show` has more: see lims.views.vials.VialView)."""

    vial_id: str
    number: int
    status: str
    cells: int
    volume_ml: float
    administered_at: datetime | None
    administered_by: str | None
    route: str | None
    physician: str | None
    late_entries: list[LateEntryView]  # its issue, administration or destruction, entered late
    acknowledged_pending: list[str]  # issued while these final results of its lot were pending
    shipment: str | None  # the shipment it was last packed in (SHP-…), unless taken out


def _vial_keys(vials: list[LotVial]) -> dict[str, Any]:
    """The ids alone, for scripts that only follow them, and each vial's row."""
    return {"vials": [vial.vial_id for vial in vials], "vial_states": to_json(vials)}


def _culture_keys(culture: CultureDetail) -> dict[str, Any]:
    """The culture's summary, passages and place in its lineage; the lot lists the culture's
    deviations with its own, and the lineage's cultures and lots at its top level."""
    return {
        **to_json(culture.summary),
        "passages": to_json(culture.passages),
        "parent": culture.parent,
        "source_passage": culture.source_passage,
        "thawed_from": to_json(culture.thawed_from),
        "children": culture.children,
    }


@dataclass(frozen=True, kw_only=True)
class SignatureView:
    """A signature on a record, and whether it still holds for the record as it is now."""

    json_properties: ClassVar[tuple[str, ...]] = ("manifestation",)

    username: str
    full_name: str
    signed_at: datetime
    meaning: str
    record_hash: str
    linked: bool  # the signature belongs to this record (11.70)
    record_unchanged: bool  # the record still hashes as it did when signed

    @property
    def manifestation(self) -> str:
        return signatures.manifestation(self.username, self.full_name, self.signed_at, self.meaning)


@dataclass(frozen=True, kw_only=True)
class HoldView:
    """A hold QA placed on a lot, and its lifting once lifted."""

    hold_id: int
    reason: str
    placed_at: datetime
    placed_by: str
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None


@dataclass(frozen=True, kw_only=True)
class LotDetail:
    """Everything QA reviews before signing, on one screen and in the batch record."""

    summary: LotSummary = inline()
    vials: list[LotVial] = shown_as(_vial_keys, merged=True)
    retained_samples: list[StoredItem]  # kept for testing later, stored or removed
    reagents: list[str]
    culture: CultureDetail = shown_as(_culture_keys)
    evaluation: EvaluationView = renamed("qc")
    deviations: list[DeviationView]
    signatures: list[SignatureView]
    holds: list[HoldView]  # every hold QA placed, standing or lifted
    # A release on interim results: the tests whose final results were pending at release,
    # and whether the release is complete: false until QA completes such a release (`lot
    # complete`), true for any other release, null for a lot never released.
    pending_at_release: list[str]
    release_complete: bool | None

    json_properties: ClassVar[tuple[str, ...]] = (
        "results",
        "on_hold",
        "hold_reasons",
        "lineage",
        "sister_lots",
        "pending_tests",
    )

    @property
    def lineage(self) -> list[AncestorView]:
        """The cultures its culture was split from, with their passages and deviations."""
        return self.culture.lineage

    @property
    def sister_lots(self) -> list[SisterLot]:
        """Lots made from the other cultures of its culture's lineage, with their status."""
        return self.culture.sister_lots

    @property
    def results(self) -> list[ResultView]:
        """Every QC result ever recorded on the lot, with its standing."""
        return self.evaluation.results

    @property
    def hold_reasons(self) -> list[str]:
        """What keeps the lot's vials from patients: QA's holds, and on a released lot
        its open deviations and failures."""
        return self.evaluation.hold_reasons

    @property
    def on_hold(self) -> bool:
        return bool(self.hold_reasons)

    @property
    def pending_tests(self) -> list[str]:
        """The tests started whose final results are still to come."""
        return [started.test for started in self.evaluation.pending]


@dataclass(frozen=True, kw_only=True)
class WrittenReport:
    """A report written beside its destination, published once its audit entry commits."""

    lot_id: str
    document: str = hidden()  # what was written: batch record, recall notice, hold notice
    files: StagedFiles = hidden()
    path: Path = shown_as(str)
    pages: int
    sha256: str
