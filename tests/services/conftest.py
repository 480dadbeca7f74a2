"""The labs the services' tests start from: a technician's bench, a growing culture, a lot."""

from __future__ import annotations

import pytest

from tests.support.bench import Bench
from tests.support.lab import Lab
from tests.support.quality import Quality


@pytest.fixture
def bench(lab: Lab) -> Bench:
    return lab.built("bench", lambda: Bench(lab))


@pytest.fixture
def growing(bench: Bench) -> str:
    """A primary culture from a fresh aspirate; its id."""
    bench.patient()
    din = bench.aspirate().din.code
    return bench.culture(din).summary.culture_id


@pytest.fixture
def quality(lab: Lab) -> Quality:
    """Lot L1 of four vials for PT-0001, in quarantine, formulated by tom; quinn and rita QA."""
    return lab.built("quality", lambda: Quality(lab))
