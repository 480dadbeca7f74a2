"""QC through the service: the specification a lot is judged against, and each verdict."""

from __future__ import annotations

from typing import Any

import pytest

from lims.config import load_settings
from lims.errors import BadInput, ConfigError
from lims.services import lookup, lots, verdicts
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.quality import PASSING, Quality

# --- the specification ------------------------------------------------------------------------


def test_the_default_specification_is_the_issues() -> None:
    spec = load_settings().release
    assert list(spec)[:13] == [
        "viability",
        "sterility",
        "mycoplasma",
        "endotoxin",
        "cd73",
        "cd90",
        "cd105",
        "cd45",
        "cd34",
        "cd14",
        "cd19",
        "hla_dr",
        "karyotype",
    ]
    assert spec["viability"].describe() == "≥ 70 %"
    assert spec["endotoxin"].describe() == "≤ 7 EU/mL"
    assert spec["cd105"].min == 95
    assert spec["hla_dr"].max == 2
    assert not spec["karyotype"].required
    assert {test for test, c in spec.items() if not c.waivable} >= {
        "sterility",
        "mycoplasma",
        "endotoxin",
    }


def test_a_site_changes_one_key_and_keeps_the_rest() -> None:
    spec = load_settings(release={"endotoxin": {"max": 5}}).release
    assert spec["endotoxin"].max == 5
    assert spec["endotoxin"].unit == "EU/mL"
    assert not spec["endotoxin"].waivable
    assert "viability" in spec


@pytest.mark.parametrize(
    ("release", "key"),
    [
        ({"endotoxin": {"waivable": True}}, "release.endotoxin.waivable"),
        ({"cd73": {"min": 120}}, "release.cd73"),
        ({"sterility": {"passing": ["sterile"]}}, "release.sterility"),
        ({"viability": {"kind": "categorical"}}, "release.viability"),
        ({"viability": {"min": "lots"}}, "release.viability.min"),
        ({"cell_dose": {"kind": "numeric"}}, "release"),
        ({"cd11b": {"kind": "numeric", "description": "CD11b", "unit": "%"}}, "release.cd11b"),
    ],
)
def test_a_malformed_specification_stops_lims_naming_the_key(
    release: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(release=release)
    assert refused.value.message.startswith(f"{key}: ")


# --- verdicts ---------------------------------------------------------------------------------


def test_each_missing_required_criterion_blocks_release_by_name(quality: Quality) -> None:
    evaluation = quality.evaluation()
    assert not evaluation.releasable
    missing = {v.test for v in evaluation.criteria if v.verdict == "missing"}
    assert missing == set(PASSING) | {"karyotype", "gram_stain", "sterility_interim"}
    assert len([b for b in evaluation.blocking if "missing" in b]) == len(
        PASSING
    )  # karyotype optional


def test_every_criterion_passing_makes_the_lot_releasable(quality: Quality) -> None:
    quality.record_passing()
    evaluation = quality.evaluation()
    assert evaluation.blocking == []
    assert {v.verdict for v in evaluation.criteria} == {"pass", "missing"}


@pytest.mark.parametrize(
    ("test", "value", "verdict"),
    [
        ("viability", "70", "pass"),
        ("viability", "69.9", "fail"),
        ("endotoxin", "7", "pass"),
        ("endotoxin", "7.01", "fail"),
        ("cd105", "94.9", "fail"),
        ("hla_dr", "2.1", "fail"),
        ("sterility", "positive", "fail"),
        ("sterility", "Negative", "pass"),
        ("karyotype", "abnormal", "fail"),
    ],
)
def test_results_are_judged_against_the_specification(
    quality: Quality, test: str, value: str, verdict: str
) -> None:
    assert quality.record(test, value).verdict == verdict


def test_derived_criteria_read_the_lot(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    bench.lab.set_spec({"cell_dose": {"max": 1e7}})
    bench.lab.login("tom")
    bench.run(
        lots.formulate,
        culture=growing,
        harvested=1e8,
        viability=90,
        vials=2,
        cells_per_vial=4e7,
        volume_ml=2,
        at=day(20),
        **bench.vehicle(day(20)),
    )
    with unit_of_work(bench.settings, write=False) as uow:
        lot = lookup.lot(uow.session, f"{growing[:-3]}-L1")
        evaluation = verdicts.evaluate(uow.session, uow.settings, lot, now=utcnow())
    judged = {v.test: (v.verdict, v.result) for v in evaluation.criteria}
    assert judged["cell_dose"] == ("fail", "4e7")
    assert judged["final_passage"] == ("pass", "1")


def test_a_retest_needs_a_reason_and_the_latest_result_counts(quality: Quality) -> None:
    quality.record("cd105", "96")
    with pytest.raises(BadInput) as refused:
        quality.record("cd105", "97")
    assert refused.value.field == "reason"
    retested = quality.record("cd105", "94", reason="re-stained with a fresh antibody lot")
    assert retested.verdict == "fail"
    assert [(r.value, r.status) for r in retested.history] == [
        ("96", "superseded"),
        ("94", "valid"),
    ]


@pytest.mark.parametrize(
    ("test", "value", "field"),
    [
        ("cd999", "1", "test"),
        ("cell_dose", "1e7", "test"),
        ("viability", "101", "value"),
        ("endotoxin", "-1", "value"),
        ("sterility", "maybe", "value"),
    ],
)
def test_impossible_results_are_bad_input(
    quality: Quality, test: str, value: str, field: str
) -> None:
    with pytest.raises(BadInput) as refused:
        quality.record(test, value)
    assert refused.value.field == field


def test_a_unit_other_than_the_specifications_is_refused(quality: Quality) -> None:
    assert quality.record("endotoxin", "0.5", unit="eu/ml").verdict == "pass"
    with pytest.raises(BadInput) as refused:
        quality.record("viability", "90", unit="EU/mL")
    assert refused.value.field == "unit"
