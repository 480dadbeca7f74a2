"""People: a user account as `lims user` shows it, and a station's login session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lims.views import hidden, inline, renamed


@dataclass(frozen=True, kw_only=True)
class UserView:
    """An account; never its password hash, which no output shows."""

    username: str
    full_name: str
    role: str
    active: bool
    locked: bool
    failed_logins: int
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class SessionView:
    """Who is logged in at a station; their account's keys and the session's, in one object."""

    user: UserView = inline()
    started_at: datetime = renamed("session_started_at")
    last_seen_at: datetime = hidden()
    expires_at: datetime = renamed("session_expires_at")
    # Why the password must be changed before any other command (None: it need not be).
    password_change_due: str | None = None
