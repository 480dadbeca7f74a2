"""The release verdict as QA reads it: each criterion against its latest result, and what blocks.

lims.domain.spec judges and keeps its result types free of lims.views; these
views are built from them, once, for `qc record`, `qc show`, `lot show` and the
batch record. They are apart from the lot's views because the QC service
returns them, and it sits below the services those views are drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from lims.domain.spec import CriterionVerdict, Evaluation, ResultStatus, StandingResult, Verdict
from lims.views import from_record, hidden, renamed


@dataclass(frozen=True, kw_only=True)
class ResultView:
    """One QC result as recorded, and whether it counts; without the store's id and the
    number it was read as. deviation_id names the out-of-specification deviation it opened
    or was recorded in the investigation of."""

    test: str
    value: str
    unit: str | None
    method: str | None
    tested_at: datetime
    reason: str | None
    recorded_by: str
    status: ResultStatus
    deviation_id: int | None


@dataclass(frozen=True, kw_only=True)
class CriterionView:
    """One criterion of the specification, its verdict, and every result of its test."""

    test: str
    spec: str  # the criterion as QA reads it: '≥ 70 %', 'negative'
    result: str | None  # the value that counts, as recorded or read off the lot
    verdict: Verdict
    description: str
    unit: str | None
    required: bool
    waivable: bool
    waived_by: int | None = renamed("waived_by_deviation")
    history: list[ResultView] = renamed("results")  # oldest first


@dataclass(frozen=True, kw_only=True)
class RecordedVerdict(CriterionView):
    """What `qc record` answers: the criterion's verdict with the result recorded, and what
    must be done at once, if anything (a failure of a released lot: tell the physicians)."""

    notice: str | None


@dataclass(frozen=True, kw_only=True)
class PendingTestView:
    """A test started whose final result is still to come."""

    test: str
    method: str | None
    started_at: datetime
    expected_final_at: datetime | None
    started_by: str


@dataclass(frozen=True, kw_only=True)
class EvaluationView:
    """Every criterion's verdict on a lot, and why it may not be released, if it may not."""

    json_properties: ClassVar[tuple[str, ...]] = ("releasable",)

    lot_id: str
    lot_status: str = hidden()  # as stored: a locked lot is not judged for release
    spec_version: int  # the specification version the lot is judged by: its formulation's
    criteria: list[CriterionView]
    blocking: list[str]
    results: list[ResultView]  # every result ever recorded on the lot, oldest first
    hold_reasons: list[str] = hidden()  # shown with the lot: see LotDetail
    pending: list[PendingTestView] = renamed("pending_tests")  # started, final result to come

    @property
    def releasable(self) -> bool:
        return not self.blocking


def criterion_view(verdict: CriterionVerdict) -> CriterionView:
    """The verdict with its criterion spelt out, as QA reads it beside the result."""
    criterion = verdict.criterion
    return from_record(
        CriterionView,
        verdict,
        spec=criterion.describe(),
        description=criterion.description,
        unit=criterion.unit,
        required=criterion.required,
        waivable=criterion.waivable,
        history=[result_view(entry) for entry in verdict.history],
    )


def result_view(entry: StandingResult) -> ResultView:
    return from_record(
        ResultView, entry.result, status=entry.status, deviation_id=entry.deviation_id
    )


def evaluation_view(evaluation: Evaluation) -> EvaluationView:
    """The verdict on a lot, each criterion's as criterion_view shows it."""
    return from_record(
        EvaluationView,
        evaluation,
        criteria=[criterion_view(verdict) for verdict in evaluation.criteria],
        results=[result_view(entry) for entry in evaluation.results],
        pending=[from_record(PendingTestView, started) for started in evaluation.pending],
    )
