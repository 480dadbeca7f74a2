"""Deviations: departures from the process, on a culture (and the passage that showed it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lims import audit
from lims.auth import Actor
from lims.models import Deviation
from lims.timeutil import json_time, utcnow


@dataclass(frozen=True)
class DeviationView:
    deviation_id: int
    kind: str
    description: str
    status: str
    passage_id: str | None
    opened_at: datetime
    opened_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "deviation_id": self.deviation_id,
            "kind": self.kind,
            "description": self.description,
            "status": self.status,
            "passage_id": self.passage_id,
            "opened_at": json_time(self.opened_at),
            "opened_by": self.opened_by,
        }


def view(deviation: Deviation, passage_code: str | None) -> DeviationView:
    assert deviation.id is not None
    return DeviationView(
        deviation.id,
        deviation.kind,
        deviation.description,
        deviation.status,
        passage_code,
        deviation.opened_at,
        deviation.opened_by,
    )


def open_on_culture(
    session: Session,
    actor: Actor,
    *,
    culture_id: int,
    culture_code: str,
    passage_id: int | None,
    passage_code: str | None,
    kind: str,
    description: str,
) -> DeviationView:
    """Open a deviation on a culture, in the transaction of the step that showed it."""
    deviation = Deviation(
        culture_id=culture_id,
        passage_id=passage_id,
        kind=kind,
        description=description,
        opened_at=utcnow(),
        opened_by=actor.username,
    )
    session.add(deviation)
    session.flush()
    opened = view(deviation, passage_code)
    audit.record(
        session,
        username=actor.username,
        action="deviation.open",
        entity_type="deviation",
        entity_id=str(deviation.id),
        new={
            "culture": culture_code,
            "passage": passage_code,
            "kind": kind,
            "description": description,
            "status": "open",
        },
    )
    return opened


def open_kinds_by_passage(session: Session, culture_id: int) -> set[tuple[int | None, str]]:
    rows = session.exec(
        select(Deviation.passage_id, Deviation.kind).where(
            col(Deviation.culture_id) == culture_id, col(Deviation.status) == "open"
        )
    ).all()
    return {(passage_id, kind) for passage_id, kind in rows}
