"""Tables of views drawn from declared columns, and the list commands that print them.

Light, like common: loaded with the command modules; rich, the time zone and the
store are imported only when something is drawn or read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, NamedTuple, ParamSpec

from lims.cli.common import print_table, print_view

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.uow import UnitOfWork

P = ParamSpec("P")


class Moment(NamedTuple):
    """A column's getter for a time: the view's attribute, shown in the station's zone."""

    attribute: str


# A table's columns as declared: an attribute's name, where it is also the heading, or a
# (heading, getter) pair. A getter is the name of the view's attribute (dotted for one inside
# it, e.g. "din.display"), a Moment, or a function of the view.
Getter = str | Moment | Callable[[Any], Any]
Columns = Sequence[str | tuple[str, Getter]]


def _late_mark(view: Any) -> str | None:
    from lims.views.records import LATE_ENTRY

    return LATE_ENTRY if view.late_entry else None


# The column every list of records that can be entered late shows (views with `late_entry`).
LATE_COLUMN: tuple[str, Getter] = ("late", _late_mark)


def print_columns(
    views: Iterable[Any], title: str, columns: Columns, zone: tzinfo | None = None
) -> None:
    """Views as a table: a row each, a cell for each declared column (Moments shown in zone)."""
    from operator import attrgetter

    from lims.timeutil import show_time

    def cell(getter: Getter) -> Callable[[Any], Any]:
        if isinstance(getter, Moment):
            moment = attrgetter(getter.attribute)
            assert zone is not None, "a Moment column needs the station's zone"
            return lambda view: show_time(moment(view), zone)
        return attrgetter(getter) if isinstance(getter, str) else getter

    pairs = [(column, column) if isinstance(column, str) else column for column in columns]
    getters = [cell(getter) for _, getter in pairs]
    rows = ([get(view) for get in getters] for view in views)
    print_table(title, [heading for heading, _ in pairs], rows)


def print_list(
    service: Callable[Concatenate[UnitOfWork, P], Sequence[Any]],
    as_json: bool,
    title: str,
    columns: Columns,
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    """What a list command does: read the views (its filters go to service), then print them."""
    from lims.cli.service import read

    views, zone = read(service, *args, **kwargs)
    print_view(views, as_json, print_columns, title, columns, zone)


def cells(count: int | None) -> str | None:
    """A count of cells as a table shows it, with thousands separators."""
    return None if count is None else f"{count:,}"


def fixed(value: float | None, places: int = 2) -> str | None:
    return None if value is None else f"{value:,.{places}f}"
