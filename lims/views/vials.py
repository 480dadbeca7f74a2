"""What the vial commands show: a vial, a scan judged against a patient, a print of labels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.staging import StagedFiles
from lims.views import shown_as
from lims.views.records import LateEntryView


@dataclass(frozen=True, kw_only=True)
class VialView:
    vial_id: str
    lot_id: str
    status: str  # as shown: `expired` once past expiry while usable (released, shipped, ...)
    division: str  # of its DIN's product (ISBT 128 data structure 003): A0, B0, ...
    patient: str
    cells: int
    volume_ml: float
    expires_at: datetime
    labels_printed: int
    administered_at: datetime | None
    administered_by: str | None
    route: str | None  # how it was given: one of the site's administration.routes
    physician: str | None  # the treating physician who ordered it
    late_entry: bool  # any of its steps (issue, administration, destruction) entered late
    late_entries: list[LateEntryView]
    acknowledged_pending: list[str]  # issued while these final results of its lot were pending
    shipment: str | None  # the shipment it was last packed in (SHP-…), unless taken out


def _verdict_keys(match: bool) -> dict[str, object]:
    """The verdict as the word a person at the bedside reads, and as a flag for scripts."""
    return {"result": "MATCH" if match else "MISMATCH", "match": match}


@dataclass(frozen=True, kw_only=True)
class Verification:
    """The answer to 'may this vial go to this patient now?'."""

    match: bool = shown_as(_verdict_keys, merged=True)
    vial_id: str
    patient: str  # the patient the vial was scanned against
    vial_patient: str | None  # the patient the vial belongs to, when known
    reason: str  # why not, or what matched


def _counted(vials: list[str]) -> dict[str, object]:
    return {"count": len(vials), "vials": vials}


@dataclass(frozen=True, kw_only=True)
class PrintJob:
    """Labels staged beside their destination, published once the print's audit entry commits."""

    lot_id: str
    format: str
    vials: list[str] = shown_as(_counted, merged=True)
    reprints: dict[str, int]  # vial id: labels printed before this print
    files: StagedFiles = shown_as(lambda files: [str(path) for path in files.paths])
    printer: str | None
    template: str
    preview: bool  # watermarked, counted as no label
    printer_jobs: list[str]  # what lp answered for each file it accepted


@dataclass(frozen=True, kw_only=True)
class LabelReconciliationView:
    """A lot's label count closed: labels printed against those applied and destroyed."""

    lot_id: str
    printed: int
    applied: int
    destroyed: int
    balanced: bool
    deviation: int | None  # the deviation an unbalanced count opened
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class ScannerCheck:
    """Whether a station's scanner typed the test symbol unchanged (`lims scan --selftest`)."""

    fit: bool
    expected: str
    typed: str
    wrong: list[str]  # each character that arrived wrong, missing or extra
