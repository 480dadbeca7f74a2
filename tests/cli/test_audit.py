"""`lims audit verify` and `lims audit log`: what they print, refuse and need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lims.config import Settings
from tests.support.cli import invoke
from tests.support.lab import PASSWORD, Lab
from tests.support.trail import ENTRIES, _tamper


def test_audit_verify_command_reports_intact_and_broken(trail: Settings) -> None:
    intact = invoke("audit", "verify", "--json")
    assert intact.exit_code == 0
    report = json.loads(intact.stdout)
    assert report["intact"] is True
    assert report["entries"] == ENTRIES + 1
    assert report["first_bad_seq"] is None
    _tamper(trail, "UPDATE audit_entries SET reason = 'x' WHERE seq = 5")
    broken = invoke("audit", "verify")
    assert broken.exit_code == 1
    assert broken.stderr.strip().splitlines() == [broken.stderr.strip()]
    assert "entry 5" in broken.stderr
    broken_json = invoke("audit", "verify", "--json")
    assert broken_json.exit_code == 1
    assert json.loads(broken_json.stdout)["first_bad_seq"] == 5


def test_audit_verify_needs_no_session_but_audit_log_does(lab: Lab) -> None:
    assert invoke("audit", "verify").exit_code == 0
    refused = invoke("audit", "log")
    assert refused.exit_code == 4


def test_audit_log_filters_by_entity_user_time_and_count(lab: Lab) -> None:
    lab.add_user("tech", "technician")
    lab.login("tech")
    everything = json.loads(invoke("audit", "log", "--json").stdout)
    assert [entry["seq"] for entry in everything] == sorted(entry["seq"] for entry in everything)
    assert {
        "seq",
        "at",
        "user",
        "action",
        "entity_type",
        "entity_id",
        "old",
        "new",
        "reason",
    } <= set(everything[0])
    about_tech = json.loads(invoke("audit", "log", "--entity", "user:tech", "--json").stdout)
    assert {entry["action"] for entry in about_tech} == {
        "user.create",
        "auth.login",
        "user.password_change",  # the admin's password, changed at first login
    }
    assert all(entry["entity_id"] == "tech" for entry in about_tech)
    by_admin = json.loads(invoke("audit", "log", "--user", "admin", "--json").stdout)
    assert by_admin
    assert all(entry["user"] == "admin" for entry in by_admin)
    assert json.loads(invoke("audit", "log", "--since", "2999-01-01", "--json").stdout) == []
    newest = json.loads(invoke("audit", "log", "--last", "2", "--json").stdout)
    assert [entry["seq"] for entry in newest] == [entry["seq"] for entry in everything[-2:]]
    table = invoke("audit", "log", "--entity", "user")
    assert table.exit_code == 0
    assert "user.create" in table.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("--entity", ":tech"), "entity"),
        (("--since", "yesterday"), "since"),
        (("--last", "0"), "last"),
    ],
)
def test_audit_log_refuses_bad_filters(lab: Lab, args: tuple[str, str], field: str) -> None:
    lab.login("admin")
    result = invoke("audit", "log", *args)
    assert result.exit_code == 2
    assert field in result.stderr


def test_failed_logins_are_on_the_trail_without_the_password(lab: Lab, tmp_path: Path) -> None:
    invoke("login", "admin", "--password-stdin", input="not the password\n")
    lab.login("admin")
    log = invoke("audit", "log", "--json").stdout
    assert "auth.login_failed" in log
    assert "not the password" not in log
    assert PASSWORD not in log
