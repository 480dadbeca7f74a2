"""ISBT 128 Donation Identification Numbers (ICCBBA ST-001).

A DIN is the facility identification number (5 characters), the 2-digit year
of collection and a 6-digit sequence within that facility and year: 13
characters. Printed and typed, it carries an ISO 7064 mod 37-2 check
character that catches a mistyped or swapped character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lims.errors import BadInput, shown

CHECK_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
SEQUENCE_MAX = 999_999
DIN_LENGTH = 13
_DIN = re.compile(r"(?P<fin>[A-NP-Z][0-9]{4})(?P<year>[0-9]{2})(?P<sequence>[0-9]{6})")
DIN_FORMS = (
    "a DIN: facility number (a letter and 4 digits), 2-digit year and 6-digit sequence, "
    "with or without spaces and check character, e.g. A9999 26 000001"
)


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
    sequence: int

    @classmethod
    def of(cls, fin: str, year: int, sequence: int) -> Din:
        if not 1 <= sequence <= SEQUENCE_MAX:
            raise ValueError(f"DIN sequence out of range: {sequence}")
        return cls(fin, year % 100, sequence)

    @property
    def code(self) -> str:
        return f"{self.fin}{self.year:02d}{self.sequence:06d}"

    @property
    def check(self) -> str:
        return check_character(self.code)

    @property
    def display(self) -> str:
        return f"{self.fin} {self.year:02d} {self.sequence:06d} {self.check}"


def parse_din(text: str, field: str = "din") -> Din:
    """A DIN as typed or scanned: spaces optional, check character optional but verified."""
    compact = "".join(text.split()).upper()
    check = None
    if len(compact) == DIN_LENGTH + 1:
        compact, check = compact[:DIN_LENGTH], compact[DIN_LENGTH]
    match = _DIN.fullmatch(compact)
    if match is None:
        raise BadInput(field, f"must be {DIN_FORMS} (got {shown(text)})")
    din = Din(match["fin"], int(match["year"]), int(match["sequence"]))
    if din.sequence == 0:
        raise BadInput(field, f"sequence 000000 is never issued (got {shown(text)})")
    if check is not None and check != din.check:
        raise BadInput(
            field,
            f"check character {check!r} does not match {din.code} (expected {din.check!r}); "
            "the DIN was mistyped or misread",
        )
    return din
