"""The chain of identity: every identifier that ties a vial back to its donation and patient.

    patient    PT-0001                 the site's pseudonymous code; the site sets its pattern
    DIN        A9999 26 000001 8       ISBT 128 (ICCBBA ST-001): facility, year, sequence, check
    culture    A999926000001-C1        numbered per aspirate
    passage    A999926000001-C1-P2     numbered per culture
    lot        A999926000001-L1        numbered per aspirate
    vial       A999926000001-L1-V01    numbered per lot, zero-padded to the width of its count
    deviation  17                      the number the database gave the record

Every id from the culture down starts with the DIN of the donation it came
from, so a label leads back to its donation even without the database. That
holds only while there is one grammar: ids are formatted, matched and split
here and nowhere else, an id object that its own pattern cannot read back
cannot be made, and a number the pattern could not hold is refused as a rule
before it is given.

A DIN is the facility identification number (5 characters), the 2-digit year
of collection and a 6-digit sequence within that facility and year: 13
characters. Printed and typed, it carries an ISO 7064 mod 37-2 check
character that catches a mistyped or swapped character.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from lims.domain import quantities
from lims.errors import BadInput, RuleViolation, shown

# --- DIN -------------------------------------------------------------------------------

CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
SEQUENCE_MAX = 999_999
DIN_LENGTH = 13
ISBT128_DIN_FLAGS = "00"  # data structure 001 flag characters: no flag
_FIN = r"[A-NP-Z][0-9]{4}"  # ICCBBA: a letter other than O, four digits
_DIN = rf"(?P<fin>{_FIN})(?P<year>[0-9]{{2}})(?P<sequence>[0-9]{{6}})"
FIN_PATTERN = re.compile(_FIN)
DIN_PATTERN = re.compile(_DIN)
DIN_FORMS = (
    "a DIN: facility number (a letter and 4 digits), 2-digit year and 6-digit sequence, "
    "with or without spaces and check character, e.g. A9999 26 000001"
)
EXAMPLE_DIN = "A999926000001"  # the DIN the examples in messages are built on


def check_character(data: str) -> str:
    """ISO 7064 mod 37-2: each value times 2**n, n counted from the right from 1."""
    total = sum(
        CHECK_ALPHABET.index(character) * 2**position
        for position, character in enumerate(reversed(data), start=1)
    )
    return CHECK_ALPHABET[(38 - total % 37) % 37]


@dataclass(frozen=True)
class Din:
    fin: str
    year: int  # two digits, as printed
    sequence: int  # 000000 too: an id of that form is "no such record", not malformed

    def __post_init__(self) -> None:
        if not DIN_PATTERN.fullmatch(self.code):
            raise ValueError(f"{self!r} would be written {self.code!r}, which is no DIN")

    @classmethod
    def of(cls, fin: str, year: int, sequence: int) -> Din:
        if not 1 <= sequence <= SEQUENCE_MAX:
            raise ValueError(f"DIN sequence out of range: {sequence}")
        return cls(fin, year % 100, sequence)

    @property
    def code(self) -> str:
        """The 13 characters every id of the donation starts with, and the `din` JSON keys."""
        return f"{self.fin}{self.year:02d}{self.sequence:06d}"

    @property
    def check(self) -> str:
        return check_character(self.code)

    @property
    def with_check(self) -> str:
        """The 14 characters a scan of the DIN gives: the check travels with it in a QR payload."""
        return self.code + self.check

    @property
    def display(self) -> str:
        return f"{self.fin} {self.year:02d} {self.sequence:06d} {self.check}"

    @property
    def eye_readable(self) -> str:
        """As a label prints it beside the barcode, the check character boxed (ISBT 128)."""
        return f"{self.fin} {self.year:02d} {self.sequence:06d} [{self.check}]"

    @property
    def isbt128(self) -> str:
        """ISBT 128 data structure 001, what a Code 128 symbol of the DIN holds."""
        return f"={self.code}{ISBT128_DIN_FLAGS}"


def _din(match: re.Match[str]) -> Din:
    return Din(match["fin"], int(match["year"]), int(match["sequence"]))


def ascii_identifier(text: str, field: str) -> str:
    """An identifier as typed, before any other use: ASCII only.

    Python's upper(), split() and int() read full-width, Arabic-Indic and other digits and
    letters, so a non-ASCII id would otherwise pass for another one or fail deep inside.
    """
    if not text.isascii():
        raise BadInput(field, f"must be ASCII letters, digits and dashes only (got {shown(text)})")
    return text


def parse_din(text: str, field: str = "din") -> Din:
    """A DIN as typed or scanned: spaces optional, check character optional but verified."""
    compact = "".join(ascii_identifier(text, field).split()).upper()
    check = None
    if len(compact) == DIN_LENGTH + 1:
        compact, check = compact[:DIN_LENGTH], compact[DIN_LENGTH]
    match = DIN_PATTERN.fullmatch(compact)
    if match is None:
        raise BadInput(field, f"must be {DIN_FORMS} (got {shown(text)})")
    din = _din(match)
    if din.sequence == 0:
        raise BadInput(field, f"sequence 000000 is never issued (got {shown(text)})")
    if check is not None and check != din.check:
        raise BadInput(
            field,
            f"check character {check!r} does not match {din.code} (expected {din.check!r}); "
            "the DIN was mistyped or misread",
        )
    return din


def next_din(fin: str, year: int, last: int | None) -> Din:
    """The DIN after the facility's highest sequence of the year (None: its first).

    Six digits are all a facility has in a year; only ICCBBA can give it another FIN.
    """
    sequence = (last or 0) + 1
    if sequence > SEQUENCE_MAX:
        raise RuleViolation(
            f"all {SEQUENCE_MAX} DIN sequence numbers of facility {fin} for year {year:02d} "
            "are used; ask ICCBBA for another facility identification number"
        )
    return Din.of(fin, year, sequence)


# --- ids derived from the DIN -------------------------------------------------------------

NUMBER_DIGITS = 4
NUMBER_MAX = 10**NUMBER_DIGITS - 1  # cultures and lots per aspirate, passages per culture
_NUMBER = rf"[1-9][0-9]{{0,{NUMBER_DIGITS - 1}}}"
VIAL_WIDTH_MIN = 2
VIAL_WIDTH_MAX = NUMBER_DIGITS
VIAL_NUMBER_MAX = 10**VIAL_WIDTH_MAX - 1
# Any zero-padded width, V00 included: which width is right depends on the lot's vial
# count, which the id alone does not tell, so a wrong one is "no such vial", not malformed.
_VIAL_NUMBER = rf"[0-9]{{{VIAL_WIDTH_MIN},{VIAL_WIDTH_MAX}}}"


class ChainId(ABC):
    """An id below the DIN: one pattern, formatted from its parts and split back into them."""

    kind: ClassVar[str]  # as messages name it: "no lot …", "must be a lot id such as …"
    example: ClassVar[str]
    pattern: ClassVar[re.Pattern[str]]

    @property
    @abstractmethod
    def code(self) -> str:
        """The id as lims writes it, stores it and prints it."""

    @classmethod
    @abstractmethod
    def _from(cls, match: re.Match[str]) -> Self:
        """The parts of an id the pattern matched."""

    def __post_init__(self) -> None:
        if not self.pattern.fullmatch(self.code):
            raise ValueError(f"{self!r} would be written {self.code!r}, which is no {self.kind} id")

    @classmethod
    def matches(cls, text: str) -> bool:
        """Whether text is such an id exactly as lims writes it, with nothing forgiven."""
        return cls.pattern.fullmatch(text) is not None

    @classmethod
    def parse(cls, text: str) -> Self:
        """The parts of an id lims wrote (a stored code): anything else is a bug, not input."""
        match = cls.pattern.fullmatch(text)
        if match is None:
            raise ValueError(f"not a {cls.kind} id: {text!r}")
        return cls._from(match)

    @classmethod
    def read(cls, text: str, field: str) -> Self:
        """An id as typed or scanned at the bench, blanks around it and letter case forgiven.

        A malformed one is bad input naming the field, so a typo is not reported
        as a record that does not exist.
        """
        match = cls.pattern.fullmatch(ascii_identifier(text, field).strip().upper())
        if match is None:
            raise BadInput(
                field, f"must be a {cls.kind} id such as {cls.example} (got {shown(text)})"
            )
        return cls._from(match)


@dataclass(frozen=True)
class _OfDonation(ChainId):
    """An id of what is made straight from a donation: its DIN, a letter and a number.

    The pattern names the number's group after the kind, so ids built on this one
    (a culture's passages, a lot's vials) read it back from their own match.
    """

    letter: ClassVar[str]

    din: Din
    number: int

    def __init_subclass__(cls, *, kind: str, letter: str) -> None:
        super().__init_subclass__()
        cls.kind, cls.letter = kind, letter
        cls.example = f"{EXAMPLE_DIN}-{letter}1"
        cls.pattern = re.compile(rf"{_DIN}-{letter}(?P<{kind}>{_NUMBER})")

    @property
    def code(self) -> str:
        return f"{self.din.code}-{self.letter}{self.number}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(_din(match), int(match[cls.kind]))


@dataclass(frozen=True)
class CultureId(_OfDonation, kind="culture", letter="C"):
    """A culture started from the donation's cells, e.g. A999926000001-C1."""


@dataclass(frozen=True)
class PassageId(ChainId):
    kind = "passage"
    example = f"{CultureId.example}-P2"
    pattern = re.compile(rf"{CultureId.pattern.pattern}-P(?P<passage>{_NUMBER})")

    culture: CultureId
    number: int

    @property
    def code(self) -> str:
        return f"{self.culture.code}-P{self.number}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(CultureId._from(match), int(match["passage"]))


@dataclass(frozen=True)
class LotId(_OfDonation, kind="lot", letter="L"):
    """A lot formulated from one of the donation's cultures, e.g. A999926000001-L1."""


@dataclass(frozen=True)
class VialId(ChainId):
    kind = "vial"
    example = f"{LotId.example}-V01"
    pattern = re.compile(rf"{LotId.pattern.pattern}-V(?P<vial>{_VIAL_NUMBER})")

    lot: LotId
    number: int
    width: int  # digits after V: every vial of a lot has as many, see vial_width

    def __post_init__(self) -> None:
        if not 0 <= self.number < 10**self.width:
            raise ValueError(f"vial number {self.number} does not fit {self.width} digits")
        super().__post_init__()

    @property
    def code(self) -> str:
        return f"{self.lot.code}-V{self.number:0{self.width}d}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(LotId._from(match), int(match["vial"]), len(match["vial"]))


@dataclass(frozen=True)
class BankVialId(ChainId):
    """Cryopreserved cells of a culture, e.g. A999926000001-C1-B01: numbered on from the
    culture's earlier bank vials, at least two digits."""

    kind = "bank vial"
    example = f"{CultureId.example}-B01"
    pattern = re.compile(rf"{CultureId.pattern.pattern}-B(?P<bank_vial>{_VIAL_NUMBER})")

    culture: CultureId
    number: int

    @property
    def code(self) -> str:
        return f"{self.culture.code}-B{self.number:0{VIAL_WIDTH_MIN}d}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(CultureId._from(match), int(match["bank_vial"]))


@dataclass(frozen=True)
class RetainedSampleId(ChainId):
    """A retained sample of a lot, e.g. A999926000001-L1-R01, numbered as bank vials are."""

    kind = "retained sample"
    example = f"{LotId.example}-R01"
    pattern = re.compile(rf"{LotId.pattern.pattern}-R(?P<retained>{_VIAL_NUMBER})")

    lot: LotId
    number: int

    @property
    def code(self) -> str:
        return f"{self.lot.code}-R{self.number:0{VIAL_WIDTH_MIN}d}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(LotId._from(match), int(match["retained"]))


def _next_number(last: int | None, owner: str, kind: str) -> int:
    number = (last or 0) + 1
    if number > NUMBER_MAX:
        raise RuleViolation(
            f"{owner} already has {NUMBER_MAX} {kind}s, as many as a {kind} id can number"
        )
    return number


def next_culture(din: Din, last: int | None) -> CultureId:
    """The aspirate's next culture after its highest number (None: its first)."""
    return CultureId(din, _next_number(last, f"aspirate {din.display}", "culture"))


def next_passage(culture: CultureId, last: int | None) -> PassageId:
    """The culture's next passage after its highest number (None: its first)."""
    return PassageId(culture, _next_number(last, f"culture {culture.code}", "passage"))


def next_lot(din: Din, last: int | None) -> LotId:
    """The aspirate's next lot after its highest number (None: its first)."""
    return LotId(din, _next_number(last, f"aspirate {din.display}", "lot"))


def after_din(code: str) -> str:
    """What an id adds to its DIN (C1-B01 of A999926000001-C1-B01): enough to tell items
    apart where the DIN is shown once or not at all, as in the cells of a box's grid."""
    match = DIN_PATTERN.match(code)
    if match is None or not code.startswith("-", match.end()):
        raise ValueError(f"not an id of a donation: {code!r}")
    return code[match.end() + 1 :]


def bank_vial_ids(culture: CultureId, last: int | None, count: int) -> list[BankVialId]:
    """The culture's next `count` bank vials after its highest number (None: its first)."""
    first = (last or 0) + 1
    if first + count - 1 > VIAL_NUMBER_MAX:
        raise RuleViolation(
            f"culture {culture.code} cannot have more than {VIAL_NUMBER_MAX} bank vials"
        )
    return [BankVialId(culture, number) for number in range(first, first + count)]


def retained_sample_ids(lot: LotId, last: int | None, count: int) -> list[RetainedSampleId]:
    """The lot's next `count` retained samples after its highest number (None: its first)."""
    first = (last or 0) + 1
    if first + count - 1 > VIAL_NUMBER_MAX:
        raise RuleViolation(
            f"lot {lot.code} cannot have more than {VIAL_NUMBER_MAX} retained samples"
        )
    return [RetainedSampleId(lot, number) for number in range(first, first + count)]


def vial_width(count: int) -> int:
    """Digits of a lot's vial numbers: enough for its count, at least two, so ids sort."""
    return max(VIAL_WIDTH_MIN, len(str(count)))


def vial_ids(lot: LotId, count: int) -> list[VialId]:
    """A lot's vials, numbered from 1 at one width."""
    if count > VIAL_NUMBER_MAX:
        raise RuleViolation(
            f"lot {lot.code} cannot have {count} vials: a vial id numbers at most {VIAL_NUMBER_MAX}"
        )
    width = vial_width(count)
    return [VialId(lot, number, width) for number in range(1, count + 1)]


# --- patients -------------------------------------------------------------------------------

PATIENT_CODE_MAX = 32  # the column, whatever pattern a site sets
# The characters a QR payload carries, no longer than a patient code can be.
_LABELLED_PATIENT_CODE = re.compile(rf"[A-Z0-9*-]{{1,{PATIENT_CODE_MAX}}}")
LABELLED_PATIENT_CODE_FORMS = "upper-case ASCII letters, digits, '-' and '*' (what a label carries)"
# Characters read for one another on a label or a screen: letter O and zero, letter I and one.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1"})


def patient_code(code: str, pattern: str, description: str, field: str) -> str:
    """A patient code in the form the site's pattern (a site setting) describes.

    Whatever the pattern allows, the code is ASCII and made of what a vial label's QR
    payload can carry, so that every patient lims registers can be labelled.
    """
    ascii_identifier(code, field)
    if not re.fullmatch(pattern, code):
        raise BadInput(field, f"must be {description} (got {shown(code)})")
    if len(code) > PATIENT_CODE_MAX:
        raise BadInput(field, f"must be at most {PATIENT_CODE_MAX} characters (got {len(code)})")
    if not _LABELLED_PATIENT_CODE.fullmatch(code):
        raise BadInput(field, f"must be {LABELLED_PATIENT_CODE_FORMS} (got {shown(code)})")
    return code


def skeleton(code: str) -> str:
    """What a code looks like to a reader: case ignored, O read as 0 and I as 1.

    Two codes with one skeleton are one patient to someone reading a label.
    """
    return code.upper().translate(_CONFUSABLE)


def reads_as_lims_id(code: str) -> str | None:
    """The kind of lims identifier (DIN, culture, passage, lot, vial, bank vial, retained
    sample, count, shipment) a code could be read as, typed as lims forgives or with O and I
    read as digits; None when it reads as none."""
    for text in (code.upper(), skeleton(code)):
        compact = "".join(text.split())
        with_or_without_check = len(compact) in (DIN_LENGTH, DIN_LENGTH + 1)
        if with_or_without_check and DIN_PATTERN.fullmatch(compact[:DIN_LENGTH]):
            return "DIN"
        for kind in _CHAIN_IDS:
            if kind.matches(text.strip()):
                return kind.kind
    return None


def is_labelled_patient_code(text: str) -> bool:
    """Whether a scanned label's patient field could be a patient code lims printed."""
    return _LABELLED_PATIENT_CODE.fullmatch(text) is not None


# --- instrument counts ----------------------------------------------------------------------


@dataclass(frozen=True)
class CountId(ChainId):
    """A sample's result imported from a cell counter's file, numbered by the database:
    CNT-000123. Not of a donation: a count is tied to one only by the step that uses it."""

    kind = "count"
    example = "CNT-000123"
    pattern = re.compile(r"CNT-(?P<count>[0-9]{6,10})")

    number: int

    @property
    def code(self) -> str:
        return f"CNT-{self.number:06d}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(int(match["count"]))


# --- shipments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentId(ChainId):
    """Released vials sent to another site, numbered by the database: SHP-000123. Not of a
    donation: a shipment may carry vials of several lots."""

    kind = "shipment"
    example = "SHP-000123"
    pattern = re.compile(r"SHP-(?P<shipment>[0-9]{6,10})")

    number: int

    @property
    def code(self) -> str:
        return f"SHP-{self.number:06d}"

    @classmethod
    def _from(cls, match: re.Match[str]) -> Self:
        return cls(int(match["shipment"]))


# Every id lims writes but the DIN, as reads_as_lims_id tries them.
_CHAIN_IDS: tuple[type[ChainId], ...] = (
    CultureId,
    PassageId,
    LotId,
    VialId,
    BankVialId,
    RetainedSampleId,
    CountId,
    ShipmentId,
)


# --- equipment ------------------------------------------------------------------------------

EQUIPMENT_ID_MAX = 32
_EQUIPMENT_ID = re.compile(rf"[A-Z0-9][A-Z0-9._-]{{0,{EQUIPMENT_ID_MAX - 1}}}")
EQUIPMENT_ID_FORMS = (
    f"1-{EQUIPMENT_ID_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit, "
    "e.g. BSC-01"
)


def equipment_id(text: str, field: str = "id") -> str:
    """The id the lab gives a piece of equipment, upper-cased: BSC-01, INC-2, LN2-TANK-1."""
    typed = ascii_identifier(text, field).strip().upper()
    if not _EQUIPMENT_ID.fullmatch(typed):
        raise BadInput(field, f"must be {EQUIPMENT_ID_FORMS} (got {shown(text)})")
    return typed


# --- deviations and signature subjects ------------------------------------------------------

DEVIATION_ID_MAX = 2**31 - 1  # the database numbers them in a 32-bit integer


def read_deviation_id(text: str | int, field: str = "id") -> int:
    """A deviation's number as typed."""
    return quantities.whole_number(field, text, low=1, high=DEVIATION_ID_MAX)


def lot_subject(lot: str) -> str:
    """What a signature on a lot is bound to (21 CFR 11.70); a change unlinks every one given."""
    return f"lot:{lot}"


def deviation_subject(number: int) -> str:
    """What a signature closing a deviation is bound to, as lot_subject for lots."""
    return f"deviation:{number}"


def specification_subject(version: int) -> str:
    """What a signature approving a specification version is bound to, as lot_subject for lots."""
    return f"specification:{version}"
