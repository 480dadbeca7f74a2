"""A bench with QA users quinn and rita and lot L1 formulated by tom: QA's work starts here.

The lot (four vials for PT-0001) comes from a culture passaged twice; PASSING
is a result for every test the default specification requires.
"""

from __future__ import annotations

from typing import Any

from lims.services import lots, qc
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.lab import PASSWORD

PASSING = {
    "viability": "92",
    "sterility": "negative",
    "mycoplasma": "negative",
    "endotoxin": "0.5",
    "cd73": "99",
    "cd90": "98",
    "cd105": "97",
    "cd45": "0.5",
    "cd34": "0.3",
    "cd14": "0.2",
    "cd19": "0.1",
    "hla_dr": "0.4",
}


class Quality(Bench):
    """A bench with QA users quinn and rita, and a lot formulated by the technician."""

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        lab.add_user("quinn", "qa")
        lab.add_user("rita", "qa")
        lab.login("tom")
        self.patient()
        din = self.aspirate().din.code
        self.culture_id = self.culture(din).summary.culture_id
        self.passage(self.culture_id, day(14))
        self.passage(
            self.culture_id, day(20), harvested=32_000_000, seeded=20_000_000, area_cm2=4000
        )
        self.lot_id = self.formulate().summary.lot_id

    def formulate(self, **values: Any) -> lots.LotDetail:
        values = {
            "culture": self.culture_id,
            "harvested": 160_000_000,
            "viability": 93,
            "vials": 4,
            "cells_per_vial": 40_000_000,
            "volume_ml": 2,
            "at": day(26),
            "shelf_life_hours": 24 * 30,
            **values,
        }
        return self.run(lots.formulate, **values)

    def record(self, test: str, value: str, **values: Any) -> qc.CriterionView:
        with unit_of_work(self.settings) as uow:
            return qc.record_result(
                uow,
                lot=self.lot_id,
                test=test,
                value=value,
                at=values.pop("at", day(27)),
                **values,
            )

    def record_passing(self) -> None:
        for test, value in PASSING.items():
            self.record(test, value)

    def evaluation(self) -> qc.Evaluation:
        with unit_of_work(self.settings, write=False) as uow:
            return qc.show_evaluation(uow, lot=self.lot_id)

    def release(self, as_user: str = "rita", password: str = PASSWORD) -> lots.LotDetail:
        self.lab.login(as_user)
        return self.run(lots.release, lot=self.lot_id, password=password)

    def show(self) -> lots.LotDetail:
        with unit_of_work(self.settings, write=False) as uow:
            return lots.show_lot(uow, lot=self.lot_id)
