"""A bench with QA users quinn and rita and lot L1 formulated by tom: QA's work starts here.

The lot (four vials for PT-0001) comes from a culture passaged twice; PASSING
(lims.scenario's) is a result for every test the default specification requires.
"""

from __future__ import annotations

from typing import Any

from lims.scenario import PASSING as PASSING  # tests take the passing results from here
from lims.scenario import PATIENT_CODE
from lims.services import lots, qc
from lims.views.quality import LotDetail
from lims.views.release import CriterionView, EvaluationView
from tests.support.bench import NO_REAGENTS, Bench, day
from tests.support.lab import PASSWORD, Lab

# Lot L1's culture: a plain passage two weeks in, then one that grew eightfold.
LOT_PASSAGES = (
    {"at": day(14)},
    {"at": day(20), "harvested": 32_000_000, "seeded": 20_000_000, "area_cm2": 4000},
)
# Four vials of 4x10^7 cells in 2 mL, formulated on day 26 and in date for 30 days.
LOT = {
    "harvested": 160_000_000,
    "viability": 93,
    "vials": 4,
    "cells_per_vial": 40_000_000,
    "volume_ml": 2,
    "at": day(26),
    "shelf_life_hours": 24 * 30,
    **NO_REAGENTS,
}
RESULTS_AT = day(27)


class Quality(Bench):
    """A bench with QA users quinn and rita, and a lot formulated by the technician."""

    def __init__(self, lab: Lab, vehicle: str | None = None) -> None:
        """`vehicle` suspends the lots in a typed vehicle (where the site allows one), as a
        lims before CSF donations did, instead of the patient's own CSF."""
        super().__init__(lab)
        self.typed_vehicle = {} if vehicle is None else {"vehicle": vehicle}
        lab.add_user("quinn", "qa")
        lab.add_user("rita", "qa")
        lab.login("tom")
        lot = self.new_lot()
        self.culture_id, self.lot_id = lot.summary.culture_id, lot.summary.lot_id

    def new_lot(self, patient: str = PATIENT_CODE) -> LotDetail:
        """Another lot like L1 from a fresh culture of PATIENT, registered first if new."""
        culture = self.scenario.primary_culture(patient, **NO_REAGENTS).summary.culture_id
        for values in LOT_PASSAGES:
            self.passage(culture, **values)
        return self.formulate(culture, **self.typed_vehicle)

    def formulate(self, culture: str | None = None, **values: Any) -> LotDetail:
        return self.scenario.formulate(culture or self.culture_id, **{**LOT, **values})

    def record(self, test: str, value: str, **values: Any) -> CriterionView:
        values = {"at": RESULTS_AT, **values}
        return self.run(qc.record_result, lot=self.lot_id, test=test, value=value, **values)

    def record_passing(self) -> None:
        self.scenario.record_qc(self.lot_id, at=RESULTS_AT)

    def evaluation(self) -> EvaluationView:
        return self.read(qc.show_evaluation, lot=self.lot_id)

    def release(self, as_user: str = "rita", password: str = PASSWORD) -> LotDetail:
        return self.scenario.release(self.lot_id, signer=as_user, password=password)

    def show(self) -> LotDetail:
        return self.read(lots.show_lot, lot=self.lot_id)


def released_lot(quality: Quality) -> Quality:
    """L1 with every required result passing, released by rita; tom logged in again."""
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    return quality
