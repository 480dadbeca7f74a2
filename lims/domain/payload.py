"""The text a vial's QR code holds, and how a scan of it is checked.

    LIMS1/A999926000001-L1-V01/A9999260000018/PT-0001/202611291000/3F9A0C1B

Fields, separated by '/': format version, vial id, DIN with its check
character, patient code, expiry (UTC, YYYYMMDDHHMM), and a check value: the
first 8 hex digits of the SHA-256 of everything before it. A truncated or
mistyped scan fails the check (or the structure) and is refused rather than
misread. Every character is in the QR alphanumeric set (upper-case letters,
digits, '-', '/', and '*', which a DIN check character can be), which keeps
the symbol small, and no name or other personal data is in it beyond the
pseudonymous patient code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from lims.domain.ids import parse_din
from lims.errors import BadInput, shown

VERSION = "LIMS1"
SEPARATOR = "/"
CHECK_LENGTH = 8
EXPIRY_FORMAT = "%Y%m%d%H%M"
_FIELD = re.compile(r"[A-Z0-9*-]{1,40}")  # * is a DIN check character too
PAYLOAD_FORMS = (
    "a vial label's QR payload: LIMS1/VIAL/DIN+CHECK/PATIENT/YYYYMMDDHHMM/CHECK "
    "(scan the vial's QR code)"
)


@dataclass(frozen=True)
class Payload:
    vial_id: str
    din: str  # 13 characters, without the check character
    patient: str
    expires_at: datetime

    def encode(self) -> str:
        din = parse_din(self.din)
        fields = [
            VERSION,
            self.vial_id,
            din.with_check,
            self.patient,
            self.expires_at.astimezone(UTC).strftime(EXPIRY_FORMAT),
        ]
        for field in fields:
            if not _FIELD.fullmatch(field):
                raise ValueError(f"cannot put {field!r} in a QR payload")
        body = SEPARATOR.join(fields)
        return f"{body}{SEPARATOR}{check_value(body)}"


def check_value(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:CHECK_LENGTH].upper()


def decode(scanned: str, field: str = "scan") -> Payload:
    """A scanned payload, refused (BadInput) unless its structure and check value hold."""
    text = scanned.strip()
    parts = text.split(SEPARATOR)
    if len(parts) != 6 or parts[0] != VERSION:
        raise BadInput(field, f"must be {PAYLOAD_FORMS} (got {shown(scanned)})")
    body, check = text.rsplit(SEPARATOR, 1)
    if check != check_value(body):
        raise BadInput(
            field,
            f"check value {check!r} does not match the payload: the scan is truncated, "
            "mistyped or not from a lims label; scan again",
        )
    _, vial_id, din_text, patient, expiry = parts[:5]
    din = parse_din(din_text, field)
    if not re.fullmatch(r"[0-9]{12}", expiry):  # strptime alone takes 2026112910 too
        raise BadInput(field, f"expiry {expiry!r} is not YYYYMMDDHHMM")
    try:
        expires_at = datetime.strptime(expiry, EXPIRY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise BadInput(field, f"expiry {expiry!r} is not YYYYMMDDHHMM") from None
    return Payload(vial_id, din.code, patient, expires_at)
