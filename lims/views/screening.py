"""What `patient screen` and `patient show` say of a donor's screening."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class ScreeningStatementView:
    """What the labels of the patient's cells say of their screening."""

    reactive: list[str]  # tests with a reactive result
    not_performed: list[str]  # tests of the site's vocabulary without a result
    label_text: str | None  # None: screened negative on every test
    collection_type: str  # ISBT 128: 1 autologous, X autologous biohazard


@dataclass(frozen=True, kw_only=True)
class ScreeningResultView:
    test: str
    result: str
    performed_at: datetime
    recorded_by: str


@dataclass(frozen=True, kw_only=True)
class ScreeningView:
    """A result just recorded, and the patient's screening with it."""

    patient: str
    test: str
    result: str
    performed_at: datetime
    recorded_by: str
    results: list[ScreeningResultView]  # every result on record, oldest first
    statement: ScreeningStatementView
