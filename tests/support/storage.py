"""Storage for tests: a tank, rack and box added by an admin, and bank vials frozen into it.

`freeze` stands in for `lims culture freeze` (lims.services.bank, written beside storage):
it writes the bank vials' rows and places them, with no entry of its own. Once the freeze
service is in, `freeze` calls it instead (the one place to switch); until then a test that
relies on bank vials agreeing with the trail cannot use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, func, select

from lims.domain import ids, storage
from lims.errors import NotFound
from lims.models import BankVial, Passage
from lims.services import lookup, placement
from lims.services import storage as storage_rules
from lims.uow import unit_of_work
from lims.views.storage import LocationView
from tests.support.lab import Lab

TANK, RACK, BOX = "LN2-1", "LN2-1/rack-3", "LN2-1/rack-3/box-07"
FROZEN_AFTER_HARVEST = timedelta(hours=1)


def add_location(lab: Lab, path: str, kind: str, **values: object) -> LocationView:
    """A location added by the admin, without logging in at the station."""
    with lab.acting_as("admin") as uow:
        return storage_rules.add_location(uow, path=path, kind=kind, **values)


def add_box(lab: Lab, path: str = BOX, rows: int = 9, columns: int = 9) -> LocationView:
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
    lab: Lab, culture: str, count: int, into: str, *, cells: int = 1_000_000
) -> Sequence[str]:
    """`count` bank vials of a culture's latest harvest in a box (PATH[:POSITION]); their ids."""
    path, start = storage.split_place(into, "into")
    with unit_of_work(lab.settings, authenticated=False) as uow:
        session = uow.session
        found = lookup.culture(session, culture)
        passage = session.exec(
            select(Passage)
            .where(col(Passage.culture_id) == found.id)
            .order_by(col(Passage.number).desc())
        ).first()
        assert passage is not None
        assert passage.id is not None
        assert found.id is not None
        last = session.exec(
            select(func.max(BankVial.number)).where(col(BankVial.culture_id) == found.id)
        ).one()
        box = lookup.storage_location(session, path)
        places = placement.positions(session, box, start, count, "into")
        frozen_at = passage.harvested_at + FROZEN_AFTER_HARVEST
        vials = [
            BankVial(
                code=code.code,
                culture_id=found.id,
                passage_id=passage.id,
                number=code.number,
                cells=cells,
                frozen_at=frozen_at,
                recorded_at=frozen_at,
                recorded_by="tom",
            )
            for code in ids.bank_vial_ids(ids.CultureId.parse(found.code), last, count)
        ]
        session.add_all(vials)
        session.flush()
        placement.place(session, box, vials, places, by="tom", when=frozen_at)
        return [vial.code for vial in vials]
