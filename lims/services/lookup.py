"""Finding a record by the id a user typed or scanned."""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlmodel import Session, col, select

from lims.domain.ids import ChainId
from lims.errors import NotFound


class _Coded(Protocol):
    code: str


Coded = TypeVar("Coded", bound=_Coded)


def by_code(
    session: Session,
    model: type[Coded],
    kind: type[ChainId],
    code: str,
    *,
    field: str,
) -> Coded:
    """The record with this id, typed in any case and with blanks around it (ChainId.read)."""
    typed = kind.read(code, field).code
    found = session.exec(select(model).where(col(model.code) == typed)).first()
    if found is None:
        raise NotFound(f"no {kind.kind} {typed}")
    return found
