"""The release verdict on a lot as stored: its results, deviations and holds, judged.

Read by the commands that record results, close deviations, hold and release lots;
it writes nothing, so each of them can ask it without depending on the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from lims import site
from lims.config import Settings
from lims.domain import spec
from lims.domain.spec import DeviationFacts, Evaluation, LotFacts, RecordedResult
from lims.models import Deviation, Lot, LotHold, Patient, QCResult


def recorded(result: QCResult) -> RecordedResult:
    """A stored result as plain data: what the verdict judges.

    A number is judged as its value reads, the text everyone sees, the trail records and a
    signature covers, never from the column beside it that nothing shows: a censored one
    (`<0.5`) by the operator it reads with, which its qualifier column must also hold.
    """
    assert result.id is not None
    qualifier, number = None, None
    if result.number is not None:
        qualifier, text = spec.split_qualifier(result.value)
        if qualifier == result.qualifier:
            number = _as_number(text)
        else:  # the row is not what was recorded: it reads as no number
            qualifier, number = None, math.nan
    return RecordedResult(
        result.id,
        result.test,
        result.value,
        number,
        result.unit,
        result.method,
        result.tested_at,
        result.reason,
        result.recorded_by,
        result.investigation_id,
        qualifier=qualifier,
        pending=result.pending,
        expected_final_at=result.expected_final_at,
    )


def _as_number(value: str) -> float:
    """A numeric result's value as a number; text that reads as none fails every range."""
    try:
        return float(value)
    except ValueError:
        return math.nan


def evaluate(session: Session, settings: Settings, lot: Lot, *, now: datetime) -> Evaluation:
    """The release verdict on lot as stored, by the specification version it was formulated
    under (see lims.domain.spec.evaluate for the rules)."""
    results = session.exec(
        select(QCResult).where(col(QCResult.lot_id) == lot.id).order_by(col(QCResult.id))
    ).all()
    deviations = session.exec(
        select(Deviation)
        .where(
            (col(Deviation.lot_id) == lot.id)
            | (col(Deviation.culture_id) == lot.culture_id)
            | (col(Deviation.aspirate_id) == lot.aspirate_id)
        )
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
        holds=[hold_reason(hold) for hold in standing_holds(session, lot)],
        vials=lot.vials,
        patient_weight_kg=_weight_kg(session, lot),
    )
    judged_by = site.specification(session, lot.spec_version)
    return spec.evaluate(judged_by, [recorded(result) for result in results], facts)


def _weight_kg(session: Session, lot: Lot) -> float | None:
    patient = session.get(Patient, lot.patient_id)
    assert patient is not None
    return patient.weight_kg


def standing_holds(session: Session, lot: Lot) -> Sequence[LotHold]:
    """QA's holds on the lot not yet lifted, oldest first."""
    return session.exec(
        select(LotHold)
        .where(col(LotHold.lot_id) == lot.id, col(LotHold.lifted_at).is_(None))
        .order_by(col(LotHold.id))
    ).all()


def hold_reason(hold: LotHold) -> str:
    return f"hold {hold.id} by {hold.placed_by}: {hold.reason}"


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
        kind=deviation.kind,
        result_id=deviation.result_id,
        outcome=deviation.outcome,
    )


def stored_tests(tests: Sequence[str]) -> str:
    """Test names as a column keeps them (lots.pending_at_release, vials.acknowledged_pending)."""
    return json.dumps(list(tests))


def tests_named(stored: str | None) -> list[str]:
    """The test names a column keeps; none when it is empty. Text edited outside lims into
    something else is shown as it stands (`audit verify` names the row)."""
    if stored is None:
        return []
    try:
        named = json.loads(stored)
    except ValueError:
        return [stored]
    return [str(test) for test in named] if isinstance(named, list) else [stored]
