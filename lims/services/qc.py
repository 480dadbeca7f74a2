"""QC results against the release specification, and whether a lot may be released."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims import audit, site
from lims.config import Settings
from lims.domain import quantities, spec
from lims.domain.spec import (
    PERCENT,
    CategoricalCriterion,
    DeviationFacts,
    Evaluation,
    LotFacts,
    NumericCriterion,
    RecordedResult,
    Spec,
    compact,
)
from lims.domain.states import LOT
from lims.errors import BadInput, shown
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX, Deviation, Lot, QCResult
from lims.services import lookup
from lims.timeutil import after, json_time, past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views.release import CriterionView, EvaluationView, criterion_view, evaluation_view


def _recorded(result: QCResult) -> RecordedResult:
    """A stored result as plain data: what the verdict judges."""
    assert result.id is not None
    return RecordedResult(
        result.id,
        result.test,
        result.value,
        result.number,
        result.unit,
        result.method,
        result.tested_at,
        result.reason,
        result.recorded_by,
    )


def _audited(result: QCResult) -> dict[str, Any]:
    """What the audit trail records of a result: what was recorded, not the store's id.

    Built here rather than from a view, so that `--json` can change without changing it.
    """
    return {
        "test": result.test,
        "value": result.value,
        "unit": result.unit,
        "method": result.method,
        "tested_at": json_time(result.tested_at),
        "reason": result.reason,
        "recorded_by": result.recorded_by,
    }


def evaluate(session: Session, settings: Settings, lot: Lot, *, now: datetime) -> Evaluation:
    """The release verdict on lot as stored, by the specification version it was formulated
    under (see lims.domain.spec.evaluate for the rules)."""
    results = session.exec(
        select(QCResult).where(col(QCResult.lot_id) == lot.id).order_by(col(QCResult.id))
    ).all()
    deviations = session.exec(
        select(Deviation)
        .where((col(Deviation.lot_id) == lot.id) | (col(Deviation.culture_id) == lot.culture_id))
        .order_by(col(Deviation.id))
    ).all()
    facts = LotFacts(
        code=lot.code,
        status=lot.status,
        spec_version=lot.spec_version,
        expires_at=lot.expires_at,
        now=now,
        zone=settings.tz,
        cells_per_vial=lot.cells_per_vial,
        final_passage=lot.final_passage,
        deviations=[_deviation_facts(deviation, lot) for deviation in deviations],
    )
    judged_by = site.specification(session, lot.spec_version)
    return spec.evaluate(judged_by, [_recorded(result) for result in results], facts)


def _deviation_facts(deviation: Deviation, lot: Lot) -> DeviationFacts:
    assert deviation.id is not None
    return DeviationFacts(
        id=deviation.id,
        description=deviation.description,
        status=deviation.status,
        on_lot=deviation.lot_id == lot.id,
        waived=deviation.waived,
        criterion=deviation.criterion,
        waived_result_id=deviation.waived_result_id,
    )


def _recorded_value(
    test: str, criterion: NumericCriterion | CategoricalCriterion, value: str
) -> tuple[str, float | None]:
    """The value as stored (text) and, for a numeric test, as a number."""
    if criterion.kind == "categorical":
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
    return compact(number), number


def record_result(
    uow: UnitOfWork,
    *,
    lot: str,
    test: str,
    value: str,
    unit: str | None = None,
    method: str | None = None,
    at: str | datetime | None = None,
    reason: str | None = None,
) -> CriterionView:
    """Record a QC result; recording a test again is a retest and needs a reason.

    Which tests there are, and their units and words, are those of the lot's specification.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    found = lookup.lot(session, lot)
    judged_by = site.specification(session, found.spec_version)
    criterion = judged_by.get(test)
    if criterion is None:
        raise BadInput(
            "test", f"must be one of {', '.join(recordable_tests(judged_by))} (got {shown(test)})"
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
    after("at", tested_at, found.formulated_at, f"formulation of {found.code}", zone)
    LOT.check_unlocked(code=found.code, status=found.status)
    earlier = session.exec(
        select(QCResult)
        .where(col(QCResult.lot_id) == found.id, col(QCResult.test) == test)
        .order_by(col(QCResult.id))
    ).all()
    if earlier and reason is None:
        raise BadInput(
            "reason",
            f"required for a retest: {test} already has a result ({earlier[-1].value}); "
            "both are kept and the latest counts",
        )
    assert found.id is not None
    result = QCResult(
        lot_id=found.id,
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
    audit.record_about(
        session,
        ("lot", found.code),
        "qc.retest" if earlier else "qc.record",
        by=actor.username,
        old=_audited(earlier[-1]) if earlier else None,
        new=_audited(result),
        reason=reason,
    )
    evaluation = evaluate(session, settings, found, now=now)
    return criterion_view(next(verdict for verdict in evaluation.criteria if verdict.test == test))


def latest_result_id(session: Session, lot: Lot, test: str) -> int | None:
    return session.exec(
        select(QCResult.id)
        .where(col(QCResult.lot_id) == lot.id, col(QCResult.test) == test)
        .order_by(col(QCResult.id).desc())
    ).first()


def recordable_tests(judged_by: Spec) -> Sequence[str]:
    return [test for test, criterion in judged_by.items() if criterion.kind != "derived"]


def show_evaluation(uow: UnitOfWork, *, lot: str) -> EvaluationView:
    """Each criterion's verdict for a lot, with every result recorded, and what blocks release."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    return evaluation_view(evaluate(session, settings, lookup.lot(session, lot), now=utcnow()))
