"""The lab the QA, vial and document bad-input tests share: the floor (tests.support.floor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lims.services import deviations, vials
from lims.timeutil import utcnow
from tests.support.floor import OTHER, PATIENT, Floor, _record_passing
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.vials import add_lot, scan_of


@pytest.fixture
def floor(lab: Lab) -> Floor:
    """The lab of tests.support.floor.Floor."""
    return lab.built("floor", lambda: _floor(lab))


def _floor(lab: Lab) -> Floor:
    # A site that may suspend a product in saline: the typed --vehicle of lot formulate and
    # lot correct is then free text, fed hostile text by tests/cli/test_free_text.py.
    lab.set_site(vehicle={"allow_non_autologous": True})
    quality = Quality(lab)
    quality.patient(OTHER)
    quality.record_passing()
    quality.release()
    lab.login("tom")
    released = quality.lot_id
    quarantine = add_lot(quality, PATIENT)
    _record_passing(quality, quarantine)
    vial = f"{released}-V02"
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)
    deviating = add_lot(quality, PATIENT)
    opened = quality.run(
        deviations.open_deviation, lot=deviating, description="label smudged on V04"
    )
    return Floor(quality, released, quarantine, deviating, opened.deviation_id, utcnow())


@pytest.fixture
def labels_dir(floor: Floor) -> Path:
    out = Path("labels")
    out.mkdir()
    return out
