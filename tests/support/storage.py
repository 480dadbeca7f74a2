"""Storage locations for tests: a box in a rack in a liquid-nitrogen tank.

The one place tests add locations: as rows, until `lims storage add` (its own area) is
the way a lab registers them; then add_location calls that service instead.
"""

from __future__ import annotations

from sqlmodel import col, select

from lims.domain import storage
from lims.models import StorageLocation
from lims.timeutil import utcnow
from tests.support.lab import ADMIN, Lab

BOX = "LN2-1/rack-3/box-07"  # 9 x 9: A1-I9
BOX_ROWS = BOX_COLUMNS = 9


def add_location(
    lab: Lab, path: str, kind: str, rows: int | None = None, columns: int | None = None
) -> str:
    """The location at PATH, kept in the one its parent path names (which must exist)."""
    with lab.acting_as(ADMIN.username) as uow:
        parent = storage.parent_path(path)
        parent_id = None
        if parent is not None:
            parent_id = uow.session.exec(
                select(StorageLocation.id).where(col(StorageLocation.path) == parent)
            ).one()
        uow.session.add(
            StorageLocation(
                path=path,
                parent_id=parent_id,
                kind=kind,
                grid_rows=rows,
                grid_columns=columns,
                temperature_c=-196.0,
                added_at=utcnow(),
                added_by=ADMIN.username,
            )
        )
    return path


def add_box(lab: Lab, path: str = BOX, rows: int = BOX_ROWS, columns: int = BOX_COLUMNS) -> str:
    """A box of rows x columns positions at PATH (tank/rack/.../box), with the tank and
    racks it is kept in; its path."""
    levels = path.split("/")
    add_location(lab, levels[0], "tank")
    for depth in range(2, len(levels)):
        add_location(lab, "/".join(levels[:depth]), "rack")
    return add_location(lab, path, "box", rows, columns)
