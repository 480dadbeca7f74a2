"""Where a stored item is: placing bank vials and retained samples in a box's positions,
moving them and taking them out. Each item is in exactly one position while stored (the
storage_positions row), and each position holds at most one item.

The callers audit what they do (a freeze, a retention, a move, a thaw); the positions they
state come from here. The rule that binds positions to the trail (lims.services.bindings):
every entry that places, moves or takes out an item is about that item's entity (entity
type "bank_vial" or "retained_sample", id its code) and states where it now is under
"position": label(where(...)), "PATH:A1", or null once it has left storage. Bank vials and
retained samples are each bound by their "position": a storage_positions row moved,
added or deleted by hand disagrees with the trail, and a command relying on it refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from lims.domain import storage
from lims.domain.states import BANK_VIAL, RETAINED_SAMPLE
from lims.domain.storage import Position
from lims.errors import BadInput
from lims.models import BankVial, RetainedSample, StorageLocation, StoragePosition
from lims.services import bindings

Stored = BankVial | RetainedSample


def require_box(location: StorageLocation, field: str) -> tuple[int, int]:
    """The box's grid (rows, columns); items are kept in boxes only."""
    if location.grid_rows is None or location.grid_columns is None:
        raise BadInput(
            field,
            f"must be a box with positions: {location.path} is a {location.kind} "
            "(see `lims storage show`)",
        )
    return location.grid_rows, location.grid_columns


def occupied(session: Session, location: StorageLocation) -> set[Position]:
    rows = session.exec(
        select(StoragePosition.grid_row, StoragePosition.grid_column).where(
            col(StoragePosition.location_id) == location.id
        )
    ).all()
    return {Position(row, column) for row, column in rows}


def positions(
    session: Session, location: StorageLocation, start: str | None, count: int, field: str
) -> list[Position]:
    """Where `count` items go in this box: from position `start` on in row-major order (each
    one free), or the first free ones when no start is given."""
    rows, columns = require_box(location, field)
    first = None if start is None else storage.position(start, rows, columns, field)
    _require_occupancy_agrees(session, location)
    return storage.positions_for(
        count, rows, columns, occupied(session, location), start=first, box=location.path
    )


def _require_occupancy_agrees(session: Session, location: StorageLocation) -> None:
    """Which positions of the box are free is read from its rows: those of the items in it,
    and of any item still stored with no row at all, must be what the trail says."""
    subjects: list[tuple[str, str]] = []
    for model, column, lifecycle in (
        (BankVial, StoragePosition.bank_vial_id, BANK_VIAL),
        (RetainedSample, StoragePosition.retained_sample_id, RETAINED_SAMPLE),
    ):
        held = session.exec(
            select(model.code)
            .outerjoin(StoragePosition, col(column) == col(model.id))
            .where(
                or_(
                    col(StoragePosition.location_id) == location.id,
                    and_(
                        col(StoragePosition.id).is_(None),
                        col(model.status).in_(lifecycle.action("move").sources),
                    ),
                )
            )
        ).all()
        subjects += [(lifecycle.entity_type, code) for code in held]
    if subjects:
        bindings.require_agreement(session, subjects)


def _item_column(item: Stored) -> tuple[str, int]:
    assert item.id is not None, "an item is placed once it is saved"
    if isinstance(item, BankVial):
        return "bank_vial_id", item.id
    return "retained_sample_id", item.id


def place(
    session: Session,
    location: StorageLocation,
    items: Sequence[Stored],
    at: Sequence[Position],
    *,
    by: str,
    when: datetime,
) -> None:
    """Put each item in its position (positions() chose them, so each is free)."""
    assert location.id is not None
    for item, position in zip(items, at, strict=True):
        column, item_id = _item_column(item)
        session.add(
            StoragePosition(
                location_id=location.id,
                grid_row=position.row,
                grid_column=position.column,
                placed_at=when,
                placed_by=by,
                **{column: item_id},
            )
        )
    session.flush()


def _row(session: Session, item: Stored) -> StoragePosition | None:
    column, item_id = _item_column(item)
    return session.exec(
        select(StoragePosition).where(col(getattr(StoragePosition, column)) == item_id)
    ).first()


def where(session: Session, item: Stored) -> tuple[StorageLocation, Position] | None:
    """The box and position an item is in; None once it has left storage."""
    row = _row(session, item)
    if row is None:
        return None
    location = session.get(StorageLocation, row.location_id)
    assert location is not None
    return location, Position(row.grid_row, row.grid_column)


def move(
    session: Session,
    item: Stored,
    location: StorageLocation,
    position: Position,
    *,
    by: str,
    when: datetime,
) -> None:
    """Put a stored item in another (free) position."""
    row = _row(session, item)
    assert row is not None, "only a stored item moves"
    assert location.id is not None
    row.location_id, row.grid_row, row.grid_column = location.id, position.row, position.column
    row.placed_at, row.placed_by = when, by
    session.add(row)
    session.flush()


def vacate(session: Session, item: Stored) -> None:
    """Take an item out of storage (thawed, discarded, removed): its position is free."""
    row = _row(session, item)
    if row is not None:
        session.delete(row)
        session.flush()


def label(found: tuple[StorageLocation, Position] | None) -> str | None:
    """PATH:POSITION as people write it; None for an item no longer stored."""
    if found is None:
        return None
    location, position = found
    return storage.place_label(location.path, position)
