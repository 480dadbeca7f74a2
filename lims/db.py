"""Engines, transactions, schema checks and the migration runner.

SQLite is the embedded default (WAL, foreign keys, synchronous=FULL, a busy
timeout); PostgreSQL is the multi-station deployment. Writers are serialised
on both: BEGIN IMMEDIATE on SQLite, a row lock on the audit head on
PostgreSQL, so the audit chain never forks and no writer deadlocks another.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, col

from lims import resources
from lims.config import Settings
from lims.errors import Audited, ConfigError, NotFound, RuleViolation, Unavailable

if TYPE_CHECKING:
    from alembic.config import Config

    from lims.views.database import Upgrade

# Every revision this lims knows, oldest first; a test keeps it equal to migrations/.
SCHEMA_REVISIONS = (
    "0001_foundation",
    "0002_bench",
    "0003_release",
    "0004_vials",
    "0005_write_format",
    "0006_site_records",
    "0007_oos_holds_recall",
    "0008_record_stays_true",
    "0009_fresh_product",
    "0010_instrument_counts",
    "0011_equipment_storage",
    "0012_custody",
    "0013_labels",
)
SCHEMA_HEAD = SCHEMA_REVISIONS[-1]
# What this lims writes, as a number. A newer schema alone turns an older lims away; this
# number also covers a change to what is written that needs no revision. Every revision stores
# its number as the database's minimum, and the first write of a lims with a higher number
# raises the minimum to it, so an older lims no longer writes where a newer one has.
WRITE_FORMAT = 9

BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "lims_write"
_MIGRATE_OPTION = "lims_migrate"
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=FULL",
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
)

_engines: dict[str, Engine] = {}


def engine_for(settings: Settings, *, create: bool = False) -> Engine:
    """The engine for the configured database; an absent SQLite file is NotFound unless create."""
    path = settings.sqlite_path
    if path is not None and not create and not path.exists():
        raise NotFound(
            f"no lims database at {path}; create one with `lims init` or set LIMS_DATABASE_URL"
        )
    if path is not None and create:
        # Every patient record and password hash is in this file: the station's account only.
        # SQLite gives the -wal and -shm files the database file's mode.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)
    url = settings.database_url
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def remove_sqlite_database(settings: Settings) -> None:
    """Remove a database file that a failed command created, with its WAL companions."""
    engine = _engines.pop(settings.database_url, None)
    if engine is not None:
        engine.dispose()
    path = settings.sqlite_path
    if path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "database_url: PostgreSQL needs its driver: pip install 'lims[postgres]'"
        ) from None
    return create_engine(url)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling cannot BEGIN IMMEDIATE; take it over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _writer(engine: Engine) -> Engine:
    """The engine whose transactions take the write lock from the start."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _begin_sqlite_transaction(connection: Connection) -> None:
    options = connection.get_execution_options()
    # Alembic's batch mode rebuilds a table by dropping it, which its children's foreign keys
    # refuse: a migration runs with them off (outside a transaction is the only place SQLite
    # takes the pragma) and checks them all before it commits (upgrade_schema).
    migrating = options.get(_MIGRATE_OPTION, False)
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'OFF' if migrating else 'ON'}")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE_OPTION) else "BEGIN")


@contextmanager
def transaction(engine: Engine, *, write: bool, migrate: bool = False) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    An Audited refusal commits: what was refused is not saved, the refusal's audit entry is.
    A migrating transaction (upgrade_schema) writes, with SQLite's foreign keys off.
    """
    bind = _writer(engine) if write or migrate else engine
    if migrate:
        bind = bind.execution_options(**{_MIGRATE_OPTION: True})
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Audited:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise


def serialise_writers(session: Session) -> None:
    """Queue behind any other writer until this transaction ends."""
    from lims.models import AuditHead

    # SQLite already holds the write lock (BEGIN IMMEDIATE); PostgreSQL needs the row lock.
    if session.get_bind().dialect.name != "sqlite":
        session.execute(select(col(AuditHead.seq)).where(col(AuditHead.id) == 1).with_for_update())


def _read_if_there(connection: Connection, query: str) -> Any:
    """The query's one value, or None where its table does not exist (yet)."""
    try:
        with connection.begin_nested():
            return connection.execute(text(query)).scalar()
    except (OperationalError, ProgrammingError):
        return None


def stored_revision(connection: Connection) -> str | None:
    """The schema revision the database is at, or None for a blank database."""
    revision: str | None = _read_if_there(connection, "SELECT version_num FROM alembic_version")
    return revision


def check_schema(session: Session, settings: Settings) -> None:
    """Refuse to work on a database this lims did not make or cannot read."""
    revision = stored_revision(session.connection())
    where = settings.sqlite_path or "the configured database"
    if revision == SCHEMA_HEAD:
        return
    if revision is None:
        raise NotFound(f"the database at {where} is not initialised; run `lims init`")
    if revision in SCHEMA_REVISIONS:
        raise RuleViolation(
            f"the database schema is at {revision}, older than this lims ({SCHEMA_HEAD}); "
            "run `lims db upgrade`"
        )
    raise made_by_a_newer_lims(revision)


def check_known_schema(session: Session, settings: Settings) -> str:
    """Refuse a blank database or one made by a newer lims; an older schema is accepted.

    Returns the schema revision.
    """
    revision = stored_revision(session.connection())
    if revision is None:
        where = settings.sqlite_path or "the configured database"
        raise NotFound(f"the database at {where} is not initialised; run `lims init`")
    if revision not in SCHEMA_REVISIONS:
        raise made_by_a_newer_lims(revision)
    return revision


def minimum_write_format(connection: Connection) -> int | None:
    """The lowest write format the database accepts; None before 0005 or on a blank database."""
    minimum: int | None = _read_if_there(connection, "SELECT minimum FROM write_format")
    return minimum


def check_write_format(session: Session, *, writer: bool) -> None:
    """Turn away a lims older than the database's write format; a writer raises it to its own.

    A writer calls this holding the writers' lock (serialise_writers), and the row is read
    afresh rather than from the session, so on PostgreSQL no newer lims can raise the
    minimum between this check and the writer's commit. A missing row is not put back
    with this lims's number: that would let an older lims lower the minimum.
    """
    from lims import audit
    from lims.models import WriteFormat

    floor = session.get(WriteFormat, 1, populate_existing=True)
    if floor is None:
        raise Unavailable(
            "the database's write format record is missing (removed outside lims): "
            "restore the database from a backup"
        )
    if floor.minimum > WRITE_FORMAT:
        raise Unavailable(
            f"this database may be written only by a lims of write format {floor.minimum} "
            f"or newer; this lims writes format {WRITE_FORMAT}: upgrade lims"
        )
    if writer and floor.minimum < WRITE_FORMAT:
        before, floor.minimum = floor.minimum, WRITE_FORMAT
        session.add(floor)
        audit.record_about(
            session,
            ("database", "write_format"),
            "db.write_format",
            by=None,
            old={"minimum": before},
            new={"minimum": WRITE_FORMAT, "os_user": os_user()},
        )


def absent(settings: Settings) -> bool:
    """Whether the configured database is a SQLite file that does not exist yet."""
    path = settings.sqlite_path
    return path is not None and not path.exists()


def made_by_a_newer_lims(revision: str) -> Unavailable:
    """Unavailable, not refused: the database is sound but this lims cannot read it.

    An older schema, by contrast, is a rule lims itself resolves (`lims db upgrade`).
    """
    return Unavailable(
        f"the database schema is at {revision}, which this lims does not know "
        f"(newest known {SCHEMA_HEAD}); it was made by a newer lims: upgrade lims"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.migrations_dir()))
    config.attributes["connection"] = connection
    return config


def upgrade_schema(session: Session) -> Upgrade:
    """Bring the database to the newest schema in the session's transaction, on record.

    Work done after it in the same transaction commits with the upgrade, or neither does.
    """
    from alembic import command

    from lims import audit
    from lims.views.database import Upgrade

    connection = session.connection()
    before = stored_revision(connection)
    if before is not None and before not in SCHEMA_REVISIONS:
        raise made_by_a_newer_lims(before)
    if before != SCHEMA_HEAD:
        command.upgrade(alembic_config(connection), "head")
        _refuse_broken_references(connection)
        audit.record_about(
            session,
            ("database", "schema"),
            "db.upgrade",
            by=None,
            old={"revision": before},
            new={"revision": SCHEMA_HEAD, "os_user": os_user()},
        )
    return Upgrade(from_revision=before, to_revision=SCHEMA_HEAD)


def _refuse_broken_references(connection: Connection) -> None:
    """On SQLite the migration ran with foreign keys off: check every one before it commits."""
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, row, parent, _ = broken[0]
        raise Unavailable(
            f"the schema upgrade would leave {len(broken)} broken reference(s), the first "
            f"{table} row {row} to {parent}; nothing was changed: restore from a backup"
        )


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
