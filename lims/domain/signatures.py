"""What an electronic signature says and what binds it to its record (21 CFR Part 11).

Pure, so the view of a signature and the audit entry of the act of signing
print the same manifestation without either reading the other.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from datetime import datetime

from lims.timeutil import audit_timestamp


def manifestation(username: str, full_name: str, signed_at: datetime, meaning: str) -> str:
    """As 21 CFR 11.50 asks: printed name, date and time, and meaning."""
    return f"Signed by {full_name} ({username}) {signed_at:%Y-%m-%d %H:%M} UTC — {meaning}"


# Characters a printed name must not hold: invisible (zero-width, soft hyphen, bidi
# overrides: Cf), control, private-use and unpaired surrogates. Each could make a name
# look like another person's.
_UNSEEN_CATEGORIES = frozenset({"Cf", "Cc", "Co", "Cs", "Zl", "Zp"})


# Scripts written together in one name (Japanese mixes kanji and kana).
_SCRIPTS_WRITTEN_TOGETHER = {"CJK": "HAN", "HIRAGANA": "HAN", "KATAKANA": "HAN"}


def _script(character: str) -> str | None:
    """The script a letter belongs to by its Unicode name (LATIN, CYRILLIC, GREEK, …)."""
    if not character.isalpha():
        return None
    script = unicodedata.name(character, "UNKNOWN").split(" ", 1)[0]
    return _SCRIPTS_WRITTEN_TOGETHER.get(script, script)


def full_name_problem(full_name: str) -> str | None:
    """Why a full name cannot name a signer unmistakably, or None.

    Refused: invisible or control characters, and a word that mixes scripts (a Cyrillic
    Т among Latin letters reads as T but is another name).
    """
    for character in full_name:
        if unicodedata.category(character) in _UNSEEN_CATEGORIES:
            return f"must not hold invisible or control characters (U+{ord(character):04X})"
    for word in unicodedata.normalize("NFKC", full_name).split():
        scripts = {script for script in map(_script, word) if script is not None}
        if len(scripts) > 1:
            return f"must not mix scripts within a word ({', '.join(sorted(scripts))} in {word!r})"
    return None


def comparable_name(full_name: str) -> str:
    """A full name as people read it: case, spacing, compatibility forms (fullwidth
    letters) and composed or decomposed accents do not make another person."""
    return " ".join(unicodedata.normalize("NFKC", full_name).split()).casefold()


def manifest_hash(
    subject: str, record_hash: str, signer: tuple[str, str], signed_at: datetime, meaning: str
) -> str:
    """Binds the signature to its record's identity and content (21 CFR 11.70)."""
    fields = [subject, record_hash, *signer, audit_timestamp(signed_at), meaning]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
