"""Storage for tests: a tank, rack and box added by an admin, and bank vials frozen into it
through the services `lims storage add` and `lims culture freeze` run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, select

from lims.domain import storage
from lims.errors import NotFound
from lims.models import Passage
from lims.services import bank, lookup
from lims.services import storage as storage_rules
from lims.views.storage import LocationView
from tests.support.lab import Lab

TANK, RACK, BOX = "LN2-1", "LN2-1/rack-3", "LN2-1/rack-3/box-07"
BOX_ROWS = BOX_COLUMNS = 9  # BOX's grid: A1-I9
FROZEN_AFTER_HARVEST = timedelta(hours=1)


def add_location(lab: Lab, path: str, kind: str, **values: object) -> LocationView:
    """A location added by the admin, without logging in at the station."""
    with lab.acting_as("admin") as uow:
        return storage_rules.add_location(uow, path=path, kind=kind, **values)


def add_box(
    lab: Lab, path: str = BOX, rows: int = BOX_ROWS, columns: int = BOX_COLUMNS
) -> LocationView:
    """A box of rows x columns, with the tank and rack its path names (added if missing)."""
    with lab.acting_as("admin") as uow:
        for above in _ancestors(path):
            try:
                lookup.storage_location(uow.session, above)
            except NotFound:
                kind = "tank" if storage.parent_path(above) is None else "rack"
                storage_rules.add_location(uow, path=above, kind=kind)
        return storage_rules.add_location(uow, path=path, kind="box", rows=rows, columns=columns)


def _ancestors(path: str) -> list[str]:
    found = []
    above = storage.parent_path(path)
    while above is not None:
        found.insert(0, above)
        above = storage.parent_path(above)
    return found


def freeze(
    lab: Lab, culture: str, count: int, into: str, *, cells: int = 1_000_000, by: str = "tom"
) -> Sequence[str]:
    """`count` bank vials of a culture's latest harvest frozen into a box (PATH[:POSITION])
    by `by`, an hour after that harvest, as `lims culture freeze` does; their ids."""
    with lab.acting_as(by) as uow:
        found = lookup.culture(uow.session, culture)
        harvested_at = uow.session.exec(
            select(Passage.harvested_at)
            .where(col(Passage.culture_id) == found.id)
            .order_by(col(Passage.number).desc())
        ).first()
        assert harvested_at is not None, f"culture {culture} has no harvest to freeze"
        frozen = bank.freeze(
            uow,
            culture=culture,
            cells_per_vial=cells,
            vials=count,
            into=into,
            at=harvested_at + FROZEN_AFTER_HARVEST,
        )
    return [vial.bank_vial_id for vial in frozen.bank_vials]
