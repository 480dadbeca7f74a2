"""Whether a scanner typed the self-test symbol unchanged (lims.domain.scanner_check)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lims.domain import isbt128, scanner_check
from lims.domain.scanner_check import TEST_TEXT, Wrong, advice, compare

TYPABLE = st.characters(min_codepoint=32, max_codepoint=126)


def test_the_test_symbol_holds_every_character_a_label_code_can() -> None:
    qr_payload = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/*")
    assert qr_payload | set(isbt128.SYMBOL_CHARACTERS) <= set(TEST_TEXT)


def test_an_exact_scan_is_fit() -> None:
    assert compare(TEST_TEXT) == []
    assert advice([]) is None


def test_an_italian_layout_names_the_dash_once() -> None:
    wrong = compare(TEST_TEXT.replace("-", "'"))
    assert [str(w) for w in wrong] == ["'-' arrived as \"'\""]
    assert advice(wrong) == scanner_check.LAYOUT_ADVICE


def test_a_character_that_arrives_as_two_is_named_with_both() -> None:
    assert compare(TEST_TEXT.replace("<", "^;")) == [Wrong("<", "^;")]  # a dead key, then ;
    # A key typed before the right one is a character the symbol does not hold.
    assert compare(TEST_TEXT.replace("(", "^(")) == [Wrong("", "^")]


def test_missing_and_extra_characters_are_named() -> None:
    assert [str(w) for w in compare(TEST_TEXT.replace("*", ""))] == ["'*' did not arrive"]
    assert [str(w) for w in compare(TEST_TEXT + "\t")] == [
        "'\\t' arrived that the symbol does not hold"
    ]


def test_caps_lock_is_told_from_a_layout() -> None:
    assert advice(compare(TEST_TEXT.swapcase())) == scanner_check.CASE_ADVICE
    assert advice(compare(TEST_TEXT.swapcase().replace("/", "&"))) == scanner_check.LAYOUT_ADVICE


@given(position=st.integers(0, len(TEST_TEXT) - 1), replacement=TYPABLE)
def test_any_character_that_arrives_changed_is_named(position: int, replacement: str) -> None:
    typed = TEST_TEXT[:position] + replacement + TEST_TEXT[position + 1 :]
    wrong = compare(typed)
    assert (wrong == []) == (typed == TEST_TEXT)
    if typed != TEST_TEXT:
        assert any(replacement in w.typed or TEST_TEXT[position] in w.expected for w in wrong)


@given(mapping=st.dictionaries(st.sampled_from(sorted(set(TEST_TEXT))), TYPABLE, min_size=1))
def test_a_layout_that_moves_characters_names_each_moved_one(mapping: dict[str, str]) -> None:
    typed = "".join(mapping.get(c, c) for c in TEST_TEXT)
    wrong = compare(typed)
    moved = {sent for sent, got in mapping.items() if sent != got}
    assert (wrong == []) == (not moved)
    assert len(wrong) == len(set(wrong))  # each difference once
    # Every character that no longer arrives anywhere is named.
    assert {sent for sent in moved if sent not in typed} <= {w.expected for w in wrong}


@given(st.text(TYPABLE, max_size=80))
def test_whatever_arrives_every_difference_is_accounted_for(typed: str) -> None:
    wrong = compare(typed)
    missing = sum(len(w.expected) for w in wrong if not w.typed)
    extra = sum(len(w.typed) for w in wrong if not w.expected)
    assert (wrong == []) == (typed == TEST_TEXT)
    assert missing <= len(TEST_TEXT)
    assert extra <= len(typed)
    assert all(w.expected or w.typed for w in wrong)
