"""The one place where an exception becomes one line on stderr and an exit code."""

from __future__ import annotations

import sys

from lims.errors import LimsError

INTERNAL_ERROR = 1


def describe(error: BaseException) -> tuple[str, int]:
    """The message and exit code for an error that reached the top of a command."""
    if isinstance(error, LimsError):
        return error.message, error.exit_code
    database_problem = _describe_database_error(error)
    if database_problem is not None:
        return database_problem, INTERNAL_ERROR
    if isinstance(error, OSError):
        where = f": {_printable(error.filename)}" if error.filename else ""
        return f"{error.strerror or error}{where}", INTERNAL_ERROR
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


def _describe_database_error(error: BaseException) -> str | None:
    exc = sys.modules.get("sqlalchemy.exc")
    if exc is None or not isinstance(error, exc.DBAPIError):
        return None
    detail = _first_line(error.orig) if error.orig is not None else _first_line(error)
    lowered = detail.lower()
    # SQLite names the exact condition (Python 3.11+); the text is the fallback.
    sqlite_code = getattr(error.orig, "sqlite_errorname", "") or ""
    if sqlite_code.startswith("SQLITE_BUSY") or "database is locked" in lowered:
        return "the database is busy: another station held it too long; try again"
    if sqlite_code.startswith("SQLITE_READONLY") or "readonly database" in lowered:
        return f"the database cannot be written (read-only file or disk): {detail}"
    if sqlite_code == "SQLITE_FULL" or "disk is full" in lowered or "no space" in lowered:
        return f"the disk holding the database is full: {detail}"
    if sqlite_code.startswith("SQLITE_IOERR"):
        return (
            f"the database could not be written to disk ({sqlite_code}): "
            "the disk may be full, read-only or failing; nothing was saved"
        )
    if sqlite_code == "SQLITE_NOTADB" or "file is not a database" in lowered:
        return f"the database file is not a SQLite database (damaged or not lims's): {detail}"
    if sqlite_code == "SQLITE_CORRUPT" or "malformed" in lowered:
        return (
            f"the database file is damaged ({detail}); restore the last backup "
            "with `lims db restore`"
        )
    if isinstance(error, exc.OperationalError) and (
        "connection" in lowered or "could not connect" in lowered or "unable to open" in lowered
    ):
        return f"cannot open the database: {detail}"
    return f"database error: {detail}"
