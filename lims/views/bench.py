"""What the bench shows: patients, aspirates, reagent lots, cultures, passages, projections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

from lims.domain.ids import Din
from lims.domain.states import DeviationState
from lims.views import hidden, inline, renamed, shown_as
from lims.views.counts import CountSource, source_keys
from lims.views.deviations import DeviationView

SECONDS_PER_DAY = 86_400


def din_keys(din: Din) -> dict[str, str]:
    """A DIN's three JSON keys, merged into every view that shows one: code, check, as printed."""
    return {"din": din.code, "din_check": din.check, "din_display": din.display}


@dataclass(frozen=True, kw_only=True)
class PatientRecord:
    """A patient's own record: what `patient list` and `patient show` both begin with."""

    code: str
    initials: str
    birth_year: int
    consent_date: date | None  # None only for patients added before consent was required
    weight_kg: float | None
    study: str | None
    withdrawn: bool  # consent withdrawn: no further manufacturing step on their materials
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    withdraw_reason: str | None
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class PatientView(PatientRecord):
    aspirates: list[str]  # DINs, 13 characters as in every `din` key


@dataclass(frozen=True, kw_only=True)
class VehicleDraw:
    """What a lot drew from a CSF donation to suspend its cells in."""

    lot_id: str
    vehicle_ml: float


@dataclass(frozen=True, kw_only=True)
class AspirateView:
    din: Din = shown_as(din_keys, merged=True)
    patient: str
    material: str  # bone_marrow, expanded into cultures, or csf, the vehicle of lots
    collected_at: datetime
    received_at: datetime
    volume_ml: float
    site: str
    anticoagulant: str | None
    tnc: int | None
    # Where the TNC came from: its JSON is `count_id` and `count` (lims.views.counts).
    count: CountSource = shown_as(source_keys, merged=True)
    temperature_c: float | None
    # Received outside the site's conditions (aspirate.max_transit_hours), with a deviation.
    nonconforming: bool
    recorded_by: str
    cultures: list[str]
    # CSF: the lots that drew on it as their vehicle, and the mL not yet drawn (null for
    # bone marrow, which is not drawn by volume).
    drawn_by: list[VehicleDraw]
    volume_left_ml: float | None
    late_entry: bool  # received (received_at) more than records.late_entry_hours before entered
    entered_at: datetime  # when the receipt was typed
    late_reason: str | None  # why, for a late entry


@dataclass(frozen=True, kw_only=True)
class ReagentView:
    name: str
    lot: str
    supplier: str | None
    expires_on: date = renamed("expires")
    expires_at: datetime
    expired: bool  # when the service read it, so that the table and `--json` agree
    recorded_by: str

    @property
    def label(self) -> str:
        return f"{self.name}:{self.lot}"


@dataclass(frozen=True, kw_only=True)
class Flag:
    """A bench limit a passage broke, and the deviation it opened."""

    kind: str
    description: str
    deviation_id: int
    status: str = DeviationState.OPEN


@dataclass(frozen=True, kw_only=True)
class PassageView:
    passage_id: str
    culture_id: str
    passage_number: int
    harvested_at: datetime
    harvested: int
    viability: float
    # Where harvested and viability came from: `count_id` and `count` in its JSON.
    count: CountSource = shown_as(source_keys, merged=True)
    seeded: int
    vessels: int
    area_cm2: float
    confluence: float | None
    population_doublings: float | None
    cumulative_population_doublings: float
    doubling_time_hours: float | None
    fold_expansion: float | None
    seeding_density_per_cm2: float
    reagents: list[str]
    flags: list[Flag]
    corrections: int
    recorded_by: str
    late_entry: bool  # typed more than records.late_entry_hours after harvested_at
    entered_at: datetime  # when it was typed
    late_reason: str | None


@dataclass(frozen=True, kw_only=True)
class CultureSummary:
    culture_id: str
    din: Din = shown_as(din_keys, merged=True)
    patient: str
    kind: str
    status: str
    started_at: datetime
    cells_plated: int
    # Where cells_plated came from: `count_id` and `count` in its JSON.
    count: CountSource = shown_as(source_keys, merged=True)
    vessels: int
    area_cm2: float
    method: str
    recorded_by: str
    passages: int = renamed("passage_count")  # a count; a culture's detail lists them
    cumulative_population_doublings: float | None
    open_deviations: int
    late_entry: bool  # started (or split) more than records.late_entry_hours before typed
    entered_at: datetime
    late_reason: str | None


@dataclass(frozen=True, kw_only=True)
class SisterLot:
    """A lot made from another culture of the same lineage."""

    lot_id: str
    culture_id: str
    status: str


@dataclass(frozen=True, kw_only=True)
class AncestorView:
    """A culture this one descends from, with its whole history: its passages, among them
    the one whose harvest seeded the next culture down, and every deviation on it."""

    culture_id: str
    kind: str
    status: str
    started_at: datetime
    cells_plated: int
    # Where cells_plated came from: `count_id` and `count` in its JSON.
    count: CountSource = shown_as(source_keys, merged=True)
    split_at: str  # the passage whose harvest seeded the next culture down the lineage
    # The bank vial that harvest was frozen in, when the next culture down was thawed from it.
    bank_vial: str | None
    passages: list[PassageView]
    deviations: list[DeviationView]


@dataclass(frozen=True, kw_only=True)
class ThawSource:
    """The bank vial a thawed culture was started from, and the harvest frozen in it."""

    bank_vial_id: str
    passage_id: str  # the parent's passage whose harvest was frozen
    passage_number: int
    frozen_at: datetime
    frozen_by: str
    cells: int  # frozen in the vial
    thawed_at: datetime
    thaw_viability: float | None  # %, counted after thawing


@dataclass(frozen=True, kw_only=True)
class CultureDetail:
    summary: CultureSummary = inline()
    reagents: list[str]  # used at the start
    passages: list[PassageView]
    deviations: list[DeviationView]
    parent: str | None  # the culture it was split (or thawed) from
    source_passage: str | None  # the parent's passage whose harvest seeded it
    thawed_from: ThawSource | None  # the bank vial it was thawed from, if it was
    children: list[str]  # cultures split (or thawed) from it
    lineage: list[AncestorView]  # its ancestors, the first culture first
    sister_lots: list[SisterLot]  # lots of the other cultures of its lineage

    def growth_curve(self) -> list[tuple[float, float]]:
        """(days since the start, cumulative PD) at each harvest."""
        start = self.summary.started_at
        return [
            (
                (passage.harvested_at - start).total_seconds() / SECONDS_PER_DAY,
                passage.cumulative_population_doublings,
            )
            for passage in self.passages
        ]


def _old_and_new(changed: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {"old": old, "new": new} for name, (old, new) in changed.items()}


@dataclass(frozen=True, kw_only=True)
class Correction:
    """A corrected passage as it now stands, what changed, and what followed from it."""

    passage: PassageView = inline()
    changed: dict[str, tuple[Any, Any]] = shown_as(_old_and_new)  # typed and derived
    recomputed: list[str]  # later passages whose derived values changed
    flagged_later: list[Flag]  # deviations the recomputation opened on later passages


@dataclass(frozen=True, kw_only=True)
class ProjectionView:
    """When a culture should reach a dose, and on what assumptions.

    The projection's numbers are fields of the view itself, in the order `--json` has
    always shown them among the view's own.
    """

    json_properties: ClassVar[tuple[str, ...]] = ("assumptions",)

    culture_id: str
    target_cells: int
    cells_now: int
    seeded_at: datetime  # when the cells now growing were seeded
    doubling_time_hours: float
    doublings_per_passage: float
    doublings_needed: float
    passages_needed: int
    final_passage_number: int
    exceeds_max_passage: bool
    expected_at: datetime
    area_cm2_at_last_reseeding: float
    reseeding_density_per_cm2: float
    basis: list[str]  # the passages the rates come from
    max_passage: int = hidden()

    @property
    def assumptions(self) -> list[str]:
        return [
            f"growth continues at the pooled rate of {', '.join(self.basis)}: "
            f"doubling time {self.doubling_time_hours:.1f} h, "
            f"{self.doublings_per_passage:.2f} population doublings per passage",
            f"every harvested cell is reseeded at {self.reseeding_density_per_cm2:,.0f} cells/cm² "
            "(setting expansion.reseeding_density_per_cm2)",
            f"the {self.cells_now:,} cells seeded at the last passage are the starting population",
            "no losses at harvest and no lag after reseeding: treat the date as the earliest",
        ]
