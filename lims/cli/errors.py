"""The one place where an exception becomes one line on stderr and an exit code.

A LimsError carries its own code. Anything else that reaches the top is
either the database or the operating system failing under lims, exit 5 as
for Unavailable (fix the disk, the server, the lock, then try again), or a
bug, exit 70 (EX_SOFTWARE in sysexits.h: trying again will not help; report it).
"""

from __future__ import annotations

import sys

from lims.errors import LimsError, Unavailable

UNAVAILABLE = Unavailable.exit_code
INTERNAL_ERROR = 70


def describe(error: BaseException) -> tuple[str, int]:
    """The message and exit code for an error that reached the top of a command."""
    if isinstance(error, LimsError):
        return error.message, error.exit_code
    database_problem = _describe_database_error(error)
    if database_problem is not None:
        return database_problem
    if isinstance(error, OSError):
        where = f": {_printable(error.filename)}" if error.filename else ""
        return f"{error.strerror or error}{where}", UNAVAILABLE
    return (
        f"unexpected {type(error).__name__}: {_first_line(error)} (set LIMS_DEBUG=1 to see where)",
        INTERNAL_ERROR,
    )


def _printable(filename: object) -> str:
    """A file name as typed, unless it holds characters that would break the one line."""
    text = str(filename)
    return text if text.isprintable() else repr(text)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


def _driver_error(error: BaseException) -> tuple[BaseException, bool] | None:
    """The database driver's own error and whether DB-API calls it operational; None if not one.

    SQLAlchemy wraps the driver's error; backup and restore call sqlite3 directly,
    so its errors can arrive unwrapped.
    """
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.DBAPIError):
        return error.orig or error, isinstance(error, sqlalchemy_exc.OperationalError)
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(error, sqlite3.Error):
        return error, isinstance(error, sqlite3.OperationalError)
    return None


def _describe_database_error(error: BaseException) -> tuple[str, int] | None:
    """The condition a database error names, and whose it is: the database's (5) or lims's (70)."""
    found = _driver_error(error)
    if found is None:
        return None
    driver_error, operational = found
    detail = _first_line(driver_error)
    lowered = detail.lower()
    # SQLite names the exact condition (Python 3.11+); the text is the fallback.
    sqlite_code = getattr(driver_error, "sqlite_errorname", "") or ""
    sqlstate = getattr(driver_error, "sqlstate", "") or ""  # PostgreSQL's, through psycopg
    if sqlite_code.startswith("SQLITE_BUSY") or "database is locked" in lowered:
        return "the database is busy: another station held it too long; try again", UNAVAILABLE
    if (
        sqlite_code.startswith("SQLITE_READONLY")
        or sqlstate == "25006"  # read_only_sql_transaction: a standby, or a read-only database
        or "readonly database" in lowered
    ):
        return f"the database cannot be written (read-only file or disk): {detail}", UNAVAILABLE
    if sqlite_code == "SQLITE_FULL" or "disk is full" in lowered or "no space" in lowered:
        return f"the disk holding the database is full: {detail}", UNAVAILABLE
    if sqlite_code.startswith("SQLITE_IOERR"):
        return (
            f"the database could not be written to disk ({sqlite_code}): "
            "the disk may be full, read-only or failing; nothing was saved"
        ), UNAVAILABLE
    if sqlite_code == "SQLITE_NOTADB" or "file is not a database" in lowered:
        return (
            f"the database file is not a SQLite database (damaged or not lims's): {detail}",
            UNAVAILABLE,
        )
    if sqlite_code == "SQLITE_CORRUPT" or "malformed" in lowered:
        return (
            f"the database file is damaged ({detail}); restore the last backup "
            "with `lims db restore`"
        ), UNAVAILABLE
    if operational and (
        "connection" in lowered or "could not connect" in lowered or "unable to open" in lowered
    ):
        return f"cannot open the database: {detail}", UNAVAILABLE
    # DB-API files under OperationalError what fails beneath the program (a lost server, a
    # timeout, no memory), except that SQLite puts SQL it cannot run there too (SQLITE_ERROR:
    # a syntax error, a column it lacks). That, and any other DBAPIError (a constraint lims
    # should have checked first), is a bug.
    beneath = operational and sqlite_code != "SQLITE_ERROR"
    return f"database error: {detail}", UNAVAILABLE if beneath else INTERNAL_ERROR
