"""ISBT 128 on a vial (lims.domain.isbt128): divisions, the product code, the compound
message a Data Matrix holds, and reading it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain import isbt128
from lims.domain.ids import parse_din
from lims.errors import BadInput

DIN = parse_din("A999926000001")
EXPIRES = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def test_the_first_level_division_codes_are_a0_to_z0_then_10_to_90() -> None:
    codes = [isbt128.division_code(n)[0] for n in range(1, 36)]
    assert codes[:3] == ["A0", "B0", "C0"]
    assert codes[25] == "Z0"
    assert codes[26:] == [f"{d}0" for d in range(1, 10)]
    assert "00" not in codes  # the undivided product
    assert "99" not in codes  # says data structure 032 holds the division


def test_beyond_the_first_level_003_says_99_and_032_holds_the_number() -> None:
    assert isbt128.division_code(36) == ("99", "000036")
    assert isbt128.division_text(36) == "99 000036"
    assert isbt128.division_code(999_999) == ("99", "999999")
    for out_of_range in (0, -1, 1_000_000):
        with pytest.raises(ValueError, match="out of range"):
            isbt128.division_code(out_of_range)


@given(st.integers(1, isbt128.DIVISION_MAX))
def test_a_division_reads_back_as_its_number(number: int) -> None:
    assert isbt128.division_number(*isbt128.division_code(number)) == number


@pytest.mark.parametrize(
    ("code", "large"),
    [("00", None), ("A1", None), ("a0", None), ("99", None), ("99", "000035"), ("A0", "000036"),
     ("O", None), ("99", "12345x")],
)  # fmt: skip
def test_division_codes_that_name_no_vial(code: str, large: str | None) -> None:
    assert isbt128.division_number(code, large) is None


def test_the_compound_message_holds_din_product_code_and_utc_expiry() -> None:
    product = isbt128.ProductCode("S1234", isbt128.AUTOLOGOUS, 1)
    text = isbt128.compound_message(DIN, product, EXPIRES.astimezone())
    assert text == "=+03000=A99992600000100=<S12341A0=(2001202611281300"


@given(
    division=st.integers(1, isbt128.DIVISION_MAX),
    collection=st.sampled_from(isbt128.COLLECTION_TYPES),
    minutes=st.integers(0, 60 * 24 * 3650),
    description=st.from_regex(r"[A-Z][0-9]{4}", fullmatch=True),
)
def test_a_compound_message_reads_back_as_it_was_written(
    division: int, collection: str, minutes: int, description: str
) -> None:
    product = isbt128.ProductCode(description, collection, division)
    expires = EXPIRES + timedelta(minutes=minutes)
    scanned = isbt128.read_compound_message(isbt128.compound_message(DIN, product, expires))
    assert (scanned.din, scanned.product, scanned.expires_at) == (DIN.code, product, expires)
    assert set(isbt128.compound_message(DIN, product, expires)) <= set(isbt128.SYMBOL_CHARACTERS)


GOOD = "=+03000=A99992600000100=<S12341A0=(2001202611281300"


@pytest.mark.parametrize(
    ("scan", "words"),
    [
        (GOOD.replace("=+03", "=+04"), ["4", "holds 3"]),
        (GOOD.replace("S12341A0", "S12342A0"), ["collection type '2'"]),
        (GOOD.replace("S12341A0", "S1234100"), ["division 00"]),
        (GOOD[:-1], ["ISBT 128 compound message"]),
        (GOOD.replace("202611281300", "202613281300"), ["expiry"]),
        (GOOD.replace("=A9999", "=O9999"), ["ISBT 128 compound message"]),
        ("=+03000", ["ISBT 128 compound message"]),
    ],
)
def test_a_damaged_compound_message_is_refused_naming_the_scan(scan: str, words: list[str]) -> None:
    with pytest.raises(BadInput) as refused:
        isbt128.read_compound_message(scan)
    assert refused.value.field == "scan"
    for word in words:
        assert word in refused.value.message


def test_the_dins_code_128_is_told_apart() -> None:
    assert isbt128.is_din_symbol(DIN.isbt128)
    assert isbt128.is_din_symbol(f" {DIN.isbt128}\n")
    assert not isbt128.is_din_symbol(GOOD)
    assert not isbt128.is_din_symbol("LIMS1/A999926000001-L1-V01/A9999260000018/PT-0001/2026/X")
    assert isbt128.is_compound_message(GOOD)


# --- ST-001's own examples (../shared/ISBT128.md) ----------------------------------------------

ST001_DIN = parse_din("G1234 17 654321")


def test_the_st001_din_has_check_character_a_printed_boxed_and_not_in_its_symbol() -> None:
    assert ST001_DIN.check == "A"
    assert ST001_DIN.eye_readable == "G1234 17 654321 [A]"
    assert ST001_DIN.isbt128 == "=G12341765432100"  # the check is computed, never encoded
    assert isbt128.is_din_symbol(ST001_DIN.isbt128)
    assert parse_din("G1234 17 654321 A") == ST001_DIN
    with pytest.raises(BadInput, match="check"):
        parse_din("G1234 17 654321 B")


def test_the_st001_expiry_is_utc_to_the_minute() -> None:
    assert isbt128.expiry_structure(EXPIRES) == "=(2001202611281300"
    rome = EXPIRES.astimezone(ZoneInfo("Europe/Rome"))  # 14:00 there: the same instant
    assert isbt128.expiry_structure(rome) == "=(2001202611281300"


def test_the_product_code_with_a_large_division_is_followed_by_032() -> None:
    product = isbt128.ProductCode("S1234", isbt128.AUTOLOGOUS_BIOHAZARD, 36)
    assert product.structures == "=<S1234X99=,000036"
    assert product.eye_readable == "S1234 X 99 000036"
    message = isbt128.compound_message(ST001_DIN, product, EXPIRES)
    assert message == "=+04000=G12341765432100=<S1234X99=,000036=(2001202611281300"
    assert isbt128.read_compound_message(message).product == product


SCANNER_TYPES = st.sampled_from(isbt128.SYMBOL_CHARACTERS + "abc-/'& \t\x00é")


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """GOOD with a character changed, dropped or doubled: what a bad scan types."""
    at = draw(st.integers(0, len(GOOD) - 1))
    middle = draw(st.sampled_from(["", GOOD[at] * 2, draw(SCANNER_TYPES)]))
    return GOOD[:at] + middle + GOOD[at + 1 :]


@given(st.one_of(damaged(), st.text(SCANNER_TYPES, max_size=70)))
def test_whatever_a_scanner_types_is_read_or_refused_as_bad_input(scanned: str) -> None:
    refusal: BadInput | None = None
    try:
        isbt128.read_compound_message(scanned)
    except BadInput as refused:
        refusal = refused
    if refusal is not None:
        assert refusal.field == "scan"
        assert "\n" not in refusal.message
