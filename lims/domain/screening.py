"""What a patient's donor screening says on the labels of their cells (21 CFR 1271.90(c)).

An autologous donor need not be screened, but until every test of the site's vocabulary
has a result the labels say so; a reactive result marks them with the biohazard legend
and names the tests. The latest result of a test is the one that counts, except that a
reactive result is never hidden by a later negative one: a retest does not unmark a donor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lims.domain.isbt128 import AUTOLOGOUS, AUTOLOGOUS_BIOHAZARD

NEGATIVE = "negative"
REACTIVE = "reactive"
NOT_DONE = "not_done"
RESULTS = (NEGATIVE, REACTIVE, NOT_DONE)
TEST_MAX = 32
NOT_EVALUATED = "NOT EVALUATED FOR INFECTIOUS SUBSTANCES"
BIOHAZARD = "☣ BIOHAZARD"


@dataclass(frozen=True)
class Result:
    test: str
    result: str
    performed_at: datetime


@dataclass(frozen=True)
class Statement:
    """What the labels say of the donor's screening, and the ISBT 128 collection type."""

    reactive: tuple[str, ...]  # tests with a reactive result, in the vocabulary's order
    not_performed: tuple[str, ...]  # tests without a negative or reactive result

    @property
    def collection_type(self) -> str:
        return AUTOLOGOUS_BIOHAZARD if self.reactive else AUTOLOGOUS

    @property
    def label_text(self) -> str | None:
        """The label's infectious-substances statement, or None for a donor screened
        negative on every test."""
        if self.reactive:
            warning = f"{BIOHAZARD}  WARNING: Reactive test results for {', '.join(self.reactive)}"
            return warning if not self.not_performed else f"{warning}; {NOT_EVALUATED}"
        return NOT_EVALUATED if self.not_performed else None


def statement(vocabulary: Sequence[str], results: Iterable[Result]) -> Statement:
    """The donor's statement from every result on record, judged against the vocabulary."""
    ordered = sorted(results, key=lambda result: result.performed_at)
    reactive = {result.test for result in ordered if result.result == REACTIVE}
    latest = {result.test: result.result for result in ordered}
    performed = {test for test, result in latest.items() if result != NOT_DONE}
    # A test dropped from the vocabulary still marks a donor it found reactive.
    named = [*vocabulary, *sorted(reactive - set(vocabulary))]
    return Statement(
        reactive=tuple(test for test in named if test in reactive),
        not_performed=tuple(
            test for test in vocabulary if test not in performed and test not in reactive
        ),
    )
