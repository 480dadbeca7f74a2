"""Full names that sign: one person each, however a name is typed."""

from __future__ import annotations

import unicodedata

import pytest

from lims.domain.signatures import comparable_name, full_name_problem


@pytest.mark.parametrize(
    ("typed", "existing"),
    [
        ("Ｔｏｍ Tech", "Tom Tech"),  # fullwidth letters
        ("tom  TECH", "Tom Tech"),
        (unicodedata.normalize("NFD", "José Ramírez"), "José Ramírez"),
    ],
)
def test_names_that_read_alike_compare_equal(typed: str, existing: str) -> None:
    assert comparable_name(typed) == comparable_name(existing)


@pytest.mark.parametrize(
    "typed",
    [
        "Тom Tech",  # a Cyrillic Т among Latin letters
        "Tom\u200b Tech",  # zero-width space
        "Quin\u00adn QA",  # soft hyphen
        "Quinn\u202e AQ",  # right-to-left override
        "Tom\tTech\x07",
    ],
)
def test_names_that_could_pass_for_another_are_refused(typed: str) -> None:
    assert full_name_problem(typed) is not None


@pytest.mark.parametrize(
    "typed", ["José Ramírez", "Anne-Marie O'Neil", "Иван Петров", "山田 まさ子"]
)
def test_real_names_in_one_script_a_word_are_accepted(typed: str) -> None:
    assert full_name_problem(typed) is None
