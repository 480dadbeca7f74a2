"""A step takes its numbers from an imported count: once, while the count is fresh.

`passage log`, `lot formulate`, `culture start` and `aspirate receive` may name a count
(`--count CNT-… --suspension-ml V`) instead of typing their cells. The count must be one its
instrument reported without a warning (status ok), not used by another step, and analysed
within counts.max_age_hours (site setting) of the step. Taking it marks it used by the step
(used_by, used_at, suspension_ml) with a `count.use` entry about it, in the step's own
transaction; the step's row names it (count_id) and its entry states it.

A count is taken by an UPDATE that only a count still unused matches, whose row count is
checked: two stations of a PostgreSQL deployment taking the same count cannot both succeed,
whichever reads it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from lims import audit
from lims.domain import count_use
from lims.domain.count_use import CountRequest
from lims.domain.ids import CountId
from lims.errors import RuleViolation
from lims.models import CellCount, CountFile
from lims.services import lookup
from lims.services.counts import AUDIT_SUBJECT
from lims.timeutil import json_time, show_time, utcnow
from lims.uow import UnitOfWork
from lims.views.counts import volume

ACTION = "count.use"


@dataclass(frozen=True)
class Taken:
    """A count a step took, and the numbers it gives the step."""

    count_id: int  # the row, for the step's count_id
    code: str  # CNT-000123, as the step's entry states it
    viable_cells: int  # viable cells/mL × the suspension's volume
    total_cells: int | None  # total (nucleated) cells/mL × the volume, where the file has it
    viability: float  # percent, as the count reports it
    suspension_ml: float


def take(
    uow: UnitOfWork,
    request: CountRequest,
    *,
    at: datetime,
    used_by: str,
    needs_total: bool = False,
) -> Taken:
    """The count `request` names, taken by the step dated `at` that `used_by` describes
    (e.g. "passage A999926000001-C1-P2"); refused unless usable. A step that needs the total
    (nucleated) cells (`needs_total`) is refused a count whose file has no total density."""
    # Only a step that takes a count checks the trail: a typed passage's cold start (a
    # benchmark row) does not load the bindings.
    from lims.services import bindings

    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    count = lookup.count(session, request.code)
    code = request.code
    bindings.require_agreement(session, [(AUDIT_SUBJECT, code)])
    zone = settings.tz
    if count.used_by is not None:
        raise _already_used(code, count.used_by, count.used_at, zone)
    count_use.require_ok(code, count.status)
    _require_within(uow, code, count, at)
    viable = count_use.require_cells(
        code, "viable cells", count.viable_per_ml, request.suspension_ml
    )
    total = None
    if count.total_per_ml is not None:
        total = count_use.require_cells(
            code, "total cells", count.total_per_ml, request.suspension_ml
        )
    elif needs_total:
        raise RuleViolation(
            f"count {code} has no total cell density (its file reports viable cells only): "
            "total nucleated cells cannot be taken from it; type --tnc N instead"
        )
    now = utcnow()
    assert count.id is not None
    marked = session.execute(
        update(CellCount)
        .where(col(CellCount.id) == count.id, col(CellCount.used_by).is_(None))
        .values(used_by=used_by, used_at=now, suspension_ml=request.suspension_ml)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        # Another station took it since it was read: name the step that did.
        session.refresh(count)
        raise _already_used(code, count.used_by, count.used_at, zone)
    session.refresh(count)
    audit.record_about(
        session,
        (AUDIT_SUBJECT, code),
        ACTION,
        by=actor.username,
        new={
            "used_by": used_by,
            "suspension_ml": request.suspension_ml,
            "used_at": json_time(now),
            # What the step keeps of it: bound to the step's row, so a hand edit of a
            # counted number does not go on being shown as the count's.
            "cells": total if needs_total else viable,
            "step_viability": count.viability,
        },
    )
    return Taken(
        count_id=count.id,
        code=code,
        viable_cells=viable,
        total_cells=total,
        viability=count.viability,
        suspension_ml=request.suspension_ml,
    )


def _already_used(
    code: str, used_by: str | None, used_at: datetime | None, zone: tzinfo
) -> RuleViolation:
    return RuleViolation(
        f"count {code} is already used by {used_by} (taken {show_time(used_at, zone)}): "
        "a count gives its numbers to one step only"
    )


def stated(taken: Taken | None) -> dict[str, Any]:
    """What a step's entry states of the count it took its numbers from (bound to its row's
    count_id); nothing when they were typed."""
    if taken is None:
        return {}
    return {"count_id": taken.code, "suspension_ml": taken.suspension_ml}


def require_kept(
    uow: UnitOfWork,
    count_id: int | None,
    *,
    step: str,
    retyped: Sequence[str],
    at: datetime | None,
    remedy: str,
) -> None:
    """A step's numbers taken from a count stay the count's: a correction retyping them
    would leave the step naming a count that does not say so (the provenance would lie), and
    a step moved in time stays within counts.max_age_hours of its count. `remedy` says what
    to do instead of retyping."""
    if count_id is None:
        return
    session = uow.session
    count = session.get(CellCount, count_id)
    assert count is not None
    code = CountId(count_id).code
    if retyped:
        file = session.get(CountFile, count.file_id)
        assert file is not None
        assert count.suspension_ml is not None
        raise RuleViolation(
            f"{step}'s {' and '.join(retyped)} came from count {code} ({file.file_name}, "
            f"SHA-256 {file.sha256[:12]}…, × {volume(count.suspension_ml)} mL): numbers read "
            f"from the instrument's file are not retyped; if the count or its volume was wrong, "
            f"{remedy}"
        )
    if at is not None:
        _require_within(uow, code, count, at)


def _require_within(uow: UnitOfWork, code: str, count: CellCount, at: datetime) -> None:
    """The step dated `at` lies within the site's counts.max_age_hours of the count."""
    count_use.require_within(
        code,
        at,
        count.analysed_at,
        date_only=count.analysed_date_only,
        max_age_hours=uow.settings.counts.max_age_hours,
        zone=uow.settings.tz,
    )
