"""User accounts: the first administrator with the database, then admins add, list and change them.

Every change is audited by the admin who made it; deactivating a user or
locking them out ends their sessions at every station at once.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, func, select

from lims import audit, auth, site
from lims.config import Settings
from lims.domain import signatures
from lims.errors import BadInput, NotFound, RuleViolation
from lims.models import FULL_NAME_MAX, USERNAME_MAX, User
from lims.roles import ROLES
from lims.timeutil import utcnow
from lims.uow import Schema, UnitOfWork, unit_of_work
from lims.validation import choice, free_text, matching
from lims.views import from_record
from lims.views.people import UserView

REASON_MAX = 2000
PASSWORD_MAX = 1024
USERNAME_PATTERN = re.compile(rf"[a-z][a-z0-9._-]{{1,{USERNAME_MAX - 1}}}")
USERNAME_ALLOWED = (
    f"2-{USERNAME_MAX} characters: lower-case letters, digits, '.', '_' or '-', "
    "starting with a letter"
)


# --- validation and lookup ------------------------------------------------------------


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


def find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def get_user(session: Session, username: str) -> User:
    user = find_user(session, valid_username(username))
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def valid_full_name(full_name: str) -> str:
    """A full name fit to print on a signature: free text, and unmistakable."""
    free_text("full-name", full_name, max_length=FULL_NAME_MAX)
    problem = signatures.full_name_problem(full_name)
    if problem is not None:
        raise BadInput("full-name", problem)
    return full_name


def refuse_shared_full_name(session: Session, full_name: str) -> None:
    """Full names identify signers (21 CFR 11.50): no two active users may share one,
    whatever the case or spacing."""
    wanted = signatures.comparable_name(full_name)
    for other in session.exec(select(User).where(col(User.active).is_(True))).all():
        if signatures.comparable_name(other.full_name) == wanted:
            raise RuleViolation(
                f"full name {full_name!r} is already {other.username}'s ({other.full_name}); "
                "signatures must name one person: add a middle initial or another distinction"
            )


def user_view(user: User) -> UserView:
    return from_record(UserView, user, locked=user.locked_at is not None)


# --- services -------------------------------------------------------------------------


def initialise(settings: Settings, *, username: str, full_name: str, password: str) -> UserView:
    """Create the database at the newest schema with its first administrator, or neither.

    The site's settings and specification in settings (from `load_settings(at_init=True)`:
    the configuration files over the defaults) become the first version of its records.
    """
    valid_username(username, field="admin")
    valid_full_name(full_name)
    valid_password(settings, username, password)
    with unit_of_work(settings, authenticated=False, schema=Schema.UPGRADE) as uow:
        if uow.session.exec(select(func.count()).select_from(User)).one():
            raise RuleViolation("lims is already initialised: users exist; ask an admin")
        site.store_first_versions(uow.session, settings, by=username)
        return _add(
            uow.session,
            settings,
            by=username,
            username=username,
            full_name=full_name,
            role="admin",
            password=password,
        )


def create_user(
    uow: UnitOfWork, *, username: str, full_name: str, role: str, password: str
) -> UserView:
    """Add a user with a role and an initial password (admin only)."""
    actor = uow.require("manage_users")
    return _add(
        uow.session,
        uow.settings,
        by=actor.username,
        username=username,
        full_name=full_name,
        role=role,
        password=password,
    )


def _add(
    session: Session,
    settings: Settings,
    *,
    by: str,
    username: str,
    full_name: str,
    role: str,
    password: str,
) -> UserView:
    """The new account, audited as made by `by` (the first admin makes their own)."""
    valid_username(username)
    valid_full_name(full_name)
    choice("role", role, ROLES)
    valid_password(settings, username, password)
    if find_user(session, username) is not None:
        raise RuleViolation(f"a user named {username!r} already exists")
    refuse_shared_full_name(session, full_name)
    now = utcnow()
    user = User(
        username=username,
        full_name=full_name,
        role=role,
        password_hash=auth.hash_password(settings, password),
        created_at=now,
        password_set_at=now,
        # The first admin sets their own password at `lims init`; everyone else's is typed
        # by an admin, who therefore knows it until its owner changes it.
        password_set_by_admin=by != username,
    )
    audit.record_created(
        session,
        user,
        ("user", username),
        "user.create",
        by=by,
        new={
            "full_name": full_name,
            "role": role,
            "active": True,
            "password_set_by_admin": user.password_set_by_admin,
        },
    )
    return user_view(user)


def list_users(uow: UnitOfWork) -> list[UserView]:
    """Every account, by name (admin only: it shows who is locked out)."""
    uow.require("manage_users")
    users = uow.session.exec(select(User).order_by(col(User.username))).all()
    return [user_view(user) for user in users]


def _admin_acting_on(uow: UnitOfWork, username: str, reason: str | None) -> tuple[auth.Actor, User]:
    """Role first (exit 4), then the typed reason (2), then the user (3)."""
    actor = uow.require("manage_users")
    if reason is not None:
        free_text("reason", reason, max_length=REASON_MAX)
    return actor, get_user(uow.session, username)


def deactivate_user(uow: UnitOfWork, *, username: str, reason: str | None) -> UserView:
    """No more logins, and the user's open sessions end at once (admin only)."""
    actor, user = _admin_acting_on(uow, username, reason)
    if not user.active:
        raise RuleViolation(f"{username} is already deactivated")
    if user.username == actor.username:
        raise RuleViolation("you cannot deactivate yourself; ask another admin")
    user.active = False
    ended = auth.end_sessions(uow.session, user, "deactivated")
    return _changed(
        uow,
        actor,
        user,
        "user.deactivate",
        old={"active": True},
        new={"active": False, "sessions_ended": ended},
        reason=reason,
    )


def unlock_user(uow: UnitOfWork, *, username: str, reason: str | None) -> UserView:
    """Clear a lockout and its count of wrong passwords (admin only)."""
    actor, user = _admin_acting_on(uow, username, reason)
    if user.locked_at is None:
        raise RuleViolation(f"{username} is not locked")
    old = {"locked": True, "failed_logins": user.failed_logins}
    user.locked_at, user.failed_logins = None, 0
    return _changed(
        uow,
        actor,
        user,
        "user.unlock",
        old=old,
        new={"locked": False, "failed_logins": 0},
        reason=reason,
    )


def reset_password(
    uow: UnitOfWork, *, username: str, password: str, reason: str | None
) -> UserView:
    """Give a user who forgot their password a temporary one (admin only, never one's own).

    The temporary password is known to the admin who typed it, so its owner must change
    it before any other command; the user's open sessions end at once.
    """
    actor, user = _admin_acting_on(uow, username, reason)
    if user.username == actor.username:
        raise RuleViolation("you cannot reset your own password; change it with lims passwd")
    valid_password(uow.settings, user.username, password)
    auth.set_password(uow.session, uow.settings, user, password, by_admin=True)
    ended = auth.end_sessions(uow.session, user, "password reset")
    return _changed(
        uow,
        actor,
        user,
        "user.password_reset",
        old=None,
        new={"password_set_by_admin": True, "sessions_ended": ended},
        reason=reason,
    )


def change_password(uow: UnitOfWork, *, current: str, new: str) -> UserView:
    """Change one's own password (`lims passwd`): the current one first, as at a signature.

    A wrong current password counts towards the lockout, as at login. The new one may
    not be any of the last [security] password_history passwords, the current included.
    """
    actor = uow.require("change_own_password")
    session, settings = uow.session, uow.settings
    user = session.get(User, actor.user_id)
    assert user is not None
    if not auth.password_matches(settings, user.password_hash, current):
        auth.count_wrong_password(
            session,
            settings,
            user,
            failure="user.password_change_failed",
            refusal=f"password not changed: wrong current password for {user.username}",
        )
    valid_password(settings, user.username, new)
    # The current password was just checked: compared as typed, it costs no second hash.
    if new == current or auth.among_previous_passwords(settings, session, user, new):
        raise RuleViolation(
            f"password not changed: it is one of your last {settings.security.password_history} "
            "passwords; choose another"
        )
    was_set_by_admin = user.password_set_by_admin
    user.failed_logins = 0
    auth.set_password(session, settings, user, new, by_admin=False)
    # Whoever knew the old password (the admin who typed it) may have logged in with it
    # elsewhere: that session ends with it.
    ended = auth.end_sessions(session, user, "password changed", keeping=settings)
    audit.record_about(
        session,
        ("user", user.username),
        "user.password_change",
        by=user.username,
        old={"password_set_by_admin": was_set_by_admin},
        new={"password_set_by_admin": False, "other_sessions_ended": ended},
    )
    return user_view(user)


def set_role(uow: UnitOfWork, *, username: str, role: str, reason: str) -> UserView:
    """Change a user's role; the old one stays in the trail (admin only, never one's own)."""
    actor = uow.require("manage_users")
    choice("role", role, ROLES)
    free_text("reason", reason, max_length=REASON_MAX)
    user = get_user(uow.session, username)
    if user.role == role:
        raise RuleViolation(f"{username} is already {role}")
    if user.username == actor.username:
        raise RuleViolation("you cannot change your own role; ask another admin")
    old_role, user.role = user.role, role
    return _changed(
        uow,
        actor,
        user,
        "user.role_change",
        old={"role": old_role},
        new={"role": role},
        reason=reason,
    )


def _changed(
    uow: UnitOfWork,
    actor: auth.Actor,
    user: User,
    action: str,
    *,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    reason: str | None,
) -> UserView:
    """Save an admin's change to an account, on the record, and show the account as it is now."""
    uow.session.add(user)
    audit.record_about(
        uow.session,
        ("user", user.username),
        action,
        by=actor.username,
        old=old,
        new=new,
        reason=reason,
    )
    return user_view(user)
