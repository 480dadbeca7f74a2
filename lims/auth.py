"""What every command stands on: password checks, the station's session, who a command runs as.

Users and logins are managed by lims.services.users and lims.services.sessions;
this module holds what they share with the rest of lims: argon2 hashing, the
count of wrong passwords that locks an account (at login and at a signature),
the station's session token file, and authenticating a command's session.

A station's session token lives in a file under LIMS_HOME (mode 0600, in a
directory lims creates 0700); the database keeps only its SHA-256. A session
ends at logout, after the configured idle time, [security] session_max_hours
after login however busy, or at once when its user is deactivated or locked. A session
file that others could read, or that is not the station's own regular file,
is never used, and a token found in a file others could read is revoked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlalchemy import or_
from sqlalchemy.orm import defer
from sqlmodel import Session, col, func, select

from lims import audit, db
from lims.config import SecuritySettings, Settings
from lims.errors import AuditedRefusal, NotPermitted
from lims.models import LoginSession, PasswordHistory, User
from lims.roles import GRANTS, PERMISSION_WORDS
from lims.timeutil import show_time, utcnow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

SESSION_FILENAME = "session"
_TOKEN_FILE_MAX_BYTES = 4096
FAILED_LOGIN_MESSAGE = "login refused: unknown user name or wrong password"
CHANGE_PASSWORD = "change your password with lims passwd"  # noqa: S105 (advice, no secret)


def _hasher(policy: SecuritySettings) -> PasswordHasher:
    return _hasher_with(
        policy.argon2_time_cost, policy.argon2_memory_kib, policy.argon2_parallelism
    )


@cache
def _hasher_with(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    # Imported here: most commands check a session token, never a password.
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


@cache
def _decoy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Actor:
    """The person a command runs as."""

    user_id: int
    username: str
    full_name: str
    role: str


def require(actor: Actor | None, permission: str) -> Actor:
    if actor is None:
        raise NotPermitted("not logged in; run `lims login NAME`")
    if actor.role not in GRANTS[permission]:
        allowed = " or ".join(sorted(GRANTS[permission]))
        raise NotPermitted(
            f"{actor.username} is {actor.role}; only {allowed} may {PERMISSION_WORDS[permission]}"
        )
    return actor


# --- passwords ----------------------------------------------------------------------


def hash_password(settings: Settings, password: str) -> str:
    return _hasher(settings.security).hash(password)


def password_matches(settings: Settings, stored_hash: str, password: str) -> bool:
    hasher = _hasher(settings.security)
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_for_nobody(settings: Settings, password: str) -> None:
    """Check a password as if the user existed, so an unknown name takes as long to refuse."""
    password_matches(settings, _decoy_hash(_hasher(settings.security)), password)


def needs_rehash(settings: Settings, stored_hash: str) -> bool:
    """True for a hash made at a lower cost than the site's: it is redone at the next login."""
    return _hasher(settings.security).check_needs_rehash(stored_hash)


def set_password(
    session: Session, settings: Settings, user: User, password: str, *, by_admin: bool
) -> None:
    """Give user a new password, keeping the one it replaces in their password history.

    A password an admin set (a new account, a reset) is known to that admin: its owner
    must change it before doing anything else (21 CFR 11.300(b)).
    """
    if user.id is not None:
        session.add(
            PasswordHistory(
                user_id=user.id,
                password_hash=user.password_hash,
                set_at=user.password_set_at or user.created_at,
            )
        )
    user.password_hash = hash_password(settings, password)
    user.password_set_at, user.password_set_by_admin = utcnow(), by_admin
    session.add(user)


def password_change_due(settings: Settings, user: User, now: datetime) -> str | None:
    """Why user must change their password before any other command, or None.

    An account from before passwords could be changed has no password_set_at: its
    password is the one set when it was created, so its age counts from then.
    """
    set_at = user.password_set_at or user.created_at
    return password_due(settings, user.password_set_by_admin, set_at, now)


def password_due(
    settings: Settings, set_by_admin: bool, set_at: datetime, now: datetime
) -> str | None:
    """Why a password set at `set_at` (by an admin or not) must be changed, or None."""
    if set_by_admin:
        return "your password was set by an admin"
    max_age = settings.security.password_max_age_days
    if now >= set_at + timedelta(days=max_age):
        return f"your password is more than {max_age} days old"
    return None


def among_previous_passwords(
    settings: Settings, session: Session, user: User, password: str
) -> bool:
    """Whether password is one of those user had before the current one, as many as
    [security] password_history counts with the current one (which callers compare)."""
    earlier = session.exec(
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user.id)
        .order_by(col(PasswordHistory.set_at).desc(), col(PasswordHistory.id).desc())
        .limit(settings.security.password_history - 1)
    ).all()
    return any(password_matches(settings, stored, password) for stored in earlier)


# --- sessions -------------------------------------------------------------------


def session_file(settings: Settings) -> Path:
    return settings.home / SESSION_FILENAME


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _StationToken:
    """What the station's session file holds, and why it must not be used (None: it may)."""

    token: str | None
    problem: str | None = None


def _station_token(settings: Settings) -> _StationToken:
    """Read the session file without following a link or blocking on a pipe, then vet it."""
    path = session_file(settings)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return _StationToken(None)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a symbolic link
            return _StationToken(None, f"session file {path} is a symbolic link")
        raise
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return _StationToken(None, f"session file {path} is not a regular file")
        content = handle.read(_TOKEN_FILE_MAX_BYTES)
    token = content.decode("utf-8", errors="replace").strip() or None
    mode = stat.S_IMODE(info.st_mode)
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        return _StationToken(
            token, f"session file {path} belongs to another account (uid {info.st_uid})"
        )
    if mode & 0o077:
        exposure = "readable" if mode & 0o044 else "writable"
        return _StationToken(token, f"session file {path} is {exposure} by others (mode {mode:o})")
    return _StationToken(token)


def _unusable(problem: str, *, revoked: bool) -> str:
    done = "it was not used and its session is ended" if revoked else "it was not used"
    return f"{problem}; {done}: run `lims login NAME` again (it writes a new, private file)"


def read_token(settings: Settings) -> str | None:
    """The station's session token; refused if others could read the file, or it is not ours."""
    station = _station_token(settings)
    if station.problem is not None:
        raise NotPermitted(_unusable(station.problem, revoked=False))
    return station.token


def write_token(settings: Settings, token: str) -> None:
    path = session_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)


def remove_token(settings: Settings) -> None:
    session_file(settings).unlink(missing_ok=True)


def expiry(settings: Settings, login: LoginSession) -> datetime:
    """When a session ends unless used before: idle time after last seen, or its longest life."""
    idle = login.last_seen_at + timedelta(minutes=settings.security.session_idle_minutes)
    return min(idle, login.started_at + timedelta(hours=settings.security.session_max_hours))


# Users' columns that revision 0008 added: left unread on an older schema (a backup taken
# before `lims db upgrade`), where they do not exist yet.
_COLUMNS_SINCE_0008: tuple[Any, ...] = (User.password_set_at, User.password_set_by_admin)


def _session_of(
    session: Session, token: str, *, older_schema: bool = False
) -> tuple[LoginSession, User] | None:
    query = (
        select(LoginSession, User)
        .join(User, col(User.id) == LoginSession.user_id)
        .where(LoginSession.token_hash == _token_hash(token))
    )
    if older_schema:
        query = query.options(*(defer(column) for column in _COLUMNS_SINCE_0008))
    found = session.exec(query).first()
    return None if found is None else (found[0], found[1])


def _revoke(
    session: Session, login: LoginSession, user: User, reason: str, why: str, at: datetime
) -> None:
    """End a session nobody asked to end (exposed, expired), on the record."""
    # A read-only command gets here too: take the chain's head before the session row, in
    # the order every writer takes them, so it cannot deadlock a writer on PostgreSQL.
    db.serialise_writers(session)
    login.ended_at, login.end_reason = at, reason
    session.add(login)
    audit.record_about(
        session,
        ("user", user.username),
        "auth.session_end",
        by=None,
        new={"session_ended": reason},
        reason=why,
    )


def live_session(
    session: Session, settings: Settings, *, older_schema: bool = False
) -> tuple[LoginSession, User]:
    """The station's session and its user; refused unless it may be used now."""
    station = _station_token(settings)
    if station.problem is not None:
        found = _session_of(session, station.token) if station.token is not None else None
        if found is None or found[0].ended_at is not None:
            raise NotPermitted(_unusable(station.problem, revoked=False))
        # Whoever could read the file may hold the token: it dies here, not at idle expiry.
        _revoke(session, *found, "exposed", station.problem, utcnow())
        raise AuditedRefusal(_unusable(station.problem, revoked=True))
    if station.token is None:
        raise NotPermitted("not logged in; run `lims login NAME`")
    found = _session_of(session, station.token, older_schema=older_schema)
    if found is None:
        raise NotPermitted("no session for this station's token; run `lims login NAME`")
    login, user = found
    if login.ended_at is not None:
        raise NotPermitted(f"session ended ({login.end_reason}); run `lims login NAME`")
    if not user.active:
        raise NotPermitted(f"{user.username} is deactivated")
    if user.locked_at is not None:
        raise NotPermitted(f"{user.username} is locked; an admin must unlock the account")
    expires = expiry(settings, login)
    if utcnow() >= expires:
        idle = expires < login.started_at + timedelta(hours=settings.security.session_max_hours)
        why = (
            f"after {settings.security.session_idle_minutes} min idle"
            if idle
            else f"after {settings.security.session_max_hours} h, the longest a session lasts"
        )
        # Ended for good: a longer idle setting tomorrow does not bring it back.
        _revoke(session, login, user, "expired", f"expired {why}", expires)
        raise AuditedRefusal(f"session expired {why}; run `lims login NAME`")
    return login, user


def authenticate(
    session: Session,
    settings: Settings,
    *,
    while_password_change_due: bool = False,
    older_schema: bool = False,
) -> Actor:
    """The user of the station's live session, whose idle clock restarts now.

    While their password must be changed, only the commands that change it or show the
    session (while_password_change_due) may run: every other is refused here. On a schema
    older than revision 0008 (only a backup or restore runs there, before `lims db
    upgrade`) no password can be changed yet, and none is asked to be.
    """
    login, user = live_session(session, settings, older_schema=older_schema)
    now = utcnow()
    due = None if older_schema else password_change_due(settings, user, now)
    if due is not None and not while_password_change_due:
        raise NotPermitted(f"{due}: {CHANGE_PASSWORD} before any other command")
    login.last_seen_at = now
    session.add(login)
    assert user.id is not None
    return Actor(user.id, user.username, user.full_name, user.role)


def open_session(session: Session, user: User, at: datetime) -> tuple[str, LoginSession]:
    """A new session for user: its token, for the station's file, and its row.

    The row keeps only the token's SHA-256: the database alone cannot be used to log in.
    """
    token = secrets.token_urlsafe(32)
    assert user.id is not None
    login = LoginSession(
        user_id=user.id, token_hash=_token_hash(token), started_at=at, last_seen_at=at
    )
    session.add(login)
    return token, login


def end_station_session(session: Session, settings: Settings, reason: str) -> str | None:
    """End the session this station had open, if any; returns whose it was.

    A token in a file others could read is ended too, as exposed.
    """
    station = _station_token(settings)
    found = _session_of(session, station.token) if station.token is not None else None
    if found is None or found[0].ended_at is not None:
        return None
    previous, previous_user = found
    previous.ended_at = utcnow()
    previous.end_reason = reason if station.problem is None else "exposed"
    session.add(previous)
    return previous_user.username


def end_sessions(
    session: Session, user: User, reason: str, *, keeping: Settings | None = None
) -> int:
    """End every open session of user, at any station (deactivated, locked), or every one
    but the station's of `keeping` (a password changed there: one opened elsewhere with
    the old password must not outlive it); returns how many."""
    query = select(LoginSession).where(
        LoginSession.user_id == user.id, col(LoginSession.ended_at).is_(None)
    )
    if keeping is not None:
        token = _station_token(keeping).token
        if token is not None:
            query = query.where(col(LoginSession.token_hash) != _token_hash(token))
    live = session.exec(query).all()
    now = utcnow()
    for login in live:
        login.ended_at, login.end_reason = now, reason
        session.add(login)
    return len(live)


# --- wrong passwords -----------------------------------------------------------------


def count_wrong_password(
    session: Session,
    settings: Settings,
    user: User,
    *,
    failure: str = "auth.login_failed",
    refusal: str | None = None,
) -> NoReturn:
    """Count a wrong password (at login or at a signature) and lock at the threshold.

    The refusal is audited and raised as AuditedRefusal, which commits.
    """
    threshold = settings.security.lockout_threshold
    user.failed_logins += 1
    session.add(user)
    if user.failed_logins < threshold:
        refuse_login(
            session,
            user,
            user.username,
            "wrong password",
            refusal or failed_login_message(settings),
            action=failure,
        )
    user.locked_at = utcnow()
    end_sessions(session, user, "locked")
    _audit_failure(session, user, user.username, "wrong password", action=failure)
    audit.record_about(
        session,
        ("user", user.username),
        "auth.lockout",
        by=None,
        new={"locked": True, "failed_logins": user.failed_logins},
        reason=f"{threshold} consecutive wrong passwords",
    )
    raise AuditedRefusal(
        f"{refusal or FAILED_LOGIN_MESSAGE}; {user.username} is now locked: "
        + how_lockout_ends(session, settings, user)
    )


def lockout_ends_at(session: Session, settings: Settings, user: User) -> datetime | None:
    """When a locked account unlocks by itself, or None: another admin must unlock it.

    Only the lockout of an admin whom no other admin can unlock (no other active,
    unlocked user may manage users) ends by itself, [security] lockout_minutes after
    it began: otherwise the site would have no way back but editing the database. With
    every admin locked, only the first locked.
    """
    may_unlock = GRANTS["manage_users"]
    if user.locked_at is None or user.role not in may_unlock:
        return None
    other_admins = session.exec(
        select(func.count())
        .select_from(User)
        .where(
            col(User.role).in_(may_unlock),
            col(User.active).is_(True),
            col(User.locked_at).is_(None),
            User.id != user.id,
        )
    ).one()
    if other_admins:
        return None
    # Every admin locked: only the one locked first comes back by itself, and unlocks the
    # others. Were each to, locking them all would give a guesser every account's
    # attempts again each period.
    locked_before = session.exec(
        select(func.count())
        .select_from(User)
        .where(
            col(User.role).in_(may_unlock),
            col(User.active).is_(True),
            col(User.locked_at).is_not(None),
            User.id != user.id,
            or_(
                col(User.locked_at) < user.locked_at,
                (col(User.locked_at) == user.locked_at) & (col(User.id) < user.id),
            ),
        )
    ).one()
    if locked_before:
        return None
    return user.locked_at + timedelta(minutes=settings.security.lockout_minutes)


def how_lockout_ends(session: Session, settings: Settings, user: User) -> str:
    ends = lockout_ends_at(session, settings, user)
    if ends is None:
        return f"an admin must run `lims user unlock {user.username}`"
    return (
        f"no other admin can unlock it, so it unlocks by itself at "
        f"{show_time(ends, settings.tz)} ({settings.security.lockout_minutes} min after locking)"
    )


def unlock_if_lockout_over(session: Session, settings: Settings, user: User) -> bool:
    """End the lockout of the site's only admin once its time is over, on the record."""
    ends = lockout_ends_at(session, settings, user)
    if ends is None or utcnow() < ends:
        return False
    old = {"locked": True, "failed_logins": user.failed_logins}
    user.locked_at, user.failed_logins = None, 0
    session.add(user)
    audit.record_about(
        session,
        ("user", user.username),
        "auth.automatic_unlock",
        by=None,
        old=old,
        new={"locked": False, "failed_logins": 0},
        reason=(
            f"locked for {settings.security.lockout_minutes} min and no other admin can unlock it"
        ),
    )
    return True


def failed_login_message(settings: Settings) -> str:
    """The same words whether or not the user exists, so they reveal no user names."""
    return (
        f"{FAILED_LOGIN_MESSAGE} (an account locks after "
        f"{settings.security.lockout_threshold} consecutive failures)"
    )


def refuse_login(
    session: Session,
    user: User | None,
    username: str,
    why: str,
    message: str,
    *,
    action: str = "auth.login_failed",
) -> NoReturn:
    """Refuse on the record: the audited failure commits, the command exits refused."""
    _audit_failure(session, user, username, why, action=action)
    raise AuditedRefusal(message)


def _audit_failure(
    session: Session,
    user: User | None,
    username: str,
    why: str,
    *,
    action: str = "auth.login_failed",
) -> None:
    audit.record_about(
        session,
        ("user", username),
        action,
        by=None,
        new={"failed_logins": user.failed_logins} if user is not None else None,
        reason=why,
    )
