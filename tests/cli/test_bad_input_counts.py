"""Bad files for `lims count import` (issue 14, "Bad input"): each refused in one line with
exit 2 and nothing kept, or imported whole; property tests over mutated copies of the
shared exports.

Every example runs in this process (tests.support.cli.invoke): allotropy loads once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.bench import Bench
from tests.support.cli import invoke, ok, refused
from tests.support.instrument_files import (
    BLU,
    NC_VIEW,
    NUCLEOVIEW,
    SHARED_FILES,
    XR,
    samples_of,
    vicell_xr_summary_rows,
    xls_of,
    xlsx_of,
)
from tests.support.lab import Lab

FORMULAS = ("=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", '+HYPERLINK("x")', "-2+3")
# Where a field begins in each format: after its delimiter.
FIELD_STARTS = {BLU: b",", NC_VIEW: b",", NUCLEOVIEW: b";", XR: b" : "}
LOSSLESS = ("utf-8-sig", "utf-16", "utf-32")


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return lab.built("bench", lambda: Bench(lab))


def _kept(bench: Bench) -> tuple[int, int]:
    files = bench.sql("SELECT count(*) FROM count_files").scalar_one()
    return files, bench.sql("SELECT count(*) FROM cell_counts").scalar_one()


def _export(tmp_path: Path, content: bytes, name: str = "export.csv") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def _future(path: Path) -> bytes:
    """The export with its first sample analysed in 2099."""
    text = path.read_bytes().decode("utf-8")
    return text.replace("/2022 ", "/2099 ", 1).encode()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("file", "empty")),
        (bytes(range(256)) * 8, ("file", "not a text export")),
        (BLU.read_bytes()[:-40], ("file", "truncated")),
        (_future(BLU), ("file", "CLB001", "future")),
        (BLU.read_bytes().replace(b"CLB003", b"=cmd|' /C calc'!A0"), ("file", "formula")),
        (BLU.read_bytes().decode().encode("utf-16-le"), ("file", "UTF-16")),
        (BLU.read_bytes().split(b"\r\n")[0], ("file", "no samples")),
        (b"Date,Count\r\n2026-11-25,12\r\n", ("file", "tried", "vicell-blu", "asm")),
    ],
    ids=[
        "empty",
        "binary",
        "truncated",
        "future",
        "formula",
        "utf-16 without mark",
        "no samples",
        "no format",
    ],
)
def test_a_bad_file_is_exit_2_in_one_line_and_nothing_is_kept(
    bench: Bench, tmp_path: Path, content: bytes, words: tuple[str, ...]
) -> None:
    refused(invoke("count", "import", _export(tmp_path, content)), 2, *words)
    assert _kept(bench) == (0, 0)


def test_another_instruments_file_is_exit_2_naming_its_format(bench: Bench) -> None:
    refused(
        invoke("count", "import", str(NC_VIEW), "--instrument", "vicell-blu"),
        2,
        "instrument",
        "nc-202",
    )
    refused(invoke("count", "import", str(BLU), "--instrument", "vicell"), 2, "instrument")
    assert _kept(bench) == (0, 0)


def test_a_workbook_with_a_formula_cell_is_exit_2_and_a_clean_one_imports(
    bench: Bench, tmp_path: Path
) -> None:
    cells = vicell_xr_summary_rows()
    cells[6, 1] = '=CONCAT(A7,".smp")'
    refused(invoke("count", "import", _export(tmp_path, xlsx_of(cells), "run.xlsx")), 2, "B7")
    assert _kept(bench) == (0, 0)
    imported = ok("count", "import", _export(tmp_path, xls_of(vicell_xr_summary_rows()), "run.xls"))
    assert [count["sample"] for count in imported] == [sample.sample for sample in samples_of(XR)]
    assert _kept(bench) == (1, 1)


def test_a_50_mb_file_is_exit_2_before_it_is_read(bench: Bench, tmp_path: Path) -> None:
    large = tmp_path / "large.csv"
    with large.open("wb") as handle:
        handle.truncate(50 * 2**20)
    refused(invoke("count", "import", str(large)), 2, "file", "10 MB")


def test_a_missing_file_is_exit_3_and_a_directory_exit_2(bench: Bench, tmp_path: Path) -> None:
    refused(invoke("count", "import", str(tmp_path / "missing.csv")), 3, "missing.csv")
    refused(invoke("count", "import", str(tmp_path)), 2, "not a regular file")


# --- properties over mutated copies of the shared exports -----------------------------------


@st.composite
def _damaged(draw: st.DrawFn) -> tuple[Path, bytes]:
    """A shared export cut short, or with one byte changed."""
    path = draw(st.sampled_from(list(SHARED_FILES)))
    content = path.read_bytes()
    place = draw(st.integers(0, len(content) - 1))
    if draw(st.booleans()):
        return path, content[:place]
    flipped = content[place] ^ draw(st.integers(1, 255))
    return path, content[:place] + bytes([flipped]) + content[place + 1 :]


@st.composite
def _with_formula(draw: st.DrawFn) -> tuple[Path, bytes, bool]:
    """A shared export with a formula at the start of one of its fields, and whether that
    field is one of a header's column names."""
    path = draw(st.sampled_from(list(SHARED_FILES)))
    content = path.read_bytes()
    delimiter = FIELD_STARTS[path]
    starts = [
        place + len(delimiter)
        for place in range(len(content))
        if content.startswith(delimiter, place)
    ]
    place = draw(st.sampled_from(starts))
    formula = draw(st.sampled_from(FORMULAS)).encode()
    in_header = path in (BLU, NC_VIEW) and place < content.index(b"\n")
    return path, content[:place] + formula + content[place:], in_header


@st.composite
def _reencoded(draw: st.DrawFn) -> tuple[Path, bytes]:
    """A shared export in another encoding with its byte-order mark."""
    path = draw(st.sampled_from(list(SHARED_FILES)))
    encoding = draw(st.sampled_from(LOSSLESS))
    return path, path.read_bytes().decode("utf-8").encode(encoding)


def _refused_or_whole(bench: Bench, folder: Path, content: bytes, seen: set[str]) -> list[dict]:
    """Import content: refused in one line with nothing kept, or kept whole; its counts."""
    digest = hashlib.sha256(content).hexdigest()
    before = _kept(bench)
    result = invoke("count", "import", _export(folder, content), "--json")
    if digest in seen:
        refused(result, 1, "imported")
        return []
    if result.exit_code != 0:
        refused(result, 2)
        assert _kept(bench) == before
        return []
    seen.add(digest)
    counts = json.loads(result.stdout)
    assert counts
    assert _kept(bench) == (before[0] + 1, before[1] + len(counts))
    assert {count["file_sha256"] for count in counts} == {digest}
    stored = bench.sql("SELECT content FROM count_files WHERE sha256 = :d", d=digest)
    assert bytes(stored.scalar_one()) == content
    return counts


PROPERTY = settings(
    max_examples=30,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(mutated=_damaged())
def test_a_damaged_export_is_refused_in_one_line_or_imported_whole(
    bench: Bench, tmp_path: Path, mutated: tuple[Path, bytes]
) -> None:
    _refused_or_whole(bench, tmp_path, mutated[1], _seen(bench))


@settings(PROPERTY, max_examples=25)
@given(mutated=_with_formula())
def test_an_export_with_a_formula_in_a_field_is_always_refused(
    bench: Bench, tmp_path: Path, mutated: tuple[Path, bytes, bool]
) -> None:
    _, content, in_header = mutated
    result = invoke("count", "import", _export(tmp_path, content))
    # A formula in a column's name leaves no header the format is known by.
    refused(result, 2, "file", *(() if in_header else ("formula",)))
    assert _kept(bench) == (0, 0)


@settings(PROPERTY, max_examples=12)
@given(mutated=_reencoded())
def test_a_reencoded_export_imports_whole_with_the_same_values(
    bench: Bench, tmp_path: Path, mutated: tuple[Path, bytes]
) -> None:
    path, content = mutated
    counts = _refused_or_whole(bench, tmp_path, content, _seen(bench))
    if counts:
        assert [count["viable_per_ml"] for count in counts] == [
            sample.viable_per_ml for sample in samples_of(path)
        ]
        assert [count["sample"] for count in counts] == [
            sample.sample for sample in samples_of(path)
        ]


# The files each test's lab has imported, across its examples (the lab outlives them).
_SEEN: dict[str, set[str]] = {}


def _seen(bench: Bench) -> set[str]:
    return _SEEN.setdefault(bench.settings.database_url, set())
