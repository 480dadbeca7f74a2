"""The release specification and the release verdict, with no database at all.

Every rule that decides whether a lot may leave the lab is exercised here on
plain data: the verdict of each kind of criterion, waivers, deviations, the
lot's own state and the order QA reads the reasons in. The services' tests
check the same rules end to end; these say which rule broke.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from lims.domain.spec import (
    DERIVED_TESTS,
    NEVER_WAIVABLE,
    OPTIONAL_SPEC,
    TABLE_KEYS,
    CategoricalCriterion,
    Criterion,
    DerivedCriterion,
    DeviationFacts,
    Evaluation,
    LotFacts,
    NumericCriterion,
    RecordedResult,
    ReleaseSpec,
    Spec,
    StoredSpec,
    evaluate,
)
from lims.timeutil import show_time
from tests.support import quality

RELEASE_SPEC: TypeAdapter[dict[str, Criterion]] = TypeAdapter(ReleaseSpec)
STORED_SPEC: TypeAdapter[dict[str, Criterion]] = TypeAdapter(StoredSpec)
INTERIM_TESTS = ("gram_stain", "sterility_interim")  # the default's, since issue 13
CRITERION: TypeAdapter[Criterion] = TypeAdapter(Criterion)
DEFAULT = RELEASE_SPEC.validate_python({})
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOT = "A999926000001-L1"
PASSING = {
    **quality.PASSING,
    "karyotype": "normal",
    "gram_stain": "negative",
    "sterility_interim": "negative",
}
FAILING = {
    "viability": "69.9",
    "sterility": "positive",
    "mycoplasma": "positive",
    "endotoxin": "7.01",
    "cd73": "94.9",
    "cd90": "90",
    "cd105": "90",
    "cd45": "2.1",
    "cd34": "3",
    "cd14": "5",
    "cd19": "10",
    "hla_dr": "2.5",
    "karyotype": "abnormal",
    "gram_stain": "positive",
    "sterility_interim": "positive",
}
SITE = {
    "endotoxin": {"max": 5},
    "cd11b": {"kind": "numeric", "description": "CD11b", "unit": "%", "max": 2},
    "gram": {
        "kind": "categorical",
        "description": "gram stain",
        "values": ["none", "some"],
        "passing": ["none"],
    },
    "karyotype": {"required": True},
}


def facts(**changes: Any) -> LotFacts:
    """A lot in quarantine, in date, within its dose and passage limits, with no deviation."""
    lot = LotFacts(
        code=LOT,
        status="quarantine",
        spec_version=1,
        expires_at=NOW + timedelta(days=2),
        now=NOW,
        zone=UTC,
        cells_per_vial=40_000_000,
        final_passage=2,
        deviations=(),
    )
    return replace(lot, **changes)


def result(test: str, value: str, *, result_id: int = 1) -> RecordedResult:
    """A result as the QC service records it: any but a categorical test's also as a number."""
    categorical = test in DEFAULT and DEFAULT[test].kind == "categorical"
    return RecordedResult(
        id=result_id,
        test=test,
        value=value,
        number=None if categorical else float(value),
        unit=None,
        method=None,
        tested_at=NOW - timedelta(hours=result_id),
        reason=None,
        recorded_by="tom",
    )


def results(values: dict[str, str], first: int = 1) -> list[RecordedResult]:
    return [
        result(test, value, result_id=first + n) for n, (test, value) in enumerate(values.items())
    ]


def waiver(criterion: str, result_id: int | None, **changes: Any) -> DeviationFacts:
    """A deviation on the lot, closed by QA with a waiver of that result."""
    deviation = DeviationFacts(
        id=7,
        description="out of specification, assessed",
        status="closed",
        on_lot=True,
        waived=True,
        criterion=criterion,
        waived_result_id=result_id,
    )
    return replace(deviation, **changes)


def verdicts(spec: Spec, recorded: list[RecordedResult], lot: LotFacts) -> dict[str, Any]:
    return {v.test: (v.verdict, v.result) for v in evaluate(spec, recorded, lot).criteria}


# --- the signed form ------------------------------------------------------------------------


def _signed(spec: dict[str, Criterion]) -> str:
    """As lims.services.lots puts the specification into the record a release signs."""
    record = {test: criterion.as_table() for test, criterion in spec.items()}
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    ("site", "digest"),
    [
        ({}, "2957c31fe4927955fea5d12d5d18e394a5ac841c8ad837483ac6fe01cfd090f0"),
        (SITE, "f9a3f61af3f2b3cc45aa12fb0a393c8962efb164ad059133dbe1321b62030cf6"),
    ],
    ids=["default", "site"],
)
def test_the_signed_form_of_the_specification_is_what_lots_were_signed_with(
    site: dict[str, Any], digest: str
) -> None:
    """Digests computed with the single Criterion class that came before the union, of the
    specification as a site stored it before releases while pending (issue 13).

    A change here makes every lot signed before it show "record changed since
    signing": it needs a migration of the signed records, not a new digest.
    """
    assert _signed(STORED_SPEC.validate_python(_stored_before_pending(site))) == digest


def _stored_before_pending(site: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tables `lims init` stored for SITE before the keys and tests of issue 13."""
    spec = RELEASE_SPEC.validate_python(site)
    return {
        test: {key: value for key, value in criterion.as_table().items() if key in TABLE_KEYS}
        for test, criterion in spec.items()
        if test not in INTERIM_TESTS
    }


def test_a_specification_stored_before_pending_keys_reads_back_as_the_same_text() -> None:
    stored = _stored_before_pending(SITE)
    assert {test: c.as_table() for test, c in STORED_SPEC.validate_python(stored).items()} == stored
    assert not STORED_SPEC.validate_python(stored)["sterility"].release_while_pending


def test_the_default_specification_is_signed_with_its_pending_keys() -> None:
    """Pinned as the default since issue 13, with gram_stain and sterility_interim."""
    assert _signed(DEFAULT) == "bf003b7280b3ae03b11557bd4d1eefa0c37e930477eaa13960b414b868a157e5"


@pytest.mark.parametrize("test", ["viability", "sterility", "cell_dose", "gram_stain"])
def test_every_kind_shows_every_key_of_the_table(test: str) -> None:
    """In the order `lims config show` has always listed them; the keys of a release while
    pending follow only where they differ from their defaults."""
    criterion = DEFAULT[test]
    pending = ["release_while_pending", "interim_tests"] if test == "sterility" else []
    assert list(criterion.as_table()) == [
        "kind",
        "description",
        "unit",
        "min",
        "max",
        "values",
        "passing",
        "required",
        "waivable",
        *pending,
    ]
    assert criterion.model_dump() == criterion.model_dump(mode="json") == criterion.as_table()


# --- the specification as data --------------------------------------------------------------


def test_the_default_specification_is_one_union_member_per_kind() -> None:
    assert isinstance(DEFAULT["viability"], NumericCriterion)
    assert isinstance(DEFAULT["sterility"], CategoricalCriterion)
    assert isinstance(DEFAULT["cell_dose"], DerivedCriterion)
    assert DEFAULT["sterility"].unit is None
    assert [
        DEFAULT[t].describe() for t in ("viability", "endotoxin", "cell_dose", "sterility")
    ] == [
        "≥ 70 %",
        "≤ 7 EU/mL",
        "1e6-1e8 cells/vial",
        "negative",
    ]


def test_only_the_derived_tests_of_the_table_may_be_derived() -> None:
    derived = {t for t, c in DEFAULT.items() if c.kind == "derived"}
    assert derived | {t for t, c in OPTIONAL_SPEC.items() if c["kind"] == "derived"} == set(
        DERIVED_TESTS
    )
    assert "cell_dose_per_kg" not in DEFAULT  # a site enables it
    with pytest.raises(ValidationError) as refused:
        RELEASE_SPEC.validate_python(
            {"cd11b": {"kind": "derived", "description": "CD11b", "unit": "%", "max": 2}}
        )
    assert f"belongs to {', '.join(DERIVED_TESTS)} only" in str(refused.value)


NUMERIC = {"kind": "numeric", "description": "CD11b", "unit": "%", "max": 2}
CATEGORICAL = {"kind": "categorical", "description": "gram", "values": ["a"], "passing": ["a"]}


@pytest.mark.parametrize(
    ("table", "loc", "message"),
    [
        ({**NUMERIC, "min": "lots"}, ("min",), "Input should be a valid number"),
        ({**NUMERIC, "extra": 1}, ("extra",), "Extra inputs are not permitted"),
        ({**NUMERIC, "description": ""}, ("description",), "at least 1 character"),
        ({**CATEGORICAL, "values": ["a", "a"]}, (), "values must not repeat"),
        ({**CATEGORICAL, "passing": ["b"]}, (), "passing must be a subset of values"),
        ({**CATEGORICAL, "values": None}, (), "a categorical criterion needs values and passing"),
        ({**CATEGORICAL, "unit": "%"}, (), "has values and passing, not min/max/unit"),
        ({**NUMERIC, "passing": ["a"]}, (), "a numeric criterion has min/max, not values/passing"),
        ({**NUMERIC, "max": None}, (), "a numeric criterion needs min, max or both"),
        ({**NUMERIC, "min": 3}, (), "min must not be above max"),
        ({**NUMERIC, "max": float("inf")}, (), "min and max must be finite numbers"),
        ({**NUMERIC, "kind": "derived", "unit": ""}, (), "a derived criterion needs a unit"),
        ({**NUMERIC, "max": 101}, (), "a percentage bound must lie within 0-100"),
        ({"description": "CD11b", "unit": "%", "max": 2}, ("kind",), "Field required"),
        ({**NUMERIC, "kind": "range"}, ("kind",), "'numeric', 'categorical' or 'derived'"),
        ("negative", (), "Input should be a valid dictionary or instance of Criterion"),
    ],
)
def test_a_malformed_table_is_refused_at_its_own_keys(
    table: Any, loc: tuple[str, ...], message: str
) -> None:
    """The messages sites saw when all kinds were one class, never naming a union member."""
    with pytest.raises(ValidationError) as refused:
        CRITERION.validate_python(table)
    error = refused.value.errors()[0]
    assert (error["loc"], message in error["msg"]) == (loc, True), error


def test_an_absent_key_may_be_given_as_none() -> None:
    numeric = {"kind": "numeric", "description": "x", "unit": "%", "max": 2}
    categorical = {"kind": "categorical", "description": "x", "values": ["a"], "passing": ["a"]}
    assert CRITERION.validate_python({**numeric, "values": None, "passing": None, "min": None})
    assert CRITERION.validate_python({**categorical, "unit": None, "min": None, "max": None})


def test_a_specification_takes_criteria_built_in_code_as_well_as_tables() -> None:
    """Through the same merge: the keys another kind uses are None in a criterion's table."""
    words = CategoricalCriterion(description="viability", values=["ok", "low"], passing=["ok"])
    assert RELEASE_SPEC.validate_python({**DEFAULT, "viability": words}) == {
        **DEFAULT,
        "viability": words,
    }
    assert CRITERION.validate_python(words) == words


def test_a_safety_test_is_never_waivable_in_a_specification() -> None:
    for test in NEVER_WAIVABLE:
        with pytest.raises(ValidationError, match="can never be waivable"):
            RELEASE_SPEC.validate_python({test: {"waivable": True}})


# --- verdicts -------------------------------------------------------------------------------


def test_every_criterion_passing_makes_the_lot_releasable() -> None:
    evaluation = evaluate(DEFAULT, results(PASSING), facts())
    assert {v.verdict for v in evaluation.criteria} == {"pass"}
    assert evaluation.blocking == []
    assert evaluation.releasable


@pytest.mark.parametrize("test", list(FAILING))
def test_a_failing_result_fails_its_criterion_and_blocks(test: str) -> None:
    recorded = results({**PASSING, test: FAILING[test]})
    evaluation = evaluate(DEFAULT, recorded, facts())
    [failed] = [v for v in evaluation.criteria if v.verdict != "pass"]
    assert (failed.test, failed.verdict, failed.result) == (test, "fail", FAILING[test])
    unit = f" {DEFAULT[test].unit}" if DEFAULT[test].unit else ""
    assert evaluation.blocking == [
        f"{test} failed: {FAILING[test]}{unit} (spec {DEFAULT[test].describe()})"
    ]


@pytest.mark.parametrize(
    ("test", "value", "verdict"),
    [
        ("viability", "70", "pass"),  # bounds are inclusive
        ("viability", "69.99", "fail"),
        ("endotoxin", "7", "pass"),
        ("endotoxin", "7.001", "fail"),
        ("sterility", "negative", "pass"),
        ("sterility", "positive", "fail"),
    ],
)
def test_a_bound_passes_and_the_next_value_fails(test: str, value: str, verdict: str) -> None:
    assert verdicts(DEFAULT, [result(test, value)], facts())[test] == (verdict, value)


def test_a_missing_required_result_blocks_and_an_optional_one_does_not() -> None:
    recorded = results({t: v for t, v in PASSING.items() if t not in ("cd90", "karyotype")})
    evaluation = evaluate(DEFAULT, recorded, facts())
    missing = {v.test: v for v in evaluation.criteria if v.verdict == "missing"}
    assert set(missing) == {"cd90", "karyotype"}
    assert missing["karyotype"].result is None
    assert evaluation.blocking == ["cd90 missing (spec ≥ 95 %)"]
    required = RELEASE_SPEC.validate_python({"karyotype": {"required": True}})
    assert evaluate(required, recorded, facts()).blocking == [
        "cd90 missing (spec ≥ 95 %)",
        "karyotype missing (spec normal)",
    ]


def test_the_latest_result_counts_and_every_result_stays_visible() -> None:
    recorded = [
        *results(PASSING),
        result("cd105", "90", result_id=20),
        result("cd105", "96", result_id=21),
    ]
    verdict = next(v for v in evaluate(DEFAULT, recorded, facts()).criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.result) == ("pass", "96")
    assert [(r.result.value, r.status) for r in verdict.history] == [
        (PASSING["cd105"], "superseded"),
        ("90", "superseded"),
        ("96", "valid"),
    ]
    recorded.append(result("cd105", "80", result_id=22))
    verdict = next(v for v in evaluate(DEFAULT, recorded, facts()).criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.result) == ("fail", "80")


def test_a_result_of_the_other_kind_fails_rather_than_passing() -> None:
    """A site that changes a test's kind keeps the results recorded under the old one."""
    as_numeric = RELEASE_SPEC.validate_python(
        {"karyotype": {"kind": "numeric", "unit": "%", "min": 0, "values": None, "passing": None}}
    )
    word = result("karyotype", "normal")
    assert verdicts(as_numeric, [word], facts())["karyotype"] == ("fail", "normal")
    number = replace(result("sterility", "negative"), number=0.0)
    assert verdicts(DEFAULT, [number], facts())["sterility"] == ("fail", "negative")


# --- derived tests --------------------------------------------------------------------------


def test_each_derived_test_reads_its_own_fact_of_the_lot() -> None:
    assert verdicts(DEFAULT, [], facts())["cell_dose"] == ("pass", "4e7")
    assert verdicts(DEFAULT, [], facts())["final_passage"] == ("pass", "2")
    overdosed = verdicts(DEFAULT, [], facts(cells_per_vial=200_000_000))
    assert (overdosed["cell_dose"], overdosed["final_passage"]) == (("fail", "2e8"), ("pass", "2"))
    late = verdicts(DEFAULT, [], facts(final_passage=6))
    assert (late["cell_dose"], late["final_passage"]) == (("pass", "4e7"), ("fail", "6"))


def test_a_derived_failure_names_the_value_read_off_the_lot() -> None:
    evaluation = evaluate(DEFAULT, results(PASSING), facts(final_passage=6))
    assert evaluation.blocking == ["final_passage failed: 6 passages (spec ≤ 5 passages)"]


def test_a_derived_test_with_no_fact_to_read_is_an_error_not_another_tests_value() -> None:
    unknown = {"doublings": DerivedCriterion(description="doublings", unit="PD", max=5)}
    with pytest.raises(KeyError, match="doublings"):
        evaluate(unknown, [], facts())


def test_a_derived_test_ignores_results_recorded_under_its_name() -> None:
    recorded = [result("final_passage", "1")]
    assert verdicts(DEFAULT, recorded, facts(final_passage=6))["final_passage"] == ("fail", "6")


# --- waivers --------------------------------------------------------------------------------


def test_a_waiver_covers_the_failed_result_it_was_signed_for() -> None:
    recorded = [*results(PASSING), result("cd105", "90", result_id=30)]
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[waiver("cd105", 30)]))
    verdict = next(v for v in evaluation.criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.waived_by, verdict.blocking) == ("fail", 7, None)
    assert evaluation.releasable


def test_a_waiver_does_not_cover_a_later_result() -> None:
    recorded = [
        *results(PASSING),
        result("cd105", "90", result_id=30),
        result("cd105", "85", result_id=31),
    ]
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[waiver("cd105", 30)]))
    assert evaluation.blocking == ["cd105 failed: 85 % (spec ≥ 95 %)"]


def test_a_waiver_never_covers_a_missing_result() -> None:
    recorded = results({t: v for t, v in PASSING.items() if t != "cd90"})
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[waiver("cd90", None)]))
    assert evaluation.blocking == ["cd90 missing (spec ≥ 95 %)"]


@pytest.mark.parametrize(
    "deviation",
    [
        waiver("cd73", 30),  # another criterion
        waiver("cd105", 30, status="open"),  # not yet signed
        waiver("cd105", 30, waived=False),  # closed without a waiver
        waiver("cd105", 30, on_lot=False),  # on the culture: it cannot waive the lot's result
    ],
    ids=["other-criterion", "open", "not-waived", "on-culture"],
)
def test_only_a_closed_waiver_on_the_lot_for_that_criterion_covers(
    deviation: DeviationFacts,
) -> None:
    recorded = [*results(PASSING), result("cd105", "90", result_id=30)]
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[deviation]))
    assert "cd105 failed: 90 % (spec ≥ 95 %)" in evaluation.blocking
    assert next(v for v in evaluation.criteria if v.test == "cd105").waived_by is None


def test_a_criterion_that_is_not_waivable_is_never_waived() -> None:
    recorded = results(PASSING)
    lot = facts(final_passage=6, deviations=[waiver("final_passage", None)])
    evaluation = evaluate(DEFAULT, recorded, lot)
    assert evaluation.blocking == ["final_passage failed: 6 passages (spec ≤ 5 passages)"]


@pytest.mark.parametrize("test", sorted(NEVER_WAIVABLE))
def test_a_safety_test_is_never_waived_even_if_its_criterion_says_so(test: str) -> None:
    """A specification built in code skips ReleaseSpec's check; the verdict does not rely on it."""
    lax = {
        name: criterion.model_copy(update={"waivable": True}) for name, criterion in DEFAULT.items()
    }
    recorded = [*results(PASSING), result(test, FAILING[test], result_id=30)]
    evaluation = evaluate(lax, recorded, facts(deviations=[waiver(test, 30)]))
    assert [b.split(":")[0] for b in evaluation.blocking] == [f"{test} failed"]


# --- deviations and the lot's own state -----------------------------------------------------


def test_an_open_deviation_on_the_lot_or_its_culture_blocks() -> None:
    deviations = [
        DeviationFacts(3, "incubator alarm", "open", False, False, None, None),
        DeviationFacts(4, "label misprint", "closed", True, False, None, None),
        DeviationFacts(5, "antibody lot expired", "open", True, False, "cd105", None),
    ]
    evaluation = evaluate(DEFAULT, results(PASSING), facts(deviations=deviations))
    assert evaluation.blocking == [
        "deviation 3 open: incubator alarm",
        "deviation 5 open: antibody lot expired",
    ]


@pytest.mark.parametrize("status", ["released", "rejected"])
def test_a_lot_out_of_quarantine_cannot_be_released_again(status: str) -> None:
    evaluation = evaluate(DEFAULT, results(PASSING), facts(status=status))
    assert (evaluation.lot_status, evaluation.blocking) == (status, [f"lot {LOT} is {status}"])


def test_a_lot_is_expired_from_its_expiry_time_on() -> None:
    expires_at = NOW + timedelta(hours=1)
    before = facts(expires_at=expires_at, now=expires_at - timedelta(microseconds=1))
    assert evaluate(DEFAULT, results(PASSING), before).releasable
    evaluation = evaluate(DEFAULT, results(PASSING), facts(expires_at=expires_at, now=expires_at))
    assert evaluation.blocking == [f"lot {LOT} expired at {show_time(expires_at, UTC)}"]


def test_the_expiry_is_shown_in_the_stations_zone() -> None:
    rome = ZoneInfo("Europe/Rome")
    lot = facts(expires_at=NOW, now=NOW, zone=rome)
    assert evaluate(DEFAULT, results(PASSING), lot).blocking == [
        f"lot {LOT} expired at {show_time(NOW, rome)}"
    ]
    assert show_time(NOW, rome) != show_time(NOW, UTC)


def test_blocking_reasons_come_criteria_first_then_deviations_then_the_lot() -> None:
    recorded = results({t: v for t, v in PASSING.items() if t not in ("viability", "cd73")})
    recorded.append(result("sterility", "positive", result_id=50))
    deviation = DeviationFacts(9, "incubator alarm", "open", False, False, None, None)
    lot = facts(expires_at=NOW, final_passage=6, deviations=[deviation])
    assert evaluate(DEFAULT, recorded, lot).blocking == [
        "viability missing (spec ≥ 70 %)",
        "sterility failed: positive (spec negative)",
        "cd73 missing (spec ≥ 95 %)",
        "final_passage failed: 6 passages (spec ≤ 5 passages)",
        "deviation 9 open: incubator alarm",
        f"lot {LOT} expired at {show_time(NOW, UTC)}",
    ]


def test_a_lot_out_of_quarantine_is_named_as_such_rather_than_expired() -> None:
    lot = facts(status="released", expires_at=NOW)
    assert evaluate(DEFAULT, results(PASSING), lot).blocking == [f"lot {LOT} is released"]


# --- properties -----------------------------------------------------------------------------

bounds = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(low=bounds, high=bounds, value=bounds)
def test_a_numeric_value_passes_exactly_within_its_range(
    low: float, high: float, value: float
) -> None:
    low, high = min(low, high), max(low, high)
    spec = {"dose": NumericCriterion(description="dose", unit="u", min=low, max=high)}
    recorded = [replace(result("dose", "0"), number=value)]
    [verdict] = evaluate(spec, recorded, facts()).criteria
    assert (verdict.verdict == "pass") == (low <= value <= high)


outcomes = st.sampled_from(["pass", "fail", "missing"])


@given(
    outcome=st.fixed_dictionaries({test: outcomes for test in PASSING}),
    waived=st.sets(st.sampled_from(sorted(PASSING))),
    open_deviations=st.integers(min_value=0, max_value=2),
    status=st.sampled_from(["quarantine", "released", "rejected"]),
    expired=st.booleans(),
    cells_per_vial=st.sampled_from([500_000, 40_000_000, 200_000_000]),
)
def test_a_lot_is_releasable_exactly_when_nothing_stands_in_the_way(
    outcome: dict[str, str],
    waived: set[str],
    open_deviations: int,
    status: str,
    expired: bool,
    cells_per_vial: int,
) -> None:
    recorded = [
        result(test, (PASSING if verdict == "pass" else FAILING)[test], result_id=n)
        for n, (test, verdict) in enumerate(outcome.items(), start=1)
        if verdict != "missing"
    ]
    ids = {r.test: r.id for r in recorded}
    deviations = [waiver(test, ids.get(test)) for test in sorted(waived)]
    deviations += [
        DeviationFacts(100 + n, "open", "open", True, False, None, None)
        for n in range(open_deviations)
    ]
    lot = facts(
        status=status,
        expires_at=NOW if expired else NOW + timedelta(days=1),
        cells_per_vial=cells_per_vial,
        deviations=deviations,
    )
    evaluation = evaluate(DEFAULT, recorded, lot)

    def stands(test: str) -> bool:
        criterion = DEFAULT[test]
        excused = test in waived and criterion.waivable
        if outcome[test] == "fail":
            return not excused
        return outcome[test] == "missing" and criterion.required and not excused

    expected = (
        not any(stands(test) for test in PASSING)
        and 1e6 <= cells_per_vial <= 1e8
        and open_deviations == 0
        and status == "quarantine"
        and not expired
    )
    assert evaluation.releasable == expected
    assert evaluation.releasable == (evaluation.blocking == [])


# --- out-of-specification results -------------------------------------------------------------


def oos(number: int, result_id: int, **changes: Any) -> DeviationFacts:
    """The OOS deviation a failing cd105 result opened, still open unless changed."""
    deviation = DeviationFacts(
        id=number,
        description="cd105 out of specification",
        status="open",
        on_lot=True,
        waived=False,
        criterion="cd105",
        waived_result_id=None,
        kind="oos",
        result_id=result_id,
    )
    return replace(deviation, **changes)


def investigated(value: str, result_id: int, deviation: int) -> RecordedResult:
    return replace(result("cd105", value, result_id=result_id), investigation_id=deviation)


def cd105(evaluation: Evaluation) -> list[tuple[str, str, int | None]]:
    return [
        (entry.result.value, entry.status, entry.deviation_id)
        for entry in evaluation.results
        if entry.result.test == "cd105"
    ]


def test_an_investigation_result_does_not_count_while_the_oos_deviation_is_open() -> None:
    recorded = [
        *results({t: v for t, v in PASSING.items() if t != "cd105"}),
        result("cd105", "90", result_id=30),
        investigated("97", 31, deviation=8),
    ]
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[oos(8, 30)]))
    assert cd105(evaluation) == [("90", "valid", 8), ("97", "investigation", 8)]
    assert evaluation.blocking == [
        "cd105 failed: 90 % (spec ≥ 95 %)",
        "deviation 8 open: cd105 out of specification",
    ]


def test_invalidating_the_original_lets_the_investigation_result_count() -> None:
    recorded = [
        *results({t: v for t, v in PASSING.items() if t != "cd105"}),
        result("cd105", "90", result_id=30),
        investigated("97", 31, deviation=8),
    ]
    closed = oos(8, 30, status="closed", outcome="invalidated")
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[closed]))
    assert cd105(evaluation) == [("90", "invalidated", 8), ("97", "valid", 8)]
    assert evaluation.releasable


def test_a_confirmed_failure_stands_and_its_investigation_never_counts() -> None:
    recorded = [
        *results({t: v for t, v in PASSING.items() if t != "cd105"}),
        result("cd105", "90", result_id=30),
        investigated("97", 31, deviation=8),
    ]
    closed = oos(8, 30, status="closed", outcome="confirmed")
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[closed]))
    assert cd105(evaluation) == [("90", "valid", 8), ("97", "investigation", 8)]
    assert evaluation.blocking == ["cd105 failed: 90 % (spec ≥ 95 %)"]
    waived = replace(closed, waived=True, waived_result_id=30)
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[waived]))
    assert evaluation.releasable
    assert next(v for v in evaluation.criteria if v.test == "cd105").waived_by == 8


def test_invalidated_with_no_investigation_result_leaves_the_test_missing() -> None:
    recorded = [
        *results({t: v for t, v in PASSING.items() if t != "cd105"}),
        result("cd105", "90", result_id=30),
    ]
    closed = oos(8, 30, status="closed", outcome="invalidated")
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[closed]))
    assert evaluation.blocking == ["cd105 missing (spec ≥ 95 %)"]


def test_a_quarantine_lot_is_held_only_by_qa() -> None:
    recorded = [*results(PASSING), result("cd105", "90", result_id=30)]
    evaluation = evaluate(DEFAULT, recorded, facts(deviations=[oos(8, 30)]))
    assert not evaluation.on_hold
    held = evaluate(DEFAULT, results(PASSING), facts(holds=["hold 1 by quinn: alarm"]))
    assert held.hold_reasons == ["hold 1 by quinn: alarm"]
    assert held.blocking == ["hold 1 by quinn: alarm"]


def test_a_released_lot_is_held_by_open_deviations_and_failures_not_waived() -> None:
    late = [*results(PASSING), result("endotoxin", "12", result_id=40)]
    deviation = replace(oos(9, 40), criterion="endotoxin", description="endotoxin OOS")
    evaluation = evaluate(DEFAULT, late, facts(status="released", deviations=[deviation]))
    assert evaluation.hold_reasons == [
        "endotoxin failed: 12 EU/mL (spec ≤ 7 EU/mL)",
        "deviation 9 open: endotoxin OOS",
    ]
    confirmed = replace(deviation, status="closed", outcome="confirmed")
    evaluation = evaluate(DEFAULT, late, facts(status="released", deviations=[confirmed]))
    assert evaluation.hold_reasons == ["endotoxin failed: 12 EU/mL (spec ≤ 7 EU/mL)"]
    passing = evaluate(DEFAULT, results(PASSING), facts(status="released"))
    assert not passing.on_hold
    overdosed = evaluate(
        DEFAULT, results(PASSING), facts(status="released", cells_per_vial=200_000_000)
    )
    assert not overdosed.on_hold  # judged at release; a derived value does not change after


# --- a release while a final result is pending ---------------------------------------------

STARTED_AT = NOW - timedelta(days=1)
EXPECTED = NOW + timedelta(days=13)
INTERIM = {"gram_stain": "negative", "sterility_interim": "negative"}


def started(test: str = "sterility", *, result_id: int = 50) -> RecordedResult:
    """A test started (qc record LOT TEST pending), its final result expected in 13 days."""
    return RecordedResult(
        id=result_id,
        test=test,
        value="pending",
        number=None,
        unit=None,
        method="BacT/ALERT, 14 d",
        tested_at=STARTED_AT,
        reason=None,
        recorded_by="tom",
        pending=True,
        expected_final_at=EXPECTED,
    )


def but_sterility(**extra: str) -> list[RecordedResult]:
    """Every result passing but sterility's and the interim tests' (unless given)."""
    kept = {t: v for t, v in PASSING.items() if t not in ("sterility", *INTERIM)}
    return results({**kept, **extra})


def verdict_of(evaluation: Evaluation, test: str) -> tuple[str, str | None, str | None]:
    [found] = [v for v in evaluation.criteria if v.test == test]
    return found.verdict, found.result, found.blocking


def test_the_default_lets_sterility_alone_be_pending_on_two_interim_tests() -> None:
    sterility = DEFAULT["sterility"]
    assert sterility.release_while_pending
    assert sterility.interim_tests == list(INTERIM)
    assert [t for t, c in DEFAULT.items() if c.release_while_pending] == ["sterility"]
    for test in INTERIM:
        interim = DEFAULT[test]
        assert isinstance(interim, CategoricalCriterion)
        assert (interim.values, interim.passing) == (["negative", "positive"], ["negative"])
        assert not interim.required
        assert not interim.waivable


@pytest.mark.parametrize(
    ("tables", "loc", "message"),
    [
        ({"sterility": {"interim_tests": []}}, ("sterility", "interim_tests"), "must name"),
        (
            {"sterility": {"release_while_pending": False}},
            ("sterility", "interim_tests"),
            "only with release_while_pending = true",
        ),
        (
            {"mycoplasma": {"interim_tests": ["gram_stain"]}},
            ("mycoplasma", "interim_tests"),
            "only with release_while_pending = true",
        ),
        (
            {"sterility": {"interim_tests": ["gram_stain", "gram_stain"]}},
            ("sterility", "interim_tests"),
            "must not repeat",
        ),
        (
            {"sterility": {"interim_tests": ["sterility"]}},
            ("sterility", "interim_tests"),
            "sterility cannot stand in for itself",
        ),
        (
            {"sterility": {"interim_tests": ["gram"]}},
            ("sterility", "interim_tests"),
            "gram is not a test of the specification",
        ),
        (
            {"sterility": {"interim_tests": ["cell_dose"]}},
            ("sterility", "interim_tests"),
            "cell_dose is read off the lot: an interim test is recorded",
        ),
        (
            {"mycoplasma": {"release_while_pending": True, "interim_tests": ["sterility"]}},
            ("mycoplasma", "interim_tests"),
            "sterility may itself be pending",
        ),
        (
            {"cell_dose": {"release_while_pending": True}},
            ("cell_dose", "release_while_pending"),
            "a derived criterion is read off the lot: it is never pending",
        ),
        (
            {"final_passage": {"interim_tests": ["gram_stain"]}},
            ("final_passage", "interim_tests"),
            "a derived criterion is read off the lot: it is never pending",
        ),
        (
            {"gram_stain": {"waivable": True}},
            ("gram_stain", "waivable"),
            "must be false: an interim test of sterility, a safety test",
        ),
        (
            {"sterility": {"values": ["negative", "positive", "pending"]}},
            ("sterility", "values"),
            "'pending' is what a test started but not yet read is recorded as",
        ),
        # What stands in for sterility is not relaxed, nor a test that finds no contamination.
        (
            {"gram_stain": {"passing": ["negative", "positive"]}},
            ("gram_stain", "passing"),
            'must be ["negative"]: an interim test of sterility, a safety test',
        ),
        (
            {"gram_stain": {"values": ["negative"]}},  # a positive stain could not be recorded
            ("sterility", "interim_tests"),
            "gram_stain cannot stand in for sterility, a safety test",
        ),
        (
            {"karyotype": {"waivable": False}, "sterility": {"interim_tests": ["karyotype"]}},
            ("sterility", "interim_tests"),
            "karyotype cannot stand in for sterility, a safety test",
        ),
        (
            {
                "viability": {"waivable": False},
                "sterility": {"interim_tests": ["gram_stain", "viability"]},
            },
            ("sterility", "interim_tests"),
            "viability cannot stand in for sterility, a safety test",
        ),
    ],
)
def test_a_release_while_pending_is_refused_at_the_key_that_breaks_it(
    tables: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        RELEASE_SPEC.validate_python(tables)
    error = refused.value.errors()[0]
    assert (error["loc"], message in error["msg"]) == (loc, True), error


def test_a_safety_test_stands_in_for_sterility_as_a_test_for_contamination_does() -> None:
    spec = RELEASE_SPEC.validate_python(
        {
            "sterility": {"interim_tests": ["gram_stain", "endotoxin"]},
            "mycoplasma": {"release_while_pending": True, "interim_tests": ["sterility_interim"]},
        }
    )
    assert spec["sterility"].interim_tests == ["gram_stain", "endotoxin"]


def test_a_site_may_let_another_test_be_pending_or_none() -> None:
    potency = {
        "potency": {
            "kind": "numeric",
            "description": "potency",
            "unit": "%",
            "min": 50,
            "release_while_pending": True,
            "interim_tests": ["karyotype"],
        }
    }
    spec = RELEASE_SPEC.validate_python(potency)
    assert spec["potency"].as_table()["interim_tests"] == ["karyotype"]
    none = RELEASE_SPEC.validate_python(
        {"sterility": {"release_while_pending": False, "interim_tests": []}}
    )
    assert "release_while_pending" not in none["sterility"].as_table()
    assert none["sterility"].as_table() == _stored_before_pending({})["sterility"]


def test_a_test_started_is_pending_and_never_a_result_that_counts() -> None:
    recorded = [*but_sterility(**INTERIM), started()]
    evaluation = evaluate(DEFAULT, recorded, facts())
    assert verdict_of(evaluation, "sterility") == ("pending", None, None)
    assert [(e.result.test, e.status) for e in evaluation.results if e.result.pending] == [
        ("sterility", "pending")
    ]
    assert not any(e.counts for e in evaluation.results if e.result.pending)
    assert evaluation.pending_tests == ["sterility"]
    [pending] = evaluation.pending
    assert (pending.method, pending.started_at, pending.expected_final_at) == (
        "BacT/ALERT, 14 d",
        STARTED_AT,
        EXPECTED,
    )
    assert evaluation.releasable  # on its interim tests


@pytest.mark.parametrize(
    ("interim", "reason"),
    [
        ({}, "gram_stain missing; sterility_interim missing"),
        ({"gram_stain": "negative"}, "sterility_interim missing"),
        (
            {"gram_stain": "positive", "sterility_interim": "negative"},
            "gram_stain failed: positive",
        ),
    ],
)
def test_a_pending_test_blocks_until_every_interim_test_passes(
    interim: dict[str, str], reason: str
) -> None:
    evaluation = evaluate(DEFAULT, [*but_sterility(**interim), started()], facts())
    expected = (
        f"sterility pending: its interim tests must pass to release before its final result "
        f"({reason})"
    )
    assert verdict_of(evaluation, "sterility") == ("pending", None, expected)
    assert expected in evaluation.blocking
    # A failed interim test is a failure in its own right as well.
    assert ("gram_stain failed: positive (spec negative)" in evaluation.blocking) == (
        interim.get("gram_stain") == "positive"
    )


def test_interim_tests_are_required_only_while_their_test_is_pending() -> None:
    final = evaluate(DEFAULT, [*but_sterility(sterility="negative")], facts())
    assert final.releasable
    assert {verdict_of(final, t)[0] for t in INTERIM} == {"missing"}


def test_a_waiver_is_no_interim_pass() -> None:
    """Of a site's own test released while pending on a waivable interim test."""
    spec = RELEASE_SPEC.validate_python(
        {
            "potency": {
                "kind": "numeric",
                "description": "potency",
                "unit": "%",
                "min": 50,
                "release_while_pending": True,
                "interim_tests": ["karyotype"],
            }
        }
    )
    recorded = [
        *results({**PASSING, "karyotype": "abnormal"}),
        started("potency", result_id=60),
    ]
    karyotype = next(r.id for r in recorded if r.test == "karyotype")
    evaluation = evaluate(spec, recorded, facts(deviations=[waiver("karyotype", karyotype)]))
    assert verdict_of(evaluation, "karyotype")[2] is None  # waived in its own right
    assert evaluation.blocking == [
        "potency pending: its interim tests must pass to release before its final result "
        "(karyotype failed: abnormal)"
    ]


def test_a_test_pending_that_may_not_be_blocks_as_missing() -> None:
    """lims refuses to start one; a specification built in code may still hold it."""
    recorded = [*results({t: v for t, v in PASSING.items() if t != "mycoplasma"})]
    evaluation = evaluate(DEFAULT, [*recorded, started("mycoplasma")], facts())
    assert verdict_of(evaluation, "mycoplasma") == (
        "pending",
        None,
        "mycoplasma pending: its final result is needed for release",
    )


def test_the_final_result_completes_the_test_started() -> None:
    recorded = [*but_sterility(**INTERIM), started(), result("sterility", "negative", result_id=70)]
    evaluation = evaluate(DEFAULT, recorded, facts(status="released"))
    assert verdict_of(evaluation, "sterility") == ("pass", "negative", None)
    assert [e.status for e in evaluation.results if e.result.test == "sterility"] == [
        "completed",
        "valid",
    ]
    assert evaluation.pending == []
    assert evaluation.hold_reasons == []


def test_a_released_lot_pending_on_interim_tests_is_held_once_one_fails() -> None:
    recorded = [*but_sterility(**INTERIM), started()]
    assert evaluate(DEFAULT, recorded, facts(status="released")).hold_reasons == []
    late = [*recorded, result("sterility_interim", "positive", result_id=80)]
    held = evaluate(DEFAULT, late, facts(status="released")).hold_reasons
    assert held == [
        "sterility pending: its interim tests must pass to release before its final result "
        "(sterility_interim failed: positive)",
        "sterility_interim failed: positive (spec negative)",
    ]


def test_a_failing_final_result_holds_a_released_lot() -> None:
    recorded = [*but_sterility(**INTERIM), started(), result("sterility", "positive", result_id=70)]
    evaluation = evaluate(DEFAULT, recorded, facts(status="released"))
    assert evaluation.pending == []
    assert evaluation.hold_reasons == ["sterility failed: positive (spec negative)"]


@given(
    gram=st.sampled_from(["negative", "positive", None]),
    culture=st.sampled_from(["negative", "positive", None]),
    final=st.sampled_from(["negative", "positive", None]),
)
def test_a_lot_pending_sterility_is_releasable_exactly_on_passing_interim_tests(
    gram: str | None, culture: str | None, final: str | None
) -> None:
    interim = {"gram_stain": gram, "sterility_interim": culture}
    given_interim = {test: value for test, value in interim.items() if value is not None}
    recorded = [*but_sterility(**given_interim), started()]
    if final is not None:
        recorded.append(result("sterility", final, result_id=90))
    evaluation = evaluate(DEFAULT, recorded, facts())
    no_failure = "positive" not in (gram, culture, final)
    expected = no_failure and (final == "negative" or (gram, culture) == ("negative",) * 2)
    assert evaluation.releasable == expected
    assert evaluation.pending_tests == ([] if final else ["sterility"])
