"""The chain of identity: DINs (ISBT 128, ISO 7064 check character), the ids derived from
them, patient codes and deviation numbers; and that no other module builds or splits one."""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lims.domain import ids
from lims.domain.ids import CHECK_ALPHABET, Din, check_character, parse_din
from lims.errors import BadInput, RuleViolation

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


@given(dins)
def test_din_forms_of_a_label_and_a_scan_carry_the_check(din: Din):
    assert din.with_check == din.code + din.check
    assert parse_din(din.with_check) == din
    assert din.eye_readable == din.display[:-1] + f"[{din.check}]"
    assert din.isbt128 == f"={din.code}00"


def test_din_forms_of_the_example_donation():
    din = Din.of("A9999", 2026, 1)
    assert din.with_check == "A9999260000018"
    assert din.eye_readable == "A9999 26 000001 [8]"
    assert din.isbt128 == "=A99992600000100"


# The next DIN


def test_next_din_starts_each_facility_year_at_one():
    assert ids.next_din("A9999", 26, None) == Din("A9999", 26, 1)


def test_next_din_follows_the_highest_sequence():
    assert ids.next_din("B1234", 5, 41) == Din("B1234", 5, 42)
    assert ids.next_din("A9999", 26, 999_998).sequence == 999_999


def test_next_din_refuses_a_seventh_digit():
    with pytest.raises(RuleViolation) as refused:
        ids.next_din("A9999", 26, 999_999)
    assert str(refused.value) == (
        "all 999999 DIN sequence numbers of facility A9999 for year 26 are used; "
        "ask ICCBBA for another facility identification number"
    )


# Ids derived from the DIN: culture, passage, lot, vial

numbers = st.integers(min_value=1, max_value=ids.NUMBER_MAX)
# What a lookup may be given: sequence 000000 and any year, as the id patterns allow.
any_dins = st.builds(
    Din, fins, st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=999_999)
)
cultures = st.builds(ids.CultureId, any_dins, numbers)
passages = st.builds(ids.PassageId, cultures, numbers)
lots = st.builds(ids.LotId, any_dins, numbers)


@st.composite
def vials(draw: st.DrawFn) -> ids.VialId:
    width = draw(st.integers(min_value=ids.VIAL_WIDTH_MIN, max_value=ids.VIAL_WIDTH_MAX))
    number = draw(st.integers(min_value=0, max_value=10**width - 1))
    return ids.VialId(draw(lots), number, width)


chain_ids = st.one_of(cultures, passages, lots, vials())
KINDS: list[type[ids.ChainId]] = [ids.CultureId, ids.PassageId, ids.LotId, ids.VialId]


def test_the_examples_in_messages_are_ids_of_their_kind():
    for kind in KINDS:
        assert kind.matches(kind.example)
        assert kind.parse(kind.example).code == kind.example


def test_ids_of_the_example_donation():
    din = Din.of("A9999", 2026, 1)
    culture = ids.CultureId(din, 1)
    lot = ids.LotId(din, 1)
    assert culture.code == "A999926000001-C1"
    assert ids.PassageId(culture, 2).code == "A999926000001-C1-P2"
    assert lot.code == "A999926000001-L1"
    assert ids.VialId(lot, 1, 2).code == "A999926000001-L1-V01"
    assert ids.VialId(lot, 7, 4).code == "A999926000001-L1-V0007"


@given(chain_ids)
def test_every_id_round_trips_through_its_code(identity: ids.ChainId):
    kind = type(identity)
    assert kind.matches(identity.code)
    assert kind.parse(identity.code) == identity
    assert kind.read(f" {identity.code.lower()}\t", "field") == identity


texts_of_some_kind = st.sampled_from(KINDS).flatmap(
    lambda kind: st.tuples(st.just(kind), st.from_regex(kind.pattern, fullmatch=True))
)


@given(texts_of_some_kind)
def test_every_text_an_id_pattern_accepts_is_written_back_exactly(
    case: tuple[type[ids.ChainId], str],
):
    """A lookup queries the code formatted from the parts: it must be the text typed."""
    kind, text = case
    assert kind.parse(text).code == text


@given(passages)
def test_a_passage_id_splits_into_its_culture_and_its_donation(passage: ids.PassageId):
    parsed = ids.PassageId.parse(passage.code)
    assert parsed.culture.code == passage.code.rsplit("-P", 1)[0]
    assert parsed.culture.din.code == passage.code[: ids.DIN_LENGTH]


@given(vials())
def test_a_vial_id_splits_into_its_lot_and_its_donation(vial: ids.VialId):
    parsed = ids.VialId.parse(vial.code)
    assert parsed.lot.code == vial.code.rsplit("-V", 1)[0]
    assert parsed.lot.din.code == vial.code[: ids.DIN_LENGTH]
    assert parsed.width == len(vial.code.rsplit("-V", 1)[1])


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (ids.CultureId, ""),
        (ids.CultureId, "A999926000001"),  # a DIN alone
        (ids.CultureId, "A999926000001-C0"),  # numbers start at 1
        (ids.CultureId, "A999926000001-C01"),  # no leading zero
        (ids.CultureId, "A999926000001-C10000"),  # more than the pattern holds
        (ids.CultureId, "O999926000001-C1"),  # a FIN never starts with O
        (ids.CultureId, "A99992600001-C1"),  # 12 characters of DIN
        (ids.CultureId, "A9999 26 000001-C1"),  # the display form is no part of an id
        (ids.CultureId, "A9999260000018-C1"),  # nor the check character
        (ids.CultureId, "A999926000001-L1"),  # a lot is no culture
        (ids.CultureId, "A999926000001-C1-P1"),  # nor is a passage
        (ids.PassageId, "A999926000001-C1"),
        (ids.PassageId, "A999926000001-C1-P0"),
        (ids.PassageId, "A999926000001-C1-P10000"),
        (ids.PassageId, "A999926000001-L1-P1"),
        (ids.LotId, "A999926000001-L"),
        (ids.LotId, "A999926000001-L1-V01"),
        (ids.LotId, "A999926000001-L1 ; drop table lots"),
        (ids.VialId, "A999926000001-L1-V1"),  # at least two digits
        (ids.VialId, "A999926000001-L1-V00001"),  # at most four
        (ids.VialId, "A999926000001-L1"),
        (ids.VialId, "A999926000001-C1-V01"),
        (ids.VialId, "A999926000001-L1-V01\nA999926000001-L1-V02"),
    ],
)
def test_a_malformed_id_is_refused(kind: type[ids.ChainId], text: str):
    assert not kind.matches(text)
    with pytest.raises(ValueError, match=kind.kind):
        kind.parse(text)
    with pytest.raises(BadInput) as refused:
        kind.read(text, "thing")
    error = refused.value
    assert error.exit_code == 2
    assert error.field == "thing"
    assert error.message == (
        f"thing: must be a {kind.kind} id such as {kind.example} (got {text!r})"
    )


@given(st.integers(min_value=1, max_value=10**10 - 1))
def test_a_shipment_id_is_its_number_and_reads_back(number: int):
    shipment = ids.ShipmentId(number)
    assert ids.ShipmentId.matches(shipment.code)
    assert ids.ShipmentId.parse(shipment.code) == shipment
    assert ids.ShipmentId.read(f" {shipment.code.lower()}\t", "shipment") == shipment


def test_a_shipment_id_has_six_digits_at_least_and_no_other_prefix():
    assert ids.ShipmentId(1).code == "SHP-000001"
    assert ids.ShipmentId(1_234_567).code == "SHP-1234567"
    for text in ("SHP-00001", "SHP-", "SHP000001", "CNT-000001", "SHP-00000000001"):
        assert not ids.ShipmentId.matches(text), text
        with pytest.raises(BadInput, match=r"^shipment: must be a shipment id such as SHP-000123"):
            ids.ShipmentId.read(text, "shipment")


def test_reading_forgives_blanks_and_case_but_matching_forgives_nothing():
    assert ids.LotId.read("  a999926000001-l1 ", "lot") == ids.LotId.parse("A999926000001-L1")
    assert not ids.LotId.matches("a999926000001-l1")
    assert not ids.LotId.matches(" A999926000001-L1")


def test_the_refusal_quotes_junk_on_one_line():
    with pytest.raises(BadInput) as refused:
        ids.VialId.read("A999926000001-L1-V01\nrm -rf /" + "x" * 200, "vial")
    assert "\n" not in refused.value.message
    assert len(refused.value.message) < 200


@pytest.mark.parametrize(
    "make",
    [
        lambda din: ids.CultureId(din, 0),
        lambda din: ids.CultureId(din, ids.NUMBER_MAX + 1),
        lambda din: ids.CultureId(din, -1),
        lambda din: ids.PassageId(ids.CultureId(din, 1), ids.NUMBER_MAX + 1),
        lambda din: ids.LotId(din, ids.NUMBER_MAX + 1),
        lambda din: ids.LotId(Din("A9999", 2026, 1), 1),  # a four-digit year
        lambda din: ids.LotId(Din("O9999", 26, 1), 1),
        lambda din: ids.VialId(ids.LotId(din, 1), 100, 2),  # wider than its width
        lambda din: ids.VialId(ids.LotId(din, 1), 1, 5),
        lambda din: ids.VialId(ids.LotId(din, 1), 1, 1),
        lambda din: ids.VialId(ids.LotId(din, 1), -1, 2),
    ],
)
def test_an_id_its_pattern_could_not_read_back_cannot_be_made(make):
    with pytest.raises(ValueError, match=r"which is no|does not fit"):
        make(Din.of("A9999", 26, 1))


# Next numbers


@pytest.mark.parametrize(
    ("next_id", "parent", "kind", "owner"),
    [
        (ids.next_culture, Din.of("A9999", 26, 1), "culture", "aspirate A9999 26 000001 8"),
        (ids.next_lot, Din.of("A9999", 26, 1), "lot", "aspirate A9999 26 000001 8"),
        (
            ids.next_passage,
            ids.CultureId(Din.of("A9999", 26, 1), 3),
            "passage",
            "culture A999926000001-C3",
        ),
    ],
)
def test_next_numbers_start_at_one_follow_the_highest_and_stop_where_the_pattern_does(
    next_id, parent, kind: str, owner: str
):
    assert next_id(parent, None).number == 1
    assert next_id(parent, 41).number == 42
    last = next_id(parent, ids.NUMBER_MAX - 1)
    assert last.number == ids.NUMBER_MAX == 9999
    assert type(last).parse(last.code) == last
    with pytest.raises(RuleViolation) as refused:
        next_id(parent, ids.NUMBER_MAX)
    assert refused.value.exit_code == 1
    assert str(refused.value) == (
        f"{owner} already has 9999 {kind}s, as many as a {kind} id can number"
    )


def test_next_ids_keep_their_parent():
    din = Din.of("B1234", 5, 42)
    culture = ids.next_culture(din, 2)
    assert culture.code == "B123405000042-C3"
    assert ids.next_passage(culture, None).code == "B123405000042-C3-P1"
    assert ids.next_lot(din, None).code == "B123405000042-L1"


# Vials


@pytest.mark.parametrize(
    ("count", "width"),
    [(1, 2), (9, 2), (10, 2), (99, 2), (100, 3), (999, 3), (1000, 4), (9999, 4)],
)
def test_vial_width_is_the_digits_of_the_count_and_at_least_two(count: int, width: int):
    assert ids.vial_width(count) == width


def test_a_lots_vials_are_numbered_from_one_at_one_width():
    lot = ids.LotId(Din.of("A9999", 26, 1), 1)
    assert [vial.code for vial in ids.vial_ids(lot, 3)] == [
        "A999926000001-L1-V01",
        "A999926000001-L1-V02",
        "A999926000001-L1-V03",
    ]
    hundred = ids.vial_ids(lot, 100)
    assert (hundred[0].code, hundred[-1].code) == ("A999926000001-L1-V001", "A999926000001-L1-V100")


@given(lots, st.integers(min_value=1, max_value=ids.VIAL_NUMBER_MAX))
def test_a_lots_vial_ids_sort_in_number_order_and_read_back(lot: ids.LotId, count: int):
    assume(count < 120 or count % 97 == 0)  # a few large lots, quickly
    vials_made = ids.vial_ids(lot, count)
    codes = [vial.code for vial in vials_made]
    assert [vial.number for vial in vials_made] == list(range(1, count + 1))
    assert sorted(codes) == codes
    assert len({len(code) for code in codes}) == 1
    assert [ids.VialId.parse(code) for code in codes] == vials_made


def test_a_lot_cannot_have_more_vials_than_a_vial_id_numbers():
    lot = ids.LotId(Din.of("A9999", 26, 1), 1)
    assert ids.vial_ids(lot, ids.VIAL_NUMBER_MAX)[-1].code == "A999926000001-L1-V9999"
    with pytest.raises(RuleViolation) as refused:
        ids.vial_ids(lot, ids.VIAL_NUMBER_MAX + 1)
    assert str(refused.value) == (
        "lot A999926000001-L1 cannot have 10000 vials: a vial id numbers at most 9999"
    )


# Patients


PATTERN, DESCRIPTION = "[A-Z0-9-]{3,32}", "3-32 upper-case letters, digits and dashes"


def test_a_patient_code_is_what_the_sites_pattern_says():
    assert ids.patient_code("PT-0001", PATTERN, DESCRIPTION, "code") == "PT-0001"
    with pytest.raises(BadInput) as refused:
        ids.patient_code("pt 1", PATTERN, DESCRIPTION, "patient")
    assert refused.value.message == (
        "patient: must be 3-32 upper-case letters, digits and dashes (got 'pt 1')"
    )


def test_a_patient_code_is_never_longer_than_the_column_whatever_the_pattern():
    assert ids.patient_code("P" * 32, "P+", "Ps", "code")
    with pytest.raises(BadInput) as refused:
        ids.patient_code("P" * 33, "P+", "Ps", "code")
    assert refused.value.message == "code: must be at most 32 characters (got 33)"


@pytest.mark.parametrize(
    ("text", "fits"),
    [
        ("PT-0001", True),
        ("A*1", True),
        ("P" * 32, True),
        ("P" * 33, False),
        ("", False),
        ("pt-0001", False),
        ("PT 0001", False),
        ("PT/0001", False),
    ],
)
def test_a_labels_patient_field_holds_what_a_payload_can_carry(text: str, fits: bool):
    assert ids.is_labelled_patient_code(text) is fits


@pytest.mark.parametrize(
    ("code", "other"),
    [("PT-OOO1", "PT-0001"), ("PT-000I", "PT-0001"), ("pt-0001", "PT-0001"), ("OI-X", "01-X")],
)
def test_codes_read_for_one_another_share_a_skeleton(code: str, other: str):
    assert ids.skeleton(code) == ids.skeleton(other)


def test_codes_that_differ_to_a_reader_have_different_skeletons():
    assert ids.skeleton("PT-0001") != ids.skeleton("PT-0002")
    assert ids.skeleton("PT-B001") != ids.skeleton("PT-8001")  # not a confusion the rule names


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("A999926000001", "DIN"),
        ("A9999 26 000001", "DIN"),
        ("A9999260000018", "DIN"),  # with a check character, right or wrong
        ("a999926000001", "DIN"),
        ("A99992600000I", "DIN"),  # letter I read as one
        ("A999926000001-C1", "culture"),
        ("A999926000001-C1-P2", "passage"),
        ("A999926000001-L1", "lot"),
        ("A999926000001-L1-V01", "vial"),
        ("A999926OOOOO1-L1-V01", "vial"),
        ("A999926000001-C1-B01", "bank vial"),
        ("A999926000001-L1-R01", "retained sample"),
        ("CNT-000123", "count"),
        ("SHP-000001", "shipment"),
        ("shp-00000I", "shipment"),
        ("PT-0001", None),
        ("SHP-1", None),
        ("A99992600000", None),
        ("A999926000001-X1", None),
    ],
)
def test_a_code_that_reads_as_a_lims_id_names_its_kind(code: str, kind: str | None):
    assert ids.reads_as_lims_id(code) == kind


@pytest.mark.parametrize("code", ["PT-１２３４", "PT-١٢٣٤", "PT-0001\u200b", "ПТ-0001"])
def test_a_patient_code_is_ascii_whatever_the_pattern_allows(code: str):
    with pytest.raises(BadInput, match="ASCII") as refused:
        ids.patient_code(code, r"\w+-\d{4}\W?", "any", "code")
    assert refused.value.field == "code"


def test_a_patient_code_holds_only_what_a_label_carries_whatever_the_pattern():
    with pytest.raises(BadInput, match="what a label carries"):
        ids.patient_code("pt.0001", r"[a-z.0-9]+", "lower case", "code")


@given(st.text(max_size=40))
def test_no_identifier_as_typed_raises_anything_but_bad_input(text: str):
    """Every reader of a typed id refuses what it cannot read as BadInput, never ValueError."""
    readers = [
        lambda: parse_din(text),
        lambda: ids.patient_code(text, r".*", "anything", "code"),
        *(lambda kind=kind: kind.read(text, "id") for kind in ids._CHAIN_IDS),
    ]
    for read in readers:
        with contextlib.suppress(BadInput):
            read()
    ids.reads_as_lims_id(text)
    ids.skeleton(text)


# Deviations and signature subjects


def test_a_deviation_id_is_a_positive_32_bit_number():
    assert ids.read_deviation_id("3") == 3
    assert ids.read_deviation_id(2**31 - 1) == 2**31 - 1
    for junk in ("0", "-1", str(2**31), "3.5", "three"):
        with pytest.raises(BadInput) as refused:
            ids.read_deviation_id(junk)
        assert refused.value.message == (
            f"id: must be a whole number from 1 to 2147483647 (got {junk!r})"
        )


def test_signature_subjects_are_as_every_signature_was_bound():
    """Changing them would unlink every signature already in a database."""
    assert ids.lot_subject("A999926000001-L1") == "lot:A999926000001-L1"
    assert ids.deviation_subject(4) == "deviation:4"


# Nothing else builds, matches or splits an id

LIMS = Path(ids.__file__).resolve().parents[1]
ID_SEPARATOR = re.compile(r"-[CLPV]$")  # what an id's text ends with before a number
ID_FORMATTING = re.compile(r"-[CLPV](\{|%|\[)")  # "-L{}".format, "%s-L%d", r"-L[1-9]"
SUBJECT = re.compile(r"(^|[^a-z_])(lot|deviation):$")
SPLITS = {"split", "rsplit", "partition", "rpartition"}


def id_offences(root: Path) -> Iterator[str]:
    """Where a module under root other than domain/ids.py builds, matches or splits an id."""
    for path in sorted(root.rglob("*.py")):
        if path == root / "domain" / "ids.py":
            continue
        where = path.relative_to(root.parent)
        found = [
            (node.lineno, offence)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.expr) and (offence := _offence(node))
        ]
        for line, offence in sorted(found):
            yield f"{where}:{line}: {offence}"


def _offence(node: ast.expr) -> str | None:
    if isinstance(node, ast.JoinedStr):
        for part, following in zip(node.values, node.values[1:], strict=False):
            text = part.value if isinstance(part, ast.Constant) else None
            if (
                isinstance(text, str)
                and isinstance(following, ast.FormattedValue)
                and (ID_SEPARATOR.search(text) or SUBJECT.search(text))
            ):
                return f"an f-string builds an id: ...{text}{{...}}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and ID_SEPARATOR.search(str(side.value)):
                return f"a concatenation builds an id with {side.value!r}"
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and ("[A-NP-Z]" in node.value or ID_FORMATTING.search(node.value))
    ):
        return f"a pattern or template of an id: {node.value!r}"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in SPLITS
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value == "-"
    ):
        return f'an id split with .{node.func.attr}("-")'
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Slice)
        and isinstance(node.slice.upper, ast.Constant)
        and node.slice.upper.value == ids.DIN_LENGTH
    ):
        return "a DIN cut out of an id by its length"
    return None


def test_no_module_but_ids_builds_matches_or_splits_an_id():
    assert list(id_offences(LIMS)) == []


@pytest.mark.parametrize(
    "source",
    [
        'code = f"{aspirate.din}-L{number}"',
        'code = f"{lot.code}-V{index:0{width}d}"',
        'code = f"{parent.code}-P{number}"',
        'code = aspirate.din + "-C" + str(number)',
        'code = "%s-L%d" % (din, number)',
        'code = "{}-C{}".format(din, number)',
        'din = lot.code.split("-")[0]',
        'din, _ = lot.code.rsplit("-", 1)',
        "din = lot.code[:13]",
        'LOT = re.compile(r"[A-NP-Z][0-9]{12}-L[1-9][0-9]{0,3}")',
        'VIAL = re.compile(r"(?P<lot>.{13}-L[1-9][0-9]{0,3})-V[0-9]{2,4}")',
        'subject = f"lot:{lot.code}"',
        'subject = f"deviation:{number}"',
    ],
)
def test_the_scan_finds_each_way_an_id_was_built_or_split(tmp_path: Path, source: str):
    (tmp_path / "lims" / "domain").mkdir(parents=True)
    (tmp_path / "lims" / "domain" / "ids.py").write_text(source)  # ids.py may
    (tmp_path / "lims" / "service.py").write_text(source)
    assert [offence.split(":")[0] for offence in id_offences(tmp_path / "lims")] == [
        "lims/service.py"
    ]
