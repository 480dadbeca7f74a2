"""The equipment register as tests set it up: pieces added and calibrated by the admin,
through the services and without a login at the station (Lab.acting_as), so the station's
technician stays logged in.

    add(lab, "INC-01", "incubator", calibration_interval_days=365)
    calibrate(lab, "INC-01", day(1), due=local_day(day(60)))

Times are the tests' clock (tests.support.bench.day); due dates are days in the station's
zone (local_day).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from lims.services import equipment
from lims.timeutil import as_utc
from lims.views.equipment import CalibrationRecorded, EquipmentSummary
from tests.support.lab import Lab

KEEPER = "admin"  # keeps the register in these tests


def local_day(moment: datetime, lab: Lab) -> date:
    """The day a moment falls on at the lab's station."""
    return as_utc(moment).astimezone(lab.settings.tz).date()


def add(lab: Lab, code: str, kind: str, **values: Any) -> EquipmentSummary:
    with lab.acting_as(KEEPER) as uow:
        return equipment.add_equipment(
            uow, equipment=code, kind=kind, name=f"{kind} {code}", **values
        )


def calibrate(
    lab: Lab, code: str, at: datetime | date, due: date | None = None, **values: Any
) -> CalibrationRecorded:
    with lab.acting_as(KEEPER) as uow:
        return equipment.calibrate(uow, equipment=code, at=at, due=due, **values)


def calibrated(
    lab: Lab, code: str, kind: str, at: datetime, due: datetime, **values: Any
) -> EquipmentSummary:
    """A piece added and calibrated at `at`, due on the day of `due`: in calibration between."""
    add(lab, code, kind, **values)
    return calibrate(lab, code, at, local_day(due, lab)).summary


def change(lab: Lab, service: Any, code: str, reason: str = "test") -> EquipmentSummary:
    """A status change (take_out_of_service, return_to_service, retire) by the keeper."""
    with lab.acting_as(KEEPER) as uow:
        return service(uow, equipment=code, reason=reason)  # type: ignore[no-any-return]
