"""`lims count import/list/show` (issue 14): wiring, the JSON keys, tables, exit codes.

The lab is tests.support.bench.Bench: tom, a technician, logged in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lims.domain.ids import CountId
from tests.support.bench import Bench
from tests.support.cli import invoke, ok, refused
from tests.support.instrument_files import BLU, NC_VIEW, SHARED_FILES, samples_of
from tests.support.lab import Lab

# The keys issue 14 names for `count show --json`.
ISSUE_KEYS = {
    "count_id",
    "instrument",
    "serial",
    "operator",
    "analysed_at",
    "sample",
    "viable_per_ml",
    "total_per_ml",
    "viability",
    "diameter_um",
    "dilution",
    "status",
    "file_name",
    "file_sha256",
    "used_by",
}


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return lab.built("bench", lambda: Bench(lab))


@pytest.mark.parametrize("path", list(SHARED_FILES), ids=lambda path: path.name)
def test_import_prints_a_count_per_sample_with_the_files_values(bench: Bench, path: Path) -> None:
    imported = ok("count", "import", str(path))

    expected = samples_of(path)
    assert [count["sample"] for count in imported] == [sample.sample for sample in expected]
    assert [count["viable_per_ml"] for count in imported] == [
        sample.viable_per_ml for sample in expected
    ]
    assert all(count.keys() >= ISSUE_KEYS for count in imported)
    assert {count["instrument"] for count in imported} == {SHARED_FILES[path]}
    assert [count["count_id"] for count in imported] == [
        CountId(number).code for number in range(1, len(expected) + 1)
    ]


def test_show_and_list_print_the_counts_as_imported(bench: Bench) -> None:
    imported = ok("count", "import", str(BLU))
    last = imported[-1]

    shown = ok("count", "show", last["count_id"])
    assert shown == last
    assert shown.keys() >= ISSUE_KEYS
    assert ok("count", "list") == imported
    table = invoke("count", "show", last["count_id"])
    assert table.exit_code == 0
    assert last["sample"] in table.stdout
    assert last["file_sha256"] in table.stdout


def test_the_import_table_shows_each_sample_and_an_instruments_error(bench: Bench) -> None:
    result = invoke("count", "import", str(BLU))
    assert result.exit_code == 0, result.stderr
    assert f"Imported {len(samples_of(BLU))} counts from {BLU.name}" in result.stdout
    for sample in samples_of(BLU):
        assert sample.sample in result.stdout
    assert "Cell count: ERROR" in result.stdout


def test_a_day_only_count_shows_its_day_without_a_time(bench: Bench) -> None:
    [sample] = samples_of(NC_VIEW)[:1]
    [count] = ok("count", "import", str(NC_VIEW), "--sample", sample.sample)
    assert count["analysed_date_only"] is True
    day = sample.analysed_at.date().isoformat()
    for table in (invoke("count", "show", count["count_id"]), invoke("count", "list")):
        assert f"{day} (day only)" in table.stdout
        assert f"{day} 00:00" not in table.stdout


def test_samples_are_chosen_by_id_or_nc_views_name(bench: Bench) -> None:
    first, second = samples_of(NC_VIEW)[:2]
    by_name = str(first.sample_name)
    imported = ok("count", "import", str(NC_VIEW), "--sample", second.sample, "--sample", by_name)
    assert [count["sample"] for count in imported] == [first.sample, second.sample]
    assert imported[0]["sample_name"] == first.sample_name


def test_list_unused_leaves_out_a_count_a_step_used(bench: Bench) -> None:
    imported = ok("count", "import", str(BLU))
    bench.sql(
        "UPDATE cell_counts SET used_by = 'passage X', suspension_ml = 10, "
        "used_at = (SELECT imported_at FROM count_files WHERE id = cell_counts.file_id) "
        "WHERE id = :id",
        id=CountId.read(imported[0]["count_id"], "count").number,
    )
    unused = ok("count", "list", "--unused")
    assert [count["count_id"] for count in unused] == [count["count_id"] for count in imported[1:]]


def test_a_file_imported_again_is_refused_naming_its_counts(bench: Bench) -> None:
    imported = ok("count", "import", str(BLU), "--sample", "CLB001")
    line = refused(invoke("count", "import", str(BLU)), 1, "imported", imported[0]["count_id"])
    assert BLU.name in line
    assert len(ok("count", "list")) == 1


def test_a_sample_the_file_lacks_is_exit_3_naming_it_and_nothing_is_kept(bench: Bench) -> None:
    refused(invoke("count", "import", str(BLU), "--sample", "CLB001", "--sample", "P9"), 3, "'P9'")
    assert ok("count", "list") == []


def test_a_count_that_does_not_exist_is_exit_3_and_a_malformed_id_exit_2(bench: Bench) -> None:
    refused(invoke("count", "show", "CNT-000042"), 3, "CNT-000042")
    refused(invoke("count", "show", "CNT-12"), 2, "count")


def test_only_those_who_record_bench_work_import(bench: Bench) -> None:
    bench.lab.login("admin")
    refused(invoke("count", "import", str(BLU)), 4)
    assert json.loads(invoke("count", "list", "--json").stdout) == []
