"""Backup and restore: checked copies, atomic swaps, refusals that leave everything as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from lims import audit, auth, db
from lims.config import Settings
from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation, Unavailable
from lims.models import User, WrittenFile
from lims.services import backup as service
from lims.uow import unit_of_work
from lims.views.trail import AuditView, ChainVerification
from tests.support.cli import Invocation, invoke, refused
from tests.support.lab import ON_POSTGRES, PASSWORD, Lab

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="backup and restore are SQLite's")


def _ok(result: Invocation) -> Invocation:
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    return result


def _live(settings: Settings) -> Path:
    path = settings.sqlite_path
    assert path is not None
    return path


def _dump(settings: Settings) -> list[str]:
    """The live database's content, whatever state its WAL is in.

    Login sessions are left out: checking who runs a command restarts their idle clock.
    """
    db.dispose_engines()
    with closing(sqlite3.connect(_live(settings))) as connection:
        return [
            line
            for line in connection.iterdump()
            if not line.startswith('INSERT INTO "login_sessions"')
        ]


def _trail(settings: Settings) -> list[AuditView]:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.entries(uow.session)


def _verify(settings: Settings) -> ChainVerification:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.verify(uow.session.connection())


def _users(settings: Settings) -> list[str]:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return list(uow.session.exec(select(User.username).order_by(col(User.username))).all())


def _leftovers(directory: Path) -> list[str]:
    """Temporary files a backup or restore would leave behind if it did not clean up."""
    return sorted(
        p.name for p in directory.iterdir() if ".partial-" in p.name or ".restore-" in p.name
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _copy_sql(path: Path, *statements: str) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        for statement in statements:
            connection.execute(statement)


def _tamper_copy(path: Path, statement: str) -> None:
    """Edit a backup's trail as an attacker with the file would: triggers dropped first."""
    _copy_sql(
        path,
        "DROP TRIGGER IF EXISTS audit_entries_no_update",
        "DROP TRIGGER IF EXISTS audit_entries_no_delete",
        statement,
    )


def _always(_: service.RestorePlan) -> bool:
    return True


@pytest.fixture
def admin_lab(lab: Lab) -> Lab:
    lab.login("admin")
    return lab


@pytest.fixture
def backup_file(admin_lab: Lab, tmp_path: Path) -> Path:
    """A good backup of a database holding the admin; the station is logged in as admin."""
    target = tmp_path / "backups" / "lims-backup.db"
    target.parent.mkdir()
    service.backup(admin_lab.settings, target)
    return target


# --- backup: the service ---------------------------------------------------------------------


@sqlite_only
def test_backup_writes_a_checked_private_copy_and_the_trail_records_it(
    admin_lab: Lab, tmp_path: Path
) -> None:
    settings = admin_lab.settings
    before = _trail(settings)
    target = tmp_path / "lims-backup.db"

    result = service.backup(settings, target)

    assert result.path == target
    assert result.size == target.stat().st_size
    assert result.sha256 == _sha256(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    copy = service.check_copy(target)
    assert copy == result.facts
    assert copy.audit_entries == len(before)
    assert copy.revision == db.SCHEMA_HEAD
    with closing(sqlite3.connect(target)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("lims-backup")) == [
        "lims-backup.db"
    ]
    assert _leftovers(tmp_path) == []

    after = _trail(settings)
    assert len(after) == len(before) + 1
    entry = after[-1]
    assert (entry.action, entry.username, entry.entity_type) == ("db.backup", "admin", "backup")
    assert entry.entity_id == result.sha256
    assert entry.new == {
        "file": str(target),
        "bytes": result.size,
        "sha256": result.sha256,
        "audit_entries": len(before),
        "head_hash": copy.head_hash,
        "revision": db.SCHEMA_HEAD,
    }
    # The copy's head is the entry just before the live trail's record of it.
    assert copy.head_hash == _head_before(settings)
    assert _verify(settings).intact


def _head_before(settings: Settings) -> str:
    """The hash of the entry before the newest one in the live trail."""
    db.dispose_engines()
    with closing(sqlite3.connect(_live(settings))) as connection:
        (prev_hash,) = connection.execute(
            "SELECT prev_hash FROM audit_entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    return str(prev_hash)


@sqlite_only
def test_the_online_copy_is_a_consistent_snapshot_while_a_writer_holds_the_database(
    admin_lab: Lab, tmp_path: Path
) -> None:
    settings = admin_lab.settings
    committed = len(_trail(settings))
    target = tmp_path / "snapshot.db"
    target.touch()
    with unit_of_work(settings, authenticated=False) as uow:
        audit.record(
            uow.session, username="tech", action="test.pending", entity_type="t", entity_id="1"
        )
        uow.session.flush()  # written, not committed: the copy must not see it
        service._online_copy(_live(settings), target)
    copy = service.check_copy(target)
    assert copy.audit_entries == committed
    assert len(_trail(settings)) == committed + 1


@sqlite_only
@pytest.mark.slow
def test_backups_taken_while_another_connection_keeps_writing_all_verify(
    admin_lab: Lab, tmp_path: Path
) -> None:
    settings = admin_lab.settings
    stop = threading.Event()
    written: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                with unit_of_work(settings, authenticated=False) as uow:
                    for number in range(20):
                        audit.record(
                            uow.session,
                            username="tech",
                            action="test.step",
                            entity_type="thing",
                            entity_id=f"T{len(written)}-{number}",
                            new={"value": "x" * 200},
                        )
                written.append(20)
                stop.wait(0.002)  # let the backups' own short transactions in
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = []
        for number in range(3):
            while len(written) < number + 1:
                stop.wait(0.01)
            results.append(service.backup(settings, tmp_path / f"during-{number}.db"))
    finally:
        stop.set()
        thread.join()
    assert failures == []
    counts = [result.facts.audit_entries for result in results]
    assert counts == sorted(set(counts))
    for result in results:
        assert service.check_copy(result.path) == result.facts
    assert _verify(settings).intact
    assert sum(1 for entry in _trail(settings) if entry.action == "db.backup") == 3


@sqlite_only
def test_backup_needs_a_logged_in_admin(lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    with pytest.raises(NotPermitted, match="not logged in"):
        service.backup(lab.settings, target)
    lab.add_user("tom", "technician")
    lab.login("tom")
    entries = len(_trail(lab.settings))
    with pytest.raises(NotPermitted, match="tom is technician; only admin may back up"):
        service.backup(lab.settings, target)
    assert not target.exists()
    assert _leftovers(tmp_path) == []
    assert len(_trail(lab.settings)) == entries


@sqlite_only
def test_backup_never_overwrites_a_file(admin_lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    target.write_text("precious")
    for force in (False, True):
        with pytest.raises(RuleViolation, match=r"b\.db (exists|is not a backup lims wrote)"):
            service.backup(admin_lab.settings, target, force=force)
    assert target.read_text() == "precious"
    assert _leftovers(tmp_path) == []


@sqlite_only
def test_force_replaces_only_a_backup_lims_recorded(admin_lab: Lab, tmp_path: Path) -> None:
    settings = admin_lab.settings
    nightly = tmp_path / "nightly.db"
    first = service.backup(settings, nightly)
    with pytest.raises(RuleViolation, match="exists; lims replaces only a file it wrote"):
        service.backup(settings, nightly)
    second = service.backup(settings, nightly, force=True)
    assert second.sha256 == _sha256(nightly) != first.sha256
    assert second.facts.audit_entries == first.facts.audit_entries + 1
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        recorded = uow.session.exec(select(WrittenFile.sha256, WrittenFile.kind)).all()
    assert sorted(recorded) == sorted([(first.sha256, "backup"), (second.sha256, "backup")])
    assert _leftovers(tmp_path) == []


@sqlite_only
@pytest.mark.parametrize("force", [False, True])
def test_a_backup_never_replaces_the_database(admin_lab: Lab, force: bool) -> None:
    """Issue 12: an output file written over lims.db."""
    settings = admin_lab.settings
    before = _dump(settings)
    with pytest.raises(RuleViolation, match="is the lims database; never replaced"):
        service.backup(settings, _live(settings), force=force)
    assert _dump(settings) == before
    assert _leftovers(_live(settings).parent) == []


@sqlite_only
def test_backup_into_a_missing_directory_is_refused(admin_lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "not-mounted" / "b.db"
    with pytest.raises(NotFound, match="no directory"):
        service.backup(admin_lab.settings, target)
    assert not target.parent.exists()


@sqlite_only
def test_a_database_whose_trail_was_tampered_with_is_not_backed_up(
    admin_lab: Lab, tmp_path: Path
) -> None:
    settings = admin_lab.settings
    db.dispose_engines()
    _tamper_copy(_live(settings), "UPDATE audit_entries SET reason = 'x' WHERE seq = 2")
    target = tmp_path / "b.db"
    with pytest.raises(RuleViolation, match=r"no backup written.*broken at entry 2"):
        service.backup(settings, target)
    assert not target.exists()
    assert _leftovers(tmp_path) == []


@sqlite_only
def test_a_database_sqlite_finds_damaged_is_not_backed_up_and_is_unavailable(
    admin_lab: Lab, tmp_path: Path
) -> None:
    """Rows that point nowhere: SQLite's check of the copy fails, so the live database is sick."""
    settings = admin_lab.settings
    db.dispose_engines()
    _copy_sql(
        _live(settings),
        "INSERT INTO login_sessions (user_id, token_hash, started_at, last_seen_at) "
        "VALUES (9999, 'dangling', '2026-11-25 08:00:00', '2026-11-25 08:00:00')",
    )
    target = tmp_path / "b.db"
    refused(
        invoke("db", "backup", str(target)),
        5,
        "the copy failed its check, no backup written",
        "fails the foreign key check: 1 rows point nowhere",
    )
    assert not target.exists()
    assert _leftovers(tmp_path) == []


# --- restore: the service ------------------------------------------------------------------


@sqlite_only
def test_restore_round_trip_loses_later_records_and_the_trail_shows_the_restore(
    admin_lab: Lab, backup_file: Path
) -> None:
    settings = admin_lab.settings
    in_backup = service.check_copy(backup_file)
    admin_lab.add_user("tom", "technician")  # after the backup: lost by the restore
    assert "tom" in _users(settings)
    plans: list[service.RestorePlan] = []

    def confirm(plan: service.RestorePlan) -> bool:
        plans.append(plan)
        return True

    result = service.restore(settings, backup_file, confirm=confirm)

    assert _users(settings) == ["admin"]
    (plan,) = plans
    assert plan.sha256 == _sha256(backup_file) == result.plan.sha256
    assert plan.facts == in_backup
    assert plan.replaces.healthy
    assert plan.restored_by == "admin"
    trail = _trail(settings)
    assert len(trail) == in_backup.audit_entries + 1 == result.audit_entries
    entry = trail[-1]
    assert (entry.action, entry.username, entry.entity_type, entry.entity_id) == (
        "db.restore",
        "admin",
        "backup",
        plan.sha256,
    )
    assert entry.new["source"] == str(backup_file)
    assert entry.new["sha256"] == plan.sha256
    assert entry.new["sessions_ended"] == 1 == result.sessions_ended
    assert entry.old["audit_entries"] == plan.replaces.audit_entries
    assert entry.new["os_user"]
    assert entry.new["authorised"] == service.SESSION
    verification = _verify(settings)
    assert verification.intact
    assert verification.head_hash == result.head_hash
    assert result.upgraded_from is None
    # The station's session is gone and the backup's sessions ended: log in again.
    assert not auth.session_file(settings).exists()
    with pytest.raises(NotPermitted):
        service.backup(settings, backup_file.with_name("again.db"))
    admin_lab.login("admin")
    assert _leftovers(_live(settings).parent) == []
    assert not _live(settings).with_name("lims.db-wal").exists() or _verify(settings).intact


@sqlite_only
def test_restore_of_an_older_schema_upgrades_the_copy(admin_lab: Lab, backup_file: Path) -> None:
    from alembic import command
    from sqlalchemy import create_engine

    older = db.SCHEMA_REVISIONS[-2]
    engine = create_engine(f"sqlite:///{backup_file}")
    with engine.begin() as connection:
        command.downgrade(db.alembic_config(connection), older)
    engine.dispose()
    assert service.check_copy(backup_file).revision == older

    result = service.restore(admin_lab.settings, backup_file, confirm=_always)

    assert result.upgraded_from == older
    actions = [entry.action for entry in _trail(admin_lab.settings)[-2:]]
    assert actions == ["db.upgrade", "db.restore"]
    assert _verify(admin_lab.settings).intact
    with unit_of_work(admin_lab.settings, authenticated=False) as uow:
        db.check_schema(uow.session, admin_lab.settings)


@sqlite_only
def test_a_database_below_the_newest_schema_is_backed_up_before_its_upgrade(
    admin_lab: Lab, tmp_path: Path
) -> None:
    """The backup taken before `lims db upgrade`: its users lack the columns revisions
    since added, and the admin's session is read without them."""
    from alembic import command

    settings = admin_lab.settings
    older = db.SCHEMA_REVISIONS[-2]
    with db.transaction(db.engine_for(settings), write=True, migrate=True) as session:
        command.downgrade(db.alembic_config(session.connection()), older)
    db.dispose_engines()
    target = tmp_path / "before-upgrade.db"
    service.backup(settings, target)
    assert service.check_copy(target).revision == older


def _as(username: str, password: str = PASSWORD) -> Any:
    return lambda: (username, password)


def _damage(settings: Settings) -> None:
    """The database file overwritten past reading: no users table is left to read."""
    db.remove_sqlite_database(settings)
    _live(settings).write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)


@sqlite_only
def test_restore_with_no_database_needs_an_admin_of_the_backup(
    admin_lab: Lab, backup_file: Path
) -> None:
    settings = admin_lab.settings
    db.remove_sqlite_database(settings)
    auth.remove_token(settings)
    asked: list[service.RestorePlan] = []

    result = service.restore(
        settings,
        backup_file,
        confirm=lambda plan: not asked.append(plan),
        credentials=_as("admin"),
    )

    assert not asked[0].replaces.exists
    assert asked[0].restored_by == "admin" == result.plan.restored_by
    entry = _trail(settings)[-1]
    assert (entry.action, entry.username) == ("db.restore", "admin")
    assert entry.old["existed"] is False
    assert entry.new["authorised"] == service.BACKUP_ADMIN
    assert _verify(settings).intact


@sqlite_only
def test_restore_over_a_damaged_database_needs_an_admin_of_the_backup(
    admin_lab: Lab, backup_file: Path
) -> None:
    settings = admin_lab.settings
    _damage(settings)
    auth.remove_token(settings)

    live = service.inspect_live(settings)
    assert live.exists
    assert not live.healthy
    assert live.problem

    service.restore(settings, backup_file, confirm=_always, credentials=_as("admin"))
    entry = _trail(settings)[-1]
    assert (entry.action, entry.username) == ("db.restore", "admin")
    assert entry.old["problem"] == live.problem
    assert _verify(settings).intact


@sqlite_only
def test_a_technician_cannot_roll_back_a_damaged_database(
    admin_lab: Lab, backup_file: Path
) -> None:
    """Issue 12: once the database was damaged, `lims db restore old.db` needed no login."""
    settings = admin_lab.settings
    admin_lab.add_user("tom", "technician")
    admin_lab.login("tom")
    # Damaged, but its users can still be read: only its logged-in admin may restore.
    db.dispose_engines()
    _copy_sql(
        _live(settings),
        "INSERT INTO login_sessions (user_id, token_hash, started_at, last_seen_at) "
        "VALUES (9999, 'dangling', '2026-11-25 08:00:00', '2026-11-25 08:00:00')",
    )
    assert not service.inspect_live(settings).healthy
    before = _dump(settings)
    with pytest.raises(NotPermitted, match="tom is technician; only admin may back up"):
        service.restore(settings, backup_file, confirm=_always, credentials=_as("admin"))
    assert _dump(settings) == before

    # Damaged past reading its users: an admin of the backup, by password, and nobody else.
    _damage(settings)
    damaged = _live(settings).read_bytes()
    refusals = {
        "no one asked": None,
        "not in the backup": _as("tom"),
        "wrong password": _as("admin", "not-the-password"),
    }
    for why, credentials in refusals.items():
        with pytest.raises(NotPermitted, match="admin of the backup"):
            service.restore(settings, backup_file, confirm=_always, credentials=credentials)
        assert _live(settings).read_bytes() == damaged, why
    assert _leftovers(_live(settings).parent) == []


@sqlite_only
def test_a_database_held_locked_is_not_taken_for_one_without_users(
    admin_lab: Lab, backup_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A technician who holds an exclusive lock on the live database must not pass for a
    restore of a database with no users, authorised by an admin of their own backup."""
    settings = admin_lab.settings
    admin_lab.add_user("tom", "technician")
    admin_lab.login("tom")
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 50)
    db.dispose_engines()
    before = _live(settings).read_bytes()
    with closing(sqlite3.connect(_live(settings), isolation_level=None)) as holder:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("SELECT count(*) FROM users").fetchall()
        with pytest.raises(Unavailable, match="cannot read the users"):
            service.restore(settings, backup_file, confirm=_always, credentials=_as("admin"))
    assert _live(settings).read_bytes() == before


@sqlite_only
def test_an_admin_whose_password_another_admin_typed_cannot_authorise_a_restore(
    admin_lab: Lab, tmp_path: Path
) -> None:
    """Bob's password was typed by ada and never changed: ada could restore as bob."""
    from lims.services import users

    settings = admin_lab.settings
    with admin_lab.acting_as("admin") as uow:
        users.create_user(
            uow, username="bob", full_name="Bob Admin", role="admin", password="typed by ada 1"
        )
    target = tmp_path / "with-bob.db"
    service.backup(settings, target)
    _damage(settings)
    with pytest.raises(NotPermitted, match="bob's password must be changed"):
        service.restore(settings, target, confirm=_always, credentials=_as("bob", "typed by ada 1"))


@sqlite_only
def test_a_technician_of_the_backup_cannot_authorise_its_restore(
    admin_lab: Lab, tmp_path: Path
) -> None:
    settings = admin_lab.settings
    admin_lab.add_user("tom", "technician")
    target = tmp_path / "with-tom.db"
    service.backup(settings, target)
    _damage(settings)
    with pytest.raises(NotPermitted, match="not an active, unlocked admin of the backup"):
        service.restore(settings, target, confirm=_always, credentials=_as("tom"))


@pytest.fixture
def unchanged(admin_lab: Lab, backup_file: Path) -> Any:
    """After the test: the live database's content and the station's session are as before."""
    settings = admin_lab.settings
    before = _dump(settings)
    token = auth.read_token(settings)
    yield
    assert _dump(settings) == before
    assert auth.read_token(settings) == token
    assert _leftovers(_live(settings).parent) == []


@sqlite_only
@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        ("missing", NotFound, "no such file"),
        ("directory", BadInput, "is a directory"),
        ("text", BadInput, "is not a SQLite database"),
        ("empty", BadInput, "is not a SQLite database"),
        ("truncated", BadInput, "SQLite"),
        ("not lims", BadInput, "is not a lims database"),
        ("tampered", RuleViolation, "audit trail broken at entry 2: entry 2 was edited"),
        (
            "records edited",
            RuleViolation,
            "record disagrees with the audit trail: users admin role",
        ),
        ("newer", Unavailable, "made by a newer lims"),
        ("corrupt page", BadInput, "integrity check|malformed"),
    ],
)
def test_restore_refuses_a_bad_file_and_changes_nothing(
    admin_lab: Lab, backup_file: Path, make: str, error: type[Exception], message: str
) -> None:
    bad = backup_file.with_name("bad.db")
    if make == "directory":
        bad.mkdir()
    elif make == "text":
        bad.write_text("patient,dose\nP1,1e6\n")
    elif make == "empty":
        bad.touch()
    elif make == "truncated":
        bad.write_bytes(backup_file.read_bytes()[: backup_file.stat().st_size // 2])
    elif make == "not lims":
        _copy_sql(bad, "CREATE TABLE t (x)", "INSERT INTO t VALUES (1)")
    elif make == "tampered":
        bad.write_bytes(backup_file.read_bytes())
        _tamper_copy(bad, "UPDATE audit_entries SET reason = 'approved' WHERE seq = 2")
    elif make == "records edited":
        bad.write_bytes(backup_file.read_bytes())
        _copy_sql(bad, "UPDATE users SET role = 'qa' WHERE username = 'admin'")
    elif make == "newer":
        bad.write_bytes(backup_file.read_bytes())
        _copy_sql(bad, "UPDATE alembic_version SET version_num = '9999_future'")
    elif make == "corrupt page":
        data = bytearray(backup_file.read_bytes())
        page = 4096
        data[2 * page : 3 * page] = b"\x0d" * page  # a table page of nonsense
        bad.write_bytes(bytes(data))
    with pytest.raises(error, match=message):
        service.restore(admin_lab.settings, bad, confirm=_always)


@sqlite_only
@pytest.mark.usefixtures("unchanged")
def test_restore_refuses_the_database_itself(admin_lab: Lab) -> None:
    with pytest.raises(BadInput, match="is the configured database itself"):
        service.restore(admin_lab.settings, _live(admin_lab.settings), confirm=_always)


@sqlite_only
@pytest.mark.usefixtures("unchanged")
def test_a_cancelled_restore_changes_nothing(admin_lab: Lab, backup_file: Path) -> None:
    with pytest.raises(RuleViolation, match="restore cancelled; nothing changed"):
        service.restore(admin_lab.settings, backup_file, confirm=lambda plan: False)


@sqlite_only
def test_restore_over_a_healthy_database_needs_its_admin(admin_lab: Lab, backup_file: Path) -> None:
    settings = admin_lab.settings
    admin_lab.add_user("tom", "technician")
    admin_lab.login("tom")
    before = _dump(settings)
    with pytest.raises(NotPermitted, match="tom is technician; only admin may back up or restore"):
        service.restore(settings, backup_file, confirm=_always)
    auth.remove_token(settings)
    with pytest.raises(NotPermitted, match="not logged in"):
        service.restore(settings, backup_file, confirm=_always)
    assert _dump(settings) == before


@sqlite_only
def test_restore_is_refused_while_another_process_has_the_database_open(
    admin_lab: Lab, backup_file: Path
) -> None:
    settings = admin_lab.settings
    admin_lab.add_user("tom", "technician")
    before = _dump(settings)
    other = sqlite3.connect(_live(settings), isolation_level=None)  # e.g. a `lims scan` loop
    try:
        other.execute("SELECT count(*) FROM users").fetchone()
        with pytest.raises(Unavailable, match="in use by another lims process"):
            service.restore(settings, backup_file, confirm=_always)
        refused(invoke("db", "restore", str(backup_file), "--yes"), 5, "in use", "try again")
    finally:
        other.close()
    assert _dump(settings) == before
    assert _leftovers(_live(settings).parent) == []
    service.restore(settings, backup_file, confirm=_always)
    assert _users(settings) == ["admin"]


# --- the commands ----------------------------------------------------------------------------


@sqlite_only
def test_cli_backup_prints_the_file_its_hash_and_the_trail_head(
    admin_lab: Lab, tmp_path: Path
) -> None:
    target = tmp_path / "cli.db"
    result = _ok(invoke("db", "backup", str(target)))
    digest = _sha256(target)
    for fragment in (str(target), digest, "audit entries", "audit head", db.SCHEMA_HEAD):
        assert fragment in result.stdout

    second = json.loads(_ok(invoke("db", "backup", str(tmp_path / "cli2.db"), "--json")).stdout)
    assert set(second) == {"file", "bytes", "sha256", "audit_entries", "head_hash", "revision"}
    assert second["sha256"] == _sha256(tmp_path / "cli2.db")
    assert second["bytes"] == (tmp_path / "cli2.db").stat().st_size


@sqlite_only
def test_cli_backup_refusals(lab: Lab, tmp_path: Path) -> None:
    target = tmp_path / "b.db"
    refused(invoke("db", "backup", str(target)), 4, "not logged in")
    lab.add_user("tom", "technician")
    lab.login("tom")
    refused(
        invoke("db", "backup", str(target)), 4, "only admin may back up or restore the database"
    )
    lab.login("admin")
    refused(invoke("db", "backup", str(tmp_path / "gone" / "b.db")), 3, "no directory")
    target.write_text("x")
    refused(invoke("db", "backup", str(target)), 1, str(target), "exists", "--force")
    refused(invoke("db", "backup", str(target), "--force"), 1, "not a backup lims wrote")
    refused(invoke("db", "backup", str(tmp_path)), 2, "is a directory")
    refused(invoke("db", "backup"), 2, "Missing argument")


@sqlite_only
def test_cli_restore_round_trip(admin_lab: Lab, backup_file: Path) -> None:
    admin_lab.add_user("tom", "technician")
    result = json.loads(_ok(invoke("db", "restore", str(backup_file), "--yes", "--json")).stdout)
    assert result["sha256"] == _sha256(backup_file)
    assert result["replaced"]["healthy"] is True
    assert result["restored_by"] == "admin"
    refused(invoke("whoami"), 4, "not logged in")
    assert _users(admin_lab.settings) == ["admin"]
    _ok(invoke("audit", "verify"))
    admin_lab.login("admin")
    trail = json.loads(_ok(invoke("audit", "log", "--entity", f"backup:{result['sha256']}",
                                  "--json")).stdout)  # fmt: skip
    assert [entry["action"] for entry in trail] == ["db.restore"]


@sqlite_only
def test_a_backup_written_by_a_newer_lims_is_refused_before_asking(
    admin_lab: Lab, backup_file: Path
) -> None:
    with closing(sqlite3.connect(backup_file)) as connection, connection:
        connection.execute("UPDATE write_format SET minimum = minimum + 1")
    before = _dump(admin_lab.settings)
    result = invoke("db", "restore", str(backup_file), input="y\n")
    line = refused(result, 5, str(backup_file), f"write format {db.WRITE_FORMAT + 1}")
    assert f"writes format {db.WRITE_FORMAT}" in line
    assert "Everything recorded after that backup is lost" not in result.stdout
    assert _dump(admin_lab.settings) == before


@sqlite_only
def test_cli_restore_asks_first(admin_lab: Lab, backup_file: Path) -> None:
    admin_lab.add_user("tom", "technician")
    before = _dump(admin_lab.settings)
    cancelled = invoke("db", "restore", str(backup_file), input="n\n")
    refused(cancelled, 1, "restore cancelled; nothing changed")
    assert "Everything recorded after that backup is lost" in cancelled.stdout
    assert _dump(admin_lab.settings) == before
    refused(invoke("db", "restore", str(backup_file)), 1, "aborted")  # no answer at all
    assert _dump(admin_lab.settings) == before

    result = _ok(invoke("db", "restore", str(backup_file), input="y\n"))
    assert "Restored" in result.stdout
    assert "lims login" in result.stdout
    assert _users(admin_lab.settings) == ["admin"]


@sqlite_only
def test_cli_restore_refusals_are_one_line(admin_lab: Lab, backup_file: Path) -> None:
    tampered = backup_file.with_name("tampered.db")
    tampered.write_bytes(backup_file.read_bytes())
    _tamper_copy(tampered, "UPDATE audit_entries SET username = 'mallory' WHERE seq = 3")
    truncated = backup_file.with_name("truncated.db")
    truncated.write_bytes(backup_file.read_bytes()[:10_000])
    newer = backup_file.with_name("newer.db")
    newer.write_bytes(backup_file.read_bytes())
    _copy_sql(newer, "UPDATE alembic_version SET version_num = '9999_future'")
    before = _dump(admin_lab.settings)
    refused(invoke("db", "restore", "nowhere.db", "--yes"), 3, "nowhere.db", "no such file")
    refused(invoke("db", "restore", str(backup_file.parent), "--yes"), 2, "is a directory")
    refused(invoke("db", "restore", str(tampered), "--yes"), 1, "tampered.db", "entry 3")
    refused(invoke("db", "restore", str(truncated), "--yes"), 2, "truncated.db")
    refused(invoke("db", "restore", str(newer), "--yes"), 5, "made by a newer lims")
    assert _dump(admin_lab.settings) == before
    auth.remove_token(admin_lab.settings)
    refused(invoke("db", "restore", str(backup_file), "--yes"), 4, "not logged in")
    assert _dump(admin_lab.settings) == before


@sqlite_only
def test_cli_restore_with_no_database_asks_for_an_admin_of_the_backup(
    admin_lab: Lab, backup_file: Path
) -> None:
    db.remove_sqlite_database(admin_lab.settings)
    auth.remove_token(admin_lab.settings)
    restore = ("db", "restore", str(backup_file))
    refused(invoke(*restore, input="tom\nwrong\n"), 4, "admin of the backup")
    refused(invoke(*restore, "--password-stdin", input=PASSWORD + "\n"), 2, "--admin")
    assert not _live(admin_lab.settings).exists()
    asked = _ok(invoke(*restore, input=f"admin\n{PASSWORD}\n"))
    assert "User name of an admin in the backup" in asked.stdout
    db.remove_sqlite_database(admin_lab.settings)
    _ok(invoke(*restore, "--admin", "admin", "--password-stdin", input=PASSWORD + "\n"))
    _ok(invoke("login", "admin", "--password-stdin", input=PASSWORD + "\n"))
    _ok(invoke("audit", "verify"))
    [entry] = [e for e in _trail(admin_lab.settings) if e.action == "db.restore"]
    assert entry.username == "admin"


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def on_postgres(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """A PostgreSQL database URL: the test server's, or one never connected to."""
    if not ON_POSTGRES:
        database_url = "postgresql://lims:secret@db.example:5432/lims"
        monkeypatch.setenv("LIMS_DATABASE_URL", database_url)
    return database_url


@pytest.mark.parametrize(
    ("command", "tool", "example"),
    [
        ("backup", "pg_dump", "pg_dump --format=custom --file lims.dump 'postgresql://"),
        ("restore", "pg_restore", "pg_restore --clean --if-exists --no-owner --dbname"),
    ],
)
def test_on_postgresql_both_commands_name_the_tool_and_write_nothing(
    on_postgres: str, tmp_path: Path, command: str, tool: str, example: str
) -> None:
    target = tmp_path / "pg.dump"
    line = refused(invoke("db", command, str(target)), 1, f"use {tool}", example)
    assert "secret" not in line
    assert "+psycopg" not in line
    assert not target.exists()


@pytest.mark.skipif(not ON_POSTGRES, reason="a real PostgreSQL database")
def test_on_postgresql_even_an_admin_is_sent_to_pg_dump(admin_lab: Lab, tmp_path: Path) -> None:
    entries = admin_lab.audit_count()
    with pytest.raises(RuleViolation, match="pg_dump"):
        service.backup(admin_lab.settings, tmp_path / "b.db")
    with pytest.raises(RuleViolation, match="pg_restore"):
        service.restore(admin_lab.settings, tmp_path / "b.db", confirm=_always)
    assert admin_lab.audit_count() == entries
    assert list(tmp_path.glob("b.db*")) == []
