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
from lims.cli.service import read

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

    view, zone = read(sessions.current_session)
    print_view(view, as_json, _print_session, zone)


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
        },
    )
