"""A technician's lab and shortcuts to the bench services, as the CLI calls them.

Times are so many days after the aspirate was collected, 30 days ago: day(14) is a
passage two weeks in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from lims import audit
from lims.config import Settings
from lims.services import aspirates, cultures, patients
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.lab import Lab

NOW = utcnow().replace(microsecond=0)
COLLECTED = NOW - timedelta(days=30)
RECEIVED = COLLECTED + timedelta(hours=2)
STARTED = COLLECTED + timedelta(hours=5)


def day(days: float) -> datetime:
    """A time so many days after collection."""
    return COLLECTED + timedelta(days=days)


class Bench:
    """A lab with a technician logged in at this station, and shortcuts to the services."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.settings = lab.settings
        lab.add_user("tom", "technician")
        lab.login("tom")

    def run(
        self, service: Callable[..., Any], settings: Settings | None = None, **values: Any
    ) -> Any:
        with unit_of_work(settings or self.settings) as uow:
            return service(uow, **values)

    def read(self, service: Callable[..., Any], **values: Any) -> Any:
        with unit_of_work(self.settings, write=False) as uow:
            return service(uow, **values)

    def patient(self, code: str = "PT-0001") -> patients.PatientView:
        return self.run(patients.add_patient, code=code, initials="MR", birth_year=1958)

    def aspirate(self, patient: str = "PT-0001", **values: Any) -> aspirates.AspirateView:
        values = {"collected_at": COLLECTED, "received_at": RECEIVED, "volume_ml": 30, **values}
        return self.run(aspirates.receive, patient=patient, **values)

    def culture(self, din: str, **values: Any) -> cultures.CultureDetail:
        values = {"mnc": 240_000_000, "vessels": 5, "area_cm2": 875, "at": STARTED, **values}
        return self.run(cultures.start_culture, din=din, **values)

    def passage(self, culture: str, at: datetime, **values: Any) -> cultures.PassageView:
        values = {
            "harvested": 4_000_000,
            "viability": 95,
            "seeded": 4_000_000,
            "vessels": 5,
            "area_cm2": 875,
            **values,
        }
        return self.run(cultures.log_passage, culture=culture, at=at, **values)

    def audit_actions(self) -> list[str]:
        with unit_of_work(self.settings, write=False, authenticated=False) as uow:
            return [entry.action for entry in audit.entries(uow.session)]

    def sql(self, statement: str, **parameters: Any) -> Any:
        with unit_of_work(self.settings, authenticated=False) as uow:
            return uow.session.execute(text(statement), parameters)
