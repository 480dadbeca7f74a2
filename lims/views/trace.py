"""What `lims trace` shows: a patient's whole tree of materials, both ways from any id.

Each node is a record on the chain of identity and custody: the patient, each donation
(bone marrow, CSF), the cultures and what was split, frozen or thawed from them, the
lots, their vials and retained samples, the shipments the vials travelled in, and the
follow-up events. A node reached from two parents (a lot made from a marrow donation
and suspended in a CSF donation; a shipment carrying several vials) stands in full
once, where it is first reached, and as a reference to its id everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.views import hidden, inline

PATIENT, DONATION, CULTURE, BANK_VIAL = "patient", "donation", "culture", "bank_vial"
LOT, VIAL, RETAINED_SAMPLE, SHIPMENT, EVENT = (
    "lot",
    "vial",
    "retained_sample",
    "shipment",
    "event",
)


@dataclass(frozen=True)
class TraceRef:
    """A node that stands in full elsewhere in the tree."""

    ref: str


@dataclass(frozen=True, kw_only=True)
class TraceNode:
    id: str  # as lims prints it: a patient code, a DIN, a culture, lot, vial or shipment id
    kind: str
    state: str | None  # its status; for a patient "active" or "withdrawn"
    at: datetime | None  # when it came to be in that state
    by: str | None  # who did it
    detail: str | None  # what a reader needs besides: material and volume, dose, consignee
    children: tuple[TraceNode | TraceRef, ...]
    # Not (or no longer) fit for use, as its lifecycle marks the state: drawn in red.
    alarm: bool = hidden(default=False)


@dataclass(frozen=True, kw_only=True)
class Trace:
    """The tree `lims trace ID` found, and which of its nodes ID named."""

    traced: str = hidden()
    tree: TraceNode = inline()
