"""Cell counts as a cell counter reported them: one sample's result in an exported file.

The instruments whose exports lims reads, by the names `count import --instrument` takes.
A reading is what the file says, nothing derived: densities in cells/mL, viability in
percent, the analysis time in the zone the file gives (else the station's), and the
instrument's own status for the sample ("ok" when the file has no status or it is fine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# `count import --instrument` names, and what each is.
INSTRUMENTS = {
    "vicell-blu": "Beckman Coulter Vi-CELL BLU",
    "vicell-xr": "Beckman Coulter Vi-CELL XR",
    "nc-200": "ChemoMetec NucleoCounter NC-200 (NucleoView)",
    "nc-202": "ChemoMetec NucleoCounter NC-202 (NC-View)",
    "cedex-hires": "Roche Cedex HiRes",
    "asm": "Allotrope Simple Model cell-counting document (JSON)",
}
AUTO = "auto"  # find the format from the file
STATUS_OK = "ok"


@dataclass(frozen=True, kw_only=True)
class CountReading:
    """One sample's result, as the file states it."""

    instrument: str  # a key of INSTRUMENTS
    model: str | None  # the instrument model as the file names it
    serial: str | None  # the instrument's serial number, without an "S/N" prefix
    operator: str | None  # as written in the file
    analysed_at: datetime  # aware
    date_only: bool  # the file gives the day of analysis, not its time (analysed_at: 00:00)
    sample: str  # the file's sample id
    sample_name: str | None  # a second name the file gives the sample (NC-View's NAME)
    viable_per_ml: float
    total_per_ml: float | None
    viability: float  # percent
    diameter_um: float | None
    dilution: float | None
    status: str  # STATUS_OK or the instrument's own words


@dataclass(frozen=True, kw_only=True)
class CountFileReading:
    """A whole file as read: which format, what read it, and every sample in file order."""

    instrument: str  # a key of INSTRUMENTS
    parser: str  # e.g. "allotropy 0.1.150"
    readings: tuple[CountReading, ...]
