"""What donor screening makes a label say (lims.domain.screening)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lims.domain import screening
from lims.domain.screening import NEGATIVE, NOT_DONE, REACTIVE, Result

TESTS = ("hiv", "hbv", "hcv")
DAY = datetime(2026, 11, 1, tzinfo=UTC)


def results(*pairs: tuple[str, str]) -> list[Result]:
    return [Result(test, result, DAY + timedelta(days=n)) for n, (test, result) in enumerate(pairs)]


def test_an_unscreened_donor_is_not_evaluated() -> None:
    statement = screening.statement(TESTS, [])
    assert statement.label_text == screening.NOT_EVALUATED
    assert statement.not_performed == TESTS
    assert statement.collection_type == "1"


def test_not_done_is_not_performed_and_every_negative_says_nothing() -> None:
    partial = screening.statement(TESTS, results(("hiv", NEGATIVE), ("hbv", NOT_DONE)))
    assert partial.not_performed == ("hbv", "hcv")
    assert partial.label_text == screening.NOT_EVALUATED
    done = screening.statement(TESTS, results(*((test, NEGATIVE) for test in TESTS)))
    assert (done.label_text, done.reactive, done.collection_type) == (None, (), "1")


def test_a_reactive_result_gets_the_biohazard_legend_and_collection_type_x() -> None:
    statement = screening.statement(TESTS, results(("hcv", REACTIVE), ("hiv", REACTIVE)))
    assert statement.reactive == ("hiv", "hcv")  # in the vocabulary's order
    assert statement.collection_type == "X"
    assert statement.label_text == (
        "☣ BIOHAZARD  WARNING: Reactive test results for hiv, hcv; "
        "NOT EVALUATED FOR INFECTIOUS SUBSTANCES"
    )


def test_a_later_negative_does_not_unmark_a_reactive_donor() -> None:
    statement = screening.statement(TESTS, results(("hbv", REACTIVE), ("hbv", NEGATIVE)))
    assert statement.reactive == ("hbv",)


def test_the_latest_result_counts_for_whether_a_test_was_performed() -> None:
    statement = screening.statement(TESTS, results(("hiv", NEGATIVE), ("hiv", NOT_DONE)))
    assert "hiv" in statement.not_performed


def test_a_test_dropped_from_the_vocabulary_still_marks_a_donor_it_found_reactive() -> None:
    statement = screening.statement(("hiv",), results(("cmv", REACTIVE), ("hiv", NEGATIVE)))
    assert statement.reactive == ("cmv",)
    assert statement.not_performed == ()


@given(st.lists(st.tuples(st.sampled_from(TESTS), st.sampled_from(screening.RESULTS))))
def test_the_label_says_reactive_exactly_when_some_result_was(pairs: list[tuple[str, str]]) -> None:
    statement = screening.statement(TESTS, results(*pairs))
    assert bool(statement.reactive) == any(result == REACTIVE for _, result in pairs)
    assert (statement.label_text is None) == (
        not statement.reactive and not statement.not_performed
    )
