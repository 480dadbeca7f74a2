"""Logging in and out at a station, and who is logged in there.

Login and logout run without a session (a unit of work not authenticated):
they are how a station gets one and gives it up. Every refused login is
audited and raised as AuditedRefusal, which commits; wrong passwords count
towards the lockout (lims.auth). The token goes back to the caller, which
writes the station's session file once the login has committed.
"""

from __future__ import annotations

from lims import audit, auth
from lims.config import Settings
from lims.models import LoginSession, User
from lims.services.users import find_user, user_view, valid_username
from lims.timeutil import utcnow
from lims.uow import UnitOfWork
from lims.views.people import SessionView


def login(uow: UnitOfWork, *, username: str, password: str) -> tuple[str, SessionView]:
    """Check the password and start a session, ending the station's previous one.

    Returns the new session's token, for the station's session file.
    """
    session, settings = uow.session, uow.settings
    valid_username(username)
    user = find_user(session, username)
    if user is None:
        auth.check_for_nobody(settings, password)
        auth.refuse_login(
            session, None, username, "unknown user", auth.failed_login_message(settings)
        )
    if user.locked_at is not None and not auth.unlock_if_lockout_over(session, settings, user):
        auth.refuse_login(
            session,
            user,
            username,
            "account locked",
            f"{username} is locked after repeated failed logins; "
            + auth.how_lockout_ends(session, settings, user),
        )
    if not auth.password_matches(settings, user.password_hash, password):
        auth.count_wrong_password(session, settings, user)
    if not user.active:
        auth.refuse_login(session, user, username, "user deactivated", f"{username} is deactivated")

    now = utcnow()
    replaced = auth.end_station_session(session, settings, "replaced")
    if auth.needs_rehash(settings, user.password_hash):
        user.password_hash = auth.hash_password(settings, password)
    user.failed_logins, user.last_login_at = 0, now
    session.add(user)
    token, login_session = auth.open_session(session, user, now)
    audit.record_about(
        session,
        ("user", username),
        "auth.login",
        by=username,
        new={"replaced_session_of": replaced} if replaced else None,
    )
    return token, _view(settings, login_session, user)


def logout(uow: UnitOfWork) -> str | None:
    """End this station's session; returns whose it was, or None if there was none."""
    username = auth.end_station_session(uow.session, uow.settings, "logout")
    if username is not None:
        audit.record_about(
            uow.session,
            ("user", username),
            "auth.logout",
            by=username,
        )
    return username


def current_session(uow: UnitOfWork) -> SessionView:
    """The station's session: showing it needs that session and nothing more (`lims whoami`)."""
    login_session, user = auth.live_session(uow.session, uow.settings)
    return _view(uow.settings, login_session, user)


def _view(settings: Settings, login_session: LoginSession, user: User) -> SessionView:
    return SessionView(
        user=user_view(user),
        started_at=login_session.started_at,
        last_seen_at=login_session.last_seen_at,
        expires_at=auth.expiry(settings, login_session),
        password_change_due=auth.password_change_due(settings, user, utcnow()),
    )
