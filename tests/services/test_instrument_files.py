"""Reading cell-counter exports (issue 14): the shared real files read as they say, through
allotropy and the raw-file supplements; every kind of bad file refused whole, in one line.

No database here: lims.services.instrument_files.read is the whole of reading.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lims.domain.cell_counting import STATUS_OK, CountReading, status_ok
from lims.errors import BadInput, NotFound
from lims.services.instrument_files import MAX_FILE_BYTES, load, read
from tests.support.instrument_files import (
    BLU,
    NC_VIEW,
    NUCLEOVIEW,
    SHARED_FILES,
    STATION_ZONE,
    XR,
    Sample,
    analysed_before,
    asm_document,
    asm_file,
    asm_measurement,
    cedex_file,
    cedex_rows,
    cedex_samples,
    cedex_time,
    samples_of,
    vicell_xr_report_rows,
    vicell_xr_summary_rows,
    xls_of,
    xlsx_of,
)

NOW = datetime.now(UTC)


def _read(content: bytes, name: str = "export.csv", instrument: str = "auto") -> list[CountReading]:
    return list(read(content, name, instrument, STATION_ZONE, NOW).readings)


def _refused(content: bytes, *words: str, instrument: str = "auto", field: str = "file") -> str:
    with pytest.raises(BadInput) as refusal:
        read(content, "export.csv", instrument, STATION_ZONE, NOW)
    assert refusal.value.field == field
    assert "\n" not in refusal.value.message
    for word in words:
        assert word in refusal.value.message, (word, refusal.value.message)
    return refusal.value.message


def _as_written(reading: CountReading, sample: Sample) -> None:
    assert reading.sample == sample.sample
    assert reading.sample_name == sample.sample_name
    assert reading.operator == sample.operator
    assert reading.analysed_at == sample.analysed_at
    assert reading.date_only is sample.date_only
    assert reading.viable_per_ml == sample.viable_per_ml
    assert reading.total_per_ml == sample.total_per_ml
    assert reading.viability == sample.viability
    assert reading.diameter_um == sample.diameter_um
    assert reading.dilution == sample.dilution
    assert reading.serial == sample.serial
    if sample.flagged is None:
        assert reading.status == STATUS_OK
    else:
        assert not status_ok(reading.status)
        for flag in sample.flagged.split(", "):
            assert flag in reading.status


@pytest.mark.parametrize("path", list(SHARED_FILES), ids=lambda path: path.name)
def test_each_shared_file_reads_as_the_file_itself_says(path: Path) -> None:
    found = read(path.read_bytes(), path.name, "auto", STATION_ZONE, NOW)

    assert found.instrument == SHARED_FILES[path]
    assert found.parser.startswith("allotropy 0.1.")
    expected = samples_of(path)
    assert len(found.readings) == len(expected)
    for reading, sample in zip(found.readings, expected, strict=True):
        assert reading.instrument == SHARED_FILES[path]
        _as_written(reading, sample)


@pytest.mark.parametrize("path", list(SHARED_FILES), ids=lambda path: path.name)
def test_each_shared_file_reads_the_same_with_its_instrument_named(path: Path) -> None:
    named = _read(path.read_bytes(), path.name, SHARED_FILES[path])
    assert [reading.viable_per_ml for reading in named] == [
        sample.viable_per_ml for sample in samples_of(path)
    ]


def test_the_vi_cell_blu_row_with_error_cells_is_not_ok_though_allotropy_drops_them() -> None:
    readings = _read(BLU.read_bytes())
    flagged = {sample.sample: sample.flagged for sample in samples_of(BLU) if sample.flagged}
    assert flagged  # the shared file has its ERROR row (CLB008)
    for reading in readings:
        assert status_ok(reading.status) is (reading.sample not in flagged)
    for sample, columns in flagged.items():
        [reading] = [reading for reading in readings if reading.sample == sample]
        assert reading.status == "; ".join(f"{column}: ERROR" for column in columns.split(", "))


def test_nc_view_warnings_are_kept_and_its_name_is_the_samples_second_name() -> None:
    readings = _read(NC_VIEW.read_bytes())
    warned = [sample for sample in samples_of(NC_VIEW) if sample.flagged]
    assert warned
    for sample in warned:
        [reading] = [reading for reading in readings if reading.sample == sample.sample]
        assert reading.status == sample.flagged
        assert reading.sample_name == sample.sample_name


def test_nc_view_gives_the_day_only_its_first_moment_in_the_stations_zone() -> None:
    for reading, sample in zip(_read(NC_VIEW.read_bytes()), samples_of(NC_VIEW), strict=True):
        assert reading.date_only
        local = reading.analysed_at.astimezone(STATION_ZONE)
        assert (local.date(), local.hour, local.minute) == (sample.analysed_at.date(), 0, 0)


def test_nucleoview_keeps_the_zone_the_file_gives_not_the_stations() -> None:
    [reading] = _read(NUCLEOVIEW.read_bytes())
    [sample] = samples_of(NUCLEOVIEW)
    assert reading.analysed_at == sample.analysed_at
    as_if_local = sample.analysed_at.replace(tzinfo=STATION_ZONE)
    assert sample.analysed_at.utcoffset() != as_if_local.utcoffset()
    assert reading.analysed_at != as_if_local


def test_nucleoview_without_its_zone_is_in_the_stations_not_utc() -> None:
    content = re.sub(rb"Time zone offset;[^\r\n]*\r\n", b"", NUCLEOVIEW.read_bytes())
    [reading] = _read(content)
    [sample] = samples_of(NUCLEOVIEW)
    assert reading.analysed_at == sample.analysed_at.replace(tzinfo=STATION_ZONE)


def test_nucleoview_without_its_time_is_refused_not_dated_1970() -> None:
    content = re.sub(rb"Date time;[^\r\n]*\r\n", b"", NUCLEOVIEW.read_bytes())
    _refused(content, "Date time", "YYYYMMDD HHMMSS")


def test_nucleoview_with_its_time_cut_short_is_refused() -> None:
    content = re.sub(rb"(Date time;\d{8} \d{2})\d{4}", rb"\1", NUCLEOVIEW.read_bytes())
    _refused(content, "Date time")


def test_nucleoview_without_an_operator_has_none_not_the_instruments_name() -> None:
    content = re.sub(rb"Operator;[^\r\n]*\r\n", b"", NUCLEOVIEW.read_bytes())
    [reading] = _read(content)
    assert reading.operator is None


def test_vi_cell_xr_gives_its_serial_and_its_user_as_operator() -> None:
    [sample] = samples_of(XR)
    assert sample.serial
    [reading] = _read(XR.read_bytes(), XR.name)
    assert reading.serial == sample.serial
    assert reading.operator is None  # its User line is empty
    [named] = _read(XR.read_bytes().replace(b"User :", b"User : jdoe"), XR.name)
    assert named.operator == "jdoe"


def test_a_vi_cell_blu_export_named_txt_is_read_for_what_it_is() -> None:
    found = read(BLU.read_bytes(), "results.txt", "auto", STATION_ZONE, NOW)
    assert found.instrument == "vicell-blu"
    assert len(found.readings) == len(samples_of(BLU))


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_an_export_with_a_byte_order_mark_reads_the_same(encoding: str) -> None:
    text = BLU.read_bytes().decode("utf-8")
    content = text.encode(encoding)
    if encoding == "utf-16-be":
        content = b"\xfe\xff" + content
    assert _read(content) == _read(BLU.read_bytes())


def test_a_windows_1252_export_with_its_micro_sign_reads_the_same() -> None:
    text = BLU.read_bytes().decode("utf-8").replace("\u03bc", "\u00b5")
    assert _read(text.encode("cp1252")) == _read(BLU.read_bytes())


def _dates_day_first(text: str) -> str:
    return re.sub(r"(\d{1,2})/(\d{1,2})/(\d{4})", r"\2/\1/\3", text)


def test_a_vi_cell_blu_export_with_day_first_dates_reads_the_same_moments() -> None:
    # Its dates show day first (21/3/2022), so 4/3/2022 is the fourth of March: allotropy
    # reads every date month first.
    text = _dates_day_first(BLU.read_bytes().decode("utf-8"))
    assert [reading.analysed_at for reading in _read(text.encode())] == [
        sample.analysed_at for sample in samples_of(BLU)
    ]


def test_dates_written_both_ways_in_one_file_are_refused() -> None:
    lines = BLU.read_bytes().decode("utf-8").split("\r\n")
    lines[1] = _dates_day_first(lines[1])
    _refused("\r\n".join(lines).encode(), "day first and month first")


def test_an_analysis_time_without_its_date_is_refused_not_taken_as_today() -> None:
    [first] = samples_of(BLU)[:1]
    written = first.analysed_at.strftime("%-m/%-d/%Y ")
    _refused(BLU.read_bytes().replace(written.encode(), b"", 1), "analysis time", first.sample)


def test_a_cedex_hires_export_reads_as_it_says() -> None:
    content = cedex_file(
        [
            {
                "Sample identifer": "P2-flask-1",
                "Date finished": "11-24-2026 7:46:47 AM",
                "Viable Cell Conc.": "4529542.5",
                "Total Cell Conc.": "4753276",
                "Viability": "95.29307556",
                "Username": "tom",
            },
            {
                "Sample identifer": "P2-flask-2",
                "Date finished": "11-24-2026 2:05:00 PM",
                "Viable Cell Conc.": "4232990.5",
                "Total Cell Conc.": "4431395.5",
                "Viability": "95.52274323",
                "Username": "",
            },
        ]
    )
    found = read(content, "cedex.csv", "cedex-hires", STATION_ZONE, NOW)
    assert found.instrument == "cedex-hires"
    for reading, row in zip(found.readings, cedex_samples(content), strict=True):
        assert reading.sample == row["Sample identifer"]
        assert reading.viable_per_ml == float(row["Viable Cell Conc."])
        assert reading.total_per_ml == float(row["Total Cell Conc."])
        assert reading.viability == float(row["Viability"])
        assert reading.dilution == float(row["Dilution"])
        assert reading.analysed_at == cedex_time(row["Date finished"])
        assert reading.operator == (row["Username"] or None)


def test_an_allotrope_document_is_read_without_allotropy() -> None:
    document = asm_document(
        asm_measurement("P2", viable=1.25), asm_measurement("P3", viable=2.5, total=3)
    )
    found = read(asm_file(document), "export.json", "auto", STATION_ZONE, NOW)
    assert found.instrument == "asm"
    assert found.parser == "vendor-software 4.2"
    assert [(r.sample, r.viable_per_ml) for r in found.readings] == [
        ("P2", 1_250_000),
        ("P3", 2_500_000),
    ]


# --- refused --------------------------------------------------------------------------------


def test_an_empty_file_is_refused() -> None:
    _refused(b"", "empty")


def test_binary_garbage_is_refused() -> None:
    _refused(bytes(range(256)) * 4, "not a text export")
    _refused(b"\x89PNG\r\n\x1a\n" + os.urandom(64), "not a text export")


def test_an_export_in_utf_16_without_its_byte_order_mark_is_refused() -> None:
    _refused(BLU.read_bytes().decode("utf-8").encode("utf-16-le"), "UTF-16 without")


def test_a_damaged_utf_8_export_is_refused() -> None:
    content = BLU.read_bytes()
    mu = content.index("\u03bc".encode())
    _refused(content[:mu] + content[mu + 1 :], "damaged byte")


def test_a_truncated_row_is_refused() -> None:
    content = BLU.read_bytes()
    _refused(content[: content.rindex(b"Vi-CELL")], "truncated")


def test_a_header_without_rows_holds_no_samples() -> None:
    _refused(BLU.read_bytes().split(b"\r\n")[0] + b"\r\n", "holds no samples")


@pytest.mark.parametrize("path", list(SHARED_FILES), ids=lambda path: path.name)
def test_a_formula_in_a_field_is_refused(path: Path) -> None:
    operator = samples_of(path)[0].operator
    written = b"User :" if operator is None else operator.encode()
    content = path.read_bytes().replace(written, written + b" =cmd|' /C calc'!A0", 1)
    if operator is not None:
        content = path.read_bytes().replace(written, b"=cmd|' /C calc'!A0", 1)
    _refused(content, "formula", "=cmd")


def test_a_sample_analysed_after_now_is_refused() -> None:
    with pytest.raises(BadInput, match="in the future"):
        read(BLU.read_bytes(), BLU.name, "auto", STATION_ZONE, analysed_before(BLU))


def test_another_instruments_export_is_refused_naming_what_it_is() -> None:
    message = _refused(NC_VIEW.read_bytes(), "nc-202", instrument="vicell-blu", field="instrument")
    assert "--instrument nc-202" in message


def test_a_file_of_no_format_names_every_format_tried() -> None:
    message = _refused(b"Date,Count\r\n2026-11-25,12\r\n", "tried")
    for name in SHARED_FILES.values():
        assert name in message
    _refused(b"Date,Count\r\n", "not a vicell-xr export", instrument="vicell-xr")


def test_an_unknown_instrument_is_refused() -> None:
    _refused(BLU.read_bytes(), "vicell-blu", instrument="vicell", field="instrument")


def test_a_json_file_that_is_no_cell_counting_document_is_refused() -> None:
    _refused(b'{"hello": 1}', "not an Allotrope cell-counting document")
    _refused(b'{"a": NaN}', "not valid JSON")
    measurement = asm_measurement(custom={"note": '=HYPERLINK("http://x")'})
    _refused(asm_file(asm_document(measurement)), "formula")


def test_content_over_the_limit_is_refused_before_it_is_decoded() -> None:
    _refused(b"\xff" * (MAX_FILE_BYTES + 1), "10 MB")


def test_load_refuses_a_large_file_without_opening_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    large = tmp_path / "large.csv"
    with large.open("wb") as handle:
        handle.truncate(50 * 2**20)  # sparse: 50 MB that take no disk

    def opened(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", opened)
    with pytest.raises(BadInput, match="52,428,800 bytes"):
        load(large)


def test_load_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a regular file"):
        load(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        load(fifo)
    with pytest.raises(NotFound):
        load(tmp_path / "missing.csv")
    assert load(BLU) == BLU.read_bytes()


def test_allotropys_failures_are_one_line_bad_input() -> None:
    # A viable density that is no number, in a row that is otherwise whole.
    lines = BLU.read_bytes().decode("utf-8").split("\r\n")
    fields = lines[1].split(",")
    fields[4] = "many"
    lines[1] = ",".join(fields)
    _refused("\r\n".join(lines).encode(), "not a readable vicell-blu export")


def test_reading_writes_nothing_to_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    lines = BLU.read_bytes().decode("utf-8").split("\r\n")
    lines[1] = lines[1].replace(",1,Normal Wash", ",one,Normal Wash")
    for content in (BLU.read_bytes(), "\r\n".join(lines).encode()):
        with contextlib.suppress(BadInput):
            _read(content)
    assert capfd.readouterr() == ("", "")


def test_the_reader_leaves_allotropy_and_pandas_out_of_lims_until_it_reads() -> None:
    probe = (
        "import sys, lims.services.instrument_files\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'allotropy', 'pandas'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_times_from_a_later_day_are_in_the_future_by_the_day_only_too() -> None:
    [sample] = samples_of(NC_VIEW)[:1]
    before = sample.analysed_at - timedelta(seconds=1)
    with pytest.raises(BadInput, match="future"):
        read(NC_VIEW.read_bytes(), NC_VIEW.name, "auto", STATION_ZONE, before)


def test_a_number_with_an_exponent_no_double_holds_is_refused_before_pandas_reads_it() -> None:
    # pandas 2.3 crashes the whole process on 1e4000231120 (an exponent past 2^31).
    content = NUCLEOVIEW.read_bytes().replace(b"Image;2", b"Image;21e4000231120", 1)
    _refused(content, "1e4000231120", "exponent")
    _refused(BLU.read_bytes().replace(b",0.78,", b",7.8e+2147483648,", 1), "exponent")
    # A protocol file's hexadecimal name is no number.
    [reading] = _read(NUCLEOVIEW.read_bytes().replace(b";94A29BE3", b";3e1234BE3", 1))
    assert reading.sample == samples_of(NUCLEOVIEW)[0].sample


# --- Excel workbooks: Vi-CELL XR xls/xlsx, Cedex HiRes xlsx ---------------------------------

XR_WORKBOOKS = {
    "report.xlsx": lambda: xlsx_of(vicell_xr_report_rows()),
    "summary.xlsx": lambda: xlsx_of(vicell_xr_summary_rows()),
    "summary.xls": lambda: xls_of(vicell_xr_summary_rows()),
}


def _cedex_csv(*times: str) -> bytes:
    return cedex_file(
        {
            "Sample identifer": f"P2-flask-{place}",
            "Date finished": moment,
            "Viable Cell Conc.": f"{4529542.5 + place}",
            "Total Cell Conc.": "4753276",
            "Viability": "95.29307556",
            "Username": "tom" if place % 2 else "",
        }
        for place, moment in enumerate(times, start=1)
    )


@pytest.mark.parametrize("layout", list(XR_WORKBOOKS))
def test_a_vi_cell_xr_workbook_reads_as_its_text_report_says(layout: str) -> None:
    [sample] = samples_of(XR)
    found = read(XR_WORKBOOKS[layout](), "run.bin", "auto", STATION_ZONE, NOW)
    [reading] = found.readings
    assert found.instrument == "vicell-xr"
    assert (reading.sample, reading.operator) == (sample.sample, sample.operator)
    assert reading.analysed_at == sample.analysed_at
    assert (reading.viable_per_ml, reading.total_per_ml) == (
        sample.viable_per_ml,
        sample.total_per_ml,
    )
    assert (reading.viability, reading.diameter_um, reading.dilution) == (
        sample.viability,
        sample.diameter_um,
        sample.dilution,
    )
    # The run summary names the unit in A3; the one-sample report does not.
    assert reading.serial == (None if layout == "report.xlsx" else sample.serial)


def test_a_cedex_hires_workbook_reads_as_its_csv_says() -> None:
    content = _cedex_csv("11-24-2025 7:46:47 AM", "11-24-2025 2:05:00 PM")
    found = read(xlsx_of(cedex_rows(content)), "cedex.csv", "cedex-hires", STATION_ZONE, NOW)
    assert found.instrument == "cedex-hires"
    for reading, row in zip(found.readings, cedex_samples(content), strict=True):
        assert reading.sample == row["Sample identifer"]
        assert reading.viable_per_ml == float(row["Viable Cell Conc."])
        assert reading.viability == float(row["Viability"])
        assert reading.analysed_at == cedex_time(row["Date finished"])
        assert reading.operator == (row["Username"] or None)


def _workbook_refused(content: bytes, *words: str, instrument: str = "auto") -> None:
    with pytest.raises(BadInput) as refusal:
        read(content, "export.xlsx", instrument, STATION_ZONE, NOW)
    assert "\n" not in refusal.value.message
    for word in words:
        assert word in refusal.value.message, (word, refusal.value.message)


def test_a_zip_bomb_is_refused_before_anything_unpacks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    def opened(*args: object, **kwargs: object) -> None:
        raise AssertionError("openpyxl opened the bomb")

    monkeypatch.setattr(openpyxl, "load_workbook", opened)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", bytes(51 * 2**20))
    _workbook_refused(out.getvalue(), "unpacks to", "50 MB")


def test_a_zip_that_is_no_workbook_and_a_damaged_workbook_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    _workbook_refused(out.getvalue(), "no Excel workbook")
    _workbook_refused(xlsx_of(vicell_xr_report_rows())[:-200], "damaged")


def test_a_workbook_whose_zip_needs_a_later_zip_version_is_refused() -> None:
    content = bytearray(xlsx_of(vicell_xr_report_rows()))
    entry = content.index(b"PK\x01\x02")  # the central directory's first member
    content[entry + 6] = 250  # version needed to extract: 25.0, past any zip reader's
    _refused(bytes(content), "zip")


def test_an_encrypted_or_damaged_xls_is_refused() -> None:
    # An encrypted xlsx is an OLE2 compound file too, with no workbook stream xlrd reads.
    _workbook_refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096), "no readable xls")
    _workbook_refused(xls_of(vicell_xr_summary_rows())[:2000], "no readable xls")


@pytest.mark.parametrize("build", [xlsx_of, xls_of], ids=["xlsx", "xls"])
def test_a_formula_in_a_cell_is_refused(build: object) -> None:
    cells = vicell_xr_summary_rows()
    cells[6, 1] = '=CONCAT(A7,".smp")'
    assert callable(build)
    _workbook_refused(build(cells), "B7", "formula")


def test_another_instruments_workbook_is_refused_naming_what_it_is() -> None:
    xr = xls_of(vicell_xr_summary_rows())
    _workbook_refused(xr, "vicell-xr", instrument="cedex-hires")
    plate = xlsx_of({(0, 0): "Plate", (1, 0): 12})
    _workbook_refused(plate, "tried vicell-xr, cedex-hires")
    _workbook_refused(plate, "Excel workbook", "nc-200 exports none", instrument="nc-200")


def test_a_workbook_analysed_in_the_future_or_without_samples_is_refused() -> None:
    [sample] = samples_of(XR)
    with pytest.raises(BadInput, match="future"):
        read(xls_of(vicell_xr_summary_rows()), "x.xls", "auto", STATION_ZONE, analysed_before(XR))
    header_only = xlsx_of(
        {key: value for key, value in vicell_xr_summary_rows().items() if key[0] < 6}
    )
    _workbook_refused(header_only, "no samples")
    _workbook_refused(xlsx_of(cedex_rows(_cedex_csv())), "no samples")
    assert sample.sample  # the file the workbooks are written from has its sample


def test_a_vi_cell_xr_time_typed_as_a_date_cell_is_refused() -> None:
    cells = vicell_xr_summary_rows()
    cells[6, 4] = datetime(2023, 9, 29, 5, 21, 32)
    _workbook_refused(xls_of(cells), "29 Sep 2023 5:21:32 AM", "E7")


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_a_damaged_xlsx_is_refused_in_one_line_or_read_whole(data: st.DataObject) -> None:
    content = bytearray(xlsx_of(vicell_xr_report_rows()))
    for _ in range(data.draw(st.integers(1, 8))):
        content[data.draw(st.integers(0, len(content) - 1))] = data.draw(st.integers(0, 255))
    try:
        readings, said = read(bytes(content), "x.xlsx", "auto", STATION_ZONE, NOW).readings, ""
    except BadInput as refusal:
        readings, said = (), refusal.message
    assert "\n" not in said
    assert [reading.sample for reading in readings] in ([], [samples_of(XR)[0].sample])


# A density's first field rewritten with one separator before three digits: 1,780 is 1.78 in a
# decimal-comma locale and 1780 in an English one; allotropy reads every such comma (and pandas
# every dot) as a decimal separator, a thousandfold error either way.
_GROUPED_DENSITIES = [
    (BLU, rb"(?m)^(CLB001,\d+,\d+,[^,]+,)[^,]+", rb'\g<1>"1,780"'),
    (NC_VIEW, rb"(?m)^(20240219-00019,(?:[^,]*,){10})[^,]+", rb"\g<1>274.000"),
    (NUCLEOVIEW, rb"(?m)^(Live \(cells/ml\);)[^;\r\n]+", rb"\g<1>2.450"),
    (XR, rb"(?m)^(Total viable cells / ml \(x 10\^6\) : )[^\r\n]+", rb"\g<1>1,087"),
]


@pytest.mark.parametrize(
    ("path", "field", "grouped"), _GROUPED_DENSITIES, ids=lambda value: getattr(value, "name", "")
)
def test_a_density_whose_separator_may_group_thousands_is_refused_not_guessed(
    path: Path, field: bytes, grouped: bytes
) -> None:
    content, replaced = re.subn(field, grouped, path.read_bytes(), count=1)
    assert replaced == 1
    _refused(content, "thousands")
