"""How a command calls its service: in one unit of work, whose time zone its view is shown in.

Light, like common: loaded with every command module; the store is imported
only when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.uow import UnitOfWork

P = ParamSpec("P")
View = TypeVar("View")


def run(
    service: Callable[Concatenate[UnitOfWork, P], View], *args: P.args, **kwargs: P.kwargs
) -> tuple[View, tzinfo]:
    """Call a service that writes in its own unit of work: one transaction, committed on return.

    Returns the service's view and the station's time zone to show it in. The view is
    printed after the transaction ends, so nothing is shown as done that was not saved.
    """
    return _in_unit_of_work(True, service, *args, **kwargs)


def read(
    service: Callable[Concatenate[UnitOfWork, P], View], *args: P.args, **kwargs: P.kwargs
) -> tuple[View, tzinfo]:
    """Call a service that only reads, as run() does.

    It does not take the writers' turn on the audit chain; logging the user's activity
    (the session's idle clock) is its only write.
    """
    return _in_unit_of_work(False, service, *args, **kwargs)


def _in_unit_of_work(
    write: bool,
    service: Callable[Concatenate[UnitOfWork, P], View],
    *args: P.args,
    **kwargs: P.kwargs,
) -> tuple[View, tzinfo]:
    from lims.uow import unit_of_work

    with unit_of_work(write=write) as uow:
        view = service(uow, *args, **kwargs)
    return view, uow.tz
