"""Users, roles, login sessions and password checks.

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
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sqlmodel import Session, col, func, select

from lims import audit, db
from lims.config import SecuritySettings, Settings
from lims.errors import AuditedRefusal, BadInput, NotFound, NotPermitted, RuleViolation
from lims.models import FULL_NAME_MAX, USERNAME_MAX, LoginSession, User
from lims.roles import GRANTS, PERMISSION_WORDS, ROLES
from lims.timeutil import json_time, utcnow
from lims.validation import choice, free_text, matching

if TYPE_CHECKING:
    from argon2 import PasswordHasher

SESSION_FILENAME = "session"
_TOKEN_FILE_MAX_BYTES = 4096
REASON_MAX = 2000
PASSWORD_MAX = 1024
USERNAME_PATTERN = re.compile(rf"[a-z][a-z0-9._-]{{1,{USERNAME_MAX - 1}}}")
USERNAME_ALLOWED = (
    f"2-{USERNAME_MAX} characters: lower-case letters, digits, '.', '_' or '-', "
    "starting with a letter"
)
FAILED_LOGIN_MESSAGE = "login refused: unknown user name or wrong password"


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
    # Checked against when the user does not exist, so both cases take as long.
    return hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Actor:
    """The person a command runs as."""

    user_id: int
    username: str
    full_name: str
    role: str


@dataclass(frozen=True)
class UserView:
    username: str
    full_name: str
    role: str
    active: bool
    locked: bool
    failed_logins: int
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            username=user.username,
            full_name=user.full_name,
            role=user.role,
            active=user.active,
            locked=user.locked_at is not None,
            failed_logins=user.failed_logins,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "full_name": self.full_name,
            "role": self.role,
            "active": self.active,
            "locked": self.locked,
            "failed_logins": self.failed_logins,
            "created_at": json_time(self.created_at),
            "last_login_at": json_time(self.last_login_at),
        }


@dataclass(frozen=True)
class SessionView:
    user: UserView
    started_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            **self.user.to_json(),
            "session_started_at": json_time(self.started_at),
            "session_expires_at": json_time(self.expires_at),
        }


# --- validation -------------------------------------------------------------


def valid_username(username: str, field: str = "name") -> str:
    return matching(field, username, USERNAME_PATTERN, USERNAME_ALLOWED)


def valid_password(settings: Settings, username: str, password: str) -> str:
    minimum = settings.security.password_min_length
    if not minimum <= len(password) <= PASSWORD_MAX:
        raise BadInput("password", f"must be {minimum}-{PASSWORD_MAX} characters long")
    if password.strip() != password:
        raise BadInput("password", "must not start or end with a space")
    if password.lower() == username.lower():
        raise BadInput("password", "must not be the user name")
    free_text("password", password, max_length=PASSWORD_MAX)
    return password


def hash_password(settings: Settings, password: str) -> str:
    return _hasher(settings.security).hash(password)


def password_matches(settings: Settings, stored_hash: str, password: str) -> bool:
    hasher = _hasher(settings.security)
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- users --------------------------------------------------------------------


def _find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def get_user(session: Session, username: str) -> User:
    user = _find_user(session, valid_username(username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def require(actor: Actor | None, permission: str) -> Actor:
    if actor is None:
        raise NotPermitted("not logged in; run `lims login NAME`")
    if actor.role not in GRANTS[permission]:
        allowed = " or ".join(sorted(GRANTS[permission]))
        raise NotPermitted(
            f"{actor.username} is {actor.role}; only {allowed} may {PERMISSION_WORDS[permission]}"
        )
    return actor


def user_count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


def create_user(
    session: Session,
    settings: Settings,
    *,
    actor: Actor | None,
    username: str,
    full_name: str,
    role: str,
    password: str,
) -> UserView:
    """Add a user. actor None is allowed only for the first user (lims init)."""
    if actor is None:
        if user_count(session):
            raise RuleViolation("lims is already initialised: users exist; ask an admin")
    else:
        require(actor, "manage_users")
    valid_username(username)
    free_text("full-name", full_name, max_length=FULL_NAME_MAX)
    choice("role", role, ROLES)
    valid_password(settings, username, password)
    if _find_user(session, username) is not None:
        raise RuleViolation(f"a user named {username!r} already exists")
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        password_hash=hash_password(settings, password),
        created_at=utcnow(),
    )
    session.add(user)
    view = UserView.of(user)
    audit.record(
        session,
        username=actor.username if actor else username,
        action="user.create",
        entity_type="user",
        entity_id=username,
        new={"full_name": full_name, "role": role, "active": True},
    )
    return view


def list_users(session: Session) -> list[UserView]:
    users = session.exec(select(User).order_by(col(User.username))).all()
    return [UserView.of(user) for user in users]


def _end_sessions(session: Session, user: User, reason: str) -> int:
    live = session.exec(
        select(LoginSession).where(
            LoginSession.user_id == user.id, col(LoginSession.ended_at).is_(None)
        )
    ).all()
    now = utcnow()
    for login in live:
        login.ended_at, login.end_reason = now, reason
        session.add(login)
    return len(live)


def _admin_acting_on(
    session: Session, actor: Actor | None, username: str, reason: str | None
) -> tuple[Actor, User]:
    """Role first (exit 4), then the typed reason (2), then the user (3)."""
    actor = require(actor, "manage_users")
    if reason is not None:
        free_text("reason", reason, max_length=REASON_MAX)
    return actor, get_user(session, username)


def deactivate_user(
    session: Session, *, actor: Actor | None, username: str, reason: str | None
) -> UserView:
    actor, user = _admin_acting_on(session, actor, username, reason)
    if not user.active:
        raise RuleViolation(f"{username} is already deactivated")
    if user.username == actor.username:
        raise RuleViolation("you cannot deactivate yourself; ask another admin")
    user.active = False
    session.add(user)
    ended = _end_sessions(session, user, "deactivated")
    audit.record(
        session,
        username=actor.username,
        action="user.deactivate",
        entity_type="user",
        entity_id=username,
        old={"active": True},
        new={"active": False, "sessions_ended": ended},
        reason=reason,
    )
    return UserView.of(user)


def unlock_user(
    session: Session, *, actor: Actor | None, username: str, reason: str | None
) -> UserView:
    actor, user = _admin_acting_on(session, actor, username, reason)
    if user.locked_at is None:
        raise RuleViolation(f"{username} is not locked")
    old = {"locked": True, "failed_logins": user.failed_logins}
    user.locked_at, user.failed_logins = None, 0
    session.add(user)
    audit.record(
        session,
        username=actor.username,
        action="user.unlock",
        entity_type="user",
        entity_id=username,
        old=old,
        new={"locked": False, "failed_logins": 0},
        reason=reason,
    )
    return UserView.of(user)


def set_role(
    session: Session, *, actor: Actor | None, username: str, role: str, reason: str
) -> UserView:
    actor = require(actor, "manage_users")
    choice("role", role, ROLES)
    free_text("reason", reason, max_length=REASON_MAX)
    user = get_user(session, username)
    if user.role == role:
        raise RuleViolation(f"{username} is already {role}")
    if user.username == actor.username:
        raise RuleViolation("you cannot change your own role; ask another admin")
    old_role, user.role = user.role, role
    session.add(user)
    audit.record(
        session,
        username=actor.username,
        action="user.role_change",
        entity_type="user",
        entity_id=username,
        old={"role": old_role},
        new={"role": role},
        reason=reason,
    )
    return UserView.of(user)


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


def _expiry(settings: Settings, login: LoginSession) -> datetime:
    idle = login.last_seen_at + timedelta(minutes=settings.security.session_idle_minutes)
    return min(idle, login.started_at + timedelta(hours=settings.security.session_max_hours))


def _session_of(session: Session, token: str) -> tuple[LoginSession, User] | None:
    found = session.exec(
        select(LoginSession, User)
        .join(User, col(User.id) == LoginSession.user_id)
        .where(LoginSession.token_hash == _token_hash(token))
    ).first()
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
    audit.record(
        session,
        username=None,
        action="auth.session_end",
        entity_type="user",
        entity_id=user.username,
        new={"session_ended": reason},
        reason=why,
    )


def _live_session(session: Session, settings: Settings) -> tuple[LoginSession, User]:
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
    found = _session_of(session, station.token)
    if found is None:
        raise NotPermitted("no session for this station's token; run `lims login NAME`")
    login, user = found
    if login.ended_at is not None:
        raise NotPermitted(f"session ended ({login.end_reason}); run `lims login NAME`")
    if not user.active:
        raise NotPermitted(f"{user.username} is deactivated")
    if user.locked_at is not None:
        raise NotPermitted(f"{user.username} is locked; an admin must unlock the account")
    expires = _expiry(settings, login)
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


def authenticate(session: Session, settings: Settings) -> Actor:
    """The user of the station's live session, whose idle clock restarts now."""
    login, user = _live_session(session, settings)
    login.last_seen_at = utcnow()
    session.add(login)
    assert user.id is not None
    return Actor(user.id, user.username, user.full_name, user.role)


def current_session(session: Session, settings: Settings) -> SessionView:
    login, user = _live_session(session, settings)
    return SessionView(
        UserView.of(user), login.started_at, login.last_seen_at, _expiry(settings, login)
    )


def login(
    session: Session, settings: Settings, *, username: str, password: str
) -> tuple[str, SessionView]:
    """Check the password and start a session; returns its token.

    Every refusal is audited and raised as AuditedRefusal, which commits.
    """
    valid_username(username)
    user = _find_user(session, username)
    if user is None:
        password_matches(settings, _decoy_hash(_hasher(settings.security)), password)
        _refuse(session, None, username, "unknown user", _failed_login_message(settings))
    if user.locked_at is not None:
        _refuse(
            session,
            user,
            username,
            "account locked",
            f"{username} is locked after repeated failed logins; an admin must run "
            f"`lims user unlock {username}`",
        )
    if not password_matches(settings, user.password_hash, password):
        count_wrong_password(session, settings, user)
    if not user.active:
        _refuse(session, user, username, "user deactivated", f"{username} is deactivated")

    now = utcnow()
    replaced = _end_station_session(session, settings, "replaced")
    if _hasher(settings.security).check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(settings, password)
    user.failed_logins, user.last_login_at = 0, now
    token = secrets.token_urlsafe(32)
    assert user.id is not None
    login_session = LoginSession(
        user_id=user.id, token_hash=_token_hash(token), started_at=now, last_seen_at=now
    )
    session.add_all([user, login_session])
    audit.record(
        session,
        username=username,
        action="auth.login",
        entity_type="user",
        entity_id=username,
        new={"replaced_session_of": replaced} if replaced else None,
    )
    return token, SessionView(UserView.of(user), now, now, _expiry(settings, login_session))


def _end_station_session(session: Session, settings: Settings, reason: str) -> str | None:
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
        _refuse(
            session,
            user,
            user.username,
            "wrong password",
            refusal or _failed_login_message(settings),
            action=failure,
        )
    user.locked_at = utcnow()
    _end_sessions(session, user, "locked")
    _audit_failure(session, user, user.username, "wrong password", action=failure)
    audit.record(
        session,
        username=None,
        action="auth.lockout",
        entity_type="user",
        entity_id=user.username,
        new={"locked": True, "failed_logins": user.failed_logins},
        reason=f"{threshold} consecutive wrong passwords",
    )
    raise AuditedRefusal(
        f"{refusal or FAILED_LOGIN_MESSAGE}; {user.username} is now locked: an admin must run "
        f"`lims user unlock {user.username}`"
    )


def _failed_login_message(settings: Settings) -> str:
    # The same words whether or not the user exists, so they reveal no user names.
    return (
        f"{FAILED_LOGIN_MESSAGE} (an account locks after "
        f"{settings.security.lockout_threshold} consecutive failures)"
    )


def _refuse(
    session: Session,
    user: User | None,
    username: str,
    why: str,
    message: str,
    *,
    action: str = "auth.login_failed",
) -> NoReturn:
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
    audit.record(
        session,
        username=None,
        action=action,
        entity_type="user",
        entity_id=username,
        new={"failed_logins": user.failed_logins} if user is not None else None,
        reason=why,
    )


def logout(session: Session, settings: Settings) -> str | None:
    """End this station's session; returns whose it was, or None if there was none."""
    username = _end_station_session(session, settings, "logout")
    if username is not None:
        audit.record(
            session, username=username, action="auth.logout", entity_type="user", entity_id=username
        )
    return username
