"""Equipment: its kinds, the steps that name it, and whether it could be used at a time.

A piece is under calibration control once it has a calibration interval or any calibration
on record; then a step at time T may use it only under the latest calibration made at or
before T, which must have passed and be due on or after T's day (the due date is inclusive,
as a reagent's expiry: due_at is the first moment after it). A piece never under
calibration control needs none. Whether its status lets it be used at all is the
lifecycle's to say (lims.domain.states.EQUIPMENT, action "use").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Protocol, TypeVar

from lims.errors import BadInput
from lims.timeutil import as_utc, show_time

EQUIPMENT_KINDS = (
    "biosafety_cabinet",
    "incubator",
    "centrifuge",
    "cell_counter",
    "freezer",
    "ln2_tank",
    "refrigerator",
    "label_printer",
    "other",
)
CELL_COUNTER = "cell_counter"
# The steps that name the equipment they used (`--equipment ID`), as the site setting
# equipment.required names them, with the command each is.
EQUIPMENT_STEPS = {
    "culture_start": "culture start",
    "culture_split": "culture split",
    "passage_log": "passage log",
    "lot_formulate": "lot formulate",
    "qc_record": "qc record",
    "count_import": "count import",
    "culture_freeze": "culture freeze",
    "bank_thaw": "bank thaw",
}
CALIBRATION_RESULTS = ("pass", "fail")
PASS, FAIL = CALIBRATION_RESULTS
# The kinds of record a step that names equipment makes, as its uses (equipment_uses
# entity_type) and their entries in the trail name it; a QC result goes by its row's id.
USE_SUBJECTS = ("culture", "passage", "lot", "qc_result", "count", "bank_vial")
# Longest calibration interval a piece may have: ten years.
INTERVAL_MAX_DAYS = 3650
# A piece whose calibration is due within this many days is listed as due soon.
DUE_SOON_DAYS = 30

# How a piece stands against its calibration now (`equipment list`).
IN_CALIBRATION = "in_calibration"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
FAILED = "failed"
NEVER_CALIBRATED = "never_calibrated"
NOT_REQUIRED = "not_required"
CALIBRATION_STATES = (IN_CALIBRATION, DUE_SOON, OVERDUE, FAILED, NEVER_CALIBRATED, NOT_REQUIRED)


class CalibrationLike(Protocol):
    """What is read of a calibration: when, until when, and whether it passed."""

    @property
    def calibrated_at(self) -> datetime: ...
    @property
    def due_on(self) -> date: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def result(self) -> str: ...


Calibrated = TypeVar("Calibrated", bound=CalibrationLike)


@dataclass(frozen=True)
class Piece:
    """A piece of equipment as its rules see it."""

    code: str
    kind: str
    calibration_interval_days: int | None

    @property
    def label(self) -> str:
        """How messages name it: its kind in words and its id, e.g. "incubator INC-01"."""
        return f"{kind_words(self.kind)} {self.code}"


def kind_words(kind: str) -> str:
    return kind.replace("_", " ")


def under_control(piece: Piece, calibrations: Sequence[CalibrationLike]) -> bool:
    """Whether the piece is used only within a passing calibration."""
    return piece.calibration_interval_days is not None or bool(calibrations)


def in_force(calibrations: Sequence[Calibrated], at: datetime) -> Calibrated | None:
    """The latest calibration made at or before `at`; None when there is none."""
    made = [calibration for calibration in calibrations if calibration.calibrated_at <= at]
    return max(made, key=lambda calibration: calibration.calibrated_at, default=None)


def local_day(moment: datetime, zone: tzinfo) -> date:
    return as_utc(moment).astimezone(zone).date()


def unusable(
    piece: Piece,
    calibrations: Sequence[CalibrationLike],
    at: datetime,
    *,
    step: str,
    zone: tzinfo,
) -> str | None:
    """Why the piece's calibration did not allow its use by `step` (e.g. "passage log") at
    `at`, or None when it did (or the piece needs none)."""
    if not under_control(piece, calibrations):
        return None
    dated = f"{step} dated {show_time(at, zone)}"
    remedy = f"calibrate it with `lims equipment calibrate {piece.code} --at DATE --due DATE`"
    current = in_force(calibrations, at)
    if current is None:
        if not calibrations:
            return (
                f"{piece.label} has never been calibrated (calibration interval "
                f"{piece.calibration_interval_days} days; {dated}); {remedy}"
            )
        first = min(calibration.calibrated_at for calibration in calibrations)
        return (
            f"{piece.label} was first calibrated on {local_day(first, zone)}, after the "
            f"{dated}: it was not within calibration then"
        )
    latest = max(calibrations, key=lambda calibration: calibration.calibrated_at)
    then = "" if current is latest else "; a later calibration does not cover that time"
    if current.result != PASS:
        return (
            f"{piece.label} failed its calibration on {local_day(current.calibrated_at, zone)} "
            f"({dated}); it is used again once a calibration passes: "
            f"`lims equipment calibrate {piece.code} --at DATE --due DATE --result pass`{then}"
        )
    if at >= current.due_at:
        ask = f"; {remedy}" if current is latest else then
        return f"{piece.label} was due for calibration on {current.due_on} ({dated}){ask}"
    return None


@dataclass(frozen=True)
class Standing:
    """How a piece stands against its calibration on a day: a state of CALIBRATION_STATES
    and, where a calibration is in force, the days until its due date (negative: overdue)."""

    state: str
    due_on: date | None
    due_in_days: int | None


def standing(
    piece: Piece,
    calibrations: Sequence[CalibrationLike],
    now: datetime,
    zone: tzinfo,
    soon_days: int = DUE_SOON_DAYS,
) -> Standing:
    """The piece's calibration state at `now`: due soon within `soon_days` of its due date."""
    if not under_control(piece, calibrations):
        return Standing(NOT_REQUIRED, None, None)
    current = in_force(calibrations, now)
    if current is None:
        return Standing(NEVER_CALIBRATED, None, None)
    days = (current.due_on - local_day(now, zone)).days
    if current.result != PASS:
        state = FAILED
    elif now >= current.due_at:
        state = OVERDUE
    elif days <= soon_days:
        state = DUE_SOON
    else:
        state = IN_CALIBRATION
    return Standing(state, current.due_on, days)


def due_date(calibrated_on: date, due: date | None, interval_days: int | None) -> date:
    """The day a calibration made on `calibrated_on` is due (inclusive): `due` as given, or
    the interval after the calibration; never before the calibration, nor, for a piece
    with an interval, later than the interval allows."""
    if due is None:
        if interval_days is None:
            raise BadInput(
                "due",
                "required: the piece has no calibration interval (give --due DATE, the last "
                "day the calibration covers)",
            )
        return calibrated_on + timedelta(days=interval_days)
    if due < calibrated_on:
        raise BadInput(
            "due",
            f"must not be before the calibration's own date {calibrated_on} (got {due})",
        )
    days = interval_days if interval_days is not None else INTERVAL_MAX_DAYS
    latest = calibrated_on + timedelta(days=days)
    if due > latest:
        why = "its calibration interval" if interval_days is not None else "the longest any covers"
        raise BadInput(
            "due",
            f"must be at most {days} days after the calibration ({why}): {latest} at the "
            f"latest (got {due})",
        )
    return due


def missing_kinds(
    required: Sequence[str], held: Collection[str], named: Collection[str]
) -> list[str]:
    """The kinds a step must name and did not: each required kind of which the register
    holds a piece that is not retired (a kind the lab has not registered is not enforced)."""
    return [kind for kind in required if kind in held and kind not in named]


def _article(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def missing_message(step: str, missing: Sequence[str], candidates: Sequence[str]) -> str:
    """What a step that did not name a required kind is told: e.g. "passage log needs a
    biosafety_cabinet: name it with --equipment ID (in the register: BSC-01, BSC-02)"."""
    needed = " and ".join(_article(kind) for kind in missing)
    pronoun = "it" if len(missing) == 1 else "each"
    return (
        f"{step} needs {needed}: name {pronoun} with --equipment ID "
        f"(in the register: {', '.join(candidates)})"
    )
