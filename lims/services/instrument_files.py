"""Reading a cell counter's export: which format it is, and every sample's result in it.

A file is read whole before anything of it is kept, and refused whole (BadInput, one line)
when any of it cannot be believed: empty, too large, not text, another instrument's,
truncated, a field a spreadsheet would run as a formula, an implausible value, a sample
analysed in the future, or no samples at all.

allotropy converts the instruments' exports into Allotrope cell-counting documents, which
lims.domain.cell_counting reads. Where allotropy's document loses or invents what a GMP
record needs, a small reader of the raw file supplies that one thing (`_Supplement`, one
per format), after checking that it sees the same samples in the same order:

- every format: the analysis time, read in the instrument's own format. allotropy's
  parser guesses (dateutil, fuzzy): a time without its date becomes today's, a
  day-first date is read month-first, a missing NucleoView time becomes 1970 and a
  NucleoView file without its zone becomes UTC rather than the station's time.
- every format: the operator as written. allotropy fills in a name of its own where the
  file has none ("Vi-CELL", "NC-200") and never reads Vi-CELL XR's "User".
- Vi-CELL BLU: a cell the instrument reports as ERROR ("Cell count", "Viable cells"),
  which allotropy drops silently, makes the sample's status "Cell count: ERROR".
- NC-View: NAME, which allotropy drops (a sample is chosen by SAMPLE ID, then NAME), and
  that its files give the day of analysis only.

Vi-CELL XR (xls, xlsx) and Cedex HiRes (xlsx) also export Excel workbooks, told from text by
their content (an OLE2 compound file, a zip holding xl/workbook.xml). The first sheet's cells
are read (openpyxl, xlrd: what allotropy reads them with) for the same supplements, and a
cell holding a formula is refused as a formula-like text field is; an xlsx is refused
before anything unpacks it if its members unpack to more than MAX_UNPACKED_BYTES.

The ASM format is a cell-counting document exported by any instrument software, read
without allotropy. allotropy, pandas, openpyxl and xlrd are imported only here, when a file
is read.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import re
import stat
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path, PurePath
from typing import Any

from lims.domain.cell_counting import (
    AUTO,
    INSTRUMENTS,
    TEXT_MAX,
    CountFileReading,
    CountReading,
    asm_readings,
    checked_file,
    converter,
    formula_like,
    not_given,
    status_of,
)
from lims.errors import BadInput, NotFound, shown
from lims.timeutil import parse_time
from lims.validation import choice

# Real exports are small: one sample's Vi-CELL XR report with its size histograms is 5 kB,
# a Vi-CELL BLU or NC-View run of a hundred samples under 20 kB. 10 MB leaves room for any
# run a counter makes, and bounds what a file costs: its bytes are kept in the database
# (every station reads them) and reading holds several copies of it in memory.
MAX_FILE_BYTES = 10 * 1024 * 1024
FILE_FIELD = "file"
# Text that is a number in an export: 1.5, 1,5, 2.45E6, 274 000, -0.5.
_NUMBER = re.compile(r"[+-]?(\d[\d \u00a0\u202f]*([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
# A density written 1,780 or 274.000: one separator before exactly three digits groups
# thousands in some locales and is the decimal point in others. allotropy reads a comma as a
# decimal point (pandas a dot), so either reading may be a thousandfold error.
_GROUPED_OR_DECIMAL = re.compile(r"[+-]?[1-9]\d{0,2}[.,]\d{3}")
# How each format names its densities' columns or lines (cells/mL, x10^6 cells/mL, Cell Conc.).
_DENSITY_NAME = re.compile(r"cells\s*/\s*ml|cell conc", re.IGNORECASE)
# A number, at the start of a field, whose exponent overflows a 32-bit integer.
_HUGE_EXPONENT = re.compile(r"(?:^|(?<=[\s,;:\"']))[+-]?[0-9]*\.?[0-9]+[eE][+-]?[0-9]{10,}", re.M)
# A byte sequence only UTF-8 writes: its presence in a file that is not valid UTF-8 says
# the file was UTF-8 and then damaged, not written in Windows-1252.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")
# Characters no text export holds (tab, line feed and carriage return aside): a binary file.
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# An xlsx is a zip of XML: a real export of 30 kB unpacks to under 1 MB. 50 MB unpacked lets
# any run through and refuses a zip bomb (kilobytes that unpack to gigabytes) before openpyxl,
# pandas or calamine inflate it.
MAX_UNPACKED_BYTES = 50 * 2**20
# The first sheet's cells lims looks at: a Vi-CELL XR report is 220 rows of 9 columns, a Cedex
# HiRes run a row of 34 columns per sample.
MAX_SHEET_ROWS = 20_000
MAX_SHEET_COLUMNS = 200
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"
_BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def load(path: Path, field: str = FILE_FIELD, what: str = "an instrument export") -> bytes:
    """The file's bytes: refused before it is opened if it is no regular file, and before it
    is read if it is larger than MAX_FILE_BYTES. `field` and `what` name it in a refusal (a
    temperature logger's export is read and kept the same way)."""
    named = shown(str(path), 200)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise NotFound(f"no file {named}") from None
    except OSError as error:
        raise BadInput(field, f"{named} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(field, f"{named} is not a regular file")
    _not_too_large(path, info.st_size, field, what)
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise BadInput(field, f"{named} cannot be read: {error.strerror}") from None
    _not_too_large(path, len(content), field, what)
    return content


def _not_too_large(
    name: object, size: int, field: str = FILE_FIELD, what: str = "an instrument export"
) -> None:
    if size > MAX_FILE_BYTES:
        raise BadInput(
            field,
            f"{shown(str(name))} is {size:,} bytes; {what} is at most {MAX_FILE_BYTES // 2**20} MB",
        )


def read(
    content: bytes, file_name: str, instrument: str, zone: tzinfo, now: datetime
) -> CountFileReading:
    """Every sample's result in the file, in file order, or BadInput naming what is wrong.

    `instrument` is a key of INSTRUMENTS or AUTO (the format is found from the content,
    never from the file's name). Times without a zone are the station's (zone); nothing may
    have been analysed after `now`.
    """
    choice("instrument", instrument, (AUTO, *INSTRUMENTS))
    _not_too_large(file_name, len(content))
    if not content:
        raise BadInput(FILE_FIELD, "is empty")
    if content.startswith((_OLE2_SIGNATURE, _ZIP_SIGNATURE)):
        return _read_workbook(content, file_name, instrument, zone, now)
    text = _decoded(content)
    _no_overflowing_exponent(text)
    form = _format_of([form for form in FORMATS.values() if form.looks_like(text)], instrument)
    if form.supplement is None:
        readings, parser = _asm(text, zone)
    else:
        # The raw file first: a truncated row or a formula is refused before allotropy loads.
        raws = form.supplement(text, zone)
        readings = [
            _supplemented(reading, raw)
            for reading, raw in _paired(
                _allotropy_readings(
                    text.encode("utf-8"), _named(file_name, form.extension), form, zone
                ),
                raws,
            )
        ]
        parser = f"allotropy {_allotropy_version()}"
    return CountFileReading(
        instrument=form.name,
        parser=parser[:TEXT_MAX],
        readings=checked_file(readings, now=now, zone=zone),
    )


# --- text ---------------------------------------------------------------------------------


def _decoded(content: bytes) -> str:
    """The export as text: UTF-8, UTF-16 or UTF-32 with a byte-order mark, UTF-8 without one,
    or Windows-1252 (older Windows instrument software writes its µ as byte B5). Anything
    else, and text with control characters (a binary file), is refused."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if content.startswith(mark):
            try:
                text = content[len(mark) :].decode(encoding)
            except UnicodeDecodeError as error:
                raise BadInput(
                    FILE_FIELD,
                    f"starts as {encoding.upper()} text but byte {error.start + len(mark)} is "
                    "not: it is damaged or truncated",
                ) from None
            return _text_only(text)
    binary = _CONTROL_BYTE.search(content)
    if binary is not None:
        hint = ": binary, or UTF-16 without its byte-order mark" if 0 in content else ""
        raise BadInput(
            FILE_FIELD,
            f"is not a text export: byte {binary.start()} is 0x{content[binary.start()]:02x}"
            f"{hint or ' (a binary file?)'}",
        )
    try:
        return _text_only(content.decode("utf-8"))
    except UnicodeDecodeError as error:
        if _UTF8_SEQUENCE.search(content):
            raise BadInput(
                FILE_FIELD,
                f"is UTF-8 text with a damaged byte at {error.start} "
                f"(0x{content[error.start]:02x})",
            ) from None
    try:
        return _text_only(content.decode("cp1252"))
    except UnicodeDecodeError as error:
        raise BadInput(
            FILE_FIELD,
            f"is neither UTF-8, UTF-16 nor Windows-1252 text (byte 0x{content[error.start]:02x} "
            f"at {error.start})",
        ) from None


def _text_only(text: str) -> str:
    control = _CONTROL_CHARACTER.search(text)
    if control is not None:
        raise BadInput(
            FILE_FIELD,
            f"is not a text export: it holds control character U+{ord(control.group()):04X} "
            f"(character {control.start() + 1}); is it a binary file?",
        )
    return text


def _no_overflowing_exponent(text: str) -> None:
    """Refuse a number whose exponent has ten digits or more: no instrument writes one, and
    pandas' CSV reader (2.3) crashes the whole process on an exponent past 2^31."""
    found = _HUGE_EXPONENT.search(text)
    if found is not None:
        raise BadInput(
            FILE_FIELD,
            f"holds {shown(found.group(), 40)}, a number whose exponent no instrument writes",
        )


def _rows(text: str, delimiter: str) -> list[list[str]]:
    """The delimited rows of the text, blank lines left out; a field that a spreadsheet
    would run as a formula is refused."""
    found = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for row in reader:
            if not row:
                continue
            for field in row:
                _not_a_formula(field, reader.line_num)
            found.append(row)
    except csv.Error as error:
        raise BadInput(
            FILE_FIELD, f"line {reader.line_num} is not {delimiter!r}-separated: {error}"
        ) from None
    return found


def _not_a_formula(field: str, line: int) -> None:
    if formula_like(field):
        raise BadInput(
            FILE_FIELD,
            f"line {line} holds {shown(field, 40)}, which a spreadsheet would run as a formula",
        )


def _no_ambiguous_density(name: str, value: str, where: str) -> None:
    if _DENSITY_NAME.search(name) and _GROUPED_OR_DECIMAL.fullmatch(value.strip()):
        raise BadInput(
            FILE_FIELD,
            f"{where}: {shown(name.strip(), 40)} is {shown(value.strip())}, which is "
            "thousands in one locale and a decimal fraction in another: lims does not guess",
        )


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


# --- formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    """What a supplement reads of one sample in the raw file."""

    sample: str | None  # None: the file holds one sample and names it as allotropy does
    operator: str | None
    analysed_at: datetime
    date_only: bool = False
    sample_name: str | None = None
    problems: tuple[tuple[str, str], ...] = ()  # (column, value) the instrument flagged


@dataclass(frozen=True)
class _Format:
    name: str  # a key of INSTRUMENTS
    # allotropy's parser, "module:class" under allotropy.parsers; None: read without allotropy.
    # The parser alone is imported: allotropy's factory of every parser it has takes seconds.
    parser: str | None
    extension: str  # what allotropy checks the file's name for
    looks_like: Callable[[str], bool]
    expected: str  # what the format's files begin with, for a refusal
    supplement: Callable[[str, tzinfo], list[_Raw]] | None  # None: an ASM document, read whole
    # The format's Excel export, if it has one: its first sheet, and the supplement read from it.
    sheet_like: Callable[[_Sheet], bool] | None = None
    sheet_supplement: Callable[[_Sheet, tzinfo], list[_Raw]] | None = None


def _first_row(text: str, delimiter: str = ",") -> list[str]:
    for _, line in _lines(text):
        try:
            return [field.strip() for field in next(csv.reader([line], delimiter=delimiter))]
        except (csv.Error, StopIteration):
            return []
    return []


def _header_has(*columns: str) -> Callable[[str], bool]:
    def looks_like(text: str) -> bool:
        header = {unicodedata.normalize("NFKC", name) for name in _first_row(text)}
        return all(column in header for column in columns)

    return looks_like


def _vicell_xr_like(text: str) -> bool:
    return next((line.strip() for _, line in _lines(text)), "").casefold().startswith("vi-cell xr")


def _nucleoview_like(text: str) -> bool:
    return any(
        re.match(r"\s*Viability \(%\)\s*(;|:\t)", line) for _, line in islice(_lines(text), 60)
    )


def _cedex_like(text: str) -> bool:
    header = set(_first_row(text))
    named = "Sample identifier" in header or "Sample identifer" in header
    return "Cedex ID" in header and named and "Viable Cell Conc." in header


def _asm_like(text: str) -> bool:
    return text.lstrip().startswith("{")


# --- supplements: what allotropy's document lacks, read from the raw file --------------------


def _table(text: str, delimiter: str, needed: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """A header row and its data rows, each as long as the header (a shorter row is a
    truncated file), with the needed columns present."""
    rows = _rows(text, delimiter)
    if len(rows) < 2:
        raise BadInput(FILE_FIELD, "holds no samples")
    header = [unicodedata.normalize("NFKC", name.strip()) for name in rows[0]]
    for column in needed:
        if column not in header:
            raise BadInput(FILE_FIELD, f"has no column {shown(column)}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise BadInput(
                FILE_FIELD,
                f"row {number} has {len(row)} fields, its header {len(header)}: the file is "
                "truncated or damaged",
            )
        for name, value in zip(header, row, strict=True):
            _no_ambiguous_density(name, value, f"row {number}")
    return header, rows[1:]


def _vicell_blu(text: str, zone: tzinfo) -> list[_Raw]:
    """Vi-CELL BLU: sample id, "Analysis by", "Analysis date/time", and the cells it
    reports as ERROR (allotropy drops them)."""
    sample, moment, analyst = "Sample ID", "Analysis date/time", "Analysis by"
    header, rows = _table(text, ",", (sample, moment))
    column = {name: place for place, name in reversed(list(enumerate(header)))}
    day_first = _day_first([row[column[moment]] for row in rows])
    raws = []
    for row in rows:
        where = f"sample {shown(row[column[sample]].strip())}"
        raws.append(
            _Raw(
                sample=row[column[sample]].strip(),
                operator=not_given(row[column[analyst]]) if analyst in column else None,
                analysed_at=_slashed_time(row[column[moment]], day_first, zone, where),
                problems=tuple(
                    (header[place], value.strip())
                    for place, value in enumerate(row)
                    if value.strip().upper() == "ERROR"
                ),
            )
        )
    return raws


def _cedex_hires(text: str, zone: tzinfo) -> list[_Raw]:
    """Cedex HiRes: sample identifier, "Username", "Date finished"."""
    return _cedex_rows(*_table(text, ",", ("Date finished",)), zone)


def _cedex_rows(header: list[str], rows: list[list[str]], zone: tzinfo) -> list[_Raw]:
    column = {name: place for place, name in reversed(list(enumerate(header)))}
    sample = "Sample identifier" if "Sample identifier" in column else "Sample identifer"
    if sample not in column:
        raise BadInput(FILE_FIELD, "has no column 'Sample identifier'")
    day_first = _day_first([row[column["Date finished"]] for row in rows])
    return [
        _Raw(
            sample=row[column[sample]].strip(),
            operator=not_given(row[column["Username"]]) if "Username" in column else None,
            analysed_at=_slashed_time(
                row[column["Date finished"]],
                day_first,
                zone,
                f"sample {shown(row[column[sample]].strip())}",
            ),
        )
        for row in rows
    ]


def _nc_view(text: str, zone: tzinfo) -> list[_Raw]:
    """NC-View: SAMPLE ID, NAME (allotropy drops it) and OPERATOR. NAME begins with the day
    of analysis (20240219-00019); the file gives no time of day."""
    header, rows = _table(text, ",", ("NAME", "SAMPLE ID", "OPERATOR"))
    column = {name: place for place, name in reversed(list(enumerate(header)))}
    raws = []
    for row in rows:
        sample, name = row[column["SAMPLE ID"]].strip(), row[column["NAME"]].strip()
        day = _leading_day(name, f"sample {shown(sample)}")
        raws.append(
            _Raw(
                sample=sample,
                sample_name=name or None,
                operator=not_given(row[column["OPERATOR"]]),
                # The day's first moment in the station's zone (fold 0 where DST moves midnight).
                analysed_at=datetime.combine(day, time(), tzinfo=zone),
                date_only=True,
            )
        )
    return raws


def _nucleoview(text: str, zone: tzinfo) -> list[_Raw]:
    """NucleoView (one sample): "Operator", "Date time" (20231120 163016) and "Time zone
    offset" in hours; without an offset the time is the station's."""
    values: dict[str, str] = {}
    for number, line in _lines(text):
        fields = re.split(r";|:\t", line)
        for field in fields:
            _not_a_formula(field, number)
        if len(fields) > 1:
            _no_ambiguous_density(fields[0], fields[1], f"line {number}")
            values.setdefault(fields[0].strip(), fields[1].strip())
    stamp = values.get("Date time", "")
    found = re.fullmatch(r"(\d{4})(\d{2})(\d{2}) (\d{2})(\d{2})(\d{2})", stamp)
    if found is None:
        raise BadInput(
            FILE_FIELD,
            f"its 'Date time' must be the analysis time as YYYYMMDD HHMMSS (got {shown(stamp)})",
        )
    offset = values.get("Time zone offset", "")
    wall = "{}-{}-{}T{}:{}:{}".format(*found.groups())
    return [
        _Raw(
            sample=not_given(values.get("Sample ID")),
            operator=not_given(values.get("Operator")),
            analysed_at=_at(wall, _offset_zone(offset) if offset else zone),
        )
    ]


def _vicell_xr(text: str, zone: tzinfo) -> list[_Raw]:
    """Vi-CELL XR text report (one sample): "Sample ID", "User" (allotropy never reads it)
    and "RunDate" (29 Sep 2023  5:21:32 AM)."""
    values: dict[str, str] = {}
    for number, line in _lines(text):
        key, separator, value = line.partition(" :")
        for field in (key, value.removeprefix(" ")):
            _not_a_formula(field, number)
        if separator:
            _no_ambiguous_density(key, value, f"line {number}")
            values.setdefault(key.strip(), value.strip())
    stamp = next((values[key] for key in _XR_TIME_KEYS if key in values), "")
    return [
        _Raw(
            sample=values.get("Sample ID", "").strip(),
            operator=not_given(values.get("User")),
            analysed_at=_vicell_xr_time(stamp, zone, "its RunDate"),
        )
    ]


_XR_TIME_KEYS = ("RunDate", "Sample date/time", "Sample data/time", "Sample date")  # by version


def _vicell_xr_time(stamp: object, zone: tzinfo, where: str) -> datetime:
    """Vi-CELL XR's analysis time, as its software writes it: 29 Sep 2023  5:21:32 AM."""
    try:
        if not isinstance(stamp, str):
            raise ValueError(stamp)
        wall = datetime.strptime(" ".join(stamp.split()), "%d %b %Y %I:%M:%S %p")
    except ValueError:
        raise BadInput(
            FILE_FIELD,
            f"{where} must be the analysis time written as 29 Sep 2023 5:21:32 AM "
            f"(got {shown(_cell_text(stamp))})",
        ) from None
    return _at(wall.isoformat(), zone, where)


# --- Excel workbooks ------------------------------------------------------------------------

Cell = str | int | float | bool | datetime | None


@dataclass(frozen=True)
class _Sheet:
    """A workbook's first sheet: its cells as text, numbers and date-times, row by row."""

    extension: str  # xls or xlsx, as allotropy is told
    rows: list[list[Cell]]

    def cell(self, row: int, column: int) -> Cell:
        line = self.rows[row] if row < len(self.rows) else []
        return line[column] if column < len(line) else None


def _read_workbook(
    content: bytes, file_name: str, instrument: str, zone: tzinfo, now: datetime
) -> CountFileReading:
    sheet = _first_sheet(content)
    candidates = [form for form in FORMATS.values() if form.sheet_like is not None]
    form = _format_of(
        [form for form in candidates if form.sheet_like is not None and form.sheet_like(sheet)],
        instrument,
        workbook=True,
    )
    assert form.sheet_supplement is not None
    raws = form.sheet_supplement(sheet, zone)
    allotropy = _allotropy_readings(content, _named(file_name, sheet.extension), form, zone)
    return CountFileReading(
        instrument=form.name,
        parser=f"allotropy {_allotropy_version()}"[:TEXT_MAX],
        readings=checked_file(
            [_supplemented(reading, raw) for reading, raw in _paired(allotropy, raws)],
            now=now,
            zone=zone,
        ),
    )


def _first_sheet(content: bytes) -> _Sheet:
    if content.startswith(_OLE2_SIGNATURE):
        return _Sheet("xls", _refused_formulas(_xls_rows(content)))
    return _Sheet("xlsx", _refused_formulas(_xlsx_rows(content)))


def _xlsx_rows(content: bytes) -> list[list[Cell]]:
    """The first sheet of an xlsx, formulas as their text (=...), after its zip's members
    are found to unpack to no more than MAX_UNPACKED_BYTES."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        ValueError,
        OSError,
    ) as error:
        raise BadInput(
            FILE_FIELD, f"is a damaged zip archive, not a readable workbook ({_first_line(error)})"
        ) from None
    if "xl/workbook.xml" not in {member.filename for member in members}:
        raise BadInput(FILE_FIELD, "is a zip archive but no Excel workbook (no xl/workbook.xml)")
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise BadInput(
            FILE_FIELD,
            f"unpacks to {unpacked:,} bytes; an instrument's workbook unpacks to at most "
            f"{MAX_UNPACKED_BYTES // 2**20} MB (a zip bomb?)",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns of styles it ignores
        import openpyxl

        try:
            # data_only=False: a formula cell reads as its formula, to be refused.
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=False)
            try:
                if not book.worksheets:
                    raise ValueError("it has no sheet")
                rows = book.worksheets[0].iter_rows(max_col=MAX_SHEET_COLUMNS, values_only=True)
                return _bounded([list(row) for row in islice(rows, MAX_SHEET_ROWS + 1)])
            finally:
                book.close()
        except BadInput:
            raise
        except Exception as error:  # openpyxl's failures on damaged XML are of every kind
            raise BadInput(
                FILE_FIELD, f"is a damaged or unreadable xlsx workbook ({_first_line(error)})"
            ) from None


def _xls_rows(content: bytes) -> list[list[Cell]]:
    """The first sheet of an xls (an OLE2 compound file; an encrypted xlsx is one too).
    xlrd reads a formula cell's last value, not the formula: text is refused as formula-like
    as the text formats refuse it."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=content, on_demand=True, logfile=io.StringIO())
        try:
            if book.nsheets < 1:
                raise ValueError("it has no sheet")
            sheet = book.sheet_by_index(0)
            rows = []
            for number in range(min(sheet.nrows, MAX_SHEET_ROWS + 1)):
                row: list[Cell] = []
                for cell in sheet.row(number)[:MAX_SHEET_COLUMNS]:
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        row.append(xlrd.xldate_as_datetime(cell.value, book.datemode))
                    elif cell.ctype == xlrd.XL_CELL_ERROR:
                        name = xlrd.error_text_from_code.get(cell.value, "an error")
                        raise BadInput(
                            FILE_FIELD,
                            f"cell {_cell_name(number, len(row))} holds {name}, not a value",
                        )
                    elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                        row.append(None)
                    else:
                        row.append(cell.value)
                rows.append(row)
            return _bounded(rows)
        finally:
            book.release_resources()
    except BadInput:
        raise
    except Exception as error:  # xlrd's failures on damaged or encrypted files are of every kind
        raise BadInput(
            FILE_FIELD,
            f"is an OLE2 file but no readable xls workbook: encrypted, damaged or not Excel "
            f"({_first_line(error)})",
        ) from None


def _bounded(rows: list[list[Cell]]) -> list[list[Cell]]:
    if len(rows) > MAX_SHEET_ROWS:
        raise BadInput(
            FILE_FIELD,
            f"its first sheet has over {MAX_SHEET_ROWS:,} rows; no instrument export has as many",
        )
    return rows


def _refused_formulas(rows: list[list[Cell]]) -> list[list[Cell]]:
    for number, row in enumerate(rows):
        for column, value in enumerate(row):
            if isinstance(value, str) and formula_like(value):
                raise BadInput(
                    FILE_FIELD,
                    f"cell {_cell_name(number, column)} holds {shown(value, 40)}, a formula: "
                    "an instrument's export holds values",
                )
            if value is not None and not isinstance(value, (str, int, float, datetime)):
                raise BadInput(  # openpyxl's array and table formulas, a time without a day
                    FILE_FIELD,
                    f"cell {_cell_name(number, column)} holds {type(value).__name__}, not a value",
                )
    return rows


def _cell_name(row: int, column: int) -> str:
    """A cell's name as Excel shows it (row and column from 0): B7."""
    letters = ""
    column += 1
    while column:
        column, left = divmod(column - 1, 26)
        letters = chr(ord("A") + left) + letters
    return f"{letters}{row + 1}"


def _cell_text(value: object) -> str:
    """A cell as the text the instrument wrote: 7.0 read from a number cell is 7."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).strip()


def _vicell_xr_sheet_like(sheet: _Sheet) -> bool:
    return _cell_text(sheet.cell(0, 0)).casefold().startswith("vi-cell xr")


def _vicell_xr_sheet(sheet: _Sheet, zone: tzinfo) -> list[_Raw]:
    """Vi-CELL XR's workbook, laid out as allotropy reads it: an xlsx with "Sample ID" at A4
    is the one-sample report (the values in column C); otherwise a run summary, a header of
    two rows from A5 (A4 for version 2.04) and a row per sample. Neither layout has a user:
    the operator is none, not allotropy's "Vi-Cell XR"."""
    if sheet.extension == "xlsx" and _cell_text(sheet.cell(3, 0)) == "Sample ID":
        labels = [_cell_text(sheet.cell(row, 0)) for row in (4, 5)]
        if labels != ["File name", "Sample date"]:
            raise BadInput(
                FILE_FIELD,
                "is a Vi-CELL XR report without 'File name' and 'Sample date' in A5 and A6",
            )
        return [
            _Raw(
                sample=_cell_text(sheet.cell(3, 2)),
                operator=None,
                analysed_at=_vicell_xr_time(sheet.cell(5, 2), zone, "its Sample date (C6)"),
            )
        ]
    start = next((row for row in (4, 3) if _cell_text(sheet.cell(row, 0)) == "Sample ID"), None)
    if start is None:
        raise BadInput(FILE_FIELD, "is a Vi-CELL XR workbook without 'Sample ID' in A4 or A5")
    width = max(
        len(sheet.rows[start]), len(sheet.rows[start + 1]) if start + 1 < len(sheet.rows) else 0
    )
    header = [
        " ".join(_cell_text(sheet.cell(row, column)) for row in (start, start + 1))
        .replace(" /ml", "/ml")
        .strip()
        for column in range(width)
    ]
    time_column = next((header.index(key) for key in _XR_TIME_KEYS if key in header), None)
    if time_column is None:
        raise BadInput(FILE_FIELD, "is a Vi-CELL XR workbook without a 'Sample date/time' column")
    raws = []
    for number in range(start + 2, len(sheet.rows)):
        if all(_cell_text(value) == "" for value in sheet.rows[number]):
            continue
        sample = _cell_text(sheet.cell(number, 0))
        raws.append(
            _Raw(
                sample=sample,
                operator=None,
                analysed_at=_vicell_xr_time(
                    sheet.cell(number, time_column),
                    zone,
                    f"sample {shown(sample)}: its time ({_cell_name(number, time_column)})",
                ),
            )
        )
    if not raws:
        raise BadInput(FILE_FIELD, "holds no samples")
    return raws


def _cedex_sheet_like(sheet: _Sheet) -> bool:
    header = {_cell_text(value) for value in sheet.rows[0]} if sheet.rows else set()
    named = "Sample identifier" in header or "Sample identifer" in header
    return "Cedex ID" in header and named and "Viable Cell Conc." in header


def _cedex_sheet(sheet: _Sheet, zone: tzinfo) -> list[_Raw]:
    """Cedex HiRes's workbook: the CSV's table from A1, its times as date cells (read as
    2019-06-18 07:46:47, the station's) or as the CSV writes them."""
    header = [unicodedata.normalize("NFKC", _cell_text(value)) for value in sheet.rows[0]]
    while header and not header[-1]:
        header.pop()
    rows = []
    for number, row in enumerate(sheet.rows[1:], start=2):
        texts = [_cell_text(value) for value in row]
        if not any(texts):
            continue
        if any(texts[len(header) :]):
            raise BadInput(FILE_FIELD, f"row {number} has values right of its header's columns")
        rows.append((texts + [""] * len(header))[: len(header)])
    if not rows:
        raise BadInput(FILE_FIELD, "holds no samples")
    if "Date finished" not in header:
        raise BadInput(FILE_FIELD, "has no column 'Date finished'")
    return _cedex_rows(header, rows, zone)


FORMATS = {
    form.name: form
    for form in (
        _Format(
            "vicell-blu",
            "beckman_vi_cell_blu.vi_cell_blu_parser:ViCellBluParser",
            "csv",
            _header_has("Sample ID", "Viability (%)", "Viable (x10^6) cells/mL"),
            "a header naming Sample ID, Viability (%) and Viable (x10^6) cells/mL",
            _vicell_blu,
        ),
        _Format(
            "vicell-xr",
            "beckman_vi_cell_xr.vi_cell_xr_parser:ViCellXRParser",
            "txt",
            _vicell_xr_like,
            "a first line 'Vi-CELL XR' and its version (the text report)",
            _vicell_xr,
            _vicell_xr_sheet_like,
            _vicell_xr_sheet,
        ),
        _Format(
            "nc-200",
            "chemometec_nucleoview.nucleoview_parser:ChemometecNucleoviewParser",
            "csv",
            _nucleoview_like,
            "'key;value' lines with 'Viability (%)' among them",
            _nucleoview,
        ),
        _Format(
            "nc-202",
            "chemometec_nc_view.chemometec_nc_view_parser:ChemometecNcViewParser",
            "csv",
            _header_has("NAME", "SAMPLE ID", "VIABILITY (%)", "LIVE (cells/ml)"),
            "a header naming NAME, SAMPLE ID, VIABILITY (%) and LIVE (cells/ml)",
            _nc_view,
        ),
        _Format(
            "cedex-hires",
            "roche_cedex_hires.roche_cedex_hires_parser:RocheCedexHiResParser",
            "csv",
            _cedex_like,
            "a header naming Cedex ID, Sample identifier and Viable Cell Conc.",
            _cedex_hires,
            _cedex_sheet_like,
            _cedex_sheet,
        ),
        _Format(
            "asm",
            None,
            "json",
            _asm_like,
            "a JSON object with an Allotrope cell-counting manifest",
            None,
        ),
    )
}


def _format_of(found: Sequence[_Format], instrument: str, workbook: bool = False) -> _Format:
    """The file's format among those its content looks like; with an instrument named, that
    one's or refused."""
    if instrument == AUTO:
        if not found:
            if workbook:
                raise BadInput(
                    FILE_FIELD,
                    "is an Excel workbook of no export lims reads (tried "
                    f"{', '.join(_WORKBOOK_FORMATS)}); give --instrument to hear what it needs",
                )
            raise BadInput(
                FILE_FIELD,
                f"is no export lims reads (tried {', '.join(FORMATS)}); give --instrument "
                "to hear what the format needs",
            )
        return found[0]
    wanted = FORMATS[instrument]
    if wanted in found:
        return wanted
    if found:
        other = found[0].name
        raise BadInput(
            "instrument",
            f"the file is a {other} export ({INSTRUMENTS[other]}), not {instrument}: give "
            f"--instrument {other} or auto",
        )
    if workbook and wanted.sheet_like is None:
        raise BadInput(
            FILE_FIELD,
            f"is an Excel workbook, and {instrument} exports none: lims reads workbooks of "
            f"{', '.join(_WORKBOOK_FORMATS)}",
        )
    raise BadInput(
        FILE_FIELD,
        f"is not a {instrument} export ({INSTRUMENTS[instrument]}): it lacks {wanted.expected}",
    )


_WORKBOOK_FORMATS = [name for name, form in FORMATS.items() if form.sheet_like is not None]


# --- times, as each instrument writes them -------------------------------------------------

_SLASHED = re.compile(
    r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?"
)
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")


def _day_first(stamps: Sequence[str]) -> bool:
    """Whether the file writes its dates day first (21/3/2022), as its own dates show: a
    first number above 12 is a day, a second one above 12 a day too. Without either the
    instrument's own default, month first (3/21/2022), holds."""
    firsts, seconds = set(), set()
    for stamp in stamps:
        found = _SLASHED.fullmatch(stamp.strip())
        if found:
            firsts.add(int(found[1]))
            seconds.add(int(found[3]))
    if max(firsts, default=0) > 12 and max(seconds, default=0) > 12:
        raise BadInput(FILE_FIELD, "its dates are written both day first and month first")
    return max(firsts, default=0) > 12


def _slashed_time(stamp: str, day_first: bool, zone: tzinfo, where: str) -> datetime:
    """A time as 3/21/2022 16:56 (or 21/3/2022, 3-21-2022 4:56:00 PM, 2022-03-21 16:56)."""
    text = stamp.strip()
    iso = _ISO.fullmatch(text)
    if iso is not None:
        year, month, day, hour, minute, second = iso.groups()
        meridiem = None
    else:
        slashed = _SLASHED.fullmatch(text)
        if slashed is None:
            raise BadInput(
                FILE_FIELD,
                f"{where}: analysis time {shown(text)} is not a date and time such as "
                "3/21/2022 16:56",
            )
        first, _, second_number, year, hour, minute, second, meridiem = slashed.groups()
        day, month = (first, second_number) if day_first else (second_number, first)
    try:
        clock = int(hour)
        if meridiem is not None:
            if not 1 <= clock <= 12:
                raise ValueError(f"hour {clock} with {meridiem}")
            clock = clock % 12 + (12 if meridiem.upper() == "PM" else 0)
        wall = datetime(int(year), int(month), int(day), clock, int(minute), int(second or 0))
    except ValueError:
        raise BadInput(FILE_FIELD, f"{where}: analysis time {shown(text)} is no date") from None
    return _at(wall.isoformat(), zone, where)


def _leading_day(name: str, where: str) -> date:
    found = re.match(r"(\d{4})(\d{2})(\d{2})(?!\d)", name)
    try:
        if found is None:
            raise ValueError(name)
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise BadInput(
            FILE_FIELD,
            f"{where}: its NAME {shown(name)} does not begin with the day of analysis (YYYYMMDD)",
        ) from None


def _offset_zone(hours: str) -> tzinfo:
    """NucleoView's "Time zone offset": hours east of UTC, e.g. 2 or -5 or 5.5."""
    try:
        value = Decimal(hours.strip().replace(",", "."))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or abs(value) > 14:
        raise BadInput(
            FILE_FIELD, f"its 'Time zone offset' must be hours east of UTC (got {shown(hours)})"
        )
    return timezone(timedelta(hours=float(value)))


def _at(wall: str, zone: tzinfo, where: str = "its analysis time") -> datetime:
    try:
        return parse_time("analysis time", wall, zone)
    except BadInput as error:
        raise BadInput(FILE_FIELD, f"{where}: {error.message}") from None


# --- allotropy, and what it lacks ----------------------------------------------------------


def _named(file_name: str, extension: str) -> str:
    """The name allotropy is given: it takes the format from the extension, so the extension
    says what the content is, whatever the user's file is called."""
    return f"{PurePath(file_name).stem or 'export'}.{extension}"


def _allotropy_readings(
    content: bytes, name: str, form: _Format, zone: tzinfo
) -> list[CountReading]:
    """The file through allotropy, as cell-counting readings (before the supplement)."""
    document = _allotropy_document(content, name, form, zone)
    return asm_readings(document, instrument=form.name, zone=zone)


def _allotropy_document(content: bytes, name: str, form: _Format, zone: tzinfo) -> dict[str, Any]:
    assert form.parser is not None
    module, parser_class = form.parser.split(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' and allotropy's warnings are not the user's
        from allotropy.allotrope.allotrope import serialize_and_validate_allotrope
        from allotropy.named_file_contents import NamedFileContents
        from allotropy.parsers.utils.timestamp_parser import TimestampParser

        parser = getattr(importlib.import_module(f"allotropy.parsers.{module}"), parser_class)
        _quiet("allotropy")
        try:
            # What allotropy.to_allotrope.allotrope_from_io does once it knows the vendor.
            model = parser(TimestampParser(zone)).to_allotrope(
                NamedFileContents(io.BytesIO(content), name, "utf-8")
            )
            return serialize_and_validate_allotrope(model)
        except Exception as error:  # allotropy's failures are of every kind: none is a bug here
            raise BadInput(
                FILE_FIELD,
                f"is not a readable {form.name} export ({INSTRUMENTS[form.name]}): "
                f"{_first_line(error)}",
            ) from None


def _quiet(logger: str) -> None:
    """A library's log lines stay off the terminal: a refusal is one line."""
    library = logging.getLogger(logger)
    if not any(isinstance(handler, logging.NullHandler) for handler in library.handlers):
        library.addHandler(logging.NullHandler())
        library.propagate = False


def _first_line(error: Exception) -> str:
    said = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return said if len(said) <= 160 else said[:157] + "…"


def _allotropy_version() -> str:
    from importlib.metadata import version

    return version("allotropy")


def _paired(readings: list[CountReading], raws: list[_Raw]) -> Iterator[tuple[CountReading, _Raw]]:
    """Each reading with the raw file's row of the same sample, in the same order."""
    if len(readings) != len(raws):
        raise BadInput(
            FILE_FIELD,
            f"allotropy read {len(readings)} samples where the file has {len(raws)} rows: "
            "lims cannot tell which is which",
        )
    for place, (reading, raw) in enumerate(zip(readings, raws, strict=True), start=1):
        if raw.sample == "":
            raise BadInput(FILE_FIELD, f"sample {place} has no sample id")
        if raw.sample is not None and not _same_sample(reading.sample, raw.sample):
            raise BadInput(
                FILE_FIELD,
                f"sample {place}: allotropy read {shown(reading.sample)}, the file says "
                f"{shown(raw.sample)}",
            )
        yield reading, raw


def _same_sample(read: str, written: str) -> bool:
    """The same sample id: as written, or as the number pandas made of it (007 read as 7)."""
    if read == written:
        return True
    if not (_NUMBER.fullmatch(read) and _NUMBER.fullmatch(written)):
        return False
    try:
        return Decimal(read.replace(",", ".")) == Decimal(written.replace(",", "."))
    except InvalidOperation:
        return False


def _supplemented(reading: CountReading, raw: _Raw) -> CountReading:
    return replace(
        reading,
        sample=raw.sample if raw.sample is not None else reading.sample,
        sample_name=raw.sample_name,
        operator=raw.operator,
        analysed_at=raw.analysed_at,
        date_only=raw.date_only,
        status=status_of(reading.status, raw.problems),
    )


# --- an Allotrope cell-counting document, as exported by instrument software ---------------


def _asm(text: str, zone: tzinfo) -> tuple[list[CountReading], str]:
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise BadInput(FILE_FIELD, f"is not valid JSON ({_first_line(error)})") from None
    if not isinstance(document, dict):
        raise BadInput(FILE_FIELD, "is JSON but not an Allotrope document (an object)")
    for text_in_it in _strings(document):
        _not_a_formula(text_in_it, 1)
    readings = asm_readings(document, instrument="asm", zone=zone)
    return readings, converter(document) or "Allotrope document"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _strings(document: Any) -> Iterator[str]:
    """Every text in a JSON document, keys too; without recursion, however deep it nests."""
    waiting = [document]
    while waiting:
        value = waiting.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            waiting.extend(value.keys())
            waiting.extend(value.values())
        elif isinstance(value, list):
            waiting.extend(value)
