"""What the shipment commands show: a shipment with its vials, a list of them, a receipt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.views import inline
from lims.views.deviations import DeviationView
from lims.views.records import LateEntryView


@dataclass(frozen=True, kw_only=True)
class PackedVial:
    """A vial packed in a shipment: its state now, and when it was packed or taken out."""

    vial_id: str
    lot_id: str
    patient: str
    status: str  # as shown: `expired` once past its lot's expiry while usable
    added_at: datetime
    added_by: str
    removed_at: datetime | None
    removed_by: str | None
    remove_reason: str | None


@dataclass(frozen=True, kw_only=True)
class LoggerFileView:
    """The temperature logger's export kept with the shipment: its bytes' name, size, hash."""

    file_name: str
    size_bytes: int
    sha256: str
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class ShipmentView:
    shipment_id: str
    status: str
    # The consignee, as the site setting `sites` named it when the shipment was made.
    site_code: str
    site_name: str
    site_address: str
    courier: str
    logger: str | None  # the temperature logger's id
    created_at: datetime
    created_by: str
    dispatched_at: datetime | None
    dispatched_by: str | None
    received_at: datetime | None
    received_by: str | None
    temperature_ok: bool | None  # as the receiving site found it; None until received
    ended_at: datetime | None  # reported lost, or cancelled
    ended_by: str | None
    end_reason: str | None
    logger_file: LoggerFileView | None
    vials: list[PackedVial]  # those taken out again too, with when and why
    late_entry: bool  # any of its steps (made, dispatched, received) entered late
    late_entries: list[LateEntryView]

    @property
    def packed(self) -> list[PackedVial]:
        """The vials in it: packed and not taken out again."""
        return [vial for vial in self.vials if vial.removed_at is None]


@dataclass(frozen=True, kw_only=True)
class ShipmentSummary:
    """One shipment in `ship list`."""

    shipment_id: str
    status: str
    site_code: str
    site_name: str
    courier: str
    logger: str | None
    vials: int  # packed and not taken out
    created_at: datetime
    dispatched_at: datetime | None
    received_at: datetime | None
    temperature_ok: bool | None
    late_entry: bool


@dataclass(frozen=True, kw_only=True)
class ShipmentReceipt:
    """A shipment as received, and the deviation opened on each of its lots by a temperature
    excursion (none when the temperature was in range)."""

    shipment: ShipmentView = inline()
    deviations: list[DeviationView]
