"""`lims demo`: what the guided tour made, for the tour's own pages and for `--json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lims.views import hidden, renamed, shown_as, to_json
from lims.views.bench import CultureDetail
from lims.views.counts import CountView
from lims.views.shipments import ShipmentView
from lims.views.trace import Trace
from lims.views.trail import AuditView, ChainVerification
from lims.views.vials import Verification, VialView

if TYPE_CHECKING:
    from lims.config import Settings
    from lims.views.bank import FreezeView
    from lims.views.bench import AspirateView, PatientView
    from lims.views.deviations import DeviationView
    from lims.views.equipment import EquipmentSummary
    from lims.views.quality import LotDetail
    from lims.views.release import RecordedVerdict, ResultView
    from lims.views.site import SpecificationView
    from lims.views.storage import LocationDetail, Retention


@dataclass(frozen=True, kw_only=True)
class DemoUser:
    """A demo account; its password is shown once, here, and kept nowhere else."""

    username: str
    full_name: str = hidden()
    role: str
    password: str


def _station(settings: Settings) -> dict[str, str]:
    return {"home": str(settings.home), "database": str(settings.sqlite_path)}


def _din(aspirate: AspirateView) -> dict[str, str]:
    return {"din": aspirate.din.code, "din_display": aspirate.din.display}


def _vehicle(csf: AspirateView) -> dict[str, Any]:
    """The CSF the lot is suspended in: its DIN, what the lot drew and what is left."""
    return {
        "din": csf.din.code,
        "din_display": csf.din.display,
        "drawn_by": to_json(csf.drawn_by),
        "volume_left_ml": csf.volume_left_ml,
    }


def _lot(lot: LotDetail) -> dict[str, Any]:
    """The released lot in brief: its id and state, its vials and QA's signature."""
    return to_json(
        {
            "lot_id": lot.summary.lot_id,
            "lot_status": lot.summary.status,
            "vials": [vial.vial_id for vial in lot.vials],
            "signature": lot.signatures[0].manifestation,
            "pending_at_release": lot.pending_at_release,
        }
    )


@dataclass(frozen=True, kw_only=True)
class Investigation:
    """An out-of-specification result: the deviation it opened, QA's closing, the results."""

    opened: DeviationView = shown_as(lambda deviation: deviation.deviation_id)
    closed: DeviationView = shown_as(lambda deviation: deviation.outcome, key="outcome")
    results: list[ResultView]


def _administration(vial: VialView) -> dict[str, Any]:
    return {"vial_id": vial.vial_id, "route": vial.route, "physician": vial.physician}


@dataclass(frozen=True, kw_only=True)
class FreshProduct:
    """A lot released before its final sterility result: a vial issued with the pending test
    acknowledged and given, then the final result and QA's completion of the release."""

    shipped: ShipmentView = shown_as(lambda shipment: shipment.shipment_id, key="shipment_id")
    issued: VialView = shown_as(lambda vial: vial.acknowledged_pending, key="acknowledged_pending")
    given: VialView = shown_as(_administration, key="administered")
    final: RecordedVerdict = shown_as(lambda verdict: verdict.result, key="final_sterility")
    completed: LotDetail = shown_as(
        lambda lot: lot.signatures[-1].manifestation, key="completion_signature"
    )


@dataclass(frozen=True, kw_only=True)
class Recall:
    """A hold and what it stopped, then a late failure that held the lot and its recall."""

    held: LotDetail = shown_as(lambda lot: lot.hold_reasons, key="hold_reasons")
    refused: Verification = renamed("scan_while_held")
    late: LotDetail = shown_as(lambda lot: lot.hold_reasons, key="late_hold_reasons")
    recalled: LotDetail = shown_as(
        lambda lot: {v.vial_id: v.status for v in lot.vials}, key="vial_states"
    )
    notice: Path = shown_as(str, key="recall_notice")


@dataclass(frozen=True, kw_only=True)
class Storage:
    """What the demo put in the tank: a backup frozen from a harvest, the lot's retained
    samples, and the box they are in."""

    frozen: FreezeView = shown_as(
        lambda frozen: [vial.bank_vial_id for vial in frozen.bank_vials], key="bank_vials"
    )
    retained: Retention = shown_as(
        lambda retained: [sample.item for sample in retained.samples], key="retained_samples"
    )
    box: LocationDetail = shown_as(
        lambda box: {item.position: item.item for item in box.positions}, key="box"
    )


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """Each step's outcome, in the tour's order; `--json` gives each in brief."""

    settings: Settings = shown_as(_station, merged=True)
    users: list[DemoUser]
    spec: SpecificationView = shown_as(lambda spec: spec.version, key="spec_version")
    patient: PatientView = shown_as(lambda patient: patient.code)
    aspirate: AspirateView = shown_as(_din, merged=True)
    vehicle: AspirateView = shown_as(_vehicle)  # the patient's CSF the lot is suspended in
    culture: CultureDetail
    count: CountView = shown_as(lambda count: count.count_id, key="count_id")
    split: CultureDetail = shown_as(lambda split: split.summary.culture_id, key="split_culture")
    equipment: list[EquipmentSummary] = shown_as(
        lambda pieces: [piece.equipment_id for piece in pieces]
    )
    storage: Storage
    late_entries: list[str]  # the bench records entered late, by id
    late_entry_hours: float = hidden()
    investigation: Investigation
    lot: LotDetail = shown_as(_lot, merged=True)
    batch_record: Path = shown_as(str)
    batch_record_pages: int = hidden()
    labels: list[Path] = shown_as(lambda paths: [str(path) for path in paths])
    scan: Verification
    fresh: FreshProduct = renamed("fresh_product")
    recall: Recall
    trace: Trace  # the given vial's, as `lims trace` gives it
    trail: list[AuditView] = hidden()
    verification: ChainVerification = renamed("audit")
