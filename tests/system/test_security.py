"""Security review (issue 6), end to end through the CLI.

What the other tests already prove, and this file does not repeat:

- tests/services/test_auth.py and tests/cli/test_users.py: passwords are argon2id hashes;
  the database keeps only the SHA-256 of a session token; `lims login` writes the
  session file 0600 and a file at 0644, 0640 or 0604 is refused (exit 4); idle
  expiry, the configured idle time and the idle clock restarting on each command;
  deactivation ends the user's session at another station (`whoami` exit 4);
  lockout, and the same message for an unknown user as for a wrong password;
  `lims user ...` refused without a session and for non-admins.
- tests/cli/test_vials.py: admin may not verify, issue or destroy vials;
  tests/cli/test_lots.py: a technician may not release.

What this file adds:

1. The session file: the directory lims creates for it is 0700; a file others
   could read or write is refused with a message naming the file and the fix, and
   the token in it is revoked at once (also at the next login or logout), so
   whoever read it cannot use it either; a symbolic link, a file of another
   account, or a named pipe at the session path is refused, never followed, read
   or waited on.
2. Expiry: an expired session is ended on record and cannot be revived, not even
   by a longer idle setting; a busy session still ends [security] session_max_hours after login.
3. Deactivation kills the session at once for a command of every area, and a role
   change takes effect on the user's next command.
4. Every command checks its role: the commands are enumerated from
   lims.cli.app.COMMANDS, each has an entry in COMMAND_RULES (a new command
   without one fails the test), and each is run with no session and as every
   role lacking its permission: exit 4 naming the role, and nothing written.
5. No password or session token of a realistic workflow appears in any output,
   any row of any table, the audit trail, any file, or any error message; a
   database password is masked wherever lims shows the URL.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from argon2 import PasswordHasher
from sqlalchemy import inspect, text, update
from sqlmodel import col

from lims import auth, db
from lims.cli.app import COMMANDS, load_command
from lims.config import Settings
from lims.domain.payload import Payload
from lims.models import LoginSession, Lot, Patient
from lims.roles import GRANTS, PERMISSION_WORDS, ROLES
from lims.services import lookup
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.cli import Invocation, csf_vehicle, invoke, ok, refused
from tests.support.instrument_files import BLU
from tests.support.lab import ON_POSTGRES, PASSWORD, Lab
from tests.support.quality import PASSING

COLLECTED = (utcnow() - timedelta(days=10)).replace(microsecond=0)
PATIENT = "PT-0001"
SHELF_LIFE = "2000"


def at(days: float) -> str:
    return (COLLECTED + timedelta(days=days)).isoformat()


# --- helpers ------------------------------------------------------------------------------------


def dump(settings: Settings) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table, as text: what a refused command must leave as it was."""
    engine = db.engine_for(settings)
    tables: dict[str, list[tuple[str, ...]]] = {}
    with engine.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
            tables[table] = sorted(tuple(str(value) for value in row) for row in rows)
    return tables


def login_sessions(settings: Settings) -> list[dict[str, Any]]:
    with db.engine_for(settings).connect() as connection:
        rows = connection.execute(text("SELECT * FROM login_sessions ORDER BY id")).mappings()
        return [dict(row) for row in rows]


def token_session(settings: Settings, token: str) -> dict[str, Any]:
    (found,) = [s for s in login_sessions(settings) if s["token_hash"] == auth._token_hash(token)]
    return found


def audit_actions(settings: Settings) -> list[str]:
    with db.engine_for(settings).connect() as connection:
        return list(
            connection.execute(text("SELECT action FROM audit_entries ORDER BY seq")).scalars()
        )


def station_token(settings: Settings) -> str:
    return auth.session_file(settings).read_text().strip()


def move_sessions_back(settings: Settings, *, started: timedelta, seen: timedelta) -> None:
    now = utcnow()
    with db.engine_for(settings).begin() as connection:
        connection.execute(
            update(LoginSession)
            .where(col(LoginSession.ended_at).is_(None))
            .values(started_at=now - started, last_seen_at=now - seen)
        )


# --- 1. the session file ------------------------------------------------------------------------


def test_the_session_directory_lims_creates_is_private(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "fresh" / "station"
    monkeypatch.setenv("LIMS_HOME", str(home))
    previous = os.umask(0o022)
    try:
        ok("login", "admin", "--password-stdin", input=PASSWORD + "\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "session").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602], ids=lambda m: f"{m:o}")
def test_a_session_file_others_can_reach_is_refused_and_its_token_revoked(
    lab: Lab, mode: int
) -> None:
    settings = lab.settings
    lab.login("admin")
    path = auth.session_file(settings)
    token = station_token(settings)
    before = token_session(settings, token)
    path.chmod(mode)
    line = refused(invoke("patient", "list"), 4, str(path), f"mode {mode:o}", "lims login")
    assert "by others" in line
    assert "not used" in line
    # The token was not used: its idle clock did not move, and it is dead for anyone who read it.
    exposed = token_session(settings, token)
    assert exposed["last_seen_at"] == before["last_seen_at"]
    assert exposed["end_reason"] == "exposed"
    assert audit_actions(settings)[-1] == "auth.session_end"
    path.chmod(0o600)
    refused(invoke("patient", "list"), 4, "session ended (exposed)")
    auth.write_token(settings, token)  # a copy in another station's private file: still dead
    refused(invoke("whoami"), 4, "session ended (exposed)")


def test_an_exposed_token_also_dies_at_the_next_login_or_logout(lab: Lab) -> None:
    settings = lab.settings
    lab.login("admin")
    first = station_token(settings)
    auth.session_file(settings).chmod(0o644)
    ok("login", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert token_session(settings, first)["end_reason"] == "exposed"
    second = station_token(settings)
    auth.session_file(settings).chmod(0o640)
    assert invoke("logout").exit_code == 0
    assert token_session(settings, second)["end_reason"] == "exposed"
    assert not auth.session_file(settings).exists()
    assert [s["ended_at"] is not None for s in login_sessions(settings)] == [True, True]


def test_a_symlinked_session_file_is_refused_and_not_followed(lab: Lab, tmp_path: Path) -> None:
    settings = lab.settings
    lab.login("admin")
    path = auth.session_file(settings)
    elsewhere = tmp_path / "shared" / "token"
    elsewhere.parent.mkdir()
    path.rename(elsewhere)  # still 0600: only the link is wrong
    path.symlink_to(elsewhere)
    before = dump(settings)
    refused(invoke("patient", "list"), 4, str(path), "symbolic link", "lims login")
    assert dump(settings) == before
    ok("login", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="chown needs root")
def test_a_session_file_of_another_account_is_refused(lab: Lab) -> None:
    settings = lab.settings
    lab.login("admin")
    token = station_token(settings)
    os.chown(auth.session_file(settings), 65534, 65534)
    refused(invoke("whoami"), 4, "another account", "lims login")
    assert token_session(settings, token)["end_reason"] == "exposed"


def test_a_named_pipe_at_the_session_path_is_refused_without_waiting(lab: Lab) -> None:
    path = auth.session_file(lab.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path, 0o600)
    results: list[Invocation] = []
    worker = threading.Thread(target=lambda: results.append(invoke("whoami")), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "lims waited for a writer on a named pipe"
    refused(results[0], 4, str(path), "not a regular file")


@pytest.mark.skipif(ON_POSTGRES, reason="the SQLite file only")
def test_the_database_lims_init_creates_is_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "new-home"
    monkeypatch.setenv("LIMS_HOME", str(home))
    monkeypatch.delenv("LIMS_DATABASE_URL")
    previous = os.umask(0o022)
    try:
        result = invoke(
            "init", "--admin", "ada", "--full-name", "Ada", "--password-stdin", input=SIGNED
        )
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    for path in (home, home / "lims.db", home / "lims.db-wal", home / "lims.db-shm"):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


# --- 2. expiry ----------------------------------------------------------------------------------


def test_an_expired_session_is_ended_and_a_longer_idle_time_does_not_revive_it(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = lab.settings
    lab.login("admin")
    token = station_token(settings)
    idle = settings.security.session_idle_minutes
    move_sessions_back(settings, started=timedelta(hours=1), seen=timedelta(minutes=idle + 1))
    refused(invoke("patient", "list"), 4, f"expired after {idle} min idle", "lims login")
    ended = token_session(settings, token)
    assert ended["end_reason"] == "expired"
    assert audit_actions(settings)[-1] == "auth.session_end"
    lab.set_site(security={"session_idle_minutes": 1440})
    before = dump(settings)
    refused(invoke("patient", "list"), 4, "session ended (expired)")
    refused(invoke("whoami"), 4, "session ended (expired)")
    assert dump(settings) == before


@pytest.mark.parametrize("hours", [12, 3])
def test_a_busy_session_still_ends_after_its_maximum_lifetime(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, hours: int
) -> None:
    settings = lab.settings
    if hours != settings.security.session_max_hours:  # the packaged default is 12
        lab.set_site(security={"session_max_hours": hours})
    lab.login("admin")
    limit = timedelta(hours=hours)
    move_sessions_back(settings, started=limit - timedelta(minutes=2), seen=timedelta(minutes=1))
    assert ok("whoami")["username"] == "admin"
    move_sessions_back(settings, started=limit + timedelta(minutes=1), seen=timedelta(0))
    refused(invoke("whoami"), 4, f"after {hours} h", "lims login")
    assert login_sessions(settings)[-1]["end_reason"] == "expired"


# --- 4. every command checks its role (the table, used by 3 as well) ----------------------------


@dataclass(frozen=True)
class Rule:
    """Who may run a command, and a well-formed invocation of it on the world below."""

    args: tuple[str, ...] = ()
    permission: str | None = None  # None: needs no session (exempt says why)
    exempt: str = ""
    stdin: str | None = None
    sqlite_only: bool = False
    harmless: bool = False  # exempt and cheap: run it without a session; it changes nothing

    @property
    def roles(self) -> frozenset[str]:
        return GRANTS[self.permission] if self.permission else frozenset(ROLES)


SIGNED = PASSWORD + "\n"

COMMAND_RULES: dict[str, Rule] = {
    "init": Rule(exempt="creates the first admin of an empty database; refused once users exist"),
    "login": Rule(exempt="starts a session: it checks the password instead"),
    "logout": Rule(exempt="ends whatever session the station holds", harmless=True),
    "demo": Rule(exempt="builds its own throwaway database in a new directory"),
    "config show": Rule(exempt="shows settings, database password masked", harmless=True),
    "db current": Rule(exempt="shows the schema revision, password masked", harmless=True),
    "db upgrade": Rule(
        exempt="must run before anyone can log in to an older schema; at head it does nothing",
        harmless=True,
    ),
    "audit verify": Rule(exempt="reveals only whether the trail is intact", harmless=True),
    "whoami": Rule(permission="read_records"),
    "user add": Rule(
        ("newbie", "--full-name", "New Person", "--role", "technician", "--password-stdin"),
        "manage_users",
        stdin=SIGNED,
    ),
    "user list": Rule(permission="manage_users"),
    "user deactivate": Rule(("{tech}", "--reason", "left"), "manage_users"),
    "user unlock": Rule(("{tech}",), "manage_users"),
    "user set-role": Rule(("{tech}", "qa", "--reason", "promoted"), "manage_users"),
    "user reset-password": Rule(("{tech}", "--password-stdin"), "manage_users", stdin=SIGNED),
    "passwd": Rule(
        ("--password-stdin",), "change_own_password", stdin=SIGNED + "a new password 9\n"
    ),
    "patient add": Rule(
        ("PT-0009", "--initials", "AB", "--birth-year", "1960", "--consent-date", "2020-01-15"),
        "record_bench_work",
    ),
    "patient correct": Rule(
        (PATIENT, "--weight-kg", "70", "--reason", "weighed"), "record_bench_work"
    ),
    "patient withdraw": Rule((PATIENT, "--reason", "consent withdrawn"), "record_bench_work"),
    "patient screen": Rule((PATIENT, "--test", "hiv", "--result", "negative"), "record_bench_work"),
    "patient list": Rule(permission="read_records"),
    "patient show": Rule((PATIENT,), "read_records"),
    "aspirate receive": Rule(
        (
            "--patient",
            PATIENT,
            "--collected-at",
            at(9),
            "--received-at",
            at(9.1),
            "--volume-ml",
            "20",
        ),
        "record_bench_work",
    ),
    "aspirate list": Rule(permission="read_records"),
    "aspirate show": Rule(("{din}",), "read_records"),
    "reagent add": Rule(("FBS", "--lot", "X1", "--expires", "2099-01-01"), "record_bench_work"),
    "reagent list": Rule(permission="read_records"),
    "culture start": Rule(
        ("{din}", "--mnc", "2.4e8", "--vessels", "5", "--area-cm2", "875", "--at", at(0.3)),
        "record_bench_work",
    ),
    "culture split": Rule(
        ("{culture}", "--seeded", "1e6", "--vessels", "1", "--area-cm2", "175", "--at", at(7.6)),
        "record_bench_work",
    ),
    "culture list": Rule(permission="read_records"),
    "culture show": Rule(("{culture}",), "read_records"),
    "culture project": Rule(("{culture}", "--target-cells", "1e9"), "read_records"),
    "count import": Rule(("{count_file}",), "record_bench_work"),
    "count list": Rule(permission="read_records"),
    "count show": Rule(("CNT-000001",), "read_records"),
    "passage log": Rule(
        (
            "{culture}",
            "--harvested",
            "1.2e8",
            "--viability",
            "94",
            "--seeded",
            "1e8",
            "--vessels",
            "10",
            "--area-cm2",
            "20000",
            "--at",
            at(7.5),
        ),
        "record_bench_work",
    ),
    "passage correct": Rule(
        ("{passage}", "--reason", "misread", "--viability", "95"), "record_bench_work"
    ),
    "lot formulate": Rule(
        (
            "{culture}",
            "--harvested",
            "4e8",
            "--viability",
            "93",
            "--vials",
            "4",
            "--cells-per-vial",
            "5e7",
            "--volume-ml",
            "2",
            "--shelf-life-hours",
            SHELF_LIFE,
            "--at",
            at(8.5),
        ),
        "record_bench_work",
    ),
    "lot correct": Rule(("{lot}", "--reason", "misread", "--viability", "94"), "record_bench_work"),
    "lot list": Rule(permission="read_records"),
    "lot show": Rule(("{lot}",), "read_records"),
    "lot release": Rule(("{lot}", "--password-stdin"), "sign", stdin=SIGNED),
    "lot reject": Rule(("{lot}", "--reason", "bad", "--password-stdin"), "sign", stdin=SIGNED),
    "lot hold": Rule(("{lot}", "--reason", "alarm", "--password-stdin"), "sign", stdin=SIGNED),
    "lot unhold": Rule(("{lot}", "--reason", "ok", "--password-stdin"), "sign", stdin=SIGNED),
    "lot recall": Rule(("{lot}", "--reason", "bad", "--password-stdin"), "sign", stdin=SIGNED),
    "lot complete": Rule(("{lot}", "--password-stdin"), "sign", stdin=SIGNED),
    "qc record": Rule(("{lot}", "karyotype", "normal"), "record_bench_work"),
    "equipment add": Rule(
        ("INC-09", "--kind", "incubator", "--name", "CO2 incubator"), "keep_registers"
    ),
    "equipment calibrate": Rule(
        ("INC-09", "--at", "2026-01-05", "--due", "2026-12-31"), "keep_registers"
    ),
    "equipment out-of-service": Rule(("INC-09", "--reason", "CO2 alarm"), "take_out_of_service"),
    "equipment return": Rule(("INC-09", "--reason", "sensor replaced"), "keep_registers"),
    "equipment retire": Rule(("INC-09", "--reason", "replaced"), "keep_registers"),
    "equipment list": Rule(permission="read_records"),
    "equipment show": Rule(("INC-09",), "read_records"),
    "storage add": Rule(("LN2-9", "--kind", "tank"), "keep_registers"),
    "storage show": Rule(("LN2-9",), "read_records"),
    "storage list": Rule(permission="read_records"),
    "storage find": Rule((PATIENT,), "read_records"),
    "trace": Rule((PATIENT,), "read_records"),
    "storage move": Rule(
        ("{culture}-B01", "LN2-9/box-1:A1", "--reason", "reorganised"), "record_bench_work"
    ),
    "culture freeze": Rule(
        ("{culture}", "--cells-per-vial", "1e6", "--vials", "1", "--into", "LN2-9/box-1"),
        "record_bench_work",
    ),
    "bank list": Rule(permission="read_records"),
    "bank show": Rule(("{culture}-B01",), "read_records"),
    "bank thaw": Rule(
        (
            "{culture}-B01",
            "--viability",
            "90",
            "--seeded",
            "1e6",
            "--vessels",
            "1",
            "--area-cm2",
            "175",
        ),
        "record_bench_work",
    ),
    "bank discard": Rule(("{culture}-B01", "--reason", "cracked"), "record_bench_work"),
    "sample retain": Rule(("{lot}", "--count", "1", "--into", "LN2-9/box-1"), "record_bench_work"),
    "sample remove": Rule(("{lot}-R01", "--reason", "retest"), "record_bench_work"),
    "sample list": Rule(("{lot}",), "read_records"),
    "qc show": Rule(("{lot}",), "read_records"),
    "deviation open": Rule(("--lot", "{lot}", "--description", "spill"), "record_bench_work"),
    "deviation list": Rule(permission="read_records"),
    "deviation close": Rule(
        ("{deviation}", "--resolution", "no impact", "--password-stdin"), "sign", stdin=SIGNED
    ),
    "event record": Rule(
        ("--patient", PATIENT, "--at", at(9), "--kind", "observation", "--description", "walks"),
        "record_bench_work",
    ),
    "event list": Rule(permission="read_records"),
    "report batch": Rule(("{lot}", "--out", "{out}/batch.pdf"), "read_records"),
    "report recall": Rule(("{lot}", "--out", "{out}/recall.pdf"), "read_records"),
    "vial list": Rule(("{lot}",), "read_records"),
    "vial show": Rule(("{vial}",), "read_records"),
    "vial verify": Rule(("--scan", "{scan}", "--patient", PATIENT), "record_bench_work"),
    "vial issue": Rule(("{vial}", "--patient", PATIENT, "--scan", "{scan}"), "record_bench_work"),
    "vial administer": Rule(
        ("{vial}", "--patient", PATIENT, "--scan", "{scan}"), "record_bench_work"
    ),
    "vial destroy": Rule(("{vial}", "--reason", "cracked"), "record_bench_work"),
    "scan": Rule(("--patient", PATIENT), "record_bench_work", stdin="{scan}\n"),
    # Anyone who records bench work ships and receives (issue 16); the shipment need not exist:
    # the role is checked first.
    "ship create": Rule(("--to", "OR-1", "--courier", "porter"), "record_bench_work"),
    "ship add": Rule(("SHP-000001", "{vial}", "--scan", "{scan}"), "record_bench_work"),
    "ship remove": Rule(("SHP-000001", "{vial}", "--reason", "wrong vial"), "record_bench_work"),
    "ship cancel": Rule(("SHP-000001", "--reason", "postponed"), "record_bench_work"),
    "ship dispatch": Rule(("SHP-000001",), "record_bench_work"),
    "ship receive": Rule(
        ("SHP-000001", "--scan", "{scan}", "--temperature-ok", "no"), "record_bench_work"
    ),
    "ship lost": Rule(("SHP-000001", "--reason", "lost"), "record_bench_work"),
    "ship show": Rule(("SHP-000001",), "read_records"),
    "ship list": Rule(permission="read_records"),
    "label print": Rule(("{lot}", "--format", "zpl", "--out", "{out}"), "record_bench_work"),
    "label reconcile": Rule(("{lot}", "--applied", "0", "--destroyed", "0"), "record_bench_work"),
    "audit log": Rule(permission="read_records"),
    "site show": Rule(permission="read_records"),
    "site set": Rule(("security.lockout_threshold", "4", "--reason", "SOP"), "manage_site"),
    "spec show": Rule(permission="read_records"),
    "spec history": Rule(permission="read_records"),
    "spec set": Rule(
        ("{out}/spec.toml", "--reason", "SOP", "--password-stdin"), "sign", stdin=SIGNED
    ),
    # Added by issue 6 alongside this file; admin is the custodian of the whole database.
    "db backup": Rule(("{out}/backup.db",), "manage_users", sqlite_only=True),
    # With a readable users table; with none, an admin of the backup gives name and password.
    "db restore": Rule(("{out}/missing.db", "--yes"), "manage_users", sqlite_only=True),
}
# Entries for commands being written elsewhere: skipped while the command does not exist.
TOLERATED_ABSENT = {"db backup", "db restore"}


def enumerate_commands() -> list[str]:
    """Every command a user can type, as 'area sub' or 'name'."""
    names = []
    for name in COMMANDS:
        command = typer.main.get_command(load_command(name))
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            names.append(name)
            continue
        for sub, inner in subcommands.items():
            assert getattr(inner, "commands", None) is None, f"{name} {sub}: nested areas"
            names.append(f"{name} {sub}")
    return names


def test_every_command_has_a_rule_and_every_rule_a_command() -> None:
    commands = set(enumerate_commands())
    unruled = sorted(commands - set(COMMAND_RULES))
    assert not unruled, f"commands with no entry in COMMAND_RULES (who may run them?): {unruled}"
    stale = sorted(set(COMMAND_RULES) - commands - TOLERATED_ABSENT)
    assert not stale, f"COMMAND_RULES names commands that do not exist: {stale}"
    for name, rule in COMMAND_RULES.items():
        assert (rule.permission is None) == bool(rule.exempt), name
        assert rule.permission is None or rule.permission in GRANTS, name


def test_no_command_takes_a_password_on_its_command_line() -> None:
    """A password in argv is visible to every account in `ps` and kept in shell history."""
    for name in COMMANDS:
        command = typer.main.get_command(load_command(name))
        for inner in [command, *getattr(command, "commands", {}).values()]:
            for parameter in inner.params:
                words = [parameter.name or "", *getattr(parameter, "opts", [])]
                takes_value = not getattr(parameter, "is_flag", False)
                if takes_value and any("password" in word or "secret" in word for word in words):
                    pytest.fail(f"{name} {inner.name}: {words} takes a secret as an argument")


@dataclass
class World:
    """A lab with one of everything, so each command meets real records."""

    lab: Lab
    values: dict[str, str]

    def args(self, rule: Rule) -> list[str]:
        return [arg.format(**self.values) for arg in rule.args]

    def stdin(self, rule: Rule) -> str | None:
        return rule.stdin.format(**self.values) if rule.stdin else None


def scan_of(settings: Settings, vial: str) -> str:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        found = lookup.vial(uow.session, vial)
        lot = uow.session.get(Lot, found.lot_id)
        assert lot is not None
        owner = uow.session.get(Patient, lot.patient_id)
        assert owner is not None
        return Payload(found.code, lot.code.split("-")[0], owner.code, lot.expires_at).encode()


@pytest.fixture
def world(lab: Lab, tmp_path: Path) -> World:
    for name, role in [("tom", "technician"), ("quinn", "qa")]:
        lab.add_user(name, role)
    lab.login("tom")
    ok(
        "patient",
        "add",
        PATIENT,
        "--initials",
        "MR",
        "--birth-year",
        "1958",
        "--consent-date",
        "2020-01-15",
    )
    din = ok(
        "aspirate", "receive", "--patient", PATIENT, "--collected-at", at(0),
        "--received-at", at(0.1), "--volume-ml", "30",
    )["din"]  # fmt: skip
    culture = ok(
        "culture", "start", din, "--mnc", "2.4e8", "--vessels", "5", "--area-cm2", "875",
        "--at", at(0.2),
    )["culture_id"]  # fmt: skip
    passage = ok(
        "passage", "log", culture, "--harvested", "2.9e7", "--viability", "94",
        "--seeded", "2.6e7", "--vessels", "10", "--area-cm2", "5250", "--at", at(4),
    )["passage_id"]  # fmt: skip
    lot = ok(
        "lot", "formulate", culture, "--harvested", "4e8", "--viability", "93", "--vials", "4",
        "--cells-per-vial", "5e7", "--volume-ml", "2", "--shelf-life-hours", SHELF_LIFE,
        "--at", at(7), *csf_vehicle(PATIENT, COLLECTED + timedelta(days=7)),
    )["lot_id"]  # fmt: skip
    vial = f"{lot}-V01"
    deviation = ok("deviation", "open", "--lot", lot, "--description", "door left open")
    out = tmp_path / "out"
    out.mkdir()
    values = {
        "tech": "tom",
        "din": din,
        "culture": culture,
        "passage": passage,
        "lot": lot,
        "vial": vial,
        "deviation": str(deviation["deviation_id"]),
        "scan": scan_of(lab.settings, vial),
        "out": str(out),
        "count_file": str(BLU),
    }
    return World(lab, values)


def _present_rules() -> Iterator[tuple[str, Rule]]:
    present = set(enumerate_commands())
    for name, rule in COMMAND_RULES.items():
        if name in present:
            yield name, rule


def test_every_command_refuses_anyone_without_the_permission_and_writes_nothing(
    world: World,
) -> None:
    """No session, then each role lacking the permission: exit 4 naming why, nothing written."""
    settings = world.lab.settings
    out = Path(world.values["out"])
    problems: list[str] = []
    checked: set[tuple[str, str]] = set()
    callers: list[tuple[str, str | None]] = [
        ("nobody", None),
        ("tom", "technician"),
        ("quinn", "qa"),
        ("admin", "admin"),
    ]
    for user, role in callers:
        if role is None:
            assert invoke("logout").exit_code == 0
        else:
            world.lab.login(user)
        for name, rule in _present_rules():
            if rule.permission is None or (role is not None and role in rule.roles):
                continue
            checked.add((name, role or "nobody"))
            before = dump(settings)
            result = invoke(*name.split(), *world.args(rule), input=world.stdin(rule))
            said = (result.stdout + result.stderr).strip()
            if rule.sqlite_only and ON_POSTGRES:
                expected_code, expected = 1, "SQLite only"
            elif role is None:
                expected_code, expected = 4, "not logged in"
            else:
                allowed = " or ".join(sorted(rule.roles))
                expected_code, expected = 4, f"{user} is {role}; only {allowed} may"
                if rule.permission in PERMISSION_WORDS and not rule.sqlite_only:
                    expected += " " + PERMISSION_WORDS[rule.permission]
            if result.exit_code != expected_code or expected not in said:
                problems.append(f"{name} as {role or 'nobody'}: exit {result.exit_code}: {said}")
            if dump(settings) != before:
                problems.append(f"{name} as {role or 'nobody'}: the database changed")
            if any(out.iterdir()):
                problems.append(f"{name} as {role or 'nobody'}: wrote {sorted(out.iterdir())}")
    assert not problems, "\n".join(problems)
    needing_a_session = {name for name, rule in _present_rules() if rule.permission}
    assert {name for name, caller in checked if caller == "nobody"} == needing_a_session
    assert {
        ("passage log", "admin"),
        ("lot release", "admin"),
        ("lot release", "technician"),
        ("user add", "technician"),
        ("user add", "qa"),
        ("deviation close", "technician"),
        ("vial issue", "admin"),
    } <= checked


def test_the_exempt_commands_run_without_a_session_and_change_nothing(world: World) -> None:
    settings = world.lab.settings
    assert invoke("logout").exit_code == 0
    for name, rule in _present_rules():
        if not rule.harmless:
            continue
        before = dump(settings)
        result = invoke(*name.split(), *world.args(rule))
        assert result.exit_code == 0, (name, result.stderr)
        assert dump(settings) == before, name
    refused(
        invoke("init", "--admin", "eve", "--full-name", "Eve", "--password-stdin", input=SIGNED),
        1,
        "already initialised",
    )


# --- 3. deactivation and role changes take effect at once ---------------------------------------


def test_a_deactivated_users_next_command_in_any_area_is_refused(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = lab.settings
    lab.add_user("tom", "technician")
    bench = tmp_path / "bench"
    monkeypatch.setenv("LIMS_HOME", str(bench))
    ok("login", "tom", "--password-stdin", input=PASSWORD + "\n")
    monkeypatch.setenv("LIMS_HOME", str(settings.home))
    ok("user", "deactivate", "tom", "--reason", "left the lab")
    monkeypatch.setenv("LIMS_HOME", str(bench))
    before = dump(settings)
    areas: set[str] = set()
    for name, rule in _present_rules():
        area = name.split()[0]
        if rule.permission is None or area in areas or rule.sqlite_only:
            continue
        areas.add(area)
        dummy = {
            key: "X" for key in ("tech", "din", "culture", "passage", "lot", "vial", "count_file")
        }
        dummy |= {"deviation": "1", "scan": "x", "out": str(tmp_path / "nowhere")}
        args = [arg.format(**dummy) for arg in rule.args]
        stdin = rule.stdin.format(**dummy) if rule.stdin else None
        refused(invoke(*name.split(), *args, input=stdin), 4, "session ended (deactivated)")
    assert areas >= {"user", "patient", "lot", "vial", "audit", "whoami", "scan"}
    assert dump(settings) == before


def test_a_role_change_applies_to_the_users_next_command(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = lab.settings
    lab.add_user("quinn", "qa")
    bench = tmp_path / "qa-desk"
    monkeypatch.setenv("LIMS_HOME", str(bench))
    ok("login", "quinn", "--password-stdin", input=PASSWORD + "\n")
    monkeypatch.setenv("LIMS_HOME", str(settings.home))
    ok("user", "set-role", "quinn", "technician", "--reason", "left QA")
    monkeypatch.setenv("LIMS_HOME", str(bench))
    release = ("lot", "release", "A999926000001-L1", "--password-stdin")
    refused(invoke(*release, input=SIGNED), 4, "quinn is technician; only qa may sign")


# --- 5. no secret in any output, table, trail, file or message ----------------------------------

ADMIN_PW = "Adm1n-Pass-phrase-7731"
TECH_PW = "T3ch-Pass-phrase-1947"
QA_PW = "Qa-Pass-phrase-5520x"
WRONG_PW = "Wr0ng-Guess-phrase-3390"
SHORT_PW = "Sh0rt-p!"  # refused as too short: must not be echoed either
TEMPORARY_PW = "Temp-Pass-phrase-8802"  # what the admin types, until its owner changes it
SECRETS = [ADMIN_PW, TECH_PW, QA_PW, WRONG_PW, SHORT_PW, TEMPORARY_PW]


def test_no_password_or_token_leaks_from_a_whole_workflow(
    settings: Settings, tmp_path: Path
) -> None:
    said: list[Invocation] = []
    tokens: list[str] = []

    def run(*args: str, input: str | None = None, code: int = 0) -> Invocation:
        result = invoke(*args, input=input)
        said.append(result)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result

    def login(name: str, password: str) -> None:
        run("login", name, "--password-stdin", input=password + "\n")
        tokens.append(station_token(settings))

    def signed(*args: str, password: str, code: int = 0) -> Invocation:
        return run(*args, "--password-stdin", input=password + "\n", code=code)

    signed("init", "--admin", "ada", "--full-name", "Ada Admin", password=ADMIN_PW)
    run("login", "ada", "--password-stdin", input=WRONG_PW + "\n", code=4)
    run("login", "nobody", "--password-stdin", input=ADMIN_PW + "\n", code=4)
    run("login", "ada", input=ADMIN_PW + "\n")  # at the prompt, typed hidden
    tokens.append(station_token(settings))
    run("site", "set", "records.late_entry_hours", "8760", "--reason", "typed from paper")
    for name, role in [("tom", "technician"), ("quinn", "qa")]:
        signed("user", "add", name, "--full-name", f"{name.title()} T", "--role", role,
               password=TEMPORARY_PW)  # fmt: skip
    signed("user", "add", "rita", "--full-name", "Rita", "--role", "qa", password=SHORT_PW, code=2)
    run("user", "list", "--json")
    for name, password in [("tom", TECH_PW), ("quinn", QA_PW)]:
        login(name, TEMPORARY_PW)
        run("patient", "list", code=4)  # not before the admin's password is changed
        run("passwd", "--password-stdin", input=f"{WRONG_PW}\n{password}\n", code=4)
        run("passwd", "--password-stdin", input=f"{TEMPORARY_PW}\n{password}\n")
    login("tom", TECH_PW)
    run("whoami", "--json")
    run(
        "patient",
        "add",
        PATIENT,
        "--initials",
        "MR",
        "--birth-year",
        "1958",
        "--consent-date",
        "2020-01-15",
    )
    din = json.loads(
        run("aspirate", "receive", "--patient", PATIENT, "--collected-at", at(0),
            "--received-at", at(0.1), "--volume-ml", "30",
            "--json").stdout
    )["din"]  # fmt: skip
    culture = json.loads(
        run("culture", "start", din, "--mnc", "2.4e8", "--vessels", "5", "--area-cm2", "875",
            "--at", at(0.2), "--json").stdout
    )["culture_id"]  # fmt: skip
    run("passage", "log", culture, "--harvested", "2.9e7", "--viability", "94", "--seeded",
        "2.6e7", "--vessels", "10", "--area-cm2", "5250", "--at", at(4))  # fmt: skip
    csf = json.loads(
        run("aspirate", "receive", "--patient", PATIENT, "--material", "csf", "--collected-at",
            at(6.9), "--received-at", at(6.95), "--volume-ml", "10", "--json").stdout
    )["din"]  # fmt: skip
    lot = json.loads(
        run("lot", "formulate", culture, "--harvested", "4e8", "--viability", "93", "--vials",
            "4", "--cells-per-vial", "5e7", "--volume-ml", "2", "--shelf-life-hours",
            SHELF_LIFE, "--at", at(7), "--vehicle-din", csf, "--vehicle-ml", "8",
            "--json").stdout
    )["lot_id"]  # fmt: skip
    for test, value in PASSING.items():
        run("qc", "record", lot, test, value)
    signed("lot", "release", lot, password=TECH_PW, code=4)  # a technician may not sign
    login("quinn", QA_PW)
    signed("lot", "release", lot, password=WRONG_PW, code=4)  # wrong signature password
    signed("lot", "release", lot, password=QA_PW)
    run("lot", "show", lot, "--json")
    run("audit", "log", "--json")
    run("audit", "log")
    run("logout")
    login("ada", ADMIN_PW)
    run("audit", "log", "--last", "5")
    run("audit", "verify")

    assert len(set(tokens)) == 6  # two of them the first logins, to change a password
    secrets = SECRETS + tokens
    for result in said:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, (secret, result.stderr)
    rows = dump(settings)
    assert rows["signatures"], "the release was signed"
    for table, table_rows in rows.items():
        for row in table_rows:
            for value in row:
                for secret in secrets:
                    assert secret not in value, (table, secret)
    hashes = [row["password_hash"] for row in _users(settings)]
    assert len(hashes) == 3
    for stored, password in zip(hashes, [ADMIN_PW, QA_PW, TECH_PW], strict=True):
        assert stored.startswith("$argon2id$")
        assert PasswordHasher().verify(stored, password)
    trail = json.loads(run("audit", "log", "--json").stdout)
    assert {"auth.login_failed", "signature.failed", "lot.release"} <= {e["action"] for e in trail}
    for entry in trail:
        for secret in secrets:
            assert secret not in json.dumps(entry), (entry["action"], secret)
    _no_secret_in_files(settings, secrets, current_token=tokens[-1])


def _users(settings: Settings) -> list[dict[str, Any]]:
    with db.engine_for(settings).connect() as connection:
        rows = connection.execute(text("SELECT * FROM users ORDER BY username")).mappings()
        return [dict(row) for row in rows]


def _no_secret_in_files(settings: Settings, secrets: list[str], *, current_token: str) -> None:
    """Grep every file lims wrote (home, logs, the SQLite file and its WAL) byte by byte."""
    db.dispose_engines()
    files = [path for path in settings.home.rglob("*") if path.is_file()]
    if settings.sqlite_path is not None:
        files += [p for p in settings.sqlite_path.parent.glob(settings.sqlite_path.name + "*")]
    session = auth.session_file(settings)
    assert session in files
    for path in files:
        content = path.read_bytes()
        for secret in secrets:
            if path == session and secret == current_token:
                continue  # the one place the live token belongs
            assert secret.encode() not in content, (path, secret)


DB_SECRET = "S3cret-db-pw"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://labuser:{DB_SECRET}@127.0.0.1:1/lims",
        f"postgresql+psycopg://labuser@127.0.0.1:1/lims?password={DB_SECRET}",
    ],
)
def test_a_database_password_is_masked_in_settings_and_in_errors(
    monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIMS_DATABASE_URL", url)
    results = {
        "config show": invoke("config", "show"),
        "config show --json": invoke("config", "show", "--json"),
        "db current": invoke("db", "current"),
        "whoami": invoke("whoami"),
        "login": invoke("login", "ada", "--password-stdin", input=SIGNED),
        "db backup": invoke("db", "backup", str(tmp_path / "b.db")),
        "db restore": invoke("db", "restore", str(tmp_path / "b.db"), "--yes"),
    }
    for name, result in results.items():
        assert DB_SECRET not in result.stdout + result.stderr, name
    assert "***" in results["config show"].stdout
    shown = json.loads(results["config show --json"].stdout)["settings"]["database_url"]["value"]
    assert DB_SECRET not in shown
    assert "***" in shown
    assert results["whoami"].exit_code == 5  # nothing listens on port 1: unavailable
    monkeypatch.setenv("LIMS_DATABASE_URL", f"mysql://labuser:{DB_SECRET}@127.0.0.1/lims")
    line = refused(invoke("config", "show"), 2, "database_url")
    assert DB_SECRET not in line


def test_the_scanner_loop_checks_the_session_before_the_first_line(lab: Lab) -> None:
    """No session: refused at once, not `0 scanned` at the end of an empty input."""
    refused(invoke("scan", "--patient", PATIENT, input=""), 4, "not logged in")
    lab.login("admin")
    refused(invoke("scan", "--patient", PATIENT, input=""), 4, "only", "record bench work")
