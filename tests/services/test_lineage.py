"""Split cultures through the service: what a child inherits, the shared harvest, the
lineage every view and the batch record show, and the counts MSC cannot reach.

The lab is tests.support.quality.Quality: culture C1 passaged twice (P2 harvested 3.2x10^7
cells on day 20 and reseeded 2x10^7 of them) and formulated by tom into lot L1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from lims.domain.ids import CultureId
from lims.errors import BadInput, RuleViolation
from lims.services import cultures, deviations, lots, reports
from lims.views import to_json
from lims.views.quality import WrittenReport
from tests.support.bench import Bench, day
from tests.support.lab import PASSWORD
from tests.support.quality import LOT, Quality

SPLIT = {"seeded": 10_000_000, "vessels": 6, "area_cm2": 1000, "at": day(20) + timedelta(hours=1)}


def pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def written(quality: Quality, service: Callable[..., WrittenReport], out: Path) -> WrittenReport:
    """The lot's report by SERVICE, published as the command publishes it once committed."""
    report: WrittenReport = quality.run(service, lot=quality.lot_id, out=out)
    report.files.publish()
    return report


def _split(quality: Quality, **values: object) -> str:
    detail = quality.run(cultures.split_culture, culture=quality.culture_id, **{**SPLIT, **values})
    return str(detail.summary.culture_id)


def test_counted_cells_of_an_aspirate_with_a_culture_are_refused_a_fresh_start(
    quality: Quality,
) -> None:
    """Why: `culture start DIN --seeded 1e7` from C1's surplus made C2 start at P0, PD 0."""
    din = str(CultureId.parse(quality.culture_id).din.code)
    before = quality.audit_actions()
    with pytest.raises(RuleViolation, match="use `lims culture split"):
        quality.culture(din, mnc=None, seeded=10_000_000, at=day(21))
    assert quality.audit_actions() == before


def test_a_split_child_inherits_passage_number_and_doublings(quality: Quality) -> None:
    """Why: C2's lot reported final passage 1, dodging the passage limit."""
    child = quality.run(cultures.split_culture, culture=quality.culture_id, **SPLIT)
    din = CultureId.parse(quality.culture_id).din.code
    assert child.summary.culture_id == f"{din}-C2"
    assert (child.summary.kind, child.parent, child.source_passage) == (
        "split",
        quality.culture_id,
        f"{quality.culture_id}-P2",
    )
    assert child.summary.passages == 2
    assert child.summary.cumulative_population_doublings == pytest.approx(3.0)
    first = quality.passage(
        child.summary.culture_id, day(24), harvested=40_000_000, seeded=10_000_000
    )
    assert first.passage_id == f"{child.summary.culture_id}-P3"
    assert first.population_doublings == pytest.approx(2.0)  # 1e7 -> 4e7
    assert first.cumulative_population_doublings == pytest.approx(5.0)
    lot = quality.formulate(child.summary.culture_id, harvested=40_000_000, vials=1)
    assert lot.summary.final_passage == 3
    parent = quality.read(cultures.show_culture, culture=quality.culture_id)
    assert parent.children == [child.summary.culture_id]
    assert "culture.split" in quality.audit_actions()


def test_a_split_child_counts_against_the_same_passage_limit(quality: Quality) -> None:
    quality.lab.set_site(expansion={"max_passage": 3})
    child = _split(quality)
    quality.passage(child, day(23), harvested=10_000_000, seeded=10_000_000)
    beyond = quality.passage(child, day(25), harvested=10_000_000, seeded=10_000_000)
    assert beyond.passage_number == 4
    assert "passage_limit" in [flag.kind for flag in beyond.flags]


def test_the_children_and_the_parent_share_one_harvest(quality: Quality) -> None:
    """P2 harvested 3.2e7 and reseeded 2e7: 1.2e7 are left for children, no more."""
    _split(quality)
    with pytest.raises(BadInput) as refused:
        _split(quality, seeded=2_000_001)
    assert refused.value.field == "seeded"
    assert "2,000,000 cells" in str(refused.value)
    _split(quality, seeded=2_000_000)
    with pytest.raises(BadInput) as corrected:
        quality.run(
            cultures.correct_passage,
            passage=f"{quality.culture_id}-P2",
            harvested=31_999_999,
            reason="recount",
        )
    assert corrected.value.field == "harvested"


def test_a_split_needs_a_harvest_and_follows_it(bench: Bench, growing: str) -> None:
    with pytest.raises(RuleViolation, match="no passage yet"):
        bench.run(cultures.split_culture, culture=growing, **SPLIT)
    bench.passage(growing, day(14))
    with pytest.raises(BadInput) as early:
        bench.run(cultures.split_culture, culture=growing, **{**SPLIT, "at": day(13)})
    assert early.value.field == "at"


def test_correcting_the_source_harvest_recomputes_the_children(quality: Quality) -> None:
    child = _split(quality)
    quality.passage(child, day(24), harvested=40_000_000, seeded=10_000_000)
    corrected = quality.run(
        cultures.correct_passage,
        passage=f"{quality.culture_id}-P2",
        harvested=64_000_000,
        reason="count sheet misread",
    )
    assert f"{child}-P3" in corrected.recomputed
    shown = quality.read(cultures.show_culture, culture=child)
    assert shown.summary.cumulative_population_doublings == pytest.approx(6.0)  # 4 + 2


def test_culture_lot_and_batch_record_show_the_whole_lineage(
    quality: Quality, tmp_path: Path
) -> None:
    """Why: C2's batch record omitted C1's history, its deviations and the rejected L1."""
    opened = quality.run(
        deviations.open_deviation, culture=quality.culture_id, description="incubator alarm"
    )
    child = _split(quality)
    quality.passage(child, day(24), harvested=40_000_000, seeded=10_000_000)
    quality.lab.login("quinn")
    quality.run(lots.reject, lot=quality.lot_id, reason="sterility positive", password=PASSWORD)
    quality.lab.login("tom")
    sister = quality.formulate(child, **{**LOT, "harvested": 40_000_000, "vials": 1})

    shown = quality.read(cultures.show_culture, culture=child)
    [ancestor] = shown.lineage
    assert ancestor.culture_id == quality.culture_id
    assert ancestor.split_at == f"{quality.culture_id}-P2"
    assert [p.passage_number for p in ancestor.passages] == [1, 2]
    assert opened.deviation_id in [d.deviation_id for d in ancestor.deviations]
    assert [(s.lot_id, s.status) for s in shown.sister_lots] == [(quality.lot_id, "rejected")]

    lot_json = to_json(quality.read(lots.show_lot, lot=sister.summary.lot_id))
    assert lot_json["culture"]["parent"] == quality.culture_id
    assert lot_json["lineage"][0]["culture_id"] == quality.culture_id
    assert lot_json["sister_lots"] == [
        {"lot_id": quality.lot_id, "culture_id": quality.culture_id, "status": "rejected"}
    ]
    parent = to_json(quality.read(cultures.show_culture, culture=quality.culture_id))
    assert parent["children"] == [child]
    assert parent["sister_lots"][0]["lot_id"] == sister.summary.lot_id

    rejected, quality.lot_id = quality.lot_id, sister.summary.lot_id
    out = tmp_path / "batch.pdf"
    written(quality, reports.write_batch_record, out)
    text = pdf_text(out)
    for expected in (
        "Lineage",
        f"split at {quality.culture_id}-P2",
        "incubator alarm",
        f"{rejected} {quality.culture_id} REJECTED",
    ):
        assert expected in text, (expected, text)


# --- plausibility ----------------------------------------------------------------------------

# The typo of the issue: 3.1e8 harvested off 1,050 cm² (about 295,000 cells/cm²), 67-fold.
TYPO = {"harvested": 310_000_000, "seeded": 20_000_000, "vessels": 6, "area_cm2": 1050}


@pytest.fixture
def reseeded(bench: Bench, growing: str) -> str:
    """GROWING with P1 (day 14) reseeded 4.6x10^6 cells on 1,050 cm²."""
    bench.passage(growing, day(14), seeded=4_600_000, harvested=4_600_000, area_cm2=1050)
    return growing


def test_a_harvest_beyond_msc_density_is_refused_as_a_typo(bench: Bench, reseeded: str) -> None:
    """Why: a typo --harvested 3.1e8 was accepted as 67x fold expansion in one passage."""
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.passage(reseeded, day(19), **TYPO)
    assert refused.value.field == "harvested"
    assert "295,238 cells/cm²" in str(refused.value)
    assert "--confirm-unusual --reason" in str(refused.value)
    assert bench.audit_actions() == before


def test_a_harvest_confirmed_as_unusual_is_recorded_with_a_deviation(
    bench: Bench, reseeded: str
) -> None:
    logged = bench.passage(
        reseeded, day(19), **TYPO, confirm_unusual=True, reason="recounted twice, confirmed"
    )
    [flag] = [f for f in logged.flags if f.kind == "unusual_count"]
    assert "recounted twice, confirmed" in flag.description
    shown = bench.read(cultures.show_culture, culture=reseeded)
    assert flag.deviation_id in [d.deviation_id for d in shown.deviations]


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("reason", {"confirm_unusual": True}),
        ("reason", {"reason": "why not"}),
        ("confirm-unusual", {"harvested": 30_000_000, "confirm_unusual": True, "reason": "x"}),
    ],
)
def test_confirming_needs_a_reason_and_an_unusual_passage(
    bench: Bench, reseeded: str, field: str, values: dict[str, object]
) -> None:
    with pytest.raises(BadInput) as refused:
        bench.passage(reseeded, day(19), **{**TYPO, **values})
    assert refused.value.field == field
    assert bench.audit_actions()[-1] != "passage.log" or "-P2" not in str(bench.audit_actions())


def test_a_doubling_time_faster_than_msc_divide_is_refused(bench: Bench, reseeded: str) -> None:
    """4.6e6 -> 3.68e7 is three doublings; in 30 hours that is a 10 h doubling time."""
    with pytest.raises(BadInput, match="min_doubling_time_hours"):
        bench.passage(
            reseeded,
            day(14) + timedelta(hours=30),
            harvested=36_800_000,
            **{k: v for k, v in TYPO.items() if k != "harvested"},
        )


def test_a_correction_is_held_to_the_same_plausibility(bench: Bench, reseeded: str) -> None:
    bench.passage(reseeded, day(19), harvested=40_000_000, seeded=20_000_000, area_cm2=4000)
    passage = f"{reseeded}-P2"
    # 9.5e7 off the 1,050 cm² P1 reseeded is 90,476 cells/cm²: plausible.
    bench.run(cultures.correct_passage, passage=passage, harvested=95_000_000, reason="recount")
    with pytest.raises(BadInput) as refused:
        bench.run(cultures.correct_passage, passage=passage, harvested=310_000_000, reason="x")
    assert refused.value.field == "correction"
    corrected = bench.run(
        cultures.correct_passage,
        passage=passage,
        harvested=310_000_000,
        reason="count confirmed by the supervisor",
        confirm_unusual=True,
    )
    assert "unusual_count" in [flag.kind for flag in corrected.passage.flags]


def test_a_passage_confirmed_unusual_is_held_to_the_limits_again_when_corrected(
    bench: Bench, reseeded: str
) -> None:
    """A confirmation covers the numbers it confirmed: a later correction of the same
    passage to a count ten times higher needs its own, and opens its own deviation."""
    bench.passage(
        reseeded, day(19), **TYPO, confirm_unusual=True, reason="recounted twice, confirmed"
    )
    passage = f"{reseeded}-P2"
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.run(cultures.correct_passage, passage=passage, harvested=1_700_000_000, reason="x")
    assert refused.value.field == "correction"
    assert bench.audit_actions() == before
    corrected = bench.run(
        cultures.correct_passage,
        passage=passage,
        harvested=1_700_000_000,
        reason="the supervisor recounted",
        confirm_unusual=True,
    )
    assert "unusual_count" in [flag.kind for flag in corrected.passage.flags]
    shown = bench.read(cultures.show_culture, culture=reseeded)
    assert [d.kind for d in shown.deviations].count("unusual_count") == 2
