"""Backing up and restoring a SQLite database, each copy checked before it is trusted.

A backup is taken with SQLite's online backup API (other stations keep
writing) into a file staged beside FILE (lims.staging: a private directory,
an unpredictable name), checked (SQLite integrity check, foreign keys, a
known schema revision, the audit chain), recorded, and only then linked into
place. It never replaces a file, unless `force` names one lims recorded
writing (an earlier backup). The live trail records `db.backup` with the
file's SHA-256, and written_files its path and hash, in one transaction: the
copy holds the trail up to the backup, the live trail says the backup was made.

A restore makes the same checks on a copy of FILE beside the database,
ends the login sessions the backup held, appends `db.restore` (and
`db.upgrade` if the backup's schema was older) to that copy, checks it again
and swaps it in with os.replace: the database is either the old one or the
restored one, never a mixture. Whoever restores is an admin: the live
database's, logged in at this station, or, only when the live database has
no users table that can be read (there is none, or it is damaged past that),
an admin of the backup itself, by user name and password.

PostgreSQL is backed up with pg_dump and restored with pg_restore; both
commands here say so and do nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from lims import audit, auth, db
from lims.config import Settings, redacted_url
from lims.errors import BadInput, LimsError, NotFound, NotPermitted, RuleViolation, Unavailable
from lims.models import LoginSession
from lims.roles import GRANTS
from lims.services import bindings
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from lims.uow import Schema, unit_of_work
from lims.views.database import (
    BackupResult,
    CopyFacts,
    LiveDatabase,
    RestorePlan,
    RestoreResult,
)

SQLITE_HEADER = b"SQLite format 3\x00"
ENTITY_TYPE = "backup"
# How a restore was authorised (db.restore's `authorised`).
SESSION = "admin logged in at this station"
BACKUP_ADMIN = "password of an admin of the backup (the database had no users table to read)"
WRITTEN_KIND = "backup"  # written_files.kind
LOCK_TIMEOUT_S = 2.0
_CHUNK = 1 << 20


# --- PostgreSQL -----------------------------------------------------------------------------


def pg_url(settings: Settings) -> str:
    """The database URL as pg_dump and pg_restore take it, password masked."""
    url = redacted_url(settings.database_url)
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlite_database(settings: Settings, command: str) -> Path:
    """The SQLite file to work on; on PostgreSQL, a refusal naming the tool to use instead."""
    path = settings.sqlite_path
    if path is not None:
        return path
    url = pg_url(settings)
    if command == "backup":
        raise RuleViolation(
            "lims db backup works on SQLite only; on PostgreSQL use pg_dump, e.g. "
            f"pg_dump --format=custom --file lims.dump '{url}'"
        )
    raise RuleViolation(
        "lims db restore works on SQLite only; on PostgreSQL use pg_restore, e.g. "
        f"pg_restore --clean --if-exists --no-owner --dbname '{url}' lims.dump, "
        "then lims audit verify"
    )


# --- checks ------------------------------------------------------------------------------


def _sqlite_header(path: Path, label: str) -> None:
    """Refuse anything that is not a readable regular file starting like a SQLite database."""
    if not path.exists() and not path.is_symlink():
        raise NotFound(f"{label}: no such file")
    if path.is_dir():
        raise BadInput(label, "is a directory, not a backup file")
    if not path.is_file():
        raise BadInput(label, "is not a regular file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise BadInput(label, f"cannot be read ({error.strerror or error})") from None
    if header != SQLITE_HEADER:
        raise BadInput(label, "is not a SQLite database")


def _structure(path: Path, label: str) -> str:
    """Integrity and foreign keys checked by SQLite; returns the schema revision."""
    try:
        with closing(sqlite3.connect(str(path), isolation_level=None)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                first = " ".join(str(problems[0]).split())
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise BadInput(label, f"fails the SQLite integrity check: {first}{more}")
            broken_keys = connection.execute("PRAGMA foreign_key_check").fetchall()
            if broken_keys:
                raise BadInput(
                    label, f"fails the foreign key check: {len(broken_keys)} rows point nowhere"
                )
            try:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.OperationalError:
                row = None
    except sqlite3.DatabaseError as error:
        raise BadInput(label, f"is not a usable SQLite database ({error})") from None
    if row is None or row[0] is None:
        raise BadInput(label, "is not a lims database: it has no schema revision")
    return str(row[0])


def _known_revision(revision: str) -> None:
    if revision not in db.SCHEMA_REVISIONS:
        raise db.made_by_a_newer_lims(revision)


def _audit_chain(path: Path, label: str, *, current: bool) -> tuple[int, str]:
    """The copy's trail verified: (entries, head hash). A copy at the current schema has its
    bound records checked too; an older one's tables are not those the bindings read."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            result = bindings.verify(connection) if current else audit.verify(connection)
    except DBAPIError as error:
        detail = " ".join(str(error.orig or error).split())
        raise BadInput(label, f"its audit trail cannot be read ({detail})") from None
    finally:
        engine.dispose()
    if result.first_bad_seq is not None:
        raise RuleViolation(
            f"{label}: audit trail broken at entry {result.first_bad_seq}: {result.problem}"
        )
    if result.disagreement is not None:
        raise RuleViolation(
            f"{label}: {bindings.REFUSAL}{result.disagreement.describe(values=False)}"
        )
    return result.entries, result.head_hash


def check_copy(path: Path, label: str | None = None) -> CopyFacts:
    """Every check a backup must pass; label names the file in a refusal."""
    label = label or str(path)
    _sqlite_header(path, label)
    revision = _structure(path, label)
    _known_revision(revision)
    _writable_by_this_lims(path, label)
    entries, head_hash = _audit_chain(path, label, current=revision == db.SCHEMA_HEAD)
    return CopyFacts(audit_entries=entries, head_hash=head_hash, revision=revision)


def _writable_by_this_lims(path: Path, label: str) -> None:
    """A copy a newer lims has written cannot be restored by this one: say so before asking."""
    with closing(sqlite3.connect(str(path))) as connection:
        try:
            row = connection.execute("SELECT minimum FROM write_format").fetchone()
        except sqlite3.OperationalError:  # no such table: a schema older than the write format
            return
    if row is not None and row[0] > db.WRITE_FORMAT:
        raise Unavailable(
            f"{label}: written by a lims of write format {row[0]}; this lims writes format "
            f"{db.WRITE_FORMAT}: restore it with that lims or a newer one"
        )


def inspect_live(settings: Settings) -> LiveDatabase:
    """The configured database: absent, healthy, or broken (and how)."""
    path = sqlite_database(settings, "restore")
    if not path.exists():
        return LiveDatabase(path=path, exists=False)
    try:
        _sqlite_header(path, str(path))
        revision = _structure(path, str(path))
    except LimsError as error:
        return LiveDatabase(path=path, exists=True, problem=error.message)
    _known_revision(revision)  # never overwrite what a newer lims made
    try:
        with closing(sqlite3.connect(str(path))) as connection:
            head = connection.execute("SELECT seq, hash FROM audit_head").fetchone()
    except sqlite3.DatabaseError as error:
        return LiveDatabase(path=path, exists=True, problem=f"{path}: {error}", revision=revision)
    entries, head_hash = head if head is not None else (None, None)
    return LiveDatabase(
        path=path, exists=True, revision=revision, audit_entries=entries, head_hash=head_hash
    )


# --- who may ----------------------------------------------------------------------------------


@contextmanager
def _as_admin(settings: Settings) -> Iterator[tuple[Session, auth.Actor]]:
    """A write transaction on the live database, run by the station's logged-in admin.

    An older schema is accepted: back up before `lims db upgrade`.
    """
    with unit_of_work(settings, schema=Schema.ANY_KNOWN) as uow:
        yield uow.session, uow.require("manage_database")


# --- files ----------------------------------------------------------------------------------


def _temporary_beside(path: Path, purpose: str) -> Path:
    """A new, empty, owner-only file in path's directory (a rename there is atomic)."""
    temporary = path.with_name(f".{path.name}.{purpose}-{secrets.token_hex(6)}")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    return temporary


def _remove_with_companions(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: Path) -> None:
    with suppress(OSError):  # not every platform or file system can sync a directory
        _fsync(path)


# --- backup --------------------------------------------------------------------------------


def backup(settings: Settings, target: Path, *, force: bool = False) -> BackupResult:
    """Copy the live database to target, checked, record it in the trail, then put it in place.

    target must not exist; with force it may be a file lims recorded writing, unchanged since.
    """
    live = sqlite_database(settings, "backup")
    with _as_admin(settings):
        pass  # refuse before looking at or copying anything; the session's idle clock restarts
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        raise NotFound(f"no directory {target.parent}; create it first (is the drive mounted?)")
    files = StagedFiles(force=force, database=live, option="FILE")
    with files.discarded_on_error():
        try:
            copy = files.for_writer(target)
        except OSError as error:
            raise Unavailable(f"cannot write {target}: {error.strerror}") from None
        _online_copy(live, copy)
        try:
            facts = check_copy(copy, label=str(target))
        except LimsError as error:
            # A trail that does not verify is refused here as by `lims audit verify`; a copy
            # SQLite itself rejects means the live database (or its disk) is damaged.
            failed = RuleViolation if isinstance(error, RuleViolation) else Unavailable
            raise failed(f"the copy failed its check, no backup written: {error.message}") from None
        _fsync(copy)
        size = copy.stat().st_size
        with _as_admin(settings) as (session, actor):
            current = db.stored_revision(session.connection()) == db.SCHEMA_HEAD
            files.record(session, kind=WRITTEN_KIND, by=actor.username, in_table=current)
            digest = files.sha256(target)
            audit.record_about(
                session,
                (ENTITY_TYPE, digest),
                "db.backup",
                by=actor.username,
                new={
                    "file": str(target),
                    "bytes": size,
                    "sha256": digest,
                    "audit_entries": facts.audit_entries,
                    "head_hash": facts.head_hash,
                    "revision": facts.revision,
                },
            )
    files.publish()
    return BackupResult(path=target, size=size, sha256=digest, facts=facts)


def _online_copy(live: Path, temporary: Path) -> None:
    """SQLite's online backup: one consistent snapshot while other connections write."""
    timeout = db.BUSY_TIMEOUT_MS / 1000
    with (
        closing(sqlite3.connect(str(live), timeout=timeout, isolation_level=None)) as source,
        closing(sqlite3.connect(str(temporary), isolation_level=None)) as copy,
    ):
        source.backup(copy)
        # One self-contained file: no -wal beside the backup.
        copy.execute("PRAGMA journal_mode=DELETE").fetchall()


# --- restore -------------------------------------------------------------------------------


def restore(
    settings: Settings,
    source: Path,
    *,
    confirm: Callable[[RestorePlan], bool],
    credentials: Callable[[], tuple[str, str]] | None = None,
) -> RestoreResult:
    """Replace the configured database with a checked copy of source.

    The live database's admin, logged in at this station, restores it. Only when it has
    no users table that can be read (there is none, or it is damaged past that) does an
    admin of the backup authorise it instead: credentials() gives a user name and
    password, checked against the users of the checked copy. confirm sees the plan
    before anything changes; False cancels. The station's session file is removed: the
    sessions the backup held are ended, everyone logs in again.
    """
    live_path = sqlite_database(settings, "restore")
    live = inspect_live(settings)
    actor: auth.Actor | None = None
    if _users_readable(live_path):
        with _as_admin(settings) as (_, admin):
            actor = admin
    source = Path(os.path.abspath(source))
    label = str(source)
    _sqlite_header(source, label)
    if live.exists and os.path.samefile(source, live_path):
        raise BadInput(label, "is the configured database itself")
    live_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_beside(live_path, "restore")
    try:
        size, digest = _copy_file(source, temporary)
        facts = check_copy(temporary, label=label)
        restored_by = actor.username if actor else _admin_of(settings, temporary, credentials)
        plan = RestorePlan(
            replaces=live,
            source=source,
            sha256=digest,
            size=size,
            facts=facts,
            restored_by=restored_by,
            authorised=SESSION if actor else BACKUP_ADMIN,
        )
        if not confirm(plan):
            raise RuleViolation("restore cancelled; nothing changed")
        upgraded_from, ended = _record_restore(settings, temporary, plan)
        final = check_copy(temporary, label=f"{label} (restored copy)")
        _install(temporary, live_path, lock=live.healthy)
    except BaseException:
        db.dispose_engines()
        _remove_with_companions(temporary)
        raise
    auth.remove_token(settings)
    # _record_restore upgraded the copy, so its revision is db.SCHEMA_HEAD.
    return RestoreResult(
        plan=plan, **asdict(final), upgraded_from=upgraded_from, sessions_ended=ended
    )


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


# What SQLite says of a database whose users table is gone: no such table (SQLITE_ERROR),
# a damaged file (SQLITE_CORRUPT), or no database at all (SQLITE_NOTADB).
_UNREADABLE_USERS = frozenset({sqlite3.SQLITE_ERROR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def _users_readable(live: Path) -> bool:
    """Whether the live database still has a users table to read: then only its logged-in
    admin may replace it, however damaged the rest is."""
    if not live.exists():
        return False
    try:
        with closing(_read_only(live)) as connection:
            connection.execute(f"PRAGMA busy_timeout = {db.BUSY_TIMEOUT_MS}")
            connection.execute("SELECT username, role, active FROM users").fetchall()
    except sqlite3.Error as error:
        if getattr(error, "sqlite_errorcode", None) in _UNREADABLE_USERS:
            return False
        # Busy, locked, unreadable by this OS user: the users may well be there. Taking that
        # for damage would let anyone who holds a lock restore a database of their own.
        raise Unavailable(
            f"cannot read the users of {live} to check who may restore it ({error}); "
            "stop lims on the other stations and try again"
        ) from None
    return True


def _admin_of(
    settings: Settings, copy: Path, credentials: Callable[[], tuple[str, str]] | None
) -> str:
    """The user name of an active admin of the checked backup copy, proved by password."""
    if credentials is None:
        raise NotPermitted(
            "the database has no users table to read: an admin of the backup must authorise "
            "the restore with their user name and password"
        )
    username, password = credentials()
    with closing(_read_only(copy)) as connection:
        columns = {column[1] for column in connection.execute("PRAGMA table_info(users)")}
        # Before revision 0008 every account but the first admin's had a password an admin
        # typed (as the revision itself records on upgrade).
        admin_set = (
            "password_set_by_admin"
            if "password_set_by_admin" in columns
            else "id <> (SELECT min(id) FROM users)"
        )
        set_at = (
            "coalesce(password_set_at, created_at)"
            if "password_set_at" in columns
            else "created_at"
        )
        row = connection.execute(
            f"SELECT password_hash, role, active, locked_at, {admin_set}, {set_at} "  # noqa: S608
            "FROM users WHERE username = ?",
            (username,),
        ).fetchone()
    if row is None:
        auth.check_for_nobody(settings, password)  # an unknown name takes as long to refuse
    if (
        row is None
        or not auth.password_matches(settings, row[0], password)
        or row[1] not in GRANTS["manage_database"]
        or not row[2]
        or row[3] is not None
    ):
        raise NotPermitted(
            "restore refused: not an active, unlocked admin of the backup, or wrong password"
        )
    # A password an admin typed, or one past its age, is not its owner's to sign with.
    password_set_at = datetime.fromisoformat(row[5]).replace(tzinfo=UTC)
    due = auth.password_due(settings, bool(row[4]), password_set_at, utcnow())
    if due is not None:
        raise NotPermitted(
            f"restore refused: {username}'s password must be changed with lims passwd first ({due})"
        )
    return username


def _copy_file(source: Path, temporary: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as reader, temporary.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return size, digest.hexdigest()


def _record_restore(
    settings: Settings, temporary: Path, plan: RestorePlan
) -> tuple[str | None, int]:
    """In the copy: upgrade if older, end the sessions it held, append db.restore."""
    copy_settings = settings.model_copy(update={"database_url": f"sqlite:///{temporary}"})
    try:
        with unit_of_work(copy_settings, authenticated=False, schema=Schema.UPGRADE) as uow:
            session, upgrade = uow.session, uow.upgrade
            assert upgrade is not None
            open_sessions = col(LoginSession.ended_at).is_(None)
            ended = session.execute(
                select(func.count()).select_from(LoginSession).where(open_sessions)
            ).scalar_one()
            session.execute(
                update(LoginSession)
                .where(open_sessions)
                .values(ended_at=utcnow(), end_reason="restored")
            )
            live = plan.replaces
            audit.record_about(
                session,
                (ENTITY_TYPE, plan.sha256),
                "db.restore",
                by=plan.restored_by,
                old={
                    "database": str(live.path),
                    "existed": live.exists,
                    "problem": live.problem,
                    "audit_entries": live.audit_entries,
                    "head_hash": live.head_hash,
                },
                new={
                    "source": str(plan.source),
                    "sha256": plan.sha256,
                    "bytes": plan.size,
                    "audit_entries": plan.facts.audit_entries,
                    "head_hash": plan.facts.head_hash,
                    "revision": plan.facts.revision,
                    "sessions_ended": ended,
                    "os_user": db.os_user(),
                    "authorised": plan.authorised,
                },
            )
            upgraded_from = (
                upgrade.from_revision if upgrade.from_revision != db.SCHEMA_HEAD else None
            )
    finally:
        db.dispose_engines()  # the copy is closed (its WAL checkpointed) before it moves
    return upgraded_from, ended


def _install(temporary: Path, live: Path, *, lock: bool) -> None:
    """Swap the checked copy in for the live database, atomically."""
    db.dispose_engines()  # this process keeps nothing open on the old file
    guard = _lock_out_others(live) if lock else None
    try:
        if live.exists():
            os.chmod(temporary, stat.S_IMODE(live.stat().st_mode))
        _fsync(temporary)
        for suffix in ("-wal", "-shm", "-journal"):
            # Left beside the new file, an old WAL would be replayed into it.
            live.with_name(live.name + suffix).unlink(missing_ok=True)
        os.replace(temporary, live)
        _fsync_directory(live.parent)
    finally:
        if guard is not None:
            guard.close()


def _lock_out_others(live: Path) -> sqlite3.Connection:
    """Hold the old database exclusively; unavailable while any other connection has it open.

    Leaving WAL mode needs every other connection closed, so a `lims scan`
    loop or another station still using the file is found here, not after.
    Like a database held too long, that is a condition to clear and retry, not a refusal.
    """
    in_use = Unavailable(
        f"the database at {live} is in use by another lims process (a `lims scan` loop, "
        "another station); stop it and try again; nothing was restored"
    )
    guard = sqlite3.connect(str(live), timeout=LOCK_TIMEOUT_S, isolation_level=None)
    try:
        mode = guard.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        guard.execute("BEGIN EXCLUSIVE")
        if mode != "delete" or guard.execute("PRAGMA journal_mode").fetchone()[0] != "delete":
            raise in_use
    except sqlite3.OperationalError:
        guard.close()
        raise in_use from None
    except BaseException:
        guard.close()
        raise
    return guard
