"""The user and session commands: what they print, what they refuse, and their exit codes."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text, update
from sqlmodel import col, select

from lims import audit, auth, db
from lims.config import Settings
from lims.models import LoginSession, User
from lims.services import users
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views import to_json
from tests.support.cli import Invocation, invoke, refused
from tests.support.lab import ON_POSTGRES, PASSWORD, Lab

WRONG_PASSWORD = "not the password at all"
USER_KEYS = {
    "username",
    "full_name",
    "role",
    "active",
    "locked",
    "failed_logins",
    "created_at",
    "last_login_at",
}
SESSION_KEYS = {"username", "full_name", "role", "session_started_at", "session_expires_at"}


def _login(name: str, password: str = PASSWORD, *extra: str) -> Invocation:
    return invoke("login", name, "--password-stdin", *extra, input=password + "\n")


def _init(*extra: str, password: str = PASSWORD) -> Invocation:
    return invoke(
        "init", "--admin", "ada", "--full-name", "Ada Admin", *extra, "--password-stdin",
        input=password + "\n",
    )  # fmt: skip


def _add(name: str, *extra: str, role: str = "technician", password: str = PASSWORD) -> Invocation:
    return invoke(
        "user", "add", name, "--full-name", "Tom Tech", "--role", role, "--password-stdin", *extra,
        input=password + "\n",
    )  # fmt: skip


def _ok(result: Invocation) -> Invocation:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result


def _json(result: Invocation) -> Any:
    return json.loads(_ok(result).stdout)


def _state(settings: Settings) -> tuple[int, list[dict[str, Any]]]:
    """The audit trail's length and every user's record: what a refused command must not change."""
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return len(audit.entries(uow.session)), [
            to_json(users.user_view(user))
            for user in uow.session.exec(select(User).order_by(col(User.username)))
        ]


def _usernames(settings: Settings) -> list[str]:
    return [user["username"] for user in _state(settings)[1]]


def _trail(username: str) -> list[dict[str, Any]]:
    return _json(invoke("audit", "log", "--entity", f"user:{username}", "--json"))


def _login_sessions(settings: Settings) -> list[dict[str, Any]]:
    with db.engine_for(settings).connect() as connection:
        rows = connection.execute(text("SELECT * FROM login_sessions ORDER BY id")).mappings()
        return [dict(row) for row in rows]


def _make_idle(settings: Settings, minutes: float) -> None:
    with db.engine_for(settings).begin() as connection:
        connection.execute(
            update(LoginSession)
            .where(col(LoginSession.ended_at).is_(None))
            .values(last_seen_at=utcnow() - timedelta(minutes=minutes))
        )


def _live_last_seen(settings: Settings) -> Any:
    (live,) = [row for row in _login_sessions(settings) if row["ended_at"] is None]
    return live["last_seen_at"]


def _move_to_station(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    monkeypatch.setenv("LIMS_HOME", str(tmp_path / name))


# --- lims init ------------------------------------------------------------------------


def test_init_creates_the_database_and_its_first_admin(settings: Settings) -> None:
    result = _ok(_init())
    assert "administrator ada created" in result.stdout
    assert "lims login ada" in result.stdout
    if not ON_POSTGRES:
        assert settings.sqlite_path is not None
        assert settings.sqlite_path.exists()
    (admin,) = _state(settings)[1]
    assert (admin["username"], admin["full_name"], admin["role"]) == ("ada", "Ada Admin", "admin")
    assert admin["active"] is True


def test_init_json_shows_the_new_admin(settings: Settings) -> None:
    shown = _json(_init("--json"))
    assert set(shown) == USER_KEYS
    assert (shown["username"], shown["role"]) == ("ada", "admin")


def test_a_second_init_is_refused_and_writes_nothing(lab: Lab) -> None:
    before = _state(lab.settings)
    refused(_init(), 1, "already initialised")
    assert _state(lab.settings) == before


@pytest.mark.parametrize(
    ("extra", "password", "field"),
    [
        ((), "short", "password"),
        ((), "x" * 11, "password"),
        (("--full-name", "Ada\x07Admin"), PASSWORD, "full-name"),
    ],
)
def test_init_with_bad_input_exits_2_and_creates_no_database(
    settings: Settings, extra: tuple[str, ...], password: str, field: str
) -> None:
    refused(_init(*extra, password=password), 2, f"{field}:")
    if ON_POSTGRES:
        with db.engine_for(settings).connect() as connection:
            assert db.stored_revision(connection) is None
    else:
        assert settings.sqlite_path is not None
        assert not settings.sqlite_path.exists()


def test_init_with_a_bad_admin_name_exits_2_and_creates_no_database(settings: Settings) -> None:
    result = invoke(
        "init", "--admin", "Ada Admin", "--full-name", "Ada Admin", "--password-stdin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    refused(result, 2, "admin:")
    if not ON_POSTGRES:
        assert settings.sqlite_path is not None
        assert not settings.sqlite_path.exists()


def test_init_prompts_for_the_password_twice(settings: Settings) -> None:
    result = invoke(
        "init", "--admin", "ada", "--full-name", "Ada Admin", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    _ok(result)
    assert PASSWORD not in result.stdout
    assert _usernames(settings) == ["ada"]


# --- who may manage users -------------------------------------------------------------

ADMIN_ONLY_WRITES = [
    ("user", "add", "other", "--full-name", "Other Person", "--role", "technician",
     "--password-stdin"),
    ("user", "deactivate", "admin"),
    ("user", "unlock", "admin"),
    ("user", "set-role", "admin", "qa", "--reason", "takeover"),
]  # fmt: skip


@pytest.mark.parametrize("role", ["technician", "qa"])
def test_only_an_admin_may_add_deactivate_unlock_or_change_roles(lab: Lab, role: str) -> None:
    lab.add_user("someone", role)
    lab.login("someone")
    before = _state(lab.settings)
    for command in ADMIN_ONLY_WRITES:
        message = refused(invoke(*command, input=PASSWORD + "\n"), 4)
        assert f"someone is {role}; only admin may manage users" in message, command
    assert _state(lab.settings) == before


@pytest.mark.parametrize("role", ["technician", "qa"])
def test_only_an_admin_may_list_users(lab: Lab, role: str) -> None:
    lab.add_user("someone", role)
    lab.login("someone")
    refused(invoke("user", "list"), 4, "only admin")


def test_user_commands_need_a_session(lab: Lab) -> None:
    before = _state(lab.settings)
    for command in [*ADMIN_ONLY_WRITES, ("user", "list")]:
        refused(invoke(*command, input=PASSWORD + "\n"), 4, "not logged in")
    assert _state(lab.settings) == before


# --- lims user add / list -------------------------------------------------------------


def test_admin_adds_a_user_and_it_is_audited(lab: Lab) -> None:
    lab.login("admin")
    shown = _json(_add("tech", "--json"))
    assert set(shown) == USER_KEYS
    assert shown["username"] == "tech"
    assert shown["full_name"] == "Tom Tech"
    assert shown["role"] == "technician"
    assert (shown["active"], shown["locked"], shown["failed_logins"]) == (True, False, 0)
    (creation,) = _trail("tech")
    assert creation["action"] == "user.create"
    assert creation["user"] == "admin"
    assert creation["new"] == {
        "full_name": "Tom Tech",
        "role": "technician",
        "active": True,
        "password_set_by_admin": True,
    }


def test_user_add_shows_the_user_as_a_table(lab: Lab) -> None:
    lab.login("admin")
    result = _ok(_add("tech"))
    assert "User added" in result.stdout
    assert "technician" in result.stdout


def test_user_list_shows_every_user_with_their_state(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    listed = _json(invoke("user", "list", "--json"))
    assert [user["username"] for user in listed] == ["admin", "tech"]
    assert all(set(user) == USER_KEYS for user in listed)
    assert [user["role"] for user in listed] == ["admin", "technician"]
    table = _ok(invoke("user", "list")).stdout
    assert "admin" in table
    assert "technician" in table


@pytest.mark.parametrize(
    ("name", "extra", "password", "field"),
    [
        ("Bad Name", (), PASSWORD, "name"),
        ("1tech", (), PASSWORD, "name"),
        ("t", (), PASSWORD, "name"),
        ("tech", ("--role", "superuser"), PASSWORD, "role"),
        ("tech", (), "short", "password"),
        ("technician01", (), "Technician01", "password"),
        ("tech", ("--full-name", "Tom\x1b[31mTech"), PASSWORD, "full-name"),
        ("tech", ("--full-name", "Tom\tTech"), PASSWORD, "full-name"),
    ],
)
def test_bad_user_details_exit_2_and_write_nothing(
    lab: Lab, name: str, extra: tuple[str, ...], password: str, field: str
) -> None:
    lab.login("admin")
    before = _state(lab.settings)
    refused(_add(name, *extra, password=password), 2, f"{field}:")
    assert _state(lab.settings) == before


def test_adding_a_user_that_exists_is_refused(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    before = _state(lab.settings)
    refused(_add("tech"), 1, "already exists")
    assert _state(lab.settings) == before


@pytest.mark.parametrize(
    "command",
    [
        ("user", "deactivate", "ghost"),
        ("user", "unlock", "ghost"),
        ("user", "set-role", "ghost", "qa", "--reason", "promoted"),
    ],
)
def test_an_unknown_user_is_not_found(lab: Lab, command: tuple[str, ...]) -> None:
    lab.login("admin")
    before = _state(lab.settings)
    refused(invoke(*command), 3, "ghost")
    assert _state(lab.settings) == before


# --- lims user deactivate / unlock / set-role -----------------------------------------


def test_an_admin_cannot_deactivate_themself(lab: Lab) -> None:
    lab.login("admin")
    before = _state(lab.settings)
    refused(invoke("user", "deactivate", "admin"), 1, "yourself")
    assert _state(lab.settings) == before


def test_deactivate_is_audited_with_its_reason(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    shown = _json(invoke("user", "deactivate", "tech", "--reason", "left the lab", "--json"))
    assert shown["active"] is False
    deactivation = _trail("tech")[-1]
    assert deactivation["action"] == "user.deactivate"
    assert deactivation["old"] == {"active": True}
    assert deactivation["reason"] == "left the lab"


def test_set_role_requires_a_reason(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    before = _state(lab.settings)
    refused(invoke("user", "set-role", "tech", "qa"), 2, "--reason")
    refused(invoke("user", "set-role", "tech", "qa", "--reason", " "), 2, "reason:")
    assert _state(lab.settings) == before


def test_set_role_to_an_unknown_role_exits_2(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    before = _state(lab.settings)
    refused(invoke("user", "set-role", "tech", "boss", "--reason", "promoted"), 2, "role:")
    assert _state(lab.settings) == before


def test_set_role_changes_the_role_and_keeps_the_old_one_in_the_trail(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    shown = _json(invoke("user", "set-role", "tech", "qa", "--reason", "promoted", "--json"))
    assert shown["role"] == "qa"
    change = _trail("tech")[-1]
    assert change["action"] == "user.role_change"
    assert change["old"] == {"role": "technician"}
    assert change["new"] == {"role": "qa"}
    assert change["reason"] == "promoted"
    assert change["user"] == "admin"


# --- passwords and the session file ---------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes(lab: Lab) -> None:
    lab.login("admin")
    _ok(_add("tech"))
    with db.engine_for(lab.settings).connect() as connection:
        stored = connection.execute(
            text("SELECT password_hash FROM users WHERE username = 'tech'")
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


def test_login_writes_a_private_session_file_whose_hash_is_in_the_database(lab: Lab) -> None:
    _ok(_login("admin"))
    path = lab.settings.home / "session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    (row,) = _login_sessions(lab.settings)
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(value) for value in row.values()}


def test_a_session_file_readable_by_others_is_refused(lab: Lab) -> None:
    _ok(_login("admin"))
    (lab.settings.home / "session").chmod(0o644)
    refused(invoke("whoami"), 4, "readable by others")


# --- lims login / whoami / logout -----------------------------------------------------


def test_login_with_the_right_password_starts_a_session(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    result = _ok(_login("tech"))
    assert "Logged in as tech (Tech Tester, technician)" in result.stdout
    shown = _json(invoke("whoami", "--json"))
    assert set(shown) >= SESSION_KEYS
    assert (shown["username"], shown["full_name"], shown["role"]) == (
        "tech",
        "Tech Tester",
        "technician",
    )
    table = _ok(invoke("whoami")).stdout
    assert "tech" in table
    assert "technician" in table


def test_login_json_shows_the_session(lab: Lab) -> None:
    shown = _json(_login("admin", PASSWORD, "--json"))
    assert set(shown) >= SESSION_KEYS
    assert shown["username"] == "admin"


def test_whoami_without_a_session_is_not_permitted(lab: Lab) -> None:
    refused(invoke("whoami"), 4, "not logged in")


def test_a_wrong_password_exits_4_and_the_failure_is_audited(lab: Lab) -> None:
    before = lab.audit_count()
    refused(_login("admin", WRONG_PASSWORD), 4, auth.FAILED_LOGIN_MESSAGE)
    assert lab.audit_count() == before + 1
    assert not (lab.settings.home / "session").exists()
    lab.login("admin")
    failure = [entry for entry in _trail("admin") if entry["action"] == "auth.login_failed"]
    assert len(failure) == 1
    assert failure[0]["reason"] == "wrong password"


def test_an_unknown_user_gets_the_same_message_as_a_wrong_password(lab: Lab) -> None:
    wrong_password = refused(_login("admin", WRONG_PASSWORD), 4)
    unknown_user = refused(_login("nobody", WRONG_PASSWORD), 4)
    assert unknown_user == wrong_password


def test_an_account_locks_after_the_configured_number_of_failures_until_unlocked(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_user("tech", "technician")
    lab.set_site(security={"lockout_threshold": 3})
    for _ in range(2):
        refused(_login("tech", WRONG_PASSWORD), 4)
    refused(_login("tech", WRONG_PASSWORD), 4, "now locked", "lims user unlock tech")
    assert [entry["action"] for entry in _trail("tech")][-2:] == [
        "auth.login_failed",
        "auth.lockout",
    ]
    refused(_login("tech"), 4, "locked")
    shown = _json(invoke("user", "unlock", "tech", "--reason", "identity confirmed", "--json"))
    assert (shown["locked"], shown["failed_logins"]) == (False, 0)
    _ok(_login("tech"))


def test_the_default_lockout_is_five_failures(lab: Lab) -> None:
    for _ in range(4):
        refused(_login("admin", WRONG_PASSWORD), 4)
    refused(_login("admin", WRONG_PASSWORD), 4, "now locked")


def test_a_successful_login_resets_the_failure_count(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.set_site(security={"lockout_threshold": 2})
    refused(_login("admin", WRONG_PASSWORD), 4)
    _ok(_login("admin"))
    refused(_login("admin", WRONG_PASSWORD), 4)
    (admin,) = _state(lab.settings)[1]
    assert (admin["locked"], admin["failed_logins"]) == (False, 1)


def test_unlocking_a_user_that_is_not_locked_is_refused(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    refused(invoke("user", "unlock", "tech"), 1, "not locked")


def test_a_deactivated_user_cannot_log_in(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    _ok(invoke("user", "deactivate", "tech"))
    refused(_login("tech"), 4, "deactivated")
    assert _json(invoke("whoami", "--json"))["username"] == "admin"


def test_deactivating_a_user_ends_their_session_at_another_station_at_once(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab.add_user("tech", "technician")
    _move_to_station(monkeypatch, tmp_path, "bench")
    _ok(_login("tech"))
    _ok(invoke("whoami"))
    monkeypatch.setenv("LIMS_HOME", str(lab.settings.home))
    _ok(invoke("user", "deactivate", "tech", "--reason", "left the lab"))
    _move_to_station(monkeypatch, tmp_path, "bench")
    refused(invoke("whoami"), 4)
    tech_session = _login_sessions(lab.settings)[-1]
    assert tech_session["end_reason"] == "deactivated"


def test_an_idle_session_expires(lab: Lab) -> None:
    _ok(_login("admin"))
    _make_idle(lab.settings, lab.settings.security.session_idle_minutes + 1)
    refused(invoke("user", "list"), 4, "expired")


def test_the_configured_idle_time_is_used(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    lab.set_site(security={"session_idle_minutes": 5})
    _ok(_login("admin"))
    _make_idle(lab.settings, 6)
    refused(invoke("whoami"), 4, "expired after 5 min idle")


def test_each_authenticated_command_restarts_the_idle_clock(lab: Lab) -> None:
    _ok(_login("admin"))
    _make_idle(lab.settings, 20)
    idle_since = _live_last_seen(lab.settings)
    _ok(invoke("whoami"))
    assert _live_last_seen(lab.settings) > idle_since
    _make_idle(lab.settings, 20)
    _ok(invoke("user", "list"))
    assert _live_last_seen(lab.settings) > idle_since


def test_logout_ends_the_session_and_is_audited(lab: Lab) -> None:
    _ok(_login("admin"))
    assert "Logged out admin." in _ok(invoke("logout")).stdout
    assert not (lab.settings.home / "session").exists()
    refused(invoke("whoami"), 4)
    assert _login_sessions(lab.settings)[-1]["end_reason"] == "logout"
    with unit_of_work(lab.settings, write=False, authenticated=False) as uow:
        assert audit.entries(uow.session, entity_id="admin")[-1].action == "auth.logout"


def test_logout_without_a_session_says_so(lab: Lab) -> None:
    before = _state(lab.settings)
    assert "No session was open" in _ok(invoke("logout")).stdout
    assert _state(lab.settings) == before


def test_logging_in_replaces_the_stations_previous_session(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    _ok(_login("tech"))
    *_, admin_session, tech_session = _login_sessions(lab.settings)
    assert admin_session["end_reason"] == "replaced"
    assert admin_session["ended_at"] is not None
    assert tech_session["ended_at"] is None
    assert _json(invoke("whoami", "--json"))["username"] == "tech"


# --- password prompts -----------------------------------------------------------------


def test_user_add_prompts_for_the_password_twice(lab: Lab) -> None:
    lab.login("admin")
    result = invoke(
        "user", "add", "tech", "--full-name", "Tom Tech", "--role", "technician",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    _ok(result)
    assert PASSWORD not in result.stdout
    _ok(_login("tech"))


def test_user_add_with_mismatched_password_confirmation_writes_nothing(lab: Lab) -> None:
    lab.login("admin")
    before = _state(lab.settings)
    result = invoke(
        "user", "add", "tech", "--full-name", "Tom Tech", "--role", "technician",
        input=f"{PASSWORD}\n{WRONG_PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert _state(lab.settings) == before


def test_login_prompts_for_the_password(lab: Lab) -> None:
    result = invoke("login", "admin", input=PASSWORD + "\n")
    _ok(result)
    assert PASSWORD not in result.stdout
    assert "Logged in as admin" in result.stdout


def test_password_stdin_with_no_password_is_bad_input(lab: Lab) -> None:
    refused(invoke("login", "admin", "--password-stdin", input=""), 2, "password:")
