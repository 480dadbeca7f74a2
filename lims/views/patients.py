"""Everything about one patient (`patient show`): their record, every material made from
their donations, each as its own command shows it, and their follow-up."""

from __future__ import annotations

from dataclasses import dataclass

from lims.views.bench import AspirateView, CultureSummary, PatientRecord
from lims.views.deviations import DeviationView
from lims.views.events import EventView
from lims.views.quality import LotSummary
from lims.views.screening import ScreeningResultView, ScreeningStatementView
from lims.views.storage import StoredItem
from lims.views.vials import VialView


@dataclass(frozen=True, kw_only=True)
class PatientDetail(PatientRecord):
    aspirates: list[AspirateView]
    cultures: list[CultureSummary]
    lots: list[LotSummary]
    vials: list[VialView]
    # In storage now: bank vials of their cultures, retained samples of their lots.
    stored_items: list[StoredItem]
    deviations: list[DeviationView]  # on any of their aspirates, cultures and lots
    events: list[EventView]  # follow-up after administration, oldest first
    screening: list[ScreeningResultView]  # donor screening results, oldest first
    screening_statement: ScreeningStatementView  # what the labels of their cells say
