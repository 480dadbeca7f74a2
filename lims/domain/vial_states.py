"""A vial's life as a table of transitions; each move has a guard checked by lims.services.vials.

    quarantine -> released      its lot is released by QA
    released   -> issued        a scan matches its patient, and it has not expired
    issued     -> administered  a scan matches its patient, and it has not expired
    quarantine, released, issued -> destroyed   with a reason

A vial past its lot's expiry shows as `expired` while it is still in
quarantine or released; it can then only be destroyed.
"""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "released": ("quarantine",),
    "issued": ("released",),
    "administered": ("issued",),
    "destroyed": ("quarantine", "released", "issued"),
}
EXPIRES_IN = frozenset({"quarantine", "released"})


def shown_status(stored: str, expired: bool) -> str:
    return "expired" if expired and stored in EXPIRES_IN else stored


def allowed(current: str, target: str) -> bool:
    return current in TRANSITIONS[target]
