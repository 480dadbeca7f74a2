"""The error boundary, branch by branch: lims.cli.errors.describe on constructed errors.

Each database condition (tests/system/test_database_conditions.py makes the real
ones) has its one-line message and exit 5; a lims error keeps its message and
code; an OS error is the environment, exit 5; anything else is a bug, exit 70.
"""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from lims.cli.errors import INTERNAL_ERROR, UNAVAILABLE, describe
from lims.errors import BadInput, LimsError, NotFound, NotPermitted, RuleViolation, Unavailable


def _sqlite_error(kind: type[sqlite3.Error], message: str, code: str | None) -> sqlite3.Error:
    """A sqlite3 error as the driver raises it; code is its sqlite_errorname (Python 3.11+)."""
    error = kind(message)
    if code is not None:
        error.sqlite_errorname = code
    return error


def _wrapped(
    orig: BaseException, kind: type[sa_exc.DBAPIError] = sa_exc.OperationalError
) -> sa_exc.DBAPIError:
    """orig as SQLAlchemy hands it on: wrapped, with the statement that failed."""
    return kind("INSERT INTO patients (code) VALUES (?)", ("PT-0042",), orig)


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        pytest.param(
            _wrapped(_sqlite_error(sqlite3.OperationalError, "database is locked", "SQLITE_BUSY")),
            "the database is busy: another station held it too long; try again",
            UNAVAILABLE,
            id="busy",
        ),
        pytest.param(
            _wrapped(_sqlite_error(sqlite3.OperationalError, "database is locked", None)),
            "the database is busy: another station held it too long; try again",
            UNAVAILABLE,
            id="busy, by its text",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(
                    sqlite3.OperationalError,
                    "attempt to write a readonly database",
                    "SQLITE_READONLY_DBMOVED",
                )
            ),
            "the database cannot be written (read-only file or disk): "
            "attempt to write a readonly database",
            UNAVAILABLE,
            id="read-only",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(sqlite3.OperationalError, "database or disk is full", "SQLITE_FULL")
            ),
            "the disk holding the database is full: database or disk is full",
            UNAVAILABLE,
            id="full",
        ),
        pytest.param(
            _wrapped(Exception('could not extend file "base/5/16384": No space left on device')),
            'the disk holding the database is full: could not extend file "base/5/16384": '
            "No space left on device",
            UNAVAILABLE,
            id="full, PostgreSQL",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(sqlite3.OperationalError, "disk I/O error", "SQLITE_IOERR_WRITE")
            ),
            "the database could not be written to disk (SQLITE_IOERR_WRITE): "
            "the disk may be full, read-only or failing; nothing was saved",
            UNAVAILABLE,
            id="I/O error",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(sqlite3.DatabaseError, "file is not a database", "SQLITE_NOTADB"),
                sa_exc.DatabaseError,
            ),
            "the database file is not a SQLite database (damaged or not lims's): "
            "file is not a database",
            UNAVAILABLE,
            id="not a database",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(
                    sqlite3.DatabaseError, "database disk image is malformed", "SQLITE_CORRUPT"
                ),
                sa_exc.DatabaseError,
            ),
            "the database file is damaged (database disk image is malformed); "
            "restore the last backup with `lims db restore`",
            UNAVAILABLE,
            id="damaged",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(
                    sqlite3.OperationalError, "unable to open database file", "SQLITE_CANTOPEN"
                )
            ),
            "cannot open the database: unable to open database file",
            UNAVAILABLE,
            id="cannot open",
        ),
        pytest.param(
            _wrapped(Exception('connection failed: connection to server at "127.0.0.1", port 1')),
            'cannot open the database: connection failed: connection to server at "127.0.0.1", '
            "port 1",
            UNAVAILABLE,
            id="unreachable server",
        ),
        pytest.param(
            _wrapped(Exception("canceling statement due to statement timeout")),
            "database error: canceling statement due to statement timeout",
            UNAVAILABLE,
            id="any other operational error",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(sqlite3.OperationalError, "no such column: nickname", "SQLITE_ERROR")
            ),
            "database error: no such column: nickname",
            INTERNAL_ERROR,
            id="SQL SQLite cannot run: a bug",
        ),
        pytest.param(
            _wrapped(
                _sqlite_error(
                    sqlite3.IntegrityError,
                    "UNIQUE constraint failed: patients.code",
                    "SQLITE_CONSTRAINT_UNIQUE",
                ),
                sa_exc.IntegrityError,
            ),
            "database error: UNIQUE constraint failed: patients.code",
            INTERNAL_ERROR,
            id="a constraint lims should have checked: a bug",
        ),
        pytest.param(
            _wrapped(Exception("connection pool is not a thing"), sa_exc.ProgrammingError),
            "database error: connection pool is not a thing",
            INTERNAL_ERROR,
            id="not operational, whatever it says",
        ),
        pytest.param(
            _sqlite_error(sqlite3.OperationalError, "database or disk is full", "SQLITE_FULL"),
            "the disk holding the database is full: database or disk is full",
            UNAVAILABLE,
            id="sqlite3 unwrapped (backup, restore)",
        ),
        pytest.param(
            _sqlite_error(
                sqlite3.OperationalError, "unable to open database file", "SQLITE_CANTOPEN"
            ),
            "cannot open the database: unable to open database file",
            UNAVAILABLE,
            id="sqlite3 unwrapped, operational",
        ),
        pytest.param(
            _sqlite_error(sqlite3.ProgrammingError, "Cannot operate on a closed database.", None),
            "database error: Cannot operate on a closed database.",
            INTERNAL_ERROR,
            id="sqlite3 unwrapped, a bug",
        ),
    ],
)
def test_each_database_condition_has_its_message_and_exit_code(
    error: BaseException, message: str, code: int
) -> None:
    assert describe(error) == (message, code)


def test_a_read_only_postgresql_transaction_is_named_by_its_sqlstate() -> None:
    errors = pytest.importorskip("psycopg.errors")
    orig = errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
    assert describe(_wrapped(orig, sa_exc.InternalError)) == (
        "the database cannot be written (read-only file or disk): "
        "cannot execute INSERT in a read-only transaction",
        UNAVAILABLE,
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuleViolation("lot A999926000001-L1 is released: its record is locked"), 1),
        (BadInput("volume-ml", "must be a number"), 2),
        (NotFound("no patient PT-0042"), 3),
        (NotPermitted("not logged in"), 4),
        (Unavailable("labels written, but `lp` (CUPS) is not installed"), 5),
    ],
)
def test_a_lims_error_keeps_its_message_and_exit_code(error: LimsError, code: int) -> None:
    assert describe(error) == (error.message, code)


def test_an_os_error_is_the_environment_unavailable() -> None:
    assert describe(PermissionError(13, "Permission denied", "labels/L1.pdf")) == (
        "Permission denied: labels/L1.pdf",
        UNAVAILABLE,
    )
    assert describe(BrokenPipeError(32, "Broken pipe")) == ("Broken pipe", UNAVAILABLE)


def test_anything_else_is_a_bug() -> None:
    assert describe(KeyError("vial")) == (
        "unexpected KeyError: 'vial' (set LIMS_DEBUG=1 to see where)",
        INTERNAL_ERROR,
    )


def test_a_file_name_with_control_characters_stays_on_one_line() -> None:

    message, code = describe(FileNotFoundError(2, "No such file or directory", "a\nb\x1b[31m"))
    assert code == UNAVAILABLE
    assert "\n" not in message
    assert "\x1b" not in message
    ordinary = "labels/A999926000001-L1-labels.pdf"
    assert describe(FileNotFoundError(2, "No such file", ordinary))[0].endswith(ordinary)
