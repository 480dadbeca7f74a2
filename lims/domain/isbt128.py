"""ISBT 128 (ICCBBA ST-001) as a vial's label carries it, and reading it back from a scan.

A vial is a division of its donation's product: data structure 003 (product code) holds
the site's product description code, the collection type and the division code; beyond
the 35 first-level division codes, 003 says `99` and data structure 032 holds the number.
A Data Matrix holds a compound message (023) of the DIN (001), the product code (003, and
032 where needed) and the expiry (031, UTC). The facts come from ../shared/ISBT128.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lims.domain.ids import DIN_PATTERN, Din, parse_din
from lims.errors import BadInput, shown

AUTOLOGOUS = "1"  # collection type: for autologous use only
AUTOLOGOUS_BIOHAZARD = "X"  # autologous, a donor screening test reactive
COLLECTION_TYPES = (AUTOLOGOUS, AUTOLOGOUS_BIOHAZARD)
# First-level division codes d0: d from A-Z, then 1-9 ("00" is the undivided product and
# "99" says data structure 032 holds the division).
FIRST_LEVEL = "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789"
LARGE_DIVISION = "99"
DIVISION_MAX = 999_999  # 032 holds six digits
COMPOUND_SEQUENCE = "000"  # 023: no ICCBBA-defined sequence, the structures say what they are
EXPIRY_DATE_TYPE = "2001"  # 031: zone 2 (UTC), 0, type 01 (expiry)
EXPIRY_FORMAT = "%Y%m%d%H%M"

PRODUCT_IDENTIFIER = "=<"
DIVISION_IDENTIFIER = "=,"
DATE_IDENTIFIER = "=("
COMPOUND_IDENTIFIER = "=+"

_DIN_SYMBOL = re.compile(rf"={DIN_PATTERN.pattern}[0-9A-Z]{{2}}")
_COMPOUND = re.compile(
    rf"=\+(?P<count>[0-9]{{2}}){COMPOUND_SEQUENCE}"
    rf"=(?P<din>{DIN_PATTERN.pattern})(?P<flags>[0-9A-Z]{{2}})"
    r"=<(?P<description>[A-Z][0-9]{4})(?P<type>[0-9A-Z])(?P<ds>[0-9A-Z]{2})"
    r"(?:=,(?P<large>[0-9]{6}))?"
    rf"=\({EXPIRY_DATE_TYPE}(?P<expiry>[0-9]{{12}})"
)
# Every character a Data Matrix of lims may hold: what a scanner must type unchanged.
SYMBOL_CHARACTERS = "=<,(+0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DATAMATRIX_FORMS = (
    "an ISBT 128 compound message: =+ count 000, then =DIN flags, =< product code, "
    "=( 2001 expiry (scan the vial's Data Matrix)"
)


def division_code(number: int) -> tuple[str, str | None]:
    """The division code in 003 for the vial numbered `number` of its DIN (from 1), and the
    six digits of 032 when two characters cannot hold it."""
    if not 1 <= number <= DIVISION_MAX:
        raise ValueError(f"division {number} out of range 1-{DIVISION_MAX}")
    if number <= len(FIRST_LEVEL):
        return f"{FIRST_LEVEL[number - 1]}0", None
    return LARGE_DIVISION, f"{number:06d}"


def division_text(number: int) -> str:
    """A division as a label prints it: `A0`, or `99 000036` beyond the first level."""
    return " ".join(part for part in division_code(number) if part)


def division_number(code: str, large: str | None) -> int | None:
    """The vial number a division code (and 032) stands for; None if it names no vial's."""
    if code == LARGE_DIVISION:
        if large is None or not large.isdigit() or int(large) <= len(FIRST_LEVEL):
            return None
        return int(large)
    if large is not None or len(code) != 2 or code[1] != "0" or code[0] not in FIRST_LEVEL:
        return None
    return FIRST_LEVEL.index(code[0]) + 1


@dataclass(frozen=True)
class ProductCode:
    """Data structure 003 of one vial: the site's product description code, the collection
    type and the vial's division."""

    description: str  # e.g. S1234, from the site's ICCBBA registration
    collection_type: str
    division: int

    @property
    def division_codes(self) -> tuple[str, str | None]:
        return division_code(self.division)

    @property
    def structures(self) -> str:
        """003, followed by 032 where the division needs it."""
        code, large = self.division_codes
        text = f"{PRODUCT_IDENTIFIER}{self.description}{self.collection_type}{code}"
        return text if large is None else f"{text}{DIVISION_IDENTIFIER}{large}"

    @property
    def eye_readable(self) -> str:
        return f"{self.description} {self.collection_type} {division_text(self.division)}"


def expiry_structure(expires_at: datetime) -> str:
    """Data structure 031 for an expiry, in UTC to the minute."""
    return f"{DATE_IDENTIFIER}{EXPIRY_DATE_TYPE}{expires_at.astimezone(UTC):{EXPIRY_FORMAT}}"


def compound_message(din: Din, product: ProductCode, expires_at: datetime) -> str:
    """Data structure 023 with 001, 003 (and 032) and 031: what a vial's Data Matrix holds."""
    _, large = product.division_codes
    count = 3 if large is None else 4
    return (
        f"{COMPOUND_IDENTIFIER}{count:02d}{COMPOUND_SEQUENCE}"
        f"{din.isbt128}{product.structures}{expiry_structure(expires_at)}"
    )


@dataclass(frozen=True)
class ScannedDatamatrix:
    """What a vial's Data Matrix said: enough to find the vial and check its label."""

    din: str  # 13 characters
    product: ProductCode
    expires_at: datetime


def is_din_symbol(text: str) -> bool:
    """Whether a scan is a DIN's Code 128 (data structure 001) rather than a vial's code."""
    return bool(_DIN_SYMBOL.fullmatch(text.strip()))


def is_compound_message(text: str) -> bool:
    return text.strip().startswith(COMPOUND_IDENTIFIER)


def read_compound_message(scanned: str, field: str = "scan") -> ScannedDatamatrix:
    """A vial's Data Matrix as scanned, or BadInput naming what is wrong with it."""
    text = scanned.strip()
    match = _COMPOUND.fullmatch(text)
    if match is None:
        raise BadInput(field, f"must be {DATAMATRIX_FORMS} (got {shown(scanned)})")
    large = match["large"]
    if int(match["count"]) != (4 if large else 3):
        raise BadInput(
            field,
            f"the compound message says {match['count']} data structures but holds "
            f"{4 if large else 3}: the scan is truncated or not from a lims label; scan again",
        )
    if match["type"] not in COLLECTION_TYPES:
        raise BadInput(
            field,
            f"collection type {match['type']!r} is not one lims labels carry "
            f"({' or '.join(COLLECTION_TYPES)})",
        )
    number = division_number(match["ds"], large)
    if number is None:
        raise BadInput(
            field, f"division {match['ds']}{' ' + large if large else ''} names no vial's"
        )
    din = parse_din(match["din"], field)
    try:
        expires_at = datetime.strptime(match["expiry"], EXPIRY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadInput(field, f"expiry {match['expiry']!r} is not YYYYMMDDHHMM") from None
    return ScannedDatamatrix(
        din=din.code,
        product=ProductCode(match["description"], match["type"], number),
        expires_at=expires_at,
    )
