"""Users, passwords, sessions and lockout, through lims.auth and the user and session services."""

from __future__ import annotations

import hashlib
import stat
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import col, select

from lims import audit, auth, db
from lims.config import Settings, load_settings
from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.models import LoginSession, User
from lims.services import sessions, users
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views.trail import AuditView
from tests.support.lab import ON_POSTGRES, PASSWORD, Lab

WRONG_PASSWORD = "not the password at all"


def _login(settings: Settings, username: str, password: str = PASSWORD) -> str:
    with unit_of_work(settings, authenticated=False) as uow:
        token, _ = sessions.login(uow, username=username, password=password)
    return token


def _refused_login(settings: Settings, username: str, password: str = WRONG_PASSWORD) -> str:
    with pytest.raises(NotPermitted) as refused:
        _login(settings, username, password)
    return refused.value.message


def _user(settings: Settings, username: str) -> User:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return users.get_user(uow.session, username)


def _trail(settings: Settings, username: str) -> list[AuditView]:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.entries(uow.session, entity_type="user", entity_id=username)


def _actions(settings: Settings, username: str) -> list[str]:
    return [entry.action for entry in _trail(settings, username)]


def _login_sessions(settings: Settings) -> list[LoginSession]:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return list(uow.session.exec(select(LoginSession).order_by(col(LoginSession.id))).all())


def _live_login_session(settings: Settings) -> LoginSession:
    (live,) = [login for login in _login_sessions(settings) if login.ended_at is None]
    return live


def _make_idle(settings: Settings, minutes: float) -> datetime:
    moment = utcnow() - timedelta(minutes=minutes)
    with db.engine_for(settings).begin() as connection:
        connection.execute(
            update(LoginSession)
            .where(col(LoginSession.ended_at).is_(None))
            .values(last_seen_at=moment)
        )
    return moment


def _station_user(settings: Settings) -> str:
    with unit_of_work(settings) as uow:
        assert uow.actor is not None
        return uow.actor.username


def _add_user(settings: Settings, username: str, role: str = "technician", **fields: str) -> None:
    with unit_of_work(settings) as uow:
        users.create_user(
            uow,
            username=username,
            full_name=fields.get("full_name", "Tom Tech"),
            role=fields.get("role", role),
            password=fields.get("password", PASSWORD),
        )


# --- passwords and tokens -------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_never_as_plaintext(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    with db.engine_for(lab.settings).connect() as connection:
        hashes = connection.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert len(hashes) == 2
    for stored in hashes:
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored


RFC_9106_COST = {"argon2_time_cost": 3, "argon2_memory_kib": 65536, "argon2_parallelism": 4}


def _in_force(lab: Lab) -> Settings:
    with unit_of_work(lab.settings, write=False, authenticated=False) as uow:
        return uow.settings


def test_passwords_are_hashed_at_rfc_9106_cost_unless_the_site_sets_another(lab: Lab) -> None:
    stored = auth.hash_password(load_settings(), PASSWORD)  # the packaged defaults
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    lab.set_site(
        security={"argon2_time_cost": 2, "argon2_memory_kib": 1024, "argon2_parallelism": 2}
    )
    assert auth.hash_password(_in_force(lab), PASSWORD).startswith("$argon2id$v=19$m=1024,t=2,p=2$")


def test_argon2_memory_must_cover_its_lanes(lab: Lab) -> None:
    with pytest.raises(BadInput, match="argon2_memory_kib must be at least 8"):
        lab.set_site(security={"argon2_parallelism": 2})


def test_a_hash_below_the_site_cost_is_raised_to_it_at_the_next_login(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _user(lab.settings, "admin").password_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    lab.set_site(security=RFC_9106_COST)
    settings = lab.settings
    _login(settings, "admin")
    upgraded = _user(settings, "admin").password_hash
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    _login(settings, "admin")
    assert _user(settings, "admin").password_hash == upgraded


def test_session_token_file_is_private_and_the_database_keeps_only_its_sha256(lab: Lab) -> None:
    lab.login("admin")
    path = auth.session_file(lab.settings)
    assert path.parent == lab.settings.home
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    with db.engine_for(lab.settings).connect() as connection:
        rows = connection.execute(text("SELECT * FROM login_sessions")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in rows[0].values()}


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_session_file_others_can_read_is_refused(lab: Lab, mode: int) -> None:
    lab.login("admin")
    auth.session_file(lab.settings).chmod(mode)
    with pytest.raises(NotPermitted, match="readable by others"):
        _station_user(lab.settings)


# --- logging in -----------------------------------------------------------------------


def test_right_password_starts_a_session_for_that_user(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    lab.login("tech")
    assert _station_user(lab.settings) == "tech"
    assert _actions(lab.settings, "tech")[-1] == "auth.login"
    assert _user(lab.settings, "tech").last_login_at is not None


def test_wrong_password_is_refused_and_the_failure_is_committed_to_the_trail(lab: Lab) -> None:
    message = _refused_login(lab.settings, "admin")
    assert message.startswith(auth.FAILED_LOGIN_MESSAGE)
    failure = _trail(lab.settings, "admin")[-1]
    assert failure.action == "auth.login_failed"
    assert failure.reason == "wrong password"
    assert _user(lab.settings, "admin").failed_logins == 1
    assert _login_sessions(lab.settings) == []


def test_unknown_user_is_refused_with_the_wrong_password_message_and_audited(lab: Lab) -> None:
    message = _refused_login(lab.settings, "nobody", PASSWORD)
    assert message.startswith(auth.FAILED_LOGIN_MESSAGE)
    assert message == _refused_login(lab.settings, "admin")
    assert _actions(lab.settings, "nobody") == ["auth.login_failed"]


def test_account_locks_after_five_consecutive_failures_by_default(lab: Lab) -> None:
    assert lab.settings.security.lockout_threshold == 5
    for _ in range(4):
        _refused_login(lab.settings, "admin")
    assert _user(lab.settings, "admin").locked_at is None
    message = _refused_login(lab.settings, "admin")
    assert "locked" in message
    user = _user(lab.settings, "admin")
    assert user.locked_at is not None
    assert user.failed_logins == 5
    lockout = _trail(lab.settings, "admin")[-1]
    assert lockout.action == "auth.lockout"
    assert lockout.new == {"locked": True, "failed_logins": 5}


def test_configured_lockout_threshold_locks_after_three_failures(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(security={"lockout_threshold": 3})
    settings = lab.settings
    for _ in range(2):
        _refused_login(settings, "admin")
    assert _user(settings, "admin").locked_at is None
    _refused_login(settings, "admin")
    assert _user(settings, "admin").locked_at is not None
    assert _actions(settings, "admin")[-2:] == ["auth.login_failed", "auth.lockout"]


def test_a_locked_account_refuses_even_the_right_password(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_user("tech", "technician")
    lab.set_site(security={"lockout_threshold": 1})
    settings = lab.settings
    sessions_before = len(_login_sessions(settings))
    _refused_login(settings, "tech")
    message = _refused_login(settings, "tech", PASSWORD)
    assert "an admin must run `lims user unlock tech`" in message
    assert _trail(settings, "tech")[-1].reason == "account locked"
    assert len(_login_sessions(settings)) == sessions_before


def test_locking_an_account_ends_its_live_session(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(security={"lockout_threshold": 1})
    settings = lab.settings
    lab.login("admin")
    _refused_login(settings, "admin")
    assert _login_sessions(settings)[-1].end_reason == "locked"
    with pytest.raises(NotPermitted):
        _station_user(settings)


def test_a_successful_login_resets_the_failure_count(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(security={"lockout_threshold": 3})
    settings = lab.settings
    for _ in range(2):
        _refused_login(settings, "admin")
    _login(settings, "admin")
    assert _user(settings, "admin").failed_logins == 0
    for _ in range(2):
        _refused_login(settings, "admin")
    user = _user(settings, "admin")
    assert user.locked_at is None
    assert user.failed_logins == 2


def test_unlock_clears_the_lock_and_the_failure_count(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_user("tech", "technician")
    lab.set_site(security={"lockout_threshold": 2})
    settings = lab.settings
    for _ in range(2):
        _refused_login(settings, "tech")
    with unit_of_work(settings) as uow:
        view = users.unlock_user(uow, username="tech", reason="identity confirmed")
    assert not view.locked
    assert view.failed_logins == 0
    unlock = _trail(settings, "tech")[-1]
    assert unlock.action == "user.unlock"
    assert unlock.old == {"locked": True, "failed_logins": 2}
    assert unlock.reason == "identity confirmed"
    user = _user(settings, "tech")
    assert (user.locked_at, user.failed_logins) == (None, 0)
    _login(settings, "tech")


def test_unlocking_an_account_that_is_not_locked_is_refused(lab: Lab) -> None:
    lab.login("admin")
    with pytest.raises(RuleViolation, match="not locked"), unit_of_work(lab.settings) as uow:
        users.unlock_user(uow, username="admin", reason=None)


def test_a_deactivated_user_cannot_log_in(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    with unit_of_work(lab.settings) as uow:
        users.deactivate_user(uow, username="tech", reason="left the lab")
    message = _refused_login(lab.settings, "tech", PASSWORD)
    assert "deactivated" in message
    assert _trail(lab.settings, "tech")[-1].reason == "user deactivated"


def test_deactivating_a_user_ends_their_live_session_at_once(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    tech_token = _login(lab.settings, "tech")
    lab.login("admin")
    with unit_of_work(lab.settings) as uow:
        view = users.deactivate_user(uow, username="tech", reason=None)
    assert not view.active
    assert _trail(lab.settings, "tech")[-1].new == {"active": False, "sessions_ended": 1}
    auth.write_token(lab.settings, tech_token)
    with pytest.raises(NotPermitted):
        _station_user(lab.settings)
    token_hash = hashlib.sha256(tech_token.encode()).hexdigest()
    (tech_session,) = [s for s in _login_sessions(lab.settings) if s.token_hash == token_hash]
    assert tech_session.end_reason == "deactivated"


# --- sessions -------------------------------------------------------------------------


def test_a_session_idle_beyond_the_configured_time_has_expired(lab: Lab) -> None:
    lab.login("admin")
    _make_idle(lab.settings, lab.settings.security.session_idle_minutes + 1)
    with pytest.raises(NotPermitted, match="expired"):
        _station_user(lab.settings)


def test_a_session_idle_for_less_than_the_configured_time_is_still_live(lab: Lab) -> None:
    lab.login("admin")
    _make_idle(lab.settings, lab.settings.security.session_idle_minutes - 1)
    assert _station_user(lab.settings) == "admin"


def test_the_idle_time_comes_from_the_configuration(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.login("admin")
    _make_idle(lab.settings, 6)
    assert _station_user(lab.settings) == "admin"
    _make_idle(lab.settings, 6)
    lab.set_site(security={"session_idle_minutes": 5})
    with pytest.raises(NotPermitted, match="expired after 5 min"):
        _station_user(lab.settings)


def test_each_authenticated_unit_of_work_restarts_the_idle_clock(lab: Lab) -> None:
    lab.login("admin")
    idle_since = _make_idle(lab.settings, 20)
    before = utcnow()
    _station_user(lab.settings)
    last_seen = _live_login_session(lab.settings).last_seen_at
    assert last_seen > idle_since
    assert last_seen >= before - timedelta(seconds=1)


def test_session_view_expires_idle_minutes_after_last_seen(lab: Lab) -> None:
    lab.login("admin")
    with unit_of_work(lab.settings, write=False) as uow:
        view = sessions.current_session(uow)
    assert view.user.username == "admin"
    assert view.expires_at - view.last_seen_at == timedelta(
        minutes=lab.settings.security.session_idle_minutes
    )


def test_logout_ends_the_session_and_is_audited(lab: Lab) -> None:
    lab.login("admin")
    with unit_of_work(lab.settings, authenticated=False) as uow:
        assert sessions.logout(uow) == "admin"
    assert _login_sessions(lab.settings)[-1].end_reason == "logout"
    assert _actions(lab.settings, "admin")[-1] == "auth.logout"
    with pytest.raises(NotPermitted, match="ended"):
        _station_user(lab.settings)


def test_logout_without_a_session_writes_nothing(lab: Lab) -> None:
    before = lab.audit_count()
    with unit_of_work(lab.settings, authenticated=False) as uow:
        assert sessions.logout(uow) is None
    assert lab.audit_count() == before


def test_logging_in_at_a_station_replaces_its_previous_session(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    lab.login("tech")
    *_, admin_session, tech_session = _login_sessions(lab.settings)
    assert admin_session.ended_at is not None
    assert admin_session.end_reason == "replaced"
    assert tech_session.ended_at is None
    assert _trail(lab.settings, "tech")[-1].new == {"replaced_session_of": "admin"}
    assert _station_user(lab.settings) == "tech"


def test_no_session_file_means_not_logged_in(lab: Lab) -> None:
    with pytest.raises(NotPermitted, match="not logged in"):
        _station_user(lab.settings)


def test_a_token_the_database_does_not_know_is_refused(lab: Lab) -> None:
    auth.write_token(lab.settings, "forged-token")
    with pytest.raises(NotPermitted):
        _station_user(lab.settings)


# --- managing users -------------------------------------------------------------------


@pytest.mark.parametrize("role", ["technician", "qa"])
def test_only_admins_manage_users(lab: Lab, role: str) -> None:
    lab.add_user("someone", role)
    lab.login("someone")
    before = lab.audit_count()
    with unit_of_work(lab.settings) as uow:
        with pytest.raises(NotPermitted, match="only admin"):
            users.create_user(
                uow,
                username="other",
                full_name="Other Person",
                role="technician",
                password=PASSWORD,
            )
        with pytest.raises(NotPermitted, match="only admin"):
            users.deactivate_user(uow, username="admin", reason=None)
        with pytest.raises(NotPermitted, match="only admin"):
            users.unlock_user(uow, username="admin", reason=None)
        with pytest.raises(NotPermitted, match="only admin"):
            users.set_role(uow, username="admin", role="qa", reason="coup")
    assert lab.audit_count() == before


def test_managing_users_without_a_session_is_not_permitted(lab: Lab) -> None:
    with pytest.raises(NotPermitted, match="not logged in"):
        auth.require(None, "manage_users")


def test_admin_adds_a_user_and_the_creation_is_audited(lab: Lab) -> None:
    lab.login("admin")
    _add_user(lab.settings, "tech", full_name="Tom Tech")
    user = _user(lab.settings, "tech")
    assert (user.full_name, user.role, user.active) == ("Tom Tech", "technician", True)
    creation = _trail(lab.settings, "tech")[-1]
    assert creation.action == "user.create"
    assert creation.username == "admin"
    assert creation.new == {
        "full_name": "Tom Tech",
        "role": "technician",
        "active": True,
        "password_set_by_admin": True,
    }


@pytest.mark.parametrize(
    ("username", "fields", "field"),
    [
        ("Tech", {}, "name"),
        ("1tech", {}, "name"),
        ("t", {}, "name"),
        ("tom tech", {}, "name"),
        ("tech", {"role": "superuser"}, "role"),
        ("tech", {"password": "short"}, "password"),
        ("tech", {"password": "x" * 11}, "password"),
        ("technician01", {"password": "Technician01"}, "password"),
        ("tech", {"password": " " + PASSWORD}, "password"),
        ("tech", {"full_name": "Tom\x1b[31mTech"}, "full-name"),
        ("tech", {"full_name": "Tom\nTech"}, "full-name"),
        ("tech", {"full_name": "   "}, "full-name"),
    ],
)
def test_bad_user_details_are_refused_and_nothing_is_written(
    lab: Lab, username: str, fields: dict[str, str], field: str
) -> None:
    lab.login("admin")
    before = lab.audit_count()
    with pytest.raises(BadInput) as refused:
        _add_user(lab.settings, username, **fields)
    assert refused.value.field == field
    assert lab.audit_count() == before
    with unit_of_work(lab.settings, write=False) as uow:
        assert [view.username for view in users.list_users(uow)] == ["admin"]


def test_a_password_of_exactly_the_minimum_length_is_accepted(lab: Lab) -> None:
    lab.login("admin")
    _add_user(lab.settings, "tech", password="x" * lab.settings.security.password_min_length)
    assert _user(lab.settings, "tech").role == "technician"


def test_a_duplicate_user_name_is_refused(lab: Lab) -> None:
    lab.login("admin")
    before = lab.audit_count()
    with pytest.raises(RuleViolation, match="already exists"):
        _add_user(lab.settings, "admin")
    assert lab.audit_count() == before


def test_an_unknown_user_is_not_found(lab: Lab) -> None:
    lab.login("admin")
    with unit_of_work(lab.settings) as uow:
        with pytest.raises(NotFound):
            users.deactivate_user(uow, username="ghost", reason=None)
        with pytest.raises(NotFound):
            users.unlock_user(uow, username="ghost", reason=None)
        with pytest.raises(NotFound):
            users.set_role(uow, username="ghost", role="qa", reason="r")


def test_an_admin_cannot_deactivate_themself(lab: Lab) -> None:
    lab.add_user("boss", "admin")
    with pytest.raises(RuleViolation, match="yourself"), unit_of_work(lab.settings) as uow:
        users.deactivate_user(uow, username="admin", reason=None)
    assert _user(lab.settings, "admin").active


def test_an_admin_may_deactivate_another_admin(lab: Lab) -> None:
    lab.add_user("boss", "admin")
    with unit_of_work(lab.settings) as uow:
        users.deactivate_user(uow, username="boss", reason=None)
    assert not _user(lab.settings, "boss").active


def test_deactivating_an_already_deactivated_user_is_refused(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    with unit_of_work(lab.settings) as uow:
        users.deactivate_user(uow, username="tech", reason=None)
    with pytest.raises(RuleViolation, match="already"), unit_of_work(lab.settings) as uow:
        users.deactivate_user(uow, username="tech", reason=None)


def test_an_admin_cannot_change_their_own_role(lab: Lab) -> None:
    lab.add_user("boss", "admin")
    with pytest.raises(RuleViolation, match="own role"), unit_of_work(lab.settings) as uow:
        users.set_role(uow, username="admin", role="qa", reason="test")


def test_a_role_change_needs_a_reason_and_keeps_the_old_role_in_the_trail(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    for blank in ("", "   "):
        with pytest.raises(BadInput, match="reason"), unit_of_work(lab.settings) as uow:
            users.set_role(uow, username="tech", role="qa", reason=blank)
    assert _user(lab.settings, "tech").role == "technician"
    with unit_of_work(lab.settings) as uow:
        view = users.set_role(uow, username="tech", role="qa", reason="promoted")
    assert view.role == "qa"
    change = _trail(lab.settings, "tech")[-1]
    assert change.action == "user.role_change"
    assert (change.old, change.new, change.reason) == (
        {"role": "technician"},
        {"role": "qa"},
        "promoted",
    )
    assert change.username == "admin"


def test_a_role_change_to_an_unknown_role_is_bad_input(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    with pytest.raises(BadInput, match="role"), unit_of_work(lab.settings) as uow:
        users.set_role(uow, username="tech", role="boss", reason="r")


# --- initialising ---------------------------------------------------------------------


def test_initialise_creates_the_schema_and_the_first_admin(settings: Settings) -> None:
    view = users.initialise(settings, username="ada", full_name="Ada Admin", password=PASSWORD)
    assert (view.username, view.role, view.active) == ("ada", "admin", True)
    assert _actions(settings, "ada") == ["user.create"]


def test_initialise_is_refused_once_a_user_exists(lab: Lab) -> None:
    before = lab.audit_count()
    with pytest.raises(RuleViolation, match="already initialised"):
        users.initialise(lab.settings, username="eve", full_name="Eve Admin", password=PASSWORD)
    assert lab.audit_count() == before
    with pytest.raises(NotFound):
        _user(lab.settings, "eve")


def test_initialise_with_a_bad_password_creates_no_database(settings: Settings) -> None:
    with pytest.raises(BadInput, match="password"):
        users.initialise(settings, username="ada", full_name="Ada Admin", password="short")
    if ON_POSTGRES:
        with db.engine_for(settings).connect() as connection:
            assert db.stored_revision(connection) is None
    else:
        assert settings.sqlite_path is not None
        assert not settings.sqlite_path.exists()
