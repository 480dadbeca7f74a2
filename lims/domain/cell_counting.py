"""Cell counts as a cell counter reported them: one sample's result in an exported file.

The instruments whose exports lims reads, by the names `count import --instrument` takes.
A reading is what the file says, nothing derived: densities in cells/mL, viability in
percent, the analysis time in the zone the file gives (else the station's), and the
instrument's own status for the sample ("ok" when the file has no status or it is fine).

Every file is read through an Allotrope Simple Model (ASM) cell-counting document: the
one allotropy writes for each counter it reads, or the one instrument software exported
itself. What lims takes of each measurement document is read here (asm_readings), and
each reading must be plausible before anything is kept (checked_file): a file with one
implausible value is refused whole, naming the sample and the field, because a count
that is half believed is worse than one typed again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any

from lims.errors import BadInput, NotFound, shown
from lims.timeutil import parse_time, show_time

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


# --- values a file may hold ----------------------------------------------------------------

# The cell-counting schema (REC/2024/09) states densities in 10^6 cells/mL only; software
# writing its own ASM may state plain cells/mL. Any other unit is refused, not guessed.
DENSITY_UNITS = {"10^6 cells/mL": 6, "cells/mL": 0}
PERCENT = ("%",)
MICROMETRE = ("µm", "μm")  # the micro sign and the Greek mu: both are written
UNITLESS = ("(unitless)",)
# Beyond any suspension a counter reads: packed cells are about 10^9 per mL.
DENSITY_MAX = 1e10
# Larger than any cell by far: a diameter of a millimetre is a misread unit, not a cell.
DIAMETER_MAX_UM = 1000.0
# As the cell_counts columns hold them (models.SHORT_TEXT_MAX, models.LONG_TEXT_MAX).
TEXT_MAX = 100
STATUS_MAX = 2000
# What software writes where it has no value (allotropy: "N/A").
NOT_GIVEN = {"", "n/a", "na", "none", "nan"}
# A spreadsheet runs a cell that begins with one of these as a formula (OWASP, "CSV
# injection"): an export carrying one was edited or made to attack whoever opens it next.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d[\d\s\u00a0\u202f]*([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
_SERIAL_PREFIX = re.compile(r"s\s*/\s*n\s*[:.#]?\s*", re.IGNORECASE)
# What lims takes of a measurement: an instrument's error on one of these is no value at all.
TAKEN_FEATURES = {
    "viable cell density": "viable cells/mL",
    "viability": "viability",
    "total cell density": "total cells/mL",
}


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would run this field as a formula: it begins with =, +, -, @, a
    tab or a carriage return and is not a number (-0.5 and +3 are numbers)."""
    return text.startswith(FORMULA_STARTS) and _NUMBER.fullmatch(text.strip()) is None


def serial_number(text: str | None) -> str | None:
    """The serial as the instrument's plate reads, without the "S/N" or "s/n " before it."""
    if text is None or text.strip().casefold() in NOT_GIVEN:
        return None
    return _SERIAL_PREFIX.sub("", text.strip(), count=1).strip() or None


def not_given(text: str | None) -> str | None:
    """The text, or None where the file says it has none ("N/A", empty)."""
    if text is None or text.strip().casefold() in NOT_GIVEN:
        return None
    return text.strip()


# --- an Allotrope cell-counting document ---------------------------------------------------


def is_cell_counting(document: Mapping[str, Any]) -> bool:
    """An ASM document of the cell-counting technique: its manifest says so."""
    manifest = document.get("$asm.manifest")
    return isinstance(manifest, str) and "cell-counting" in manifest.split("/")


def converter(document: Mapping[str, Any]) -> str | None:
    """What wrote the document, as its data system document says (name and version)."""
    aggregate = document.get("cell counting aggregate document")
    system = aggregate.get("data system document") if isinstance(aggregate, Mapping) else None
    if not isinstance(system, Mapping):
        return None
    said = [
        str(system[key]).strip()
        for key in ("ASM converter name", "ASM converter version")
        if system.get(key) is not None
    ]
    return " ".join(part for part in said if part) or None


def asm_readings(
    document: Mapping[str, Any], *, instrument: str, zone: tzinfo
) -> list[CountReading]:
    """Every sample's result in a cell-counting document, in its order.

    A measurement time without an offset is the station's (zone). Refused, naming the
    sample and the field: a document of another technique, a missing sample identifier,
    time, viability or viable density, a unit other than those the schema gives, a value
    that is no number, and an instrument's error on a value lims takes.
    """
    if not is_cell_counting(document):
        manifest = document.get("$asm.manifest")
        raise BadInput(
            "file",
            f"is not an Allotrope cell-counting document (its manifest is {shown(manifest)})",
        )
    aggregate = _mapping(document, "cell counting aggregate document", "the document")
    device = aggregate.get("device system document") or {}
    if not isinstance(device, Mapping):
        raise BadInput("file", "its device system document is not an object")
    serial = serial_number(_text_or_none(device.get("equipment serial number")))
    model = not_given(_text_or_none(device.get("model number")))
    readings: list[CountReading] = []
    for technique in _items(aggregate, "cell counting document", "the document"):
        analyst = not_given(_text_or_none(technique.get("analyst")))
        measurements = _mapping(technique, "measurement aggregate document", "the document")
        for measurement in _items(measurements, "measurement document", "the document"):
            readings.append(
                _reading(
                    measurement,
                    len(readings) + 1,
                    instrument=instrument,
                    model=model,
                    serial=serial,
                    operator=analyst,
                    zone=zone,
                )
            )
    return readings


def _reading(
    measurement: Mapping[str, Any],
    position: int,
    *,
    instrument: str,
    model: str | None,
    serial: str | None,
    operator: str | None,
    zone: tzinfo,
) -> CountReading:
    where = f"measurement {position}"
    sample_document = _mapping(measurement, "sample document", where)
    sample = _text_or_none(sample_document.get("sample identifier"))
    if sample is None or not sample.strip():
        raise BadInput("file", f"{where} has no sample identifier")
    where = f"sample {shown(sample)}"
    time = measurement.get("measurement time")
    if not isinstance(time, str):
        raise BadInput("file", f"{where} has no measurement time")
    try:
        analysed_at = parse_time("measurement time", time, zone)
    except BadInput as error:
        raise BadInput("file", f"{where}: {error.message}") from None
    results = _items(
        _mapping(measurement, "processed data aggregate document", where),
        "processed data document",
        where,
    )
    if len(results) != 1:
        raise BadInput("file", f"{where} has {len(results)} processed results; lims reads one")
    [processed] = results
    errors = _errors(measurement, where)
    for feature, problem in errors:
        taken = TAKEN_FEATURES.get(feature.removesuffix(" (cell counter)"))
        if taken is not None:
            raise BadInput("file", f"{where}: the instrument reports no {taken} ({problem})")
    viability = _quantity(processed, "viability (cell counter)", PERCENT, where)
    viable = _density(processed, "viable cell density (cell counter)", where)
    if viability is None or viable is None:
        missing = "viability" if viability is None else "viable cell density"
        raise BadInput("file", f"{where} has no {missing}")
    processing = processed.get("data processing document") or {}
    if not isinstance(processing, Mapping):
        raise BadInput("file", f"{where}: its data processing document is not an object")
    return CountReading(
        instrument=instrument,
        model=model,
        serial=serial,
        operator=operator,
        analysed_at=analysed_at,
        date_only=False,
        sample=sample.strip(),
        sample_name=None,
        viable_per_ml=viable,
        total_per_ml=_density(processed, "total cell density (cell counter)", where),
        viability=viability,
        diameter_um=_quantity(processed, "average total cell diameter", MICROMETRE, where),
        dilution=_quantity(processing, "cell density dilution factor", UNITLESS, where),
        status=status_of(_stated_status(measurement, processed), errors),
    )


def status_ok(status: str) -> bool:
    """Whether a count's status lets a step take its numbers: the instrument raised nothing."""
    return status == STATUS_OK


def status_of(stated: str | None, problems: Sequence[tuple[str, str]] = ()) -> str:
    """The sample's status: what the instrument stated ("OK" is ok) and any problem it
    reported with a value, in its words; "ok" when neither says anything."""
    parts = [] if stated is None or stated.strip().casefold() in {"", STATUS_OK} else [stated]
    parts.extend(f"{what}: {problem}" for what, problem in problems)
    return "; ".join(part.strip() for part in parts) or STATUS_OK


def _stated_status(*holders: Mapping[str, Any]) -> str | None:
    """A custom information document's STATUS (NC-View's "Warning: Foreign object
    detected"), in the measurement or its processed result."""
    for holder in holders:
        custom = holder.get("custom information document")
        if not isinstance(custom, Mapping):
            continue
        for key, value in custom.items():
            if isinstance(key, str) and key.casefold() == "status" and value is not None:
                return str(value)
    return None


def _errors(measurement: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """The instrument's errors on the measurement: (feature, error) in its words."""
    aggregate = measurement.get("error aggregate document")
    if aggregate is None:
        return []
    if not isinstance(aggregate, Mapping):
        raise BadInput("file", f"{where}: its error aggregate document is not an object")
    found = []
    for error in _items(aggregate, "error document", where):
        found.append(
            (
                str(error.get("error feature") or "measurement"),
                str(error.get("error") or "error"),
            )
        )
    return found


def _density(holder: Mapping[str, Any], key: str, where: str) -> float | None:
    """A density in cells/mL, from whichever unit the schema allows."""
    datum = _datum(holder, key, where)
    if datum is None:
        return None
    value, unit = datum
    if unit not in DENSITY_UNITS:
        raise BadInput(
            "file",
            f"{where}: {key} is in {shown(unit)}; lims reads {' or '.join(DENSITY_UNITS)}",
        )
    if not math.isfinite(value):
        return value  # refused as implausible, naming the field
    # In decimal, as the file writes it: 2.45 x 10^6 is 2450000, not 2450000.0000000005.
    return float(Decimal(repr(value)).scaleb(DENSITY_UNITS[unit]))


def _quantity(
    holder: Mapping[str, Any], key: str, units: tuple[str, ...], where: str
) -> float | None:
    datum = _datum(holder, key, where)
    if datum is None:
        return None
    value, unit = datum
    if unit not in units:
        raise BadInput(
            "file", f"{where}: {key} is in {shown(unit)}; lims reads {' or '.join(units)}"
        )
    return value


def _datum(holder: Mapping[str, Any], key: str, where: str) -> tuple[float, str] | None:
    """A quantity datum, {"value": number, "unit": text}, or None where there is none."""
    datum = holder.get(key)
    if datum is None:
        return None
    if not isinstance(datum, Mapping):
        raise BadInput("file", f"{where}: {key} is not a value with a unit")
    value, unit = datum.get("value"), datum.get("unit")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput("file", f"{where}: {key} is not a number (got {shown(value)})")
    if not isinstance(unit, str):
        raise BadInput("file", f"{where}: {key} has no unit")
    return float(value), unit


def _mapping(holder: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    found = holder.get(key)
    if not isinstance(found, Mapping):
        raise BadInput("file", f"{where} has no {key}")
    return found


def _items(holder: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    found = holder.get(key)
    if not isinstance(found, list) or not all(isinstance(item, Mapping) for item in found):
        raise BadInput("file", f"{where} has no list of {key}s")
    return found


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # allotropy turns a sample id such as 1 into 1.0
    return str(value)


# --- what a file must be before anything of it is kept -------------------------------------


def checked_file(
    readings: Sequence[CountReading], *, now: datetime, zone: tzinfo
) -> tuple[CountReading, ...]:
    """The readings, if there is at least one and each is plausible and already happened."""
    if not readings:
        raise BadInput("file", "holds no samples")
    for reading in readings:
        checked(reading, now=now, zone=zone)
    return tuple(readings)


def checked(reading: CountReading, *, now: datetime, zone: tzinfo) -> CountReading:
    """The reading, if every value is one an instrument could report and it lies in the past:
    viability 0-100 %, densities finite and from 0 to 10^10/mL with viable at most total,
    texts short, printable and no spreadsheet formula."""
    where = f"sample {shown(reading.sample)}"
    _within(where, "viability", reading.viability, 0, 100, "a percentage from 0 to 100")
    density = f"a density from 0 to {DENSITY_MAX:.0e} cells/mL"
    _within(where, "viable cells/mL", reading.viable_per_ml, 0, DENSITY_MAX, density)
    if reading.total_per_ml is not None:
        _within(where, "total cells/mL", reading.total_per_ml, 0, DENSITY_MAX, density)
        if reading.viable_per_ml > reading.total_per_ml:
            raise BadInput(
                "file",
                f"{where}: viable cells/mL {reading.viable_per_ml:g} exceed total cells/mL "
                f"{reading.total_per_ml:g}",
            )
    if reading.diameter_um is not None:
        allowed = f"from 0 to {DIAMETER_MAX_UM:g} µm"
        _within(where, "diameter", reading.diameter_um, 0, DIAMETER_MAX_UM, allowed)
    if reading.dilution is not None and not (
        math.isfinite(reading.dilution) and reading.dilution > 0
    ):
        raise BadInput(
            "file", f"{where}: dilution must be a positive number (got {reading.dilution:g})"
        )
    _text(where, "sample", reading.sample, TEXT_MAX)
    for name, text, limit in (
        ("sample name", reading.sample_name, TEXT_MAX),
        ("operator", reading.operator, TEXT_MAX),
        ("model", reading.model, TEXT_MAX),
        ("serial", reading.serial, TEXT_MAX),
        ("status", reading.status, STATUS_MAX),
    ):
        if text is not None:
            _text(where, name, text, limit)
    if reading.analysed_at > now:
        raise BadInput(
            "file",
            f"{where} was analysed at {show_time(reading.analysed_at, zone)}, in the future "
            f"(now {show_time(now, zone)}): check the instrument's clock",
        )
    return reading


def _within(where: str, name: str, value: float, low: float, high: float, allowed: str) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise BadInput("file", f"{where}: {name} must be {allowed} (got {value:g})")


def _text(where: str, name: str, text: str, limit: int) -> None:
    if not text.strip():
        raise BadInput("file", f"{where}: {name} is empty")
    if len(text) > limit:
        raise BadInput("file", f"{where}: {name} is longer than {limit} characters")
    if not text.isprintable():
        raise BadInput("file", f"{where}: {name} holds control characters ({shown(text)})")
    if formula_like(text):
        raise BadInput("file", f"{where}: {name} {shown(text)} begins like a spreadsheet formula")


# --- which samples of a file to keep -------------------------------------------------------


def chosen(readings: Sequence[CountReading], samples: Sequence[str], file_name: str) -> list[int]:
    """The places (from 0) of the readings named: each name matched against the sample ids,
    then against the second names (NC-View's NAME); every reading when none is named.

    Several readings may share an id: all of them are chosen. A name that matches nothing
    is not found, naming it.
    """
    if not samples:
        return list(range(len(readings)))
    places: set[int] = set()
    for sample in samples:
        wanted = sample.strip()
        found = [place for place, reading in enumerate(readings) if reading.sample == wanted]
        found = found or [
            place for place, reading in enumerate(readings) if reading.sample_name == wanted
        ]
        if not found:
            raise NotFound(
                f"{file_name} has no sample {shown(sample)} (its samples: "
                f"{_listed([reading.sample for reading in readings])})"
            )
        places.update(found)
    return sorted(places)


def _listed(names: list[str], most: int = 8) -> str:
    unique = list(dict.fromkeys(names))
    shown_names = ", ".join(shown(name, 30) for name in unique[:most])
    return shown_names + (f" and {len(unique) - most} more" if len(unique) > most else "")
