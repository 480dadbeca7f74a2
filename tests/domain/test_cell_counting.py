"""Reading an Allotrope cell-counting document, and what a reading must be to be kept."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain.cell_counting import (
    STATUS_OK,
    CountReading,
    asm_readings,
    checked,
    checked_file,
    chosen,
    converter,
    formula_like,
    serial_number,
    status_ok,
)
from lims.errors import BadInput, NotFound
from tests.support.instrument_files import STATION_ZONE, asm_document, asm_measurement

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _read(*measurements: dict[str, Any], **document: Any) -> list[CountReading]:
    return asm_readings(
        asm_document(*measurements, **document), instrument="asm", zone=STATION_ZONE
    )


def _refused(*words: str, **measurement: Any) -> str:
    with pytest.raises(BadInput) as refusal:
        _read(asm_measurement(**measurement))
    assert refusal.value.field == "file"
    for word in words:
        assert word in refusal.value.message, (word, refusal.value.message)
    return refusal.value.message


def test_a_document_reads_into_one_reading_per_measurement_with_its_values() -> None:
    [reading] = _read(asm_measurement("P2-harvest", viable=1.25, total=1.3, viability=96.2))

    assert reading.sample == "P2-harvest"
    assert reading.viable_per_ml == 1_250_000
    assert reading.total_per_ml == 1_300_000
    assert reading.viability == 96.2
    assert reading.diameter_um == 17.5
    assert reading.dilution == 2.0
    assert reading.operator == "jdoe"
    assert reading.model == "Counter 3"
    assert reading.serial == "12345"
    assert reading.status == STATUS_OK
    assert reading.analysed_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    assert not reading.date_only


def test_densities_in_millions_are_scaled_in_decimal_not_in_binary() -> None:
    # 2.45 * 1e6 in binary floating point is 2450000.0000000005.
    [reading] = _read(asm_measurement(viable=2.45, total=3.58))
    assert (reading.viable_per_ml, reading.total_per_ml) == (2_450_000, 3_580_000)


def test_densities_in_cells_per_ml_are_taken_as_they_are() -> None:
    [reading] = _read(asm_measurement(viable=124000, total=274000, unit="cells/mL"))
    assert (reading.viable_per_ml, reading.total_per_ml) == (124_000, 274_000)


@pytest.mark.parametrize("unit", ["10^3 cells/µL", "cells/L", "10^6 cells/ml", "%"])
def test_a_density_unit_the_schema_does_not_give_is_refused_naming_sample_and_field(
    unit: str,
) -> None:
    _refused("'P2-harvest'", "viable cell density", repr(unit), unit=unit)


def test_a_diameter_in_greek_mu_is_read_as_one_in_the_micro_sign() -> None:
    document = asm_measurement()
    processed = document["processed data aggregate document"]["processed data document"][0]
    processed["average total cell diameter"]["unit"] = "\u03bcm"
    [reading] = _read(document)
    assert reading.diameter_um == 17.5


def test_a_viability_not_in_percent_is_refused() -> None:
    document = asm_measurement()
    processed = document["processed data aggregate document"]["processed data document"][0]
    processed["viability (cell counter)"]["unit"] = "(unitless)"
    with pytest.raises(BadInput, match="viability"):
        _read(document)


def test_the_instruments_status_is_kept_in_its_words_and_ok_is_ok() -> None:
    warned, fine, silent = _read(
        asm_measurement("1", custom={"STATUS": "Warning: Foreign object detected"}),
        asm_measurement("2", custom={"STATUS": "OK"}),
        asm_measurement("3"),
    )
    assert warned.status == "Warning: Foreign object detected"
    assert not status_ok(warned.status)
    assert fine.status == silent.status == STATUS_OK
    assert status_ok(fine.status)


def test_an_instrument_error_on_another_value_makes_the_status() -> None:
    [reading] = _read(asm_measurement(errors=[("average total cell diameter", "out of range")]))
    assert reading.status == "average total cell diameter: out of range"


def test_an_instrument_error_on_a_value_lims_takes_refuses_the_file() -> None:
    message = _refused("'P2-harvest'", "viable cells/mL", errors=[("viable cell density", "N/A")])
    assert "N/A" in message


@pytest.mark.parametrize(
    "missing", ["viability (cell counter)", "viable cell density (cell counter)"]
)
def test_a_measurement_without_viability_or_viable_density_is_refused(missing: str) -> None:
    document = asm_measurement()
    del document["processed data aggregate document"]["processed data document"][0][missing]
    with pytest.raises(BadInput, match="'P2-harvest' has no"):
        _read(document)


def test_a_time_without_an_offset_is_the_stations() -> None:
    [reading] = _read(asm_measurement(time_text="2026-07-01T09:30:00"))
    assert reading.analysed_at == datetime(2026, 7, 1, 9, 30, tzinfo=STATION_ZONE)


def test_a_time_that_is_none_is_refused_naming_the_sample() -> None:
    _refused("'P2-harvest'", "measurement time", time_text="yesterday")


def test_a_document_of_another_technique_is_refused() -> None:
    with pytest.raises(BadInput, match="not an Allotrope cell-counting document"):
        _read(
            asm_measurement(),
            manifest="http://purl.allotrope.org/manifests/plate-reader/REC/2024/06/"
            "plate-reader.manifest",
        )


def test_what_software_writes_for_no_value_is_none() -> None:
    [reading] = _read(
        asm_measurement(), device={"equipment serial number": "N/A", "model number": "N/A"}
    )
    assert reading.serial is None
    assert reading.model is None
    [anonymous] = _read(asm_measurement(), analyst=None)
    assert anonymous.operator is None


@pytest.mark.parametrize(
    ("written", "serial"),
    [("s/n 9000201099909999", "9000201099909999"), ("S/N: 90020", "90020"), ("AW123", "AW123")],
)
def test_a_serial_loses_its_s_n_prefix(written: str, serial: str) -> None:
    assert serial_number(written) == serial


def test_the_converter_is_named_from_the_data_system_document() -> None:
    assert converter(asm_document(asm_measurement())) == "vendor-software 4.2"


# --- plausibility -------------------------------------------------------------------------

READING = CountReading(
    instrument="asm",
    model=None,
    serial=None,
    operator="jdoe",
    analysed_at=NOW - timedelta(hours=1),
    date_only=False,
    sample="S1",
    sample_name=None,
    viable_per_ml=1_000_000,
    total_per_ml=1_100_000,
    viability=91,
    diameter_um=17,
    dilution=1,
    status=STATUS_OK,
)


def _check(**values: Any) -> CountReading:
    return checked(replace(READING, **values), now=NOW, zone=STATION_ZONE)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"viability": 140.0}, ("viability", "0 to 100", "140")),
        ({"viability": -1.0}, ("viability",)),
        ({"viability": math.nan}, ("viability",)),
        ({"viable_per_ml": -3.0}, ("viable cells/mL",)),
        ({"viable_per_ml": math.inf}, ("viable cells/mL",)),
        ({"total_per_ml": math.nan}, ("total cells/mL",)),
        ({"viable_per_ml": 2e6, "total_per_ml": 1e6}, ("exceed total",)),
        ({"viable_per_ml": 1e11, "total_per_ml": 2e11}, ("viable cells/mL",)),
        ({"diameter_um": -1.0}, ("diameter",)),
        ({"dilution": 0.0}, ("dilution",)),
        ({"sample": "=cmd|' /C calc'!A0"}, ("sample", "formula")),
        ({"operator": "@SUM(A1:A9)"}, ("operator", "formula")),
        ({"sample": "S\x001"}, ("control characters",)),
        ({"operator": "x" * 101}, ("operator", "100")),
        ({"sample": " "}, ("sample", "empty")),
        ({"analysed_at": NOW + timedelta(minutes=1)}, ("'S1'", "future")),
    ],
)
def test_an_implausible_reading_is_refused_naming_the_sample_and_field(
    values: dict[str, Any], words: tuple[str, ...]
) -> None:
    with pytest.raises(BadInput) as refusal:
        _check(**values)
    assert refusal.value.field == "file"
    assert "'S1'" in refusal.value.message or "sample" in refusal.value.message
    for word in words:
        assert word in refusal.value.message, (word, refusal.value.message)


def test_a_plausible_reading_passes_as_it_is() -> None:
    assert _check() == READING
    assert _check(total_per_ml=None, diameter_um=None, dilution=None, viability=0) is not None
    assert _check(viable_per_ml=1e6, total_per_ml=1e6, viability=100) is not None


@given(viability=st.floats(allow_nan=True, allow_infinity=True))
def test_viability_is_kept_exactly_when_it_is_a_percentage(viability: float) -> None:
    plausible = math.isfinite(viability) and 0 <= viability <= 100
    try:
        _check(viability=viability)
    except BadInput:
        assert not plausible
    else:
        assert plausible


@given(viable=st.floats(min_value=0, max_value=1e10), total=st.floats(min_value=0, max_value=1e10))
def test_viable_cells_may_not_exceed_total_cells(viable: float, total: float) -> None:
    try:
        _check(viable_per_ml=viable, total_per_ml=total)
    except BadInput:
        assert viable > total
    else:
        assert viable <= total


def test_a_file_without_samples_is_refused() -> None:
    with pytest.raises(BadInput, match="holds no samples"):
        checked_file([], now=NOW, zone=STATION_ZONE)


def test_a_day_only_reading_of_today_is_not_in_the_future() -> None:
    today = datetime.combine(NOW.astimezone(STATION_ZONE).date(), datetime.min.time())
    assert _check(analysed_at=today.replace(tzinfo=STATION_ZONE), date_only=True)


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("=cmd|' /C calc'!A0", True),
        ("=1+1", True),
        ("@SUM(A1)", True),
        ("+A1", True),
        ("-2+3", True),
        ("\t=1", True),
        ("\rfoo", True),
        ("-", True),
        ("-0.5", False),
        ("+3", False),
        ("-1,5", False),
        ("-2.45E6", False),
        ("CLB001", False),
        ("a=b", False),
        ("", False),
    ],
)
def test_a_field_a_spreadsheet_would_run_is_formula_like(text: str, formula: bool) -> None:
    assert formula_like(text) is formula


# --- choosing samples ---------------------------------------------------------------------

READINGS = [
    replace(READING, sample="1", sample_name="20240219-00019"),
    replace(READING, sample="2", sample_name="20240219-00020"),
    replace(READING, sample="1", sample_name="20240219-00021"),
    replace(READING, sample="20240219-00019", sample_name="x"),
]


def test_no_sample_named_chooses_every_reading() -> None:
    assert chosen(READINGS, [], "f.csv") == [0, 1, 2, 3]


def test_a_sample_is_matched_by_id_first_and_every_row_of_that_id_is_chosen() -> None:
    assert chosen(READINGS, ["1"], "f.csv") == [0, 2]
    # An id wins over another row's name.
    assert chosen(READINGS, ["20240219-00019"], "f.csv") == [3]


def test_a_sample_is_matched_by_its_second_name_when_no_id_is_it() -> None:
    assert chosen(READINGS, ["20240219-00020", "2"], "f.csv") == [1]


def test_a_sample_the_file_lacks_is_not_found_naming_it() -> None:
    with pytest.raises(NotFound, match=r"f\.csv has no sample 'P9'"):
        chosen(READINGS, ["2", "P9"], "f.csv")


def test_readings_keep_the_offset_the_file_gives() -> None:
    [reading] = _read(asm_measurement(time_text="2023-11-20T16:30:16+02:00"))
    east = timezone(timedelta(hours=2))
    assert reading.analysed_at == datetime(2023, 11, 20, 16, 30, 16, tzinfo=east)
