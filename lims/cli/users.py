"""User administration (admin only): add, list, deactivate, unlock, change role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    PasswordStdinOption,
    new_area,
    print_json,
    print_record,
    print_table,
    read_password,
)
from lims.roles import ROLES

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.people import UserView

app = new_area("Manage users (admin only): add, list, deactivate, unlock, change role.")

NameArgument = Annotated[str, typer.Argument(help="The user name.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why; kept in the audit trail.")]


def _show(view: UserView, title: str, zone: tzinfo, as_json: bool) -> None:
    if as_json:
        from lims.views import to_json

        print_json(to_json(view))
        return
    from lims.timeutil import show_time

    print_record(
        title,
        [
            ("user", view.username),
            ("full name", view.full_name),
            ("role", view.role),
            ("active", view.active),
            ("locked", view.locked),
            ("failed logins", view.failed_logins),
            ("created", show_time(view.created_at, zone)),
            ("last login", show_time(view.last_login_at, zone)),
        ],
    )


@app.command("add")
def add(
    name: NameArgument,
    full_name: Annotated[
        str, typer.Option("--full-name", help="The person's full name, as signatures show it.")
    ],
    role: Annotated[str, typer.Option("--role", help="One of: " + ", ".join(ROLES) + ".")],
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Add a user with a role and an initial password.

    \b
    Example:
      lims user add tech --full-name "Tom Tech" --role technician
      printf '%s\\n' "$PW" | lims user add quinn --full-name "Quinn QA" --role qa --password-stdin
    """
    from lims.services import users
    from lims.uow import unit_of_work

    password = read_password(password_stdin, prompt="Password for " + name, confirm=True)
    with unit_of_work() as uow:
        view = users.create_user(
            uow, username=name, full_name=full_name, role=role, password=password
        )
    _show(view, "User added", uow.tz, as_json)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List users with their roles and states.

    \b
    Example:
      lims user list
      lims user list --json
    """
    from lims.services import users
    from lims.timeutil import show_time
    from lims.uow import unit_of_work
    from lims.views import to_json

    with unit_of_work(write=False) as uow:
        views = users.list_users(uow)
        zone = uow.tz
    if as_json:
        print_json(to_json(views))
        return
    print_table(
        "Users",
        ["user", "full name", "role", "active", "locked", "failed logins", "last login"],
        [
            (
                view.username,
                view.full_name,
                view.role,
                view.active,
                view.locked,
                view.failed_logins,
                show_time(view.last_login_at, zone),
            )
            for view in views
        ],
    )


@app.command("deactivate")
def deactivate(
    name: NameArgument, reason: ReasonOption = None, as_json: JsonOption = False
) -> None:
    """Deactivate a user: no more logins, and any open session ends at once.

    \b
    Example:
      lims user deactivate tech --reason "left the lab"
    """
    from lims.services import users
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        view = users.deactivate_user(uow, username=name, reason=reason)
    _show(view, "User deactivated", uow.tz, as_json)


@app.command("unlock")
def unlock(name: NameArgument, reason: ReasonOption = None, as_json: JsonOption = False) -> None:
    """Unlock a user locked out after repeated failed logins.

    \b
    Example:
      lims user unlock tech --reason "identity confirmed by phone"
    """
    from lims.services import users
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        view = users.unlock_user(uow, username=name, reason=reason)
    _show(view, "User unlocked", uow.tz, as_json)


@app.command("set-role")
def set_role(
    name: NameArgument,
    role: Annotated[str, typer.Argument(help="One of: " + ", ".join(ROLES) + ".")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")],
    as_json: JsonOption = False,
) -> None:
    """Change a user's role; the old role stays in the audit trail.

    \b
    Example:
      lims user set-role tech qa --reason "promoted to QA reviewer"
    """
    from lims.services import users
    from lims.uow import unit_of_work

    with unit_of_work() as uow:
        view = users.set_role(uow, username=name, role=role, reason=reason)
    _show(view, "Role changed", uow.tz, as_json)
