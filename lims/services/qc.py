"""QC results against the release specification, and whether a lot may be released."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from lims import audit
from lims.auth import Actor, require
from lims.config import Settings
from lims.domain import quantities
from lims.domain.states import LOT
from lims.errors import BadInput, shown
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX, Deviation, Lot, QCResult
from lims.spec import PERCENT, Criterion, compact
from lims.timeutil import after, json_time, past_moment, show_time, utcnow
from lims.validation import free_text

Verdict = Literal["pass", "fail", "missing"]


@dataclass(frozen=True)
class ResultView:
    test: str
    value: str
    unit: str | None
    method: str | None
    tested_at: datetime
    reason: str | None
    recorded_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "value": self.value,
            "unit": self.unit,
            "method": self.method,
            "tested_at": json_time(self.tested_at),
            "reason": self.reason,
            "recorded_by": self.recorded_by,
        }


def _result_view(result: QCResult) -> ResultView:
    return ResultView(
        result.test,
        result.value,
        result.unit,
        result.method,
        result.tested_at,
        result.reason,
        result.recorded_by,
    )


@dataclass(frozen=True)
class CriterionVerdict:
    test: str
    criterion: Criterion
    result: str | None  # the value that counts, as recorded or read off the lot
    verdict: Verdict
    history: list[ResultView]  # every result of this test, oldest first
    waived_by: int | None  # the closed deviation whose waiver covers this failure
    blocking: str | None  # why this criterion stops release, if it does

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "spec": self.criterion.describe(),
            "result": self.result,
            "verdict": self.verdict,
            "description": self.criterion.description,
            "unit": self.criterion.unit,
            "required": self.criterion.required,
            "waivable": self.criterion.waivable,
            "waived_by_deviation": self.waived_by,
            "results": [result.to_json() for result in self.history],
        }


@dataclass(frozen=True)
class Evaluation:
    lot_id: str
    lot_status: str  # as stored: quarantine, released or rejected
    criteria: list[CriterionVerdict]
    blocking: list[str]

    @property
    def releasable(self) -> bool:
        return not self.blocking

    def to_json(self) -> dict[str, Any]:
        return {
            "lot_id": self.lot_id,
            "criteria": [criterion.to_json() for criterion in self.criteria],
            "releasable": self.releasable,
            "blocking": self.blocking,
        }


def _derived_value(test: str, lot: Lot) -> float:
    return float(lot.cells_per_vial if test == "cell_dose" else lot.final_passage)


def _shown_number(value: float) -> str:
    return compact(value)


def evaluate(session: Session, settings: Settings, lot: Lot, *, now: datetime) -> Evaluation:
    """Each criterion's verdict on its latest result, and every reason release is blocked."""
    results: dict[str, list[QCResult]] = {}
    for result in session.exec(
        select(QCResult).where(col(QCResult.lot_id) == lot.id).order_by(col(QCResult.id))
    ).all():
        results.setdefault(result.test, []).append(result)
    deviations = session.exec(
        select(Deviation)
        .where((col(Deviation.lot_id) == lot.id) | (col(Deviation.culture_id) == lot.culture_id))
        .order_by(col(Deviation.id))
    ).all()
    waivers = {
        (deviation.criterion, deviation.waived_result_id): deviation.id
        for deviation in deviations
        if deviation.status == "closed" and deviation.waived and deviation.lot_id == lot.id
    }

    verdicts = []
    for test, criterion in settings.release.items():
        history = results.get(test, [])
        latest = history[-1] if history else None
        value: str | None
        if criterion.kind == "derived":
            number = _derived_value(test, lot)
            value = _shown_number(number)
            verdict: Verdict = "pass" if criterion.passes(number) else "fail"
        elif latest is None:
            value, verdict = None, "missing"
        else:
            value = latest.value
            typed = latest.number if latest.number is not None else latest.value
            verdict = "pass" if criterion.passes(typed) else "fail"
        waived_by = None
        if verdict != "pass" and criterion.waivable:
            waived_by = waivers.get((test, latest.id if latest is not None else None))
        reason = None
        if waived_by is None:
            unit = f" {criterion.unit}" if criterion.unit else ""
            if verdict == "fail":
                reason = f"{test} failed: {value}{unit} (spec {criterion.describe()})"
            elif verdict == "missing" and criterion.required:
                reason = f"{test} missing (spec {criterion.describe()})"
        verdicts.append(
            CriterionVerdict(
                test,
                criterion,
                value,
                verdict,
                [_result_view(result) for result in history],
                waived_by,
                reason,
            )
        )

    blocking = [verdict.blocking for verdict in verdicts if verdict.blocking]
    blocking += [
        f"deviation {deviation.id} open: {deviation.description}"
        for deviation in deviations
        if deviation.status == "open"
    ]
    if lot.status != "quarantine":
        blocking.append(f"lot {lot.code} is {lot.status}")
    elif lot.expires_at <= now:
        blocking.append(f"lot {lot.code} expired at {show_time(lot.expires_at, settings.tz)}")
    return Evaluation(lot.code, lot.status, verdicts, blocking)


def _recorded_value(test: str, criterion: Criterion, value: str) -> tuple[str, float | None]:
    """The value as stored (text) and, for a numeric test, as a number."""
    if criterion.kind == "categorical":
        assert criterion.values is not None
        word = value.strip().lower()
        if word not in criterion.values:
            raise BadInput(
                "value", f"{test} must be one of {', '.join(criterion.values)} (got {shown(value)})"
            )
        return word, None
    if criterion.unit == PERCENT:
        number = quantities.percentage("value", value)
    else:
        number = quantities.within("value", value, unit=criterion.unit or "units", low=0, high=1e12)
    return _shown_number(number), number


def record_result(
    session: Session,
    settings: Settings,
    actor: Actor | None,
    *,
    lot: Lot,
    test: str,
    value: str,
    unit: str | None = None,
    method: str | None = None,
    at: str | datetime | None = None,
    reason: str | None = None,
) -> CriterionVerdict:
    """Record a QC result; recording a test again is a retest and needs a reason."""
    actor = require(actor, "record_bench_work")
    criterion = settings.release.get(test)
    if criterion is None:
        raise BadInput(
            "test", f"must be one of {', '.join(recordable_tests(settings))} (got {shown(test)})"
        )
    if criterion.kind == "derived":
        raise BadInput("test", f"{test} is read off the lot, not recorded")
    stored, number = _recorded_value(test, criterion, value)
    if unit is not None:
        if criterion.unit is None:
            raise BadInput("unit", f"must be left out: {test} is categorical")
        if unit.strip().lower() != criterion.unit.lower():
            raise BadInput("unit", f"must be {criterion.unit} for {test} (got {shown(unit)})")
    if method is not None:
        free_text("method", method, max_length=SHORT_TEXT_MAX)
    if reason is not None:
        free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    zone = settings.tz
    now = utcnow()
    tested_at = past_moment("at", at, zone, now)
    after("at", tested_at, lot.formulated_at, f"formulation of {lot.code}", zone)
    LOT.check_unlocked(code=lot.code, status=lot.status)
    earlier = session.exec(
        select(QCResult)
        .where(col(QCResult.lot_id) == lot.id, col(QCResult.test) == test)
        .order_by(col(QCResult.id))
    ).all()
    if earlier and reason is None:
        raise BadInput(
            "reason",
            f"required for a retest: {test} already has a result ({earlier[-1].value}); "
            "both are kept and the latest counts",
        )
    assert lot.id is not None
    result = QCResult(
        lot_id=lot.id,
        test=test,
        value=stored,
        number=number,
        unit=criterion.unit,
        method=method,
        tested_at=tested_at,
        reason=reason,
        recorded_at=now,
        recorded_by=actor.username,
    )
    session.add(result)
    session.flush()
    audit.record(
        session,
        username=actor.username,
        action="qc.retest" if earlier else "qc.record",
        entity_type="lot",
        entity_id=lot.code,
        old=_result_view(earlier[-1]).to_json() if earlier else None,
        new=_result_view(result).to_json(),
        reason=reason,
    )
    evaluation = evaluate(session, settings, lot, now=now)
    return next(verdict for verdict in evaluation.criteria if verdict.test == test)


def latest_result_id(session: Session, lot: Lot, test: str) -> int | None:
    return session.exec(
        select(QCResult.id)
        .where(col(QCResult.lot_id) == lot.id, col(QCResult.test) == test)
        .order_by(col(QCResult.id).desc())
    ).first()


def recordable_tests(settings: Settings) -> Sequence[str]:
    return [test for test, criterion in settings.release.items() if criterion.kind != "derived"]
