"""ISBT 128 Donation Identification Numbers: the check character, formatting and parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain.din import CHECK_ALPHABET, Din, check_character, parse_din
from lims.errors import BadInput

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
FIN_LETTERS = "ABCDEFGHIJKLMNPQRSTUVWXYZ"  # any letter but O
DIGITS = "0123456789"


def iso7064_mod37_2(data: str) -> str:
    """The iterative (Horner) form of ISO 7064 mod 37-2, independent of the module's sum."""
    p = 0
    for character in data:
        p = ((p + ALPHABET.index(character)) * 2) % 37
    return ALPHABET[(38 - p) % 37]


thirteen_characters = st.text(alphabet=ALPHABET, min_size=13, max_size=13)
fins = st.builds(
    lambda letter, digits: letter + digits,
    st.sampled_from(FIN_LETTERS),
    st.text(alphabet=DIGITS, min_size=4, max_size=4),
)
dins = st.builds(
    Din.of,
    fins,
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=1, max_value=999_999),
)


def _refusal(text: str) -> BadInput:
    with pytest.raises(BadInput) as refused:
        parse_din(text)
    error = refused.value
    assert error.exit_code == 2
    assert error.field == "din"
    assert "\n" not in error.message
    assert "\r" not in error.message
    return error


# The check character


def test_check_alphabet_maps_digits_letters_then_star():
    assert CHECK_ALPHABET == ALPHABET


def test_check_character_of_the_issue_example():
    assert check_character("G123417654321") == "A"


@pytest.mark.parametrize(
    ("data", "check"),
    [
        # Nothing but zeros: sum 0, (38 - 0) mod 37 = 1.
        ("0000000000000", "1"),
        # A single 1 in the last place has weight 2**1: sum 2, 38 - 2 = 36 → '*'.
        ("0000000000001", "*"),
        # A single 1 one place further left has weight 2**2: sum 4, 38 - 4 = 34 → 'Y'.
        ("0000000000010", "Y"),
        # A (10) in the first of 13 places has weight 2**13 = 8192: sum 81920;
        # 81920 = 37 × 2214 + 2, so 38 - 2 = 36 → '*'.
        ("A000000000000", "*"),
        # A000026000001, weights counted from the right:
        #   A = 10 × 2**13 = 81920
        #   2 =  2 × 2**8  =   512
        #   6 =  6 × 2**7  =   768
        #   1 =  1 × 2**1  =     2
        # sum 83202 = 37 × 2248 + 26; check = (38 - 26) mod 37 = 12 → 'C'.
        ("A000026000001", "C"),
    ],
)
def test_check_character_worked_by_hand(data: str, check: str):
    assert check_character(data) == check


@given(thirteen_characters)
def test_check_character_agrees_with_the_iterative_iso7064_form(data: str):
    assert check_character(data) == iso7064_mod37_2(data)


@given(thirteen_characters, st.integers(min_value=0, max_value=12), st.sampled_from(ALPHABET))
def test_any_single_substitution_changes_the_check(data: str, index: int, replacement: str):
    if data[index] == replacement:
        replacement = ALPHABET[(ALPHABET.index(replacement) + 1) % len(ALPHABET)]
    typo = data[:index] + replacement + data[index + 1 :]
    assert check_character(typo) != check_character(data)


@given(thirteen_characters, st.integers(min_value=0, max_value=11))
def test_swapping_two_adjacent_different_characters_changes_the_check(data: str, index: int):
    first, second = data[index], data[index + 1]
    if first == second:
        second = ALPHABET[(ALPHABET.index(first) + 1) % len(ALPHABET)]
        data = data[: index + 1] + second + data[index + 2 :]
    swapped = data[:index] + second + first + data[index + 2 :]
    assert swapped != data
    assert check_character(swapped) != check_character(data)


# Formatting


def test_din_code_is_fin_two_digit_year_and_six_digit_sequence():
    din = Din.of("A9999", 2026, 1)
    assert din.code == "A999926000001"
    assert len(din.code) == 13


def test_din_check_is_the_check_character_of_its_code():
    assert Din.of("A9999", 2026, 1).check == "8"
    assert Din.of("A0000", 26, 1).check == "C"


def test_din_display_groups_fin_year_sequence_and_check_with_spaces():
    assert Din.of("A9999", 2026, 1).display == "A9999 26 000001 8"
    assert (
        Din.of("B1234", 2005, 42).display == f"B1234 05 000042 {check_character('B123405000042')}"
    )


def test_din_of_keeps_the_last_two_digits_of_the_year():
    assert Din.of("A9999", 2026, 1).year == 26
    assert Din.of("A9999", 2100, 7).code == "A999900000007"


@pytest.mark.parametrize("sequence", [0, -1, 1_000_000])
def test_din_of_refuses_a_sequence_out_of_range(sequence: int):
    with pytest.raises(ValueError, match="sequence"):
        Din.of("A9999", 2026, sequence)


# Parsing


@pytest.mark.parametrize(
    "text",
    [
        "A9999 26 000001 8",
        "A9999 26 000001",
        "A999926000001",
        "A9999260000018",
        "a9999 26 000001 8",
        "a999926000001",
        "  A9999\t26  000001 8\n",
    ],
)
def test_parse_din_accepts_spaces_check_and_case_optional(text: str):
    assert parse_din(text) == Din("A9999", 26, 1)


def test_parse_din_accepts_a_lower_case_check_letter():
    din = parse_din("G1234 17 654321 a")
    assert din == Din("G1234", 17, 654321)
    assert din.check == "A"


def test_parse_din_names_the_field_it_was_given():
    with pytest.raises(BadInput) as refused:
        parse_din("junk", field="donation")
    assert refused.value.field == "donation"
    assert refused.value.message.startswith("donation: ")


def test_parse_din_refuses_a_wrong_check_character_naming_the_expected_one():
    error = _refusal("A9999 26 000001 9")
    assert "'8'" in error.message
    assert "'9'" in error.message
    assert "A999926000001" in error.message


@given(dins, st.sampled_from(ALPHABET))
def test_parse_din_refuses_every_wrong_check_character(din: Din, check: str):
    if check == din.check:
        return
    error = _refusal(f"{din.code}{check}")
    assert repr(din.check) in error.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A9999 26 00001",  # 12 characters
        "A9999 26 0000001 8 8",  # too long
        "O9999 26 000001",  # a FIN never starts with O
        "19999 26 000001",  # nor with a digit
        "AA999 26 000001",  # letter where the FIN has digits
        "A9999 26 00000A",  # letter in the sequence
        "A9999 2X 000001",  # letter in the year
        "A9999-26-000001",
    ],
)
def test_parse_din_refuses_a_malformed_din(text: str):
    error = _refusal(text)
    assert "facility number" in error.message


def test_parse_din_refuses_sequence_zero():
    error = _refusal("A9999 26 000000")
    assert "000000" in error.message


def test_parse_din_refuses_sequence_zero_even_with_its_correct_check():
    code = "A999926000000"
    _refusal(code + check_character(code))


def test_parse_din_message_of_multi_line_junk_is_one_line():
    error = _refusal("A9999\n26\n0000XX\nrm -rf /")
    assert "\n" not in error.message


@given(dins)
def test_parse_din_round_trips_the_display(din: Din):
    assert parse_din(din.display) == din


@given(dins)
def test_parse_din_round_trips_the_code_without_check(din: Din):
    assert parse_din(din.code) == din
    assert parse_din(din.code.lower()) == din


@given(st.text())
def test_parse_din_of_junk_returns_a_din_or_raises_bad_input_only(text: str):
    refusal = None
    try:
        din = parse_din(text)
    except BadInput as error:
        refusal = error
    if refusal is None:
        assert 1 <= din.sequence <= 999_999
    else:
        assert refusal.field == "din"
        assert "\n" not in refusal.message
