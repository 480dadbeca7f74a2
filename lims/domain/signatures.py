"""What an electronic signature says and what binds it to its record (21 CFR Part 11).

Pure, so the view of a signature and the audit entry of the act of signing
print the same manifestation without either reading the other.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from lims.timeutil import audit_timestamp


def manifestation(username: str, full_name: str, signed_at: datetime, meaning: str) -> str:
    """As 21 CFR 11.50 asks: printed name, date and time, and meaning."""
    return f"Signed by {full_name} ({username}) {signed_at:%Y-%m-%d %H:%M} UTC — {meaning}"


def comparable_name(full_name: str) -> str:
    """A full name as people read it: case and spacing do not make another person."""
    return " ".join(full_name.split()).casefold()


def manifest_hash(
    subject: str, record_hash: str, signer: tuple[str, str], signed_at: datetime, meaning: str
) -> str:
    """Binds the signature to its record's identity and content (21 CFR 11.70)."""
    fields = [subject, record_hash, *signer, audit_timestamp(signed_at), meaning]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
