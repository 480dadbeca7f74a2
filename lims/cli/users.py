"""User administration (admin only): add, list, deactivate, unlock, change role."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    PasswordStdinOption,
    new_area,
    print_record,
    print_view,
    read_password,
)
from lims.cli.options import ReasonOption
from lims.cli.service import run
from lims.cli.tables import Columns, Moment, print_list
from lims.roles import ROLES

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.people import UserView

app = new_area(
    "Manage users (admin only): add, list, deactivate, unlock, change role, reset a password."
)


NameArgument = Annotated[str, typer.Argument(help="The user name.")]
OptionalReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; kept in the audit trail.")
]


def _print_user(view: UserView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        title,
        {
            "user": view.username,
            "full name": view.full_name,
            "role": view.role,
            "active": view.active,
            "locked": view.locked,
            "failed logins": view.failed_logins,
            "created": show_time(view.created_at, zone),
            "last login": show_time(view.last_login_at, zone),
        },
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
    """Add a user with a role and an initial password, which they must change
    (`lims passwd`) before any other command.

    \b
    Example:
      lims user add tech --full-name "Tom Tech" --role technician
      printf '%s\\n' "$PW" | lims user add quinn --full-name "Quinn QA" --role qa --password-stdin
    """
    from lims.services import users

    password = read_password(password_stdin, prompt="Password for " + name, confirm=True)
    view, zone = run(
        users.create_user, username=name, full_name=full_name, role=role, password=password
    )
    print_view(view, as_json, _print_user, "User added", zone)


LIST_COLUMNS: Columns = [
    ("user", "username"),
    ("full name", "full_name"),
    "role",
    "active",
    "locked",
    ("failed logins", "failed_logins"),
    ("last login", Moment("last_login_at")),
]


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List users with their roles and states.

    \b
    Example:
      lims user list
      lims user list --json
    """
    from lims.services import users

    print_list(users.list_users, as_json, "Users", LIST_COLUMNS)


def _account_change(change: str, done: str) -> Callable[..., None]:
    """A command that changes one user's account for a reason kept in the audit trail.

    Deactivating and unlocking take the same arguments and show the same record;
    change names the service in lims.services.users, imported when the command runs.
    """

    def command(
        name: NameArgument, reason: OptionalReasonOption = None, as_json: JsonOption = False
    ) -> None:
        from lims.services import users

        view, zone = run(getattr(users, change), username=name, reason=reason)
        print_view(view, as_json, _print_user, done, zone)

    return command


deactivate = app.command(
    "deactivate",
    help="""Deactivate a user: no more logins, and any open session ends at once.

    \b
    Example:
      lims user deactivate tech --reason "left the lab"
    """,
)(_account_change("deactivate_user", "User deactivated"))

unlock = app.command(
    "unlock",
    help="""Unlock a user locked out after repeated failed logins.

    \b
    Example:
      lims user unlock tech --reason "identity confirmed by phone"
    """,
)(_account_change("unlock_user", "User unlocked"))


@app.command("reset-password")
def reset_password(
    name: NameArgument,
    reason: OptionalReasonOption = None,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Give a user who forgot their password a temporary one, which they must change
    (`lims passwd`) before any other command; their open sessions end.

    \b
    Example:
      lims user reset-password tech --reason "forgot password, identity checked in person"
      printf '%s\\n' "$TEMP" | lims user reset-password tech --password-stdin
    """
    from lims.services import users

    password = read_password(password_stdin, prompt="Temporary password for " + name, confirm=True)
    view, zone = run(users.reset_password, username=name, password=password, reason=reason)
    print_view(view, as_json, _print_user, "Password reset", zone)


@app.command("set-role")
def set_role(
    name: NameArgument,
    role: Annotated[str, typer.Argument(help="One of: " + ", ".join(ROLES) + ".")],
    reason: ReasonOption,
    as_json: JsonOption = False,
) -> None:
    """Change a user's role; the old role stays in the audit trail.

    \b
    Example:
      lims user set-role tech qa --reason "promoted to QA reviewer"
    """
    from lims.services import users

    view, zone = run(users.set_role, username=name, role=role, reason=reason)
    print_view(view, as_json, _print_user, "Role changed", zone)
