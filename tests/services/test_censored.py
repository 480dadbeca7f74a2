"""Censored QC results through the service: `<X` and `>X` recorded, judged, shown and bound.

A value beyond the method's range is stored as typed in normal form ("<0.5"), with
its bound as the number and its operator as the qualifier; the trail states both,
and it is judged as its text reads, by every value it may stand for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lims.errors import BadInput, RuleViolation
from lims.services import bindings, lots, reports
from tests.support.bench import Bench
from tests.support.lab import PASSWORD
from tests.support.quality import PASSING, Quality


def _row(quality: Bench, test: str) -> tuple[str, float | None, str | None]:
    return tuple(
        quality.sql(
            "SELECT value, number, qualifier FROM qc_results WHERE test = :test ORDER BY id DESC",
            test=test,
        ).first()
    )


def _disagreement(quality: Bench) -> Any:
    verification = quality.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


@pytest.mark.parametrize(
    ("test", "typed", "stored", "number", "qualifier"),
    [
        ("endotoxin", "<0.5", "<0.5", 0.5, "<"),
        ("endotoxin", " < 0.50 ", "<0.5", 0.5, "<"),
        ("endotoxin", ">1e3", ">1000", 1000.0, ">"),
        ("viability", ">99.50%", ">99.5", 99.5, ">"),
        ("hla_dr", "<0.1", "<0.1", 0.1, "<"),
        ("cd73", "> 96", ">96", 96.0, ">"),
        ("cd45", "<100", "<100", 100.0, "<"),
    ],
)
def test_a_censored_result_is_stored_as_typed_with_its_bound_and_operator(
    quality: Quality, test: str, typed: str, stored: str, number: float, qualifier: str
) -> None:
    verdict = quality.record(test, typed)
    assert verdict.result == stored
    assert _row(quality, test) == (stored, number, qualifier)
    [*_, entry] = [e for e in quality.scenario.audit_trail() if e.action == "qc.record"]
    assert (entry.new["value"], entry.new["qualifier"]) == (stored, qualifier)


def test_a_plain_result_states_no_qualifier(quality: Quality) -> None:
    quality.record("endotoxin", "0.5")
    assert _row(quality, "endotoxin") == ("0.5", 0.5, None)
    assert quality.scenario.audit_trail()[-1].new["qualifier"] is None


@pytest.mark.parametrize(
    ("test", "typed", "verdict"),
    [
        ("endotoxin", "<0.5", "pass"),
        ("endotoxin", "<7", "pass"),
        ("cd73", ">96", "pass"),
        ("viability", ">99.5", "pass"),
        ("hla_dr", "<0.1", "pass"),
        ("cd73", "<99", "fail"),
        ("cd45", ">0.1", "fail"),
        ("viability", "<100", "fail"),
    ],
)
def test_a_censored_result_passes_only_if_all_it_may_stand_for_does(
    quality: Quality, test: str, typed: str, verdict: str
) -> None:
    assert quality.record(test, typed).verdict == verdict


@pytest.mark.parametrize(
    ("test", "typed", "why"),
    [
        ("endotoxin", "<7.000001", "below 7.000001 may still be above 7"),
        ("endotoxin", "7.000004", None),
        ("viability", ">69.99999", "above 69.99999 may still be below 70"),
        ("cd73", ">94.9999999", "above 94.9999999 may still be below 95"),
        ("cd45", "2.0000001", None),
    ],
)
def test_a_result_is_kept_to_its_last_digit_and_never_rounded_into_its_range(
    quality: Quality, test: str, typed: str, why: str | None
) -> None:
    """Rounded to six digits, each of these read as its limit itself and passed."""
    failed = quality.record(test, typed)
    assert (failed.verdict, failed.result) == ("fail", typed)
    assert _row(quality, test)[0] == typed
    [blocking] = [reason for reason in quality.evaluation().blocking if reason.startswith(test)]
    assert blocking.endswith(f": {why}" if why else ")")


def test_a_percentage_just_below_100_may_be_its_lower_bound(quality: Quality) -> None:
    assert quality.record("viability", ">99.99999").result == ">99.99999"


def test_one_that_may_be_out_of_range_opens_an_oos_deviation_saying_why(quality: Quality) -> None:
    failed = quality.record("endotoxin", "<10")
    assert (failed.verdict, failed.result) == ("fail", "<10")
    why = "<10 EU/mL (spec ≤ 7 EU/mL): below 10 may still be above 7"
    [opened] = [d for d in quality.show().deviations if d.kind == "oos"]
    assert opened.description == f"endotoxin out of specification: {why}"
    assert f"endotoxin failed: {why}" in quality.evaluation().blocking


def test_a_retest_and_an_investigation_result_may_be_censored(quality: Quality) -> None:
    quality.record("cd73", "96")
    retested = quality.record("cd73", ">99", reason="re-stained")
    assert (retested.verdict, retested.result) == ("pass", ">99")
    quality.record("endotoxin", "<10")
    [opened] = [d for d in quality.show().deviations if d.kind == "oos"]
    investigated = quality.record("endotoxin", "<0.5", investigation=opened.deviation_id)
    assert [(r.value, r.status) for r in investigated.history] == [
        ("<10", "valid"),
        ("<0.5", "investigation"),
    ]
    assert quality.scenario.audit_trail()[-1].new["qualifier"] == "<"


def test_a_lot_with_a_censored_result_is_released_and_shows_it_as_typed(
    quality: Quality,
) -> None:
    quality.scenario.record_qc(quality.lot_id, {**PASSING, "endotoxin": "<0.5"})
    released = quality.release()
    assert released.summary.status == "released"
    [signature] = released.signatures
    assert signature.record_unchanged
    [endotoxin] = [c for c in released.evaluation.criteria if c.test == "endotoxin"]
    assert (endotoxin.result, endotoxin.verdict) == ("<0.5", "pass")
    assert "<0.5" in [r.value for r in quality.evaluation().results]
    assert _disagreement(quality) is None


def test_the_batch_record_prints_censored_values_and_why_they_fail(
    quality: Quality, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    quality.record("endotoxin", "<10")
    quality.record("hla_dr", "<0.1")
    out = tmp_path / "batch-record.pdf"
    quality.run(reports.write_batch_record, lot=quality.lot_id, out=out).files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert "<10 EU/mL" in text
    assert "<0.1 %" in text
    assert "below 10 may still be above 7" in text


def test_a_censored_value_on_a_categorical_test_is_bad_input(quality: Quality) -> None:
    before = quality.audit_actions()
    for typed, operator in (("<0.5", "<"), (">1", ">")):
        with pytest.raises(BadInput) as refused:
            quality.record("sterility", typed)
        assert refused.value.field == "value"
        assert refused.value.message.startswith(
            f"value: {operator}X is for numeric tests; sterility must be one of negative, positive"
        )
    assert quality.audit_actions() == before


@pytest.mark.parametrize(
    ("test", "typed"),
    [
        ("endotoxin", "<"),
        ("endotoxin", ">"),
        ("endotoxin", "<<1"),
        ("endotoxin", "<>1"),
        ("endotoxin", "< abc"),
        ("endotoxin", "<-1"),
        ("endotoxin", "<inf"),
        ("endotoxin", ">nan"),
        ("endotoxin", "<0"),  # nothing recorded is below 0
        ("endotoxin", "<1e-400"),  # reads as 0
        ("endotoxin", "<1e13"),
        ("endotoxin", "<0.5 EU/mL"),
        ("endotoxin", "<=0.5"),
        ("endotoxin", "≤0.5"),
        ("endotoxin", "‹0.5"),
        ("endotoxin", "＜0.5"),
        ("endotoxin", "﹤0.5"),
        ("endotoxin", "\u00a0<0.5"),  # a space of another script, as around a plain number
        ("viability", ">100"),  # no percentage is above 100
        ("viability", ">99.99999999999999999"),  # reads as 100, no number apart from it
        ("viability", "<100.5"),
        ("viability", "<0%"),
    ],
)
def test_a_malformed_censored_value_is_bad_input_and_writes_nothing(
    quality: Quality, test: str, typed: str
) -> None:
    before = quality.audit_actions()
    with pytest.raises(BadInput) as refused:
        quality.record(test, typed)
    assert refused.value.field == "value"
    assert "\n" not in refused.value.message
    assert quality.audit_actions() == before


# --- the qualifier is bound to the trail --------------------------------------------------------


def test_a_qualifier_taken_off_by_hand_disagrees_and_the_value_reads_as_no_number(
    quality: Quality,
) -> None:
    """The row still reads "<0.5" but says it is a plain 0.5: audit verify names the column,
    release refuses, and the result no longer passes."""
    quality.scenario.record_qc(quality.lot_id, {**PASSING, "endotoxin": "<0.5"})
    quality.sql("UPDATE qc_results SET qualifier = NULL WHERE test = 'endotoxin'")
    found = _disagreement(quality)
    assert (found.table, found.column, found.row_value, found.trail_value) == (
        "qc_results",
        "qualifier",
        None,
        "<",
    )
    [endotoxin] = [c for c in quality.evaluation().criteria if c.test == "endotoxin"]
    assert endotoxin.verdict == "fail"
    quality.lab.login("rita")
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}qc_results"):
        quality.run(lots.release, lot=quality.lot_id, password=PASSWORD)


def test_a_qualifier_put_on_a_plain_result_by_hand_disagrees(quality: Quality) -> None:
    quality.record("endotoxin", "0.8")
    quality.sql("UPDATE qc_results SET qualifier = '<' WHERE test = 'endotoxin'")
    found = _disagreement(quality)
    assert (found.table, found.column) == ("qc_results", "qualifier")
    [endotoxin] = [c for c in quality.evaluation().criteria if c.test == "endotoxin"]
    assert endotoxin.verdict == "fail"  # "0.8" does not read as the "<" its row claims
