"""QC results against the release specification, and whether a lot may be released."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims import audit, site
from lims.config import Settings
from lims.domain import quantities, spec
from lims.domain.ids import read_deviation_id
from lims.domain.spec import (
    PERCENT,
    CategoricalCriterion,
    Criterion,
    NumericCriterion,
    Qualifier,
    RecordedResult,
    Spec,
    exact,
)
from lims.domain.states import DEVIATION, LOT, DeviationSeverity
from lims.errors import BadInput, NotFound, RuleViolation, shown
from lims.models import LONG_TEXT_MAX, SHORT_TEXT_MAX, Culture, Deviation, Lot, QCResult
from lims.services import deviations, equipment_use, lookup, verdicts
from lims.timeutil import after, json_time, moment, past_moment, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views import from_record
from lims.views.release import (
    EvaluationView,
    RecordedVerdict,
    criterion_view,
    evaluation_view,
)

# The largest amount a numeric result may be recorded as; no assay reads more.
NUMERIC_RESULT_MAX = 1e12


def _audited(result: QCResult | RecordedResult) -> dict[str, Any]:
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
        "investigation": result.investigation_id,
        "qualifier": result.qualifier,
        # Stated of a test started, whose final result is to come: bound (lims.services.bindings).
        **(
            {"pending": True, "expected_final_at": json_time(result.expected_final_at)}
            if result.pending
            else {}
        ),
    }


def _recorded_value(
    test: str, criterion: NumericCriterion | CategoricalCriterion, value: str
) -> tuple[str, float | None, Qualifier | None]:
    """The value as stored (text) and, for a numeric test, as a number and, for one beyond
    the method's range (`<0.5`), the operator: the number is then the bound."""
    qualifier, typed = spec.split_qualifier(value.strip())
    if criterion.kind == "categorical":
        word = value.strip().lower()
        if word not in criterion.values:
            censored = f"{qualifier}X is for numeric tests; " if qualifier else ""
            raise BadInput(
                "value",
                f"{censored}{test} must be one of {', '.join(criterion.values)} "
                f"(got {shown(value)})",
            )
        return word, None, None
    if qualifier is not None:
        return _censored(criterion, qualifier, typed, value)
    as_read = exact(_number(criterion, value))
    return as_read, float(as_read), None  # judged as it reads


def _number(criterion: NumericCriterion, typed: str) -> float:
    if criterion.unit == PERCENT:
        return quantities.percentage("value", typed)
    return quantities.within(
        "value", typed, unit=criterion.unit or "units", low=0, high=NUMERIC_RESULT_MAX
    )


def _censored(
    criterion: NumericCriterion, qualifier: Qualifier, typed: str, value: str
) -> tuple[str, float, Qualifier]:
    """`<X` or `>X` in normal form, its bound judged as it reads: no result is below 0 and
    no percentage above 100, so `<X` needs X above 0 and a percentage's `>X` X below 100."""
    percent = criterion.unit == PERCENT
    amount = "a percentage" if percent else f"a number of {criterion.unit or 'units'}"
    high = 100 if percent else NUMERIC_RESULT_MAX
    allowed = (
        f"<X with X {amount} above 0, up to {high:g}"
        if qualifier == "<"
        else f">X with X {amount} from 0, below 100"
        if percent
        else f">X with X {amount} from 0 to {high:g}"
    )
    refusal = BadInput("value", f"must be {allowed} (got {shown(value)})")
    if not value.isascii():  # no other script's space around it, as around a plain number
        raise refusal
    try:
        bound = _number(criterion, typed)
    except BadInput:
        raise refusal from None
    if (qualifier == "<" and bound <= 0) or (qualifier == ">" and percent and bound >= 100):
        raise refusal
    return f"{qualifier}{exact(bound)}", bound, qualifier


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
    investigation: str | int | None = None,
    expected_final: str | datetime | None = None,
    equipment: Sequence[str] = (),
) -> RecordedVerdict:
    """Record a QC result; recording a test again is a retest and needs a reason.

    Which tests there are, and their units and words, are those of the lot's specification.
    A result that fails its criterion opens an out-of-specification deviation at once; while
    that is open, results of the test are recorded only in its investigation.

    The value `pending` records a test as started (at `at`, by `method`, its final result
    expected at `expected_final`), for a test whose criterion allows release while pending;
    its final result, recorded later, is no retest. A failure recorded on a released lot
    is critical: the product may be with patients, whose physicians are to be told.
    """
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    investigation_id = (
        None if investigation is None else read_deviation_id(investigation, "investigation")
    )
    found = lookup.lot(session, lot)
    judged_by = site.specification(session, found.spec_version)
    criterion = judged_by.get(test)
    if criterion is None:
        raise BadInput(
            "test", f"must be one of {', '.join(recordable_tests(judged_by))} (got {shown(test)})"
        )
    if criterion.kind == "derived":
        raise BadInput("test", f"{test} is read off the lot, not recorded")
    starting = _starts_pending(test, criterion, value, found.spec_version)
    if starting:
        _check_start_options(method, unit, investigation_id)
        stored, number, qualifier = spec.PENDING, None, None
    else:
        if expected_final is not None:
            raise BadInput("expected-final", "only with the value pending: a test started")
        stored, number, qualifier = _recorded_value(test, criterion, value)
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
    expected_final_at = None
    if expected_final is not None:
        expected_final_at = moment("expected-final", expected_final, zone, now)
        after("expected-final", expected_final_at, tested_at, f"the start of {test}", zone)
    LOT.check("start_qc" if starting else "record_qc", code=found.code, status=found.status)
    used = equipment_use.usable(uow, step="qc_record", equipment=equipment, at=tested_at)
    earlier = session.exec(
        select(QCResult)
        .where(col(QCResult.lot_id) == found.id, col(QCResult.test) == test)
        .order_by(col(QCResult.id))
    ).all()
    # A test started is not a result: its final result is the test's first, not a retest.
    results = [entry for entry in earlier if not entry.pending]
    if investigation_id is not None:
        _check_investigation(session, found, test, investigation_id)
    else:
        _check_plain_result(session, settings, found, test, retest=bool(results), now=now)
    # The test's latest record is a test started exactly while its final result is to come.
    started = earlier[-1] if earlier and earlier[-1].pending else None
    if starting:
        _check_nothing_stands(session, settings, found, test, started, now=now)
    elif started is not None and tested_at <= started.tested_at:
        raise RuleViolation(
            f"the final {test} result must be dated after the test was started at "
            f"{show_time(started.tested_at, zone)} (got {show_time(tested_at, zone)})"
        )
    if results and reason is None and investigation_id is None:
        raise BadInput(
            "reason",
            f"required for a retest: {test} already has a result ({results[-1].value}); "
            "both are kept and the latest counts",
        )
    assert found.id is not None
    result = QCResult(
        lot_id=found.id,
        test=test,
        value=stored,
        number=number,
        qualifier=qualifier,
        unit=None if starting else criterion.unit,
        method=method,
        tested_at=tested_at,
        reason=reason,
        investigation_id=investigation_id,
        pending=starting,
        expected_final_at=expected_final_at,
        recorded_at=now,
        recorded_by=actor.username,
    )
    session.add(result)
    session.flush()
    action = "qc.start" if starting else "qc.retest" if results else "qc.record"
    audit.record_about(
        session,
        ("lot", found.code),
        action,
        by=actor.username,
        old=_audited(results[-1]) if results else None,
        new={**_audited(result), **equipment_use.stated(used)},
        reason=reason,
    )
    if used.used:
        equipment_use.record(
            session,
            used,
            action=action,
            subject=("qc_result", str(result.id)),
            culture=session.get(Culture, found.culture_id),
            lot=found,
            by=actor.username,
        )
    notice = None
    if (
        not starting
        and investigation_id is None
        and not spec.passes(criterion, verdicts.recorded(result))
    ):
        released = LOT.with_patients(found.status)
        severity = DeviationSeverity.CRITICAL if released else DeviationSeverity.MAJOR
        deviations.open_out_of_specification(session, actor, found, result, criterion, severity)
        if released:
            notice = (
                f"{found.code} is released and its product may be with patients: notify the "
                f"treating physicians now; `lims report recall {found.code} --out FILE.pdf` "
                "lists the vials administered"
            )
    evaluation = verdicts.evaluate(session, settings, found, now=now)
    judged = next(verdict for verdict in evaluation.criteria if verdict.test == test)
    return from_record(RecordedVerdict, criterion_view(judged), notice=notice)


def _starts_pending(test: str, criterion: Criterion, value: str, version: int) -> bool:
    """Whether the value records the test as started: `pending`, for a criterion that allows
    release while pending; any other test's `pending` is refused by name, unless it is a word
    of that test's own vocabulary (a site's, from before tests could be started)."""
    if value.strip().lower() != spec.PENDING:
        return False
    if isinstance(criterion, CategoricalCriterion) and spec.PENDING in criterion.values:
        return criterion.release_while_pending  # never both: the specification refuses it
    if not criterion.release_while_pending:
        raise BadInput(
            "value",
            f"{test} cannot be recorded as pending: specification version {version} does not "
            f"allow a lot to be released before its final {test} result",
        )
    return True


def _check_start_options(method: str | None, unit: str | None, investigation: int | None) -> None:
    if method is None:
        raise BadInput(
            "method",
            "required to start a test pending: the method whose final result is awaited "
            '(e.g. "BacT/ALERT, 14 d")',
        )
    if unit is not None:
        raise BadInput("unit", "must be left out: a test started has no value yet")
    if investigation is not None:
        raise BadInput("investigation", "a test started pending is no result of an investigation")


def _check_nothing_stands(
    session: Session,
    settings: Settings,
    lot: Lot,
    test: str,
    started: QCResult | None,
    *,
    now: datetime,
) -> None:
    """A test is started only once, and not over a result of it that counts."""
    zone = settings.tz
    if started is not None:
        raise RuleViolation(
            f"{test} of {lot.code} is already pending, started at "
            f"{show_time(started.tested_at, zone)} by {started.recorded_by}"
        )
    counting = next(
        (
            entry.result
            for entry in verdicts.evaluate(session, settings, lot, now=now).results
            if entry.result.test == test and entry.counts
        ),
        None,
    )
    if counting is not None:
        raise RuleViolation(
            f"{test} of {lot.code} already has a result that counts ({counting.value}, "
            f"tested {show_time(counting.tested_at, zone)}): it cannot be started again"
        )


def _open_investigation(session: Session, lot: Lot, test: str) -> Deviation | None:
    return session.exec(
        select(Deviation).where(
            col(Deviation.lot_id) == lot.id,
            col(Deviation.kind) == spec.OOS,
            col(Deviation.criterion) == test,
            col(Deviation.status).in_(DEVIATION.pending_states()),
        )
    ).first()


def _check_investigation(session: Session, lot: Lot, test: str, number: int) -> None:
    """A result recorded in an investigation: of its test, while the OOS deviation is open."""
    deviation = session.get(Deviation, number)
    if deviation is None:
        raise NotFound(f"no deviation {number}")
    if deviation.kind != spec.OOS or deviation.lot_id != lot.id:
        raise RuleViolation(
            f"deviation {number} is not an out-of-specification result of {lot.code}"
        )
    if deviation.criterion != test:
        raise RuleViolation(f"deviation {number} investigates {deviation.criterion}, not {test}")
    if not DEVIATION.pending(deviation.status):
        raise RuleViolation(f"deviation {number} is closed: its investigation is over")


def _check_plain_result(
    session: Session, settings: Settings, lot: Lot, test: str, *, retest: bool, now: datetime
) -> None:
    """A plain result or retest: not while an OOS result of the test is investigated, and
    not over a failure QA confirmed (the lot is then rejected, or used under a waiver)."""
    investigated = _open_investigation(session, lot, test)
    if investigated is not None:
        raise RuleViolation(
            f"{test} of {lot.code} is under investigation in deviation {investigated.id}: "
            f"record results of it with --investigation {investigated.id}"
        )
    if not retest:  # a first result stands on nothing earlier
        return
    before = verdicts.evaluate(session, settings, lot, now=now)
    confirmed = next(
        (
            entry
            for entry in before.results
            if entry.result.test == test and entry.confirmed and entry.counts
        ),
        None,
    )
    if confirmed is not None:
        raise RuleViolation(
            f"the failing {test} result {confirmed.result.value} of {lot.code} was confirmed "
            f"by deviation {confirmed.deviation_id}: it cannot be retested away"
        )


def recordable_tests(judged_by: Spec) -> Sequence[str]:
    return [test for test, criterion in judged_by.items() if criterion.kind != "derived"]


def show_evaluation(uow: UnitOfWork, *, lot: str) -> EvaluationView:
    """Each criterion's verdict for a lot, with every result recorded, and what blocks release."""
    session, settings = uow.session, uow.settings
    uow.require("read_records")
    return evaluation_view(
        verdicts.evaluate(session, settings, lookup.lot(session, lot), now=utcnow())
    )
