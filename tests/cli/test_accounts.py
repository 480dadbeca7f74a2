"""`lims passwd`, `lims user reset-password` and a pending password change: wiring, messages
and exit codes (the rules themselves: tests/services/test_accounts.py)."""

from __future__ import annotations

import json

from tests.support.cli import Invocation, invoke, refused
from tests.support.lab import PASSWORD, Lab

TEMPORARY = "temporary password 1"
OWN = "my own password 22"
CHANGE = "change your password with lims passwd"


def _passwd(current: str, new: str, *extra: str) -> Invocation:
    return invoke("passwd", "--password-stdin", *extra, input=f"{current}\n{new}\n")


def _login(name: str, password: str) -> Invocation:
    return invoke("login", name, "--password-stdin", input=password + "\n")


def test_a_new_user_changes_the_admins_password_before_anything_else(lab: Lab) -> None:
    lab.login("admin")
    added = invoke(
        "user", "add", "tom", "--full-name", "Tom Tech", "--role", "technician",
        "--password-stdin", input=TEMPORARY + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    logged_in = _login("tom", TEMPORARY)
    assert logged_in.exit_code == 0, logged_in.stderr
    assert f"your password was set by an admin: {CHANGE}" in logged_in.stdout
    refused(invoke("patient", "list"), 4, f"set by an admin: {CHANGE}")
    shown = json.loads(invoke("whoami", "--json").stdout)
    assert shown["password_change_due"] == "your password was set by an admin"
    refused(_passwd(TEMPORARY, TEMPORARY), 1, "one of your last 5 passwords")
    refused(_passwd("not the password", OWN), 4, "wrong current password")
    refused(_passwd(TEMPORARY, "short"), 2, "password")
    changed = _passwd(TEMPORARY, OWN, "--json")
    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout)["username"] == "tom"
    assert invoke("patient", "list").exit_code == 0
    assert json.loads(invoke("whoami", "--json").stdout)["password_change_due"] is None


def test_passwd_needs_a_session(lab: Lab) -> None:
    refused(_passwd(PASSWORD, OWN), 4, "not logged in")


def test_passwd_prompts_for_the_current_password_then_the_new_one_twice(lab: Lab) -> None:
    lab.login("admin")
    result = invoke("passwd", input=f"{PASSWORD}\n{OWN}\n{OWN}\n")
    assert result.exit_code == 0, result.stderr
    assert "Password changed for admin (Ada Admin)." in result.stdout
    assert _login("admin", OWN).exit_code == 0


def test_user_reset_password_is_an_admins_and_audited(lab: Lab) -> None:
    lab.add_user("tom", "technician")
    lab.login("tom")
    refused(
        invoke("user", "reset-password", "admin", "--password-stdin", input=TEMPORARY + "\n"),
        4,
        "only admin may manage users",
    )
    lab.login("admin")
    reset = invoke(
        "user", "reset-password", "tom", "--reason", "forgot it", "--password-stdin", "--json",
        input=TEMPORARY + "\n",
    )  # fmt: skip
    assert reset.exit_code == 0, reset.stderr
    refused(
        invoke("user", "reset-password", "admin", "--password-stdin", input=TEMPORARY + "\n"),
        1,
        "lims passwd",
    )
    trail = json.loads(invoke("audit", "log", "--entity", "user:tom", "--json").stdout)
    assert (trail[-1]["action"], trail[-1]["user"], trail[-1]["full_name"]) == (
        "user.password_reset",
        "admin",
        "Ada Admin",
    )
    log = invoke("audit", "log", "--entity", "user:tom").stdout
    assert "Ada Admin (admin)" in log


def test_user_add_refuses_a_full_name_another_active_user_has(lab: Lab) -> None:
    lab.login("admin")
    result = invoke(
        "user", "add", "ada2", "--full-name", "ada  ADMIN", "--role", "admin",
        "--password-stdin", input=TEMPORARY + "\n",
    )  # fmt: skip
    refused(result, 1, "already admin's (Ada Admin)")
