"""A technician's lab and shortcuts to the bench steps of lims.scenario, as tests use them.

Times are so many days after the aspirate was collected, 30 days before the suite
started (tests.support.lab.CLOCK): day(14) is a passage two weeks in. The tests'
cultures use no reagent lots, and their passages are plain ones (below), so that
each test states the reagents and counts it is about.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text

from lims.config import Settings
from lims.scenario import CSF_BEFORE_FORMULATION, CSF_IN_TRANSIT, PATIENT_CODE, VEHICLE_ML
from lims.views.bench import AspirateView, CultureDetail, PassageView, PatientView
from tests.support.lab import CLOCK, Lab
from tests.support.lab import NOW as NOW  # tests take it from here, with the times below

COLLECTED = CLOCK.collected
RECEIVED = CLOCK.received
STARTED = CLOCK.started
day = CLOCK.day  # a time so many days after collection


NO_REAGENTS = {"reagents": ()}
# A passage of no growth: 4x10^6 cells harvested and reseeded on five T175 flasks.
PASSAGE = {
    "harvested": 4_000_000,
    "viability": 95,
    "seeded": 4_000_000,
    "vessels": 5,
    "area_cm2": 875,
    **NO_REAGENTS,
}


class Bench:
    """A lab with a technician (tom) logged in at this station, and shortcuts to the steps."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.settings = lab.settings
        self.scenario = lab.scenario
        lab.add_user("tom", "technician")
        lab.login("tom")

    def run(
        self, service: Callable[..., Any], settings: Settings | None = None, **values: Any
    ) -> Any:
        """The service in one unit of work at this station, or at the one SETTINGS names."""
        scenario = self.scenario if settings is None else self.scenario.station(settings)
        return scenario.run(service, **values)

    def read(self, service: Callable[..., Any], **values: Any) -> Any:
        return self.scenario.read(service, **values)

    def patient(self, code: str = PATIENT_CODE) -> PatientView:
        return self.scenario.patient(code=code)

    def aspirate(self, patient: str = PATIENT_CODE, **values: Any) -> AspirateView:
        return self.scenario.aspirate(patient=patient, **values)

    def culture(self, din: str, **values: Any) -> CultureDetail:
        return self.scenario.culture(din, **{**NO_REAGENTS, **values})

    def passage(self, culture: str, at: Any, **values: Any) -> PassageView:
        return self.scenario.passage(culture, at=at, **{**PASSAGE, **values})

    def vehicle(self, at: datetime, patient: str = PATIENT_CODE) -> dict[str, Any]:
        """A lot's vehicle for a formulation at `at`: the patient's CSF received for it a few
        hours before, as lots.formulate's keywords."""
        collected = at - CSF_BEFORE_FORMULATION
        donation = self.scenario.csf(
            patient, collected_at=collected, received_at=collected + CSF_IN_TRANSIT
        )
        return {"vehicle_din": donation.din.code, "vehicle_ml": VEHICLE_ML}

    def audit_actions(self) -> list[str]:
        return [entry.action for entry in self.scenario.audit_trail()]

    def sql(self, statement: str, **parameters: Any) -> Any:
        from lims.uow import unit_of_work

        with unit_of_work(self.settings, authenticated=False) as uow:
            return uow.session.execute(text(statement), parameters)
