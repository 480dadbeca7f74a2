"""Starting lims on a database, and logging in and out at a station."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import (
    JsonOption,
    PasswordStdinOption,
    print_record,
    print_view,
    read_password,
    say,
    settings,
)

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.config import Settings
    from lims.views.people import SessionView, UserView

FullNameOption = Annotated[
    str, typer.Option("--full-name", help="The person's full name, as signatures show it.")
]


def init(
    admin: Annotated[str, typer.Option("--admin", help="User name of the first administrator.")],
    full_name: FullNameOption,
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Create the database (schema at the newest revision) and its first administrator.

    The site's settings and release specification in ./lims.toml or $LIMS_CONFIG (over
    the packaged defaults) become version 1 of its records; later versions come only
    from `lims site set` and `lims spec set`. Refused once any user exists.

    \b
    Example:
      lims init --admin ada --full-name "Ada Admin"
      printf '%s\\n' "$PASSWORD" | lims init --admin ada --full-name "Ada Admin" --password-stdin
    """

    from lims.config import load_settings
    from lims.services import users

    config = load_settings(at_init=True)  # the files' site settings become the site's records
    password = read_password(password_stdin, prompt="Password for " + admin, confirm=True)

    user = users.initialise(config, username=admin, full_name=full_name, password=password)
    print_view(user, as_json, _say_initialised, config)


def _say_initialised(user: UserView, config: Settings) -> None:
    where = config.sqlite_path or "the database"
    say(f"Initialised {where}; administrator {user.username} created.")
    say(f"Next: lims login {user.username}")


def login(
    name: Annotated[str, typer.Argument(help="Your user name.")],
    password_stdin: PasswordStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Log in at this station; the session ends after the configured idle time.

    \b
    Example:
      lims login tech
      printf '%s\\n' "$PASSWORD" | lims login tech --password-stdin
    """
    from lims import auth
    from lims.services import sessions
    from lims.uow import unit_of_work

    config = settings()
    password = read_password(password_stdin)
    with unit_of_work(config, authenticated=False) as uow:
        token, view = sessions.login(uow, username=name, password=password)
    auth.write_token(config, token)
    print_view(view, as_json, _say_logged_in, config)


def _say_logged_in(view: SessionView, config: Settings) -> None:
    from lims.timeutil import show_time

    say(
        f"Logged in as {view.user.username} ({view.user.full_name}, {view.user.role}); "
        f"session ends after {config.security.session_idle_minutes} min idle "
        f"(now {show_time(view.expires_at, config.tz)})."
    )
    if view.password_change_due is not None:
        from lims.auth import CHANGE_PASSWORD

        say(f"{view.password_change_due}: {CHANGE_PASSWORD} before any other command.")


def logout() -> None:
    """End this station's session.

    \b
    Example:
      lims logout
    """
    from lims import auth
    from lims.services import sessions
    from lims.uow import unit_of_work

    config = settings()
    with unit_of_work(config, authenticated=False) as uow:
        username = sessions.logout(uow)
    auth.remove_token(config)
    say(f"Logged out {username}." if username else "No session was open on this station.")


def whoami(as_json: JsonOption = False) -> None:
    """Show who is logged in at this station, and until when.

    \b
    Example:
      lims whoami
      lims whoami --json
    """
    from lims.services import sessions
    from lims.uow import unit_of_work

    # Shown even while the password must be changed: it says so.
    with unit_of_work(write=False, while_password_change_due=True) as uow:
        view = sessions.current_session(uow)
    print_view(view, as_json, _print_session, uow.tz)


def passwd(password_stdin: PasswordStdinOption = False, as_json: JsonOption = False) -> None:
    """Change your own password: the current one, then the new one twice.

    Needed before any other command when an admin set your password (a new account,
    a reset) or it is older than the site's [security] password_max_age_days. With
    --password-stdin, two lines: the current password, then the new one.

    \b
    Example:
      lims passwd
      printf '%s\\n%s\\n' "$OLD" "$NEW" | lims passwd --password-stdin
    """
    from lims.services import users
    from lims.uow import unit_of_work

    current = read_password(password_stdin, prompt="Current password")
    new = read_password(password_stdin, prompt="New password", confirm=True)
    with unit_of_work(while_password_change_due=True) as uow:
        view = users.change_password(uow, current=current, new=new)
    print_view(view, as_json, _say_password_changed)


def _say_password_changed(view: UserView) -> None:
    say(f"Password changed for {view.username} ({view.full_name}).")


def _print_session(view: SessionView, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        "Logged in",
        {
            "user": view.user.username,
            "full name": view.user.full_name,
            "role": view.user.role,
            "session started": show_time(view.started_at, zone),
            "ends if idle until": show_time(view.expires_at, zone),
            "password change due": view.password_change_due or "no",
        },
    )
