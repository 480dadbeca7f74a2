"""Real cell-counter exports (../shared/instrument-files) and what each says, read plainly.

The expected values come from the files themselves, through the csv module and plain text
parsing written for these tests, never from numbers typed into a test: a test that compares
lims's reading with them compares two independent readers of the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# The repository's root, beside which CI checks out ../shared.
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "instrument-files"
BLU = SHARED / "Beckman_Vi-Cell-BLU_example01.csv"
XR = SHARED / "Beckman_Vi-Cell-XR_example07_instrumentOutput.txt"
NUCLEOVIEW = SHARED / "chemometec_nucleoview_example01.csv"
NC_VIEW = SHARED / "chememotec_nc_view_example.csv"
# Each shared file and the --instrument name of its format.
SHARED_FILES = {BLU: "vicell-blu", XR: "vicell-xr", NUCLEOVIEW: "nc-200", NC_VIEW: "nc-202"}
STATION_ZONE = ZoneInfo("Europe/Rome")  # the tests' LIMS_TIMEZONE (tests/conftest.py)
MILLION = Decimal(10) ** 6


@dataclass(frozen=True)
class Sample:
    """One sample's result as its file writes it."""

    sample: str
    sample_name: str | None
    operator: str | None
    analysed_at: datetime  # aware; the day's first moment in the station's zone if date_only
    date_only: bool
    viable_per_ml: float
    total_per_ml: float
    viability: float
    diameter_um: float
    dilution: float
    serial: str | None
    flagged: str | None  # what the instrument flagged (an ERROR cell, a warning), or None


def exports() -> list[Path]:
    """Every export in the shared directory, its README and licence aside, by name: a file
    added there is one samples_of and SHARED_FILES must know (a KeyError until they do)."""
    return sorted(
        path
        for path in SHARED.iterdir()
        if path.is_file() and not path.name.startswith(("README", "LICENSE"))
    )


def samples_of(path: Path) -> list[Sample]:
    """What the file at path says of each sample, in file order."""
    text = path.read_bytes().decode("utf-8")
    reader = {BLU: _vicell_blu, XR: _vicell_xr, NUCLEOVIEW: _nucleoview, NC_VIEW: _nc_view}
    return reader[path](text)


def _per_ml(text: str, scale: Decimal = Decimal(1)) -> float:
    return float(Decimal("".join(text.split())) * scale)


def _vicell_blu(text: str) -> list[Sample]:
    found = []
    for row in csv.DictReader(io.StringIO(text)):
        errors = [column for column, value in row.items() if value == "ERROR"]
        found.append(
            Sample(
                sample=row["Sample ID"],
                sample_name=None,
                operator=row["Analysis by"],
                analysed_at=datetime.strptime(row["Analysis date/time"], "%m/%d/%Y %H:%M").replace(
                    tzinfo=STATION_ZONE
                ),
                date_only=False,
                viable_per_ml=_per_ml(row["Viable (x10^6) cells/mL"], MILLION),
                total_per_ml=_per_ml(row["Total (x10^6) cells/mL"], MILLION),
                viability=float(row["Viability (%)"]),
                diameter_um=float(row["Average diameter (\u03bcm)"]),
                dilution=float(row["Dilution"]),
                serial=None,
                flagged=", ".join(errors) or None,
            )
        )
    return found


def _key_values(text: str, separator: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition(separator)
        if found:
            values.setdefault(key.strip(), value.strip().rstrip(";").strip())
    return values


def _vicell_xr(text: str) -> list[Sample]:
    values = _key_values(text, " : ")
    return [
        Sample(
            sample=values["Sample ID"],
            sample_name=None,
            operator=values.get("User") or None,
            analysed_at=datetime.strptime(
                " ".join(values["RunDate"].split()), "%d %b %Y %I:%M:%S %p"
            ).replace(tzinfo=STATION_ZONE),
            date_only=False,
            viable_per_ml=_per_ml(values["Total viable cells / ml (x 10^6)"], MILLION),
            total_per_ml=_per_ml(values["Total cells / ml (x 10^6)"], MILLION),
            viability=float(values["Viability (%)"]),
            diameter_um=float(values["Average diameter (microns)"]),
            dilution=float(values["Dilution"]),
            serial=values["Unit S/N"],
            flagged=None,
        )
    ]


def _nucleoview(text: str) -> list[Sample]:
    values = _key_values(text, ";")
    offset = timezone(timedelta(hours=int(values["Time zone offset"])))
    return [
        Sample(
            sample=values["Image"].rsplit("-", 1)[-1],
            sample_name=None,
            operator=values["Operator"],
            analysed_at=datetime.strptime(values["Date time"], "%Y%m%d %H%M%S").replace(
                tzinfo=offset
            ),
            date_only=False,
            viable_per_ml=_per_ml(values["Live (cells/ml)"]),
            total_per_ml=_per_ml(values["Total (cells/ml)"]),
            viability=float(values["Viability (%)"]),
            diameter_um=float(values["Estimated cell diameter (um)"]),
            dilution=float(values["Multiplication factor"]),
            serial=values["Instrument s/n"].removeprefix("s/n ").strip(),
            flagged=None,
        )
    ]


def _nc_view(text: str) -> list[Sample]:
    found = []
    for row in csv.DictReader(io.StringIO(text)):
        day = datetime.strptime(row["NAME"][:8], "%Y%m%d").date()
        found.append(
            Sample(
                sample=row["SAMPLE ID"],
                sample_name=row["NAME"],
                operator=row["OPERATOR"],
                analysed_at=datetime.combine(day, time(), tzinfo=STATION_ZONE),
                date_only=True,
                viable_per_ml=_per_ml(row["LIVE (cells/ml)"]),
                total_per_ml=_per_ml(row["TOTAL (cells/ml)"]),
                viability=float(row["VIABILITY (%)"]),
                diameter_um=float(row["DIAMETER (\u00b5m)"]),
                dilution=float(row["DILUTION FACTOR"]),
                serial=row["INSTRUMENT"].partition(":")[2].strip(),
                flagged=None if row["STATUS"] == "OK" else row["STATUS"],
            )
        )
    return found


def analysed_before(path: Path) -> datetime:
    """A moment just before the file's first analysis: every sample is then in the future."""
    return min(sample.analysed_at for sample in samples_of(path)) - timedelta(minutes=1)


# --- files written for tests, in an instrument's format -----------------------------------

# Roche Cedex HiRes's CSV columns, as its software writes them ("identifer" its own typo).
CEDEX_COLUMNS = [
    "Cedex ID",
    "System name",
    "System description",
    "Default system",
    "Cedex ID (processed)",
    "System name (processed)",
    "System description (processed)",
    "Default system (processed)",
    "Workarea name",
    "Reactor identifer",
    "Sample identifer",
    "Data set name",
    "Comment",
    "Dilution",
    "Sample volume",
    "Cell type name",
    "Sample draw Time",
    "Date finished",
    "Username",
    "Avg Diameter",
    "Avg Area",
    "Avg Perimeter",
    "Avg Segm. Area",
    "Avg Compactness",
    "Viable Cell Count",
    "Dead Cell Count",
    "Total Object Count",
    "Viability",
    "Viable Cell Conc.",
    "Dead Cell Conc.",
    "Total Cell Conc.",
    "Std Dev.",
    "Total Cell Count",
    "Aggregate Rate",
]


def cedex_file(samples: Iterable[Mapping[str, str]]) -> bytes:
    """A Cedex HiRes export of these samples: each maps some of CEDEX_COLUMNS to its text,
    the rest as a Cedex HiRes at the site would fill them."""
    typical = {
        "Cedex ID": "3714019",
        "System name": "G037DE019",
        "System description": "msc lab",
        "Default system": "1",
        "Workarea name": "standard",
        "Reactor identifer": "T175",
        "Data set name": "Original",
        "Dilution": "2",
        "Sample volume": "300",
        "Cell type name": "MSC",
        "Sample draw Time": "6-17-2019 8:34:01 AM",
        "Username": "SuperUser",
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CEDEX_COLUMNS)
    for sample in samples:
        values = {**typical, **sample}
        writer.writerow([values.get(column, "") for column in CEDEX_COLUMNS])
    return out.getvalue().encode("utf-8")


def cedex_samples(content: bytes) -> list[dict[str, str]]:
    """The rows of a Cedex HiRes export, by column."""
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def cedex_time(text: str, zone: tzinfo = STATION_ZONE) -> datetime:
    return datetime.strptime(text, "%m-%d-%Y %I:%M:%S %p").replace(tzinfo=zone)


def asm_document(
    *measurements: Mapping[str, Any],
    manifest: str = "http://purl.allotrope.org/manifests/cell-counting/REC/2024/09/"
    "cell-counting.manifest",
    device: Mapping[str, Any] | None = None,
    analyst: str | None = "jdoe",
) -> dict[str, Any]:
    """An Allotrope cell-counting document with one technique document per measurement."""
    return {
        "$asm.manifest": manifest,
        "cell counting aggregate document": {
            "data system document": {
                "ASM converter name": "vendor-software",
                "ASM converter version": "4.2",
            },
            "device system document": dict(
                device or {"equipment serial number": "S/N 12345", "model number": "Counter 3"}
            ),
            "cell counting document": [
                {
                    **({"analyst": analyst} if analyst is not None else {}),
                    "measurement aggregate document": {"measurement document": [measurement]},
                }
                for measurement in measurements
            ],
        },
    }


def asm_measurement(
    sample: str = "P2-harvest",
    *,
    time_text: str = "2026-11-25T09:30:00+01:00",
    viable: float = 1.25,
    total: float | None = 1.3,
    viability: float = 96.2,
    unit: str = "10^6 cells/mL",
    diameter: float | None = 17.5,
    dilution: float | None = 2.0,
    custom: Mapping[str, Any] | None = None,
    errors: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A measurement document as a cell counter's software writes one."""
    processed: dict[str, Any] = {
        "viability (cell counter)": {"value": viability, "unit": "%"},
        "viable cell density (cell counter)": {"value": viable, "unit": unit},
    }
    if total is not None:
        processed["total cell density (cell counter)"] = {"value": total, "unit": unit}
    if diameter is not None:
        processed["average total cell diameter"] = {"value": diameter, "unit": "\u00b5m"}
    if dilution is not None:
        processed["data processing document"] = {
            "cell density dilution factor": {"value": dilution, "unit": "(unitless)"}
        }
    measurement: dict[str, Any] = {
        "measurement identifier": f"m-{sample}",
        "measurement time": time_text,
        "sample document": {"sample identifier": sample},
        "processed data aggregate document": {"processed data document": [processed]},
    }
    if custom is not None:
        measurement["custom information document"] = dict(custom)
    problems = list(errors)
    if problems:
        measurement["error aggregate document"] = {
            "error document": [
                {"error feature": feature, "error": error} for feature, error in problems
            ]
        }
    return measurement


def asm_file(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def day_start(day: date, zone: tzinfo = STATION_ZONE) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


# --- Excel workbooks written for tests, from the shared text exports ------------------------


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def vicell_xr_report_rows(path: Path = XR) -> dict[tuple[int, int], object]:
    """The Vi-CELL XR text report's values where Vi-CELL XR's one-sample xlsx report puts them
    (allotropy's reader: A4 "Sample ID", values in C; results in D, settings in I from row 10),
    by (row, column) counted from 0."""
    text = path.read_bytes().decode("utf-8")
    values = _key_values(text, " : ")
    cells: dict[tuple[int, int], object] = {
        (0, 0): text.splitlines()[0].strip(),
        (1, 0): "Beckman Coulter, Inc.",
        (3, 0): "Sample ID",
        (3, 2): values["Sample ID"],
        (4, 0): "File name",
        (4, 2): values["File name"],
        (5, 0): "Sample date",
        (5, 2): values["RunDate"],
        (8, 0): "Results",
        (8, 5): "Settings",
    }
    results = {
        "Total cells": "Total cells",
        "Viable cells": "Viable cells",
        "Viability (%)": "Viability (%)",
        "Total cells / ml (x10^6)": "Total cells / ml (x 10^6)",
        "Viable cells / ml (x10^6)": "Total viable cells / ml (x 10^6)",
        "Average diameter (microns)": "Average diameter (microns)",
        "Average circularity": "Average circularity",
        "Images": "Images",
        "Average cells / image": "Average cells / image",
    }
    for row, (label, key) in enumerate(results.items(), start=9):
        cells[row, 0], cells[row, 3] = label, _number_or_text(values[key])
    settings = {
        "Cell type": "Cell type",
        "Minimum diameter (microns)": "Minimum diameter (microns)",
        "Maximum diameter (microns)": "Maximum diameter (microns)",
        "Minimum circularity": "Minimum circularity",
        "Dilution factor": "Dilution",
        "Cell brightness (%)": "Cell brightness (%)",
        "Cell sharpness": "Cell sharpness",
    }
    for row, (label, key) in enumerate(settings.items(), start=9):
        cells[row, 5], cells[row, 8] = label, _number_or_text(values[key])
    return cells


def vicell_xr_summary_rows(path: Path = XR) -> dict[tuple[int, int], object]:
    """The Vi-CELL XR text report as the one row of an XR 2.06 run summary (xls or xlsx):
    model, path and serial in A1:A3, a header of two rows from A5, the sample in row 7."""
    text = path.read_bytes().decode("utf-8")
    values = _key_values(text, " : ")
    columns = [
        ("Sample ID", "", values["Sample ID"]),
        ("File name", "", values["File name"]),
        ("Cell type", "", values["Cell type"]),
        ("Dilution", "factor", _number_or_text(values["Dilution"])),
        ("Sample date/time", "", values["RunDate"]),
        ("Total", "cells", _number_or_text(values["Total cells"])),
        ("Viable", "cells", _number_or_text(values["Viable cells"])),
        ("Viability", "(%)", _number_or_text(values["Viability (%)"])),
        ("Total cells", "/ml (x10^6)", _number_or_text(values["Total cells / ml (x 10^6)"])),
        (
            "Viable cells",
            "/ml (x10^6)",
            _number_or_text(values["Total viable cells / ml (x 10^6)"]),
        ),
        ("Avg. diam.", "(microns)", _number_or_text(values["Average diameter (microns)"])),
        ("Avg. circ.", "", _number_or_text(values["Average circularity"])),
    ]
    cells: dict[tuple[int, int], object] = {
        (0, 0): text.splitlines()[0].strip(),
        (1, 0): "z:\\export\\run.xls",
        (2, 0): f"Unit S/N:  {values['Unit S/N']}",
        (3, 0): "  ",
    }
    for column, (top, bottom, value) in enumerate(columns):
        cells[4, column], cells[6, column] = top, value
        if bottom:
            cells[5, column] = bottom
    return cells


def cedex_rows(content: bytes) -> dict[tuple[int, int], object]:
    """A Cedex HiRes CSV export as its xlsx: numbers as numbers, times as date cells."""
    cells: dict[tuple[int, int], object] = {}
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    for row, fields in enumerate(rows):
        for column, field in enumerate(fields):
            if row and rows[0][column] in ("Date finished", "Sample draw Time") and field:
                cells[row, column] = cedex_time(field).replace(tzinfo=None)
            elif field:
                cells[row, column] = _number_or_text(field) if row else field
    return cells


def xlsx_of(cells: Mapping[tuple[int, int], object], title: str = "Sheet1") -> bytes:
    """An xlsx workbook of one sheet holding these cells ((row, column) from 0)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for (row, column), value in cells.items():
        sheet.cell(row + 1, column + 1, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_of(cells: Mapping[tuple[int, int], object], title: str = "Sheet1") -> bytes:
    """An xls (BIFF8) workbook of one sheet holding these cells ((row, column) from 0)."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet(title)
    for (row, column), value in cells.items():
        sheet.write(row, column, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
