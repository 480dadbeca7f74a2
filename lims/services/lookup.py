"""Finding a record by the id a user typed or scanned."""

from __future__ import annotations

import re
from typing import Protocol, TypeVar

from sqlmodel import Session, col, select

from lims.errors import BadInput, NotFound, shown


class _Coded(Protocol):
    code: str


Coded = TypeVar("Coded", bound=_Coded)


def by_code(
    session: Session,
    model: type[Coded],
    pattern: re.Pattern[str],
    code: str,
    *,
    field: str,
    kind: str,
    example: str,
) -> Coded:
    """The record with this code, typed in any case and with blanks around it.

    A code of the wrong form is refused as bad input naming the field, so a typo is
    not reported as a record that does not exist.
    """
    typed = code.strip().upper()
    if not pattern.fullmatch(typed):
        raise BadInput(field, f"must be a {kind} id such as {example} (got {shown(code)})")
    found = session.exec(select(model).where(col(model.code) == typed)).first()
    if found is None:
        raise NotFound(f"no {kind} {typed}")
    return found
