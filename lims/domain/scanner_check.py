"""Whether a station's scanner types what a label holds (`lims scan --selftest`).

A keyboard-wedge scanner types each character as the key the host's keyboard layout puts
it on: under another layout than the scanner assumes, `-` or `/` arrive as other characters
(an Italian layout has turned `-` into `'`). A test symbol holds every character a lims
label's 2-D code uses; what the scanner typed back is compared with it character by
character.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lims.domain import isbt128, payload

# The QR payload's alphabet (lims.domain.payload) and the Data Matrix's (ISBT 128).
PAYLOAD_CHARACTERS = (
    "-*" + payload.SEPARATOR + "".join(c for c in isbt128.SYMBOL_CHARACTERS if not c.isalnum())
)
TEST_TEXT = "LIMS-SELFTEST/" + PAYLOAD_CHARACTERS + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LAYOUT_ADVICE = "set the scanner to this station's keyboard layout, then run --selftest again"
CASE_ADVICE = (
    "letters arrived in the other case: turn Caps Lock off (or the scanner's case "
    "conversion), then run --selftest again"
)


@dataclass(frozen=True)
class Wrong:
    """One difference between the test symbol and what the scanner typed."""

    expected: str  # "" for characters typed that the symbol does not hold
    typed: str  # "" for a character of the symbol that never arrived

    def __str__(self) -> str:
        if not self.typed:
            return f"{self.expected!r} did not arrive"
        if not self.expected:
            return f"{self.typed!r} arrived that the symbol does not hold"
        return f"{self.expected!r} arrived as {self.typed!r}"


def compare(typed: str, expected: str = TEST_TEXT) -> list[Wrong]:
    """Each character of `expected` that arrived as another (or as several), or not at all,
    and what was typed that it does not hold, each difference once; empty when the scanner
    typed it exactly."""
    wrong: list[Wrong] = []
    matcher = difflib.SequenceMatcher(a=expected, b=typed, autojunk=False)
    for operation, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if operation == "equal":
            continue
        sent, got = expected[a_start:a_end], typed[b_start:b_end]
        if operation == "replace" and len(sent) == len(got):
            wrong += [Wrong(s, g) for s, g in zip(sent, got, strict=True)]
        elif operation == "replace" and len(sent) == 1:  # a dead key types two for one
            wrong.append(Wrong(sent, got))
        else:
            wrong += [Wrong(s, "") for s in sent]
            wrong += [Wrong("", got)] if got else []
    # A layout changes a character wherever it occurs: say so once.
    return list(dict.fromkeys(wrong))


def advice(wrong: list[Wrong]) -> str | None:
    """What to change at the station, or None when the scanner typed the symbol exactly."""
    if not wrong:
        return None
    if all(w.typed and w.expected.swapcase() == w.typed != w.expected for w in wrong):
        return CASE_ADVICE
    return LAYOUT_ADVICE
