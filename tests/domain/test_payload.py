"""The QR payload of a vial label: it round-trips, it stays in the QR alphanumeric set, and a
scan that is truncated, mistyped or from something else is refused (BadInput, exit 2)
rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from lims.domain.ids import Din, check_character
from lims.domain.payload import SEPARATOR, VERSION, Payload, check_value, decode
from lims.errors import BadInput

# What a QR code's alphanumeric mode can hold (ISO/IEC 18004, table 5).
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

EXAMPLE = Payload(
    vial_id="A999926000001-L1-V01",
    din="A999926000001",
    patient="PT-0001",
    expires_at=datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
)
# The first DIN sequence of facility A9999 in 2026 whose check character is '*'.
STAR_SEQUENCE = 88
assert Din.of("A9999", 26, STAR_SEQUENCE).check == "*"

fins = st.from_regex(r"[A-NP-Z][0-9]{4}", fullmatch=True)
dins = st.builds(Din.of, fins, st.integers(0, 99), st.integers(1, 999_999))
patients = st.from_regex(r"[A-Z0-9-]{3,32}", fullmatch=True)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)), timezone(timedelta(0))]
)
expiries = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=zones
)


@st.composite
def payloads(draw: st.DrawFn, din_strategy: st.SearchStrategy[Din] = dins) -> Payload:
    din = draw(din_strategy)
    lot = draw(st.integers(1, 9999))
    vial = draw(st.integers(1, 9999))
    return Payload(
        vial_id=f"{din.code}-L{lot}-V{vial:02d}",
        din=din.code,
        patient=draw(patients),
        expires_at=draw(expiries),
    )


encodable = payloads()


def refusal(scanned: str) -> BadInput:
    with pytest.raises(BadInput) as refused:
        decode(scanned)
    error = refused.value
    assert error.exit_code == 2
    assert error.field == "scan"
    assert "\n" not in error.message, error.message
    assert "\r" not in error.message, error.message
    return error


def signed(*fields: str) -> str:
    """Fields joined as a payload with a correct check value: well sealed, but wrong inside."""
    body = SEPARATOR.join(fields)
    return f"{body}{SEPARATOR}{check_value(body)}"


# --- round trip -----------------------------------------------------------------------------


def test_the_documented_example_has_six_fields_and_round_trips() -> None:
    text = EXAMPLE.encode()
    fields = text.split("/")
    assert fields[:5] == [
        "LIMS1",
        "A999926000001-L1-V01",
        "A999926000001" + check_character("A999926000001"),
        "PT-0001",
        "202611291000",
    ]
    assert len(fields[5]) == 8
    assert fields[5] == check_value(text.rsplit("/", 1)[0])
    assert decode(text) == EXAMPLE


@hypothesis_settings(max_examples=150, deadline=None)
@given(payload=payloads())
@example(
    payload=Payload(
        vial_id=f"A99992600{STAR_SEQUENCE:04d}-L1-V01",
        din=f"A99992600{STAR_SEQUENCE:04d}",
        patient="PT-0001",
        expires_at=datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
    )
)
def test_every_din_can_be_encoded_and_decodes_to_the_same_vial(payload: Payload) -> None:
    """Round trip over any valid DIN: one in 37 has the check character '*'."""
    text = payload.encode()
    back = decode(text)
    assert back.vial_id == payload.vial_id
    assert back.din == payload.din
    assert back.patient == payload.patient
    assert back.expires_at == payload.expires_at.replace(second=0, microsecond=0)
    assert back.expires_at.utcoffset() == timedelta(0)
    assert decode(text + "\r\n") == back  # a scanner's Enter
    assert decode(f"  {text} ") == back


@hypothesis_settings(max_examples=100, deadline=None)
@given(payload=encodable)
def test_every_character_is_in_the_qr_alphanumeric_set(payload: Payload) -> None:
    text = payload.encode()
    assert set(text) <= QR_ALPHANUMERIC, set(text) - QR_ALPHANUMERIC
    assert text.startswith(VERSION + SEPARATOR)


def test_the_qr_code_uses_alphanumeric_mode() -> None:
    from qrcode.util import MODE_ALPHA_NUM, QRData

    assert QRData(EXAMPLE.encode().encode()).mode == MODE_ALPHA_NUM


@pytest.mark.parametrize(
    "field", ["vial_id", "patient"], ids=["lower-case vial id", "lower-case patient"]
)
def test_a_field_outside_the_alphanumeric_set_is_not_encoded(field: str) -> None:
    values = {
        "vial_id": EXAMPLE.vial_id,
        "din": EXAMPLE.din,
        "patient": EXAMPLE.patient,
        "expires_at": EXAMPLE.expires_at,
    }
    changed = dict(values)
    changed[field] = str(values[field]).lower()
    with pytest.raises(ValueError, match="QR payload"):
        Payload(**changed).encode()  # type: ignore[arg-type]


def test_no_personal_data_beyond_the_patient_code() -> None:
    assert [f.name for f in Payload.__dataclass_fields__.values()] == [
        "vial_id",
        "din",
        "patient",
        "expires_at",
    ]


# --- refusals -------------------------------------------------------------------------------

replacements = st.one_of(
    st.sampled_from(sorted(QR_ALPHANUMERIC)),
    st.sampled_from(list("abcxyz_*?#=\t\n")),
    st.characters(codec="utf-8", exclude_categories=["Cs"]),
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(payload=encodable, data=st.data())
def test_any_single_changed_character_is_refused(payload: Payload, data: st.DataObject) -> None:
    text = payload.encode()
    position = data.draw(st.integers(0, len(text) - 1), label="position")
    replacement = data.draw(replacements, label="replacement")
    assume(replacement != text[position])
    refusal(text[:position] + replacement + text[position + 1 :])


@pytest.mark.parametrize(
    ("position", "replacement"),
    [
        (0, "M"),  # the version
        (5, "-"),  # a separator
        (6, "B"),  # the vial id's facility letter
        (len("LIMS1/A999926000001-L1-V0"), "2"),  # another vial of the same lot
        (len("LIMS1/A999926000001-L1-V01/A999926000001"), "#"),  # the DIN's check character
        (len("LIMS1/A999926000001-L1-V01/A9999260000018/PT-000"), "2"),  # another patient
        (-1, "lower"),  # the check value's last character, lower-cased
        (-1, " "),  # ... or blanked, which a strip would turn into a truncation
    ],
)
def test_the_obvious_single_character_changes_are_refused(position: int, replacement: str) -> None:
    text = EXAMPLE.encode()
    index = position % len(text)
    if replacement == "lower":
        replacement = text[index].lower() if text[index].isalpha() else "a"
    assert replacement != text[index]
    refusal(text[:index] + replacement + text[index + 1 :])


@hypothesis_settings(max_examples=100, deadline=None)
@given(payload=encodable, data=st.data())
def test_a_truncated_scan_is_refused(payload: Payload, data: st.DataObject) -> None:
    text = payload.encode()
    cut = data.draw(st.integers(0, len(text) - 1), label="kept")
    refusal(text[:cut])


@hypothesis_settings(max_examples=50, deadline=None)
@given(payload=encodable, data=st.data())
def test_a_scan_with_a_character_dropped_or_added_is_refused(
    payload: Payload, data: st.DataObject
) -> None:
    text = payload.encode()
    position = data.draw(st.integers(0, len(text) - 1), label="position")
    refusal(text[:position] + text[position + 1 :])
    extra = data.draw(st.sampled_from(sorted(QR_ALPHANUMERIC - {" "})), label="added")
    refusal(text[:position] + extra + text[position:])


def test_two_payloads_scanned_as_one_line_are_refused() -> None:
    refusal(EXAMPLE.encode() + EXAMPLE.encode())
    refusal(EXAMPLE.encode() + " " + EXAMPLE.encode())


def _fields() -> list[str]:
    return EXAMPLE.encode().split(SEPARATOR)[:5]


@pytest.mark.parametrize("version", ["LIMS2", "LIMS0", "lims1", "", "LIMS"])
def test_another_version_is_refused_even_with_a_good_check_value(version: str) -> None:
    fields = _fields()
    fields[0] = version
    error = refusal(signed(*fields))
    assert "LIMS1" in error.message


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(lambda f: f[:4], id="one field missing"),
        pytest.param(lambda f: [*f, "EXTRA"], id="one field more"),
        pytest.param(lambda f: [f[0], f[1], f[2], f[3] + "/X", f[4]], id="slash in a field"),
        pytest.param(lambda f: f[:1], id="version only"),
    ],
)
def test_a_wrong_number_of_fields_is_refused_even_with_a_good_check_value(
    fields: Callable[[list[str]], list[str]],
) -> None:
    refusal(signed(*fields(_fields())))


def test_a_din_with_a_wrong_check_character_is_refused_even_when_sealed() -> None:
    fields = _fields()
    good = fields[2][-1]
    fields[2] = fields[2][:-1] + ("0" if good != "0" else "1")
    error = refusal(signed(*fields))
    assert "check character" in error.message


@pytest.mark.parametrize(
    "expiry",
    [
        "202613011000",  # month 13
        "202611291060",  # minute 60
        "2026-11-29T10",
        "AAAAAAAAAAAA",
        "20261129",  # not YYYYMMDDHHMM: strptime alone would read it as 2026-01-01 02:09
        "2026112910",
    ],
)
def test_an_expiry_not_of_the_form_yyyymmddhhmm_is_refused_even_when_sealed(expiry: str) -> None:
    fields = _fields()
    fields[4] = expiry
    refusal(signed(*fields))


@pytest.mark.parametrize(
    "scanned",
    [
        "",
        "   ",
        "hello",
        "A999926000001-L1-V01",  # someone typed the vial id
        "=A99992600000100",  # the ISBT 128 symbol beside the QR code
        "LIMS1/A999926000001-L1-V01/A9999260000018/PT-0001/202611291000/3F9A0C1B",  # a stale seal
        "LIMS1/\n/\n/\n/\n/\n",
        "x" * 10_000,
    ],
    ids=["empty", "blank", "word", "vial id", "isbt128", "stale check", "newlines", "long"],
)
def test_junk_is_refused_in_one_line(scanned: str) -> None:
    error = refusal(scanned)
    assert len(error.message) < 400
