"""Checks on typed values, each refusal a BadInput naming the field and what is allowed."""

from __future__ import annotations

import re
import unicodedata

from lims.errors import BadInput, shown

_ALLOWED_IN_MULTILINE = {"\n", "\t"}


def has_undecodable_bytes(text: str) -> bool:
    """True for text Python decoded with surrogateescape: the bytes were not UTF-8."""
    return any("\udc80" <= character <= "\udcff" for character in text)


def free_text(field: str, value: str, *, max_length: int, multiline: bool = False) -> str:
    """Text stored verbatim: any printable character, no control characters."""
    if not value.strip():
        raise BadInput(field, "must not be empty")
    if len(value) > max_length:
        raise BadInput(field, f"must be at most {max_length} characters (got {len(value)})")
    for position, character in enumerate(value, start=1):
        category = unicodedata.category(character)
        if category == "Cs" or (
            category == "Cc" and not (multiline and character in _ALLOWED_IN_MULTILINE)
        ):
            raise BadInput(
                field,
                f"must not contain control characters (found U+{ord(character):04X} "
                f"at position {position})",
            )
    return value


def matching(field: str, value: str, pattern: re.Pattern[str], allowed: str) -> str:
    if not pattern.fullmatch(value):
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    return value


def choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BadInput(field, f"must be one of {', '.join(choices)} (got {shown(value)})")
    return value
