"""What the equipment register shows: a piece, its calibrations, and the steps that used it
(`equipment add`, `list`, `show`, `calibrate`; the batch record's equipment section)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from lims.views import inline
from lims.views.deviations import DeviationView


@dataclass(frozen=True, kw_only=True)
class CalibrationView:
    calibrated_at: datetime
    calibrated_date_only: bool  # --at was a day: calibrated_at is its first moment
    due_on: date  # the last day it covers
    due_at: datetime  # the first moment after due_on, in the recording station's zone
    certificate: str | None
    result: str  # pass or fail
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class EquipmentSummary:
    equipment_id: str  # the id the lab gave it, e.g. INC-01
    kind: str
    name: str
    serial: str | None
    location: str | None
    calibration_interval_days: int | None
    status: str  # active, out_of_service or retired
    last_calibration: CalibrationView | None  # the latest on record, whatever its result
    # How it stands now (lims.domain.equipment.CALIBRATION_STATES; None once retired), the
    # due date of the calibration in force and the days until it (negative: overdue).
    calibration_state: str | None
    due_on: date | None
    due_in_days: int | None
    added_at: datetime
    added_by: str


@dataclass(frozen=True, kw_only=True)
class EquipmentUseView:
    """A step that used a piece, and the calibration it was used under (None: the piece
    needed none then)."""

    equipment_id: str
    kind: str
    name: str
    serial: str | None
    action: str  # the step as the trail names it, e.g. passage.log
    record_type: str  # culture, passage, lot, qc_result or count
    record: str  # the record it made: its id (a QC result's number)
    culture_id: str | None
    lot_id: str | None
    # For a count: the step that took its numbers, e.g. "passage A999926000001-C1-P2".
    count_taken_by: str | None
    used_at: datetime  # the step's stated time (a count's: its analysis)
    recorded_by: str | None
    calibration: CalibrationView | None


@dataclass(frozen=True, kw_only=True)
class EquipmentDetail:
    summary: EquipmentSummary = inline()
    calibrations: list[CalibrationView]  # newest first
    uses: list[EquipmentUseView]  # newest first


@dataclass(frozen=True, kw_only=True)
class CalibrationRecorded:
    """A calibration recorded (`equipment calibrate`); after a failed one, every use since
    the piece's last passing calibration and the deviations opened on what they touched."""

    summary: EquipmentSummary = inline()
    calibration: CalibrationView
    last_pass_at: datetime | None  # the passing calibration before it; None: none passed
    uses_since_last_pass: list[EquipmentUseView]  # oldest first; empty after a pass
    deviations: list[DeviationView]
