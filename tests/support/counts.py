"""Counts as the cell counter reported them, stored as `lims count import` stores a read file.

    code = imported(bench.scenario, 2.1e6, 95, at=day(14))

is "a count of 2.1e6 viable cells/mL, 95 % viable, analysed at day 14, status ok", kept with a
file of its own (each file's bytes differ, so none is refused as imported before) through
lims.services.counts.store, in one unit of work as the station's user.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from lims.domain.cell_counting import STATUS_OK, CountFileReading, CountReading
from lims.scenario import Scenario
from lims.services import counts
from lims.views.counts import CountView

INSTRUMENT = "vicell-blu"
SERIAL = "VB-20231234"
PARSER = "tests.support.counts"


def imported(
    scenario: Scenario,
    viable_per_ml: float,
    viability: float,
    *,
    at: datetime,
    status: str = STATUS_OK,
    total_per_ml: float | None = None,
    date_only: bool = False,
    sample: str = "harvest",
    serial: str = SERIAL,
    equipment: tuple[str, ...] = (),
) -> str:
    """A count imported at this station: its id (CNT-…)."""
    nonce = uuid.uuid4().hex
    reading = CountReading(
        instrument=INSTRUMENT,
        model="Vi-CELL BLU",
        serial=serial,
        operator="tom",
        analysed_at=at,
        date_only=date_only,
        sample=sample,
        sample_name=None,
        viable_per_ml=viable_per_ml,
        total_per_ml=total_per_ml,
        viability=viability,
        diameter_um=16.2,
        dilution=1.0,
        status=status,
    )
    [view] = scenario.run(
        counts.store,
        file_name=f"count-{nonce[:8]}.csv",
        content=f"{sample},{viable_per_ml!r},{viability!r},{at.isoformat()},{nonce}\n".encode(),
        read=CountFileReading(instrument=INSTRUMENT, parser=PARSER, readings=(reading,)),
        equipment=equipment,
    )
    return view.count_id


def file_name_of(scenario: Scenario, code: str) -> str:
    """The name of the file a count was imported from, as stored."""
    return _view(scenario, code).file_name


def sha256_of(scenario: Scenario, code: str) -> str:
    return _view(scenario, code).file_sha256


def _view(scenario: Scenario, code: str) -> CountView:
    from lims.services import lookup
    from lims.uow import unit_of_work

    with unit_of_work(scenario.settings, write=False, authenticated=False) as uow:
        [view] = counts.views(uow.session, [lookup.count(uow.session, code)])
    return view
