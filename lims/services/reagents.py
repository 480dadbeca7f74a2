"""Reagent lots and which steps used them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlmodel import Session, col, select

from lims.config import Settings
from lims.domain import states
from lims.errors import BadInput, NotFound, RuleViolation, shown
from lims.models import SHORT_TEXT_MAX, Passage, ReagentLot, ReagentUse
from lims.services import records
from lims.timeutil import calendar_date, local_day_end, show_time, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views import from_record
from lims.views.bench import ReagentView

SPEC_FORMS = "NAME:LOT, e.g. 'MEM alpha:2411A'"
EARLIEST_EXPIRY = date(2000, 1, 1)
LATEST_EXPIRY = date(2099, 12, 31)
# "NAME:LOT" is the reagent lot's audit entity id, a column of 64 characters: longer
# failed in PostgreSQL only ("value too long"), after SQLite had taken it.
NAME_MAX = 40
LOT_MAX = 20


def view(lot: ReagentLot, now: datetime) -> ReagentView:
    """A lot as it stands at `now`: whether it has expired is decided once, for table and JSON."""
    return from_record(ReagentView, lot, expired=states.expired(lot.expires_at, now))


def _trimmed(field: str, text: str, max_length: int) -> str:
    """Text that is one identity: 'MEM alpha ' must not pass for a second lot of 'MEM alpha'."""
    free_text(field, text, max_length=max_length)
    if text != text.strip():
        raise BadInput(field, f"must not start or end with spaces (got {shown(text)})")
    return text


def _valid_name(name: str, field: str = "name") -> str:
    _trimmed(field, name, NAME_MAX)
    if ":" in name:
        raise BadInput(field, f"must not contain ':' (it separates name and lot in {SPEC_FORMS})")
    return name


def add_reagent(
    uow: UnitOfWork,
    *,
    name: str,
    lot: str,
    expires: str | date,
    supplier: str | None = None,
) -> ReagentView:
    """Register a reagent lot; it may be used until the end of its expiry date."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    _valid_name(name)
    _trimmed("lot", lot, LOT_MAX)
    expires_on = calendar_date("expires", expires)
    if not EARLIEST_EXPIRY <= expires_on <= LATEST_EXPIRY:
        raise BadInput(
            "expires",
            f"must be a date from {EARLIEST_EXPIRY} to {LATEST_EXPIRY} (got {expires_on})",
        )
    if supplier is not None:
        free_text("supplier", supplier, max_length=SHORT_TEXT_MAX)
    existing = session.exec(
        select(ReagentLot.id).where(col(ReagentLot.name) == name, col(ReagentLot.lot) == lot)
    ).first()
    if existing is not None:
        raise RuleViolation(f"reagent lot {name}:{lot} is already registered")
    expires_at = local_day_end(expires_on, settings.tz)
    now = utcnow()
    reagent = ReagentLot(
        name=name, lot=lot, supplier=supplier, expires_on=expires_on, expires_at=expires_at
    )
    new = {"supplier": supplier, "expires": expires_on.isoformat()}
    records.create(session, reagent, "reagent.add", by=actor, at=now, new=new)
    return view(reagent, now)


def list_reagents(uow: UnitOfWork) -> list[ReagentView]:
    session = uow.session
    uow.require("read_records")
    lots = session.exec(select(ReagentLot).order_by(col(ReagentLot.name), col(ReagentLot.lot)))
    now = utcnow()
    return [view(lot, now) for lot in lots.all()]


def usable_lots(
    session: Session, settings: Settings, specs: Sequence[str], at: datetime
) -> list[ReagentLot]:
    """The lots named NAME:LOT, each unexpired at the step's time; each named once."""
    lots: list[ReagentLot] = []
    for spec in specs:
        name, separator, lot_number = spec.partition(":")
        if not separator or not name.strip() or not lot_number.strip():
            raise BadInput("reagent", f"must be {SPEC_FORMS} (got {shown(spec)})")
        _valid_name(name, "reagent")
        _trimmed("reagent", lot_number, LOT_MAX)
        lot = session.exec(
            select(ReagentLot).where(
                col(ReagentLot.name) == name, col(ReagentLot.lot) == lot_number
            )
        ).first()
        if lot is None:
            raise NotFound(f"no reagent lot {spec!r}; register it with `lims reagent add`")
        refuse_expired(settings, [lot], at)
        if any(existing.id == lot.id for existing in lots):
            raise BadInput("reagent", f"{spec} is named twice")
        lots.append(lot)
    return lots


def refuse_expired(settings: Settings, lots: Sequence[ReagentLot], at: datetime) -> None:
    """A step may use a lot only until the end of its expiry date."""
    for lot in lots:
        if lot.expires_at <= at:
            raise RuleViolation(
                f"reagent lot {lot.name}:{lot.lot} expired on {lot.expires_on} "
                f"(usable until {show_time(lot.expires_at, settings.tz)}); "
                f"the step is at {show_time(at, settings.tz)}"
            )


def lots_used(session: Session, passage: Passage) -> list[ReagentLot]:
    return list(
        session.exec(
            select(ReagentLot)
            .join(ReagentUse, col(ReagentLot.id) == col(ReagentUse.reagent_lot_id))
            .where(col(ReagentUse.passage_id) == passage.id)
        ).all()
    )


def record_uses(
    session: Session,
    lots: Sequence[ReagentLot],
    culture_id: int,
    passage_id: int | None,
    *,
    lot_id: int | None = None,
) -> None:
    for reagent in lots:
        assert reagent.id is not None
        session.add(
            ReagentUse(
                reagent_lot_id=reagent.id,
                culture_id=culture_id,
                passage_id=passage_id,
                lot_id=lot_id,
            )
        )


def uses_by_step(session: Session, culture_id: int) -> dict[int | None, list[str]]:
    """NAME:LOT of every lot used in growing a culture, by passage id (None: its start)."""
    rows = session.exec(
        select(ReagentUse.passage_id, ReagentLot.name, ReagentLot.lot)
        .join(ReagentLot, col(ReagentLot.id) == col(ReagentUse.reagent_lot_id))
        .where(col(ReagentUse.culture_id) == culture_id, col(ReagentUse.lot_id).is_(None))
        .order_by(col(ReagentUse.id))
    ).all()
    uses: dict[int | None, list[str]] = {}
    for passage_id, name, lot in rows:
        uses.setdefault(passage_id, []).append(f"{name}:{lot}")
    return uses


def uses_for_lot(session: Session, lot_id: int) -> list[str]:
    """NAME:LOT of every reagent lot used in formulating a product lot."""
    rows = session.exec(
        select(ReagentLot.name, ReagentLot.lot)
        .join(ReagentUse, col(ReagentLot.id) == col(ReagentUse.reagent_lot_id))
        .where(col(ReagentUse.lot_id) == lot_id)
        .order_by(col(ReagentUse.id))
    ).all()
    return [f"{name}:{lot}" for name, lot in rows]
