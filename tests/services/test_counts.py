"""Imported counts kept (issue 14): each shared file stored whole on the database, once;
samples chosen by id or NC-View's NAME; the rows bound to the audit trail.

The lab is tests.support.bench.Bench: tom, a technician, logged in.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import literal, select

from lims.domain import cell_counting
from lims.domain.cell_counting import CountFileReading
from lims.domain.ids import CountId
from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.models import SHORT_TEXT_MAX
from lims.services import bindings, counts, instrument_files
from lims.uow import unit_of_work
from lims.views.counts import CountView
from tests.support.bench import Bench
from tests.support.instrument_files import BLU, NC_VIEW, SHARED_FILES, STATION_ZONE, samples_of


def _reading(path: Path) -> CountFileReading:
    return instrument_files.read(
        path.read_bytes(), path.name, "auto", STATION_ZONE, datetime.now(UTC)
    )


def _import(bench: Bench, path: Path, samples: tuple[str, ...] = ()) -> list[CountView]:
    views: list[CountView] = bench.run(
        counts.store,
        file_name=path.name,
        content=path.read_bytes(),
        read=_reading(path),
        samples=samples,
    )
    return views


def _kept(bench: Bench) -> tuple[int, int]:
    """How many files and counts the database holds."""
    files = bench.sql("SELECT count(*) FROM count_files").scalar_one()
    rows = bench.sql("SELECT count(*) FROM cell_counts").scalar_one()
    return files, rows


@pytest.mark.parametrize("path", list(SHARED_FILES), ids=lambda path: path.name)
def test_each_shared_file_is_kept_whole_with_a_count_per_sample(bench: Bench, path: Path) -> None:
    views = _import(bench, path)

    expected = samples_of(path)
    assert [view.sample for view in views] == [sample.sample for sample in expected]
    for view, sample in zip(views, expected, strict=True):
        assert view.instrument == SHARED_FILES[path]
        assert view.viable_per_ml == sample.viable_per_ml
        assert view.total_per_ml == sample.total_per_ml
        assert view.viability == sample.viability
        assert view.diameter_um == sample.diameter_um
        assert view.dilution == sample.dilution
        assert view.serial == sample.serial
        assert view.operator == sample.operator
        assert view.analysed_at == sample.analysed_at
        assert view.analysed_date_only is sample.date_only
        assert view.file_name == path.name
        assert view.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert view.used_by is None
        assert view.imported_by == "tom"
    shown = bench.read(counts.show_count, count=views[-1].count_id)
    assert shown == views[-1]
    assert bytes(bench.sql("SELECT content FROM count_files").scalar_one()) == path.read_bytes()
    positions = bench.sql("SELECT position FROM cell_counts ORDER BY id").scalars().all()
    assert positions == list(range(1, len(expected) + 1))
    entries = [entry for entry in bench.scenario.audit_trail() if entry.action == "count.import"]
    assert [entry.entity_id for entry in entries] == [view.count_id for view in views]
    assert bench.scenario.verify_trail().intact


def test_a_file_imported_before_is_refused_naming_its_counts(bench: Bench) -> None:
    views = _import(bench, NC_VIEW, ("3",))
    kept = _kept(bench)
    with pytest.raises(RuleViolation, match=f"imported .* as {views[0].count_id}"):
        _import(bench, NC_VIEW)
    assert _kept(bench) == kept


def test_samples_are_chosen_by_id_then_name_keeping_their_place(bench: Bench) -> None:
    named = next(sample for sample in samples_of(NC_VIEW) if sample.flagged)
    by_id = samples_of(NC_VIEW)[2]
    views = _import(bench, NC_VIEW, (str(named.sample_name), by_id.sample))

    assert [view.sample for view in views] == [by_id.sample, named.sample]
    assert views[1].sample_name == named.sample_name
    assert views[1].status == named.flagged
    places = bench.sql("SELECT position FROM cell_counts ORDER BY id").scalars().all()
    file_order = [sample.sample for sample in samples_of(NC_VIEW)]
    assert places == [file_order.index(by_id.sample) + 1, file_order.index(named.sample) + 1]


def test_a_sample_the_file_lacks_is_not_found_and_nothing_is_kept(bench: Bench) -> None:
    with pytest.raises(NotFound, match="no sample 'P9'"):
        _import(bench, BLU, ("CLB001", "P9"))
    assert _kept(bench) == (0, 0)


def test_listing_counts_all_or_those_no_step_used(bench: Bench) -> None:
    views = _import(bench, BLU)
    bench.sql(
        "UPDATE cell_counts SET used_by = 'passage X', suspension_ml = 10, "
        "used_at = (SELECT imported_at FROM count_files WHERE id = cell_counts.file_id) "
        "WHERE id = :id",
        id=CountId.read(views[0].count_id, "count").number,
    )
    listed = bench.read(counts.list_counts)
    assert [view.count_id for view in listed] == [view.count_id for view in views]
    unused = bench.read(counts.list_counts, unused=True)
    assert [view.count_id for view in unused] == [view.count_id for view in views[1:]]


def test_only_those_who_record_bench_work_import(bench: Bench) -> None:
    bench.lab.login("admin")
    with pytest.raises(NotPermitted):
        _import(bench, BLU)


def test_a_file_name_is_text_of_at_most_255_characters(bench: Bench) -> None:
    with pytest.raises(BadInput, match="file"):
        bench.run(counts.store, file_name="x" * 256 + ".csv", content=b"x", read=_reading(BLU))


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")BLU.csv', "@SUM(A1).csv", "+1+cmd.csv"])
def test_a_file_name_a_spreadsheet_would_run_as_a_formula_is_refused(
    bench: Bench, name: str
) -> None:
    with pytest.raises(BadInput, match="formula"):
        bench.run(counts.store, file_name=name, content=BLU.read_bytes(), read=_reading(BLU))
    assert _kept(bench) == (0, 0)


def test_the_domain_keeps_texts_to_what_the_columns_hold() -> None:
    assert cell_counting.TEXT_MAX == SHORT_TEXT_MAX


# --- bound to the audit trail -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "where"),
    [
        ("UPDATE cell_counts SET viability = 99.9 WHERE position = 2", "viability"),
        ("UPDATE cell_counts SET status = 'ok' WHERE status <> 'ok'", "status"),
        ("UPDATE cell_counts SET viable_per_ml = viable_per_ml / 10", "viable_per_ml"),
        ("UPDATE count_files SET sha256 = :other", "count_files.sha256"),
        ("UPDATE count_files SET content = :content", "count_files"),
    ],
)
def test_a_hand_edit_of_a_count_or_its_file_is_what_verify_reports(
    bench: Bench, statement: str, where: str
) -> None:
    _import(bench, BLU)
    assert bench.scenario.verify_trail().intact
    bench.sql(statement, other="0" * 64, content=b"edited")
    found = bench.scenario.verify_trail().disagreement
    assert found is not None
    assert where in found.describe(values=False)


@pytest.mark.parametrize("number", [1, 9, 10, 999_999, 1_000_000, 2**31 - 1])
def test_the_trails_count_code_in_sql_is_countids(bench: Bench, number: int) -> None:
    with unit_of_work(bench.settings, authenticated=False) as uow:
        code = uow.session.execute(select(bindings._count_code(literal(number)))).scalar_one()
    assert code == CountId(number).code
