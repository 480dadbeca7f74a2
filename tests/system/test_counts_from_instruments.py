"""Issue 14 done, end to end at the shell: every real export in ../shared/instrument-files
imports as the file says, and a passage counted on one shows where its numbers came from in
`culture show` and in the lot's batch record.

The expected values are read from the files by tests.support.instrument_files's plain
reader; the culture's timeline is dated to the file's own analysis time, entered late as a
site at its default records.late_entry_hours (24) requires.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.domain.cell_counting import STATUS_OK
from lims.timeutil import show_time
from tests.support.bench import Bench
from tests.support.cli import csf_vehicle, invoke, ok, plain, refused
from tests.support.instrument_files import BLU, SHARED_FILES, Sample, exports, samples_of
from tests.support.lab import Lab

LATE = ("--late-reason", "entered from the paper batch record of 2022")
SUSPENSION_ML = 30  # the harvest's volume when it was counted


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return lab.built("bench", lambda: Bench(lab))


def _status(path: Path, sample: Sample) -> str:
    """The count's status as the file says it: ok, NC-View's STATUS, or the Vi-CELL BLU's
    columns that read ERROR, each named."""
    if sample.flagged is None:
        return STATUS_OK
    if path == BLU:
        return "; ".join(f"{column}: ERROR" for column in sample.flagged.split(", "))
    return sample.flagged


def _as_the_file_says(count: dict[str, Any], path: Path, sample: Sample) -> None:
    assert count["sample"] == sample.sample
    assert count["instrument"] == SHARED_FILES[path]
    assert count["viable_per_ml"] == sample.viable_per_ml
    assert count["total_per_ml"] == sample.total_per_ml
    assert count["viability"] == sample.viability
    assert datetime.fromisoformat(count["analysed_at"]) == sample.analysed_at
    assert count["analysed_date_only"] is sample.date_only
    assert count["serial"] == sample.serial
    assert count["status"] == _status(path, sample)
    assert count["file_name"] == path.name
    assert count["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert count["used_by"] is None


def test_the_shared_directory_holds_the_four_exports_the_reader_knows() -> None:
    assert exports() == sorted(SHARED_FILES)


@pytest.mark.parametrize("path", exports(), ids=lambda path: path.name)
def test_every_shared_export_imports_as_the_file_itself_says(bench: Bench, path: Path) -> None:
    imported = ok("count", "import", str(path))

    expected = samples_of(path)
    assert len(imported) == len(expected)
    for count, sample in zip(imported, expected, strict=True):
        _as_the_file_says(count, path, sample)
        assert ok("count", "show", count["count_id"]) == count
    assert ok("count", "list") == imported
    line = refused(invoke("count", "import", str(path)), 1, "imported", path.name)
    for count in imported:
        assert count["count_id"] in line
    assert ok("count", "list") == imported


def test_a_passage_counted_on_a_real_export_shows_its_provenance_to_the_batch_record(
    lab: Lab, bench: Bench, tmp_path: Path
) -> None:
    lab.set_site(records={"late_entry_hours": 24})
    sample = next(sample for sample in samples_of(BLU) if sample.flagged is None)
    counted = sample.analysed_at  # the harvest was counted just after it was taken

    def at(before: timedelta) -> str:
        return (counted - before).isoformat()

    patient = "PT-2022"
    consented = (counted - timedelta(days=30)).date().isoformat()
    ok(
        "patient", "add", patient, "--initials", "MR", "--birth-year", "1958",
        "--consent-date", consented,
    )  # fmt: skip
    aspirate = ok(
        "aspirate", "receive", "--patient", patient, "--collected-at", at(timedelta(days=16)),
        "--received-at", at(timedelta(days=16, hours=-2)), "--volume-ml", "30", *LATE,
    )  # fmt: skip
    culture = ok(
        "culture", "start", aspirate["din"], "--mnc", "2.4e8", "--vessels", "5",
        "--area-cm2", "875", "--at", at(timedelta(days=16, hours=-6)), *LATE,
    )["culture_id"]  # fmt: skip
    [count] = ok("count", "import", str(BLU), "--sample", sample.sample)
    code = count["count_id"]
    passage = ok(
        "passage", "log", culture, "--count", code, "--suspension-ml", str(SUSPENSION_ML),
        "--seeded", "2e7", "--vessels", "23", "--area-cm2", "4000",
        "--at", at(timedelta(hours=1)), *LATE,
    )  # fmt: skip
    assert passage["count_id"] == code
    assert passage["harvested"] == round(sample.viable_per_ml * SUSPENSION_ML)
    assert passage["viability"] == sample.viability
    assert ok("count", "show", code)["used_by"] == f"passage {passage['passage_id']}"

    sha256 = hashlib.sha256(BLU.read_bytes()).hexdigest()
    shown = ok("culture", "show", culture)
    [source] = [step["count"] for step in shown["passages"]]
    assert source["count_id"] == code
    assert source["instrument"] == "vicell-blu"
    assert source["file_name"] == BLU.name
    assert source["file_sha256"] == sha256
    assert source["suspension_ml"] == SUSPENSION_ML
    assert datetime.fromisoformat(source["analysed_at"]) == sample.analysed_at
    table = invoke("culture", "show", culture)
    assert table.exit_code == 0, table.stderr
    text = plain(table.stdout)
    counted_as = (
        f"analysed {show_time(sample.analysed_at, lab.settings.tz)}; "
        f"{sample.viable_per_ml:,.0f} viable cells/mL × {SUSPENSION_ML} mL"
    )
    provenance = f"count {code}: Beckman Coulter Vi-CELL BLU, file {BLU.name} (SHA-256"
    assert f"{provenance} {sha256[:12]}…), {counted_as}" in text
    assert sha256 not in text  # shortened where people read it

    lot = ok(
        "lot", "formulate", culture, "--harvested", "1.6e8", "--viability", "93",
        "--vials", "4", "--cells-per-vial", "4e7", "--volume-ml", "2",
        "--at", at(timedelta(days=-7)), *LATE,
        *csf_vehicle(patient, counted + timedelta(days=7), *LATE),
    )["lot_id"]  # fmt: skip
    out = tmp_path / "batch.pdf"
    ok("report", "batch", lot, "--out", str(out))
    record = _pdf_text(out)
    assert f"P1 harvested and viability from {provenance} {sha256}), {counted_as}" in record


def _pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())
