"""Junk for bad-input tests, a command run in this process, and the state a refusal leaves alone.

JUNK is what hypothesis feeds any option: text of any character (controls,
lone surrogates, which is how bytes that are not UTF-8 arrive, right-to-left
marks), SQL and shell injection, option-like tokens, very long and numeric
text; never a NUL, which a shell cannot send (the tests that need one pass it
explicitly). snapshot() is every row of every table and the station's session
file, for comparing before and after a refusal; only login_sessions.last_seen_at
is left out, since a read-only command that answers restarts its idle clock.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, Table

from lims import auth, db
from lims.config import Settings
from tests.support.cli import run_lims


def _valid_text(value: str, max_length: int) -> bool:
    """Free text: not blank, not too long, no control characters or undecodable bytes."""
    return (
        bool(value.strip())
        and len(value) <= max_length
        and not any(unicodedata.category(character) in ("Cc", "Cs") for character in value)
    )


_CONTROL = st.characters(categories=["Cc"])
# Argument bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape).
_UNDECODABLE = st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
_TRICKY = st.sampled_from(
    [
        *"\u202e\u202d\u200f\u200b\ufeff\u2028\u00a0\u3000'\"`\\;%$<>[]{}",
        "😀",
        "👩",
        "\u200d",
        "🔬",
        "\U0010ffff",
    ]
)
_CHAR = st.one_of(st.characters(), _CONTROL, _UNDECODABLE, _TRICKY)
_HOSTILE = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "\n",
        "'; DROP TABLE users; --",
        "Robert'); DROP TABLE audit_entries;--",
        "' OR '1'='1",
        '" OR ""="',
        "\u202egnp.exe",
        "\u202eadmin",
        "admin\u200b",
        "ADMIN",
        "Admin",
        "admin ",
        " admin",
        "a",
        "😀",
        "NULL",
        "None",
        "null",
        "%s%s%s%n",
        "{0}{1}",
        "$(reboot)",
        "`id`",
        "\\",
        "\x1b[2J\x1b[H",
        "\x1b]0;pwned\x07",
        "line one\nline two",
        "carriage\rreturn",
        "user:tech",
    ]
)
_LONG = st.builds(
    lambda unit, size: (unit * size)[:size],
    st.text(_CHAR, min_size=1, max_size=4),
    st.sampled_from([33, 101, 1025, 2001, 10_000]),
)
_NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**63 - 2, max_value=2**70).map(str),
    st.floats().map(str),
    st.sampled_from(["0", "-0", "-1", "-3", "1e309", "NaN", "inf", "0x10", "1_000", "٣", "½"]),
)
_OPTION_LIKE = st.one_of(
    st.sampled_from(
        [
            "-",
            "--",
            "---",
            "-h",
            "--json",
            "--reason",
            "--role",
            "--role=admin",
            "--full-name",
            "--admin",
            "--password-stdin",
            "--version",
            "--entity",
            "--last=1",
            "-1",
        ]
    ),
    st.text(_CHAR, max_size=12).map(lambda text: "--" + text),
    st.text(_CHAR, min_size=1, max_size=6).map(lambda text: "-" + text),
)


def _without_nul(text: str) -> str:
    return text.replace("\x00", "")


JUNK = st.one_of(st.text(_CHAR, max_size=30), _HOSTILE, _LONG, _NUMBERS, _OPTION_LIKE).map(
    _without_nul
)


def fuzz(examples: int) -> hypothesis_settings:
    """Examples share the test's database: the lab is set up (and logged in) once per test."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


# --- running a command and judging the refusal -----------------------------------------


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str


def _run(*args: str, stdin: str | bytes | None = None) -> Ran:
    """`lims ARGS` in this process; an exception lims did not catch would be a traceback."""
    result = run_lims(args, stdin)
    assert result.escaped is None, f"uncaught {result.escaped!r}"
    return Ran(result.exit_code, result.stdout, result.stderr)


PROMPTS = ("Password", "Repeat for confirmation")


def _one_line_error(ran: Ran, exit_codes: tuple[int, ...] = (2,)) -> str:
    """The refusal's single line: exit code, no traceback, nothing on stdout."""
    assert "Traceback" not in ran.stdout + ran.stderr
    assert ran.exit_code in exit_codes, (ran.exit_code, ran.stdout, ran.stderr)
    # Nothing on stdout but a password prompt (`login -- --password-stdin` prompts, then refuses).
    printed = [line for line in ran.stdout.splitlines() if not line.startswith(PROMPTS)]
    assert not printed, ran.stdout
    assert ran.stderr.endswith("\n"), repr(ran.stderr)
    line = ran.stderr[:-1]
    # One line on a terminal: no newline, carriage return, escape sequence or other control.
    controls = [character for character in line if unicodedata.category(character) == "Cc"]
    assert not controls, f"control characters {controls!r} in {ran.stderr!r}"
    assert line.startswith("error: "), repr(line)
    return line


# --- the state a refused command must leave alone -------------------------------------

IDLE_CLOCK = ("login_sessions", "last_seen_at")
# Tables reflected once per shape of schema, not once per test's database: reflecting took
# a fifth of a second, and every test database at the newest schema has the same tables.
_reflected: dict[tuple[Any, ...], list[Table]] = {}
_SHAPE = {
    "sqlite": "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name",
    "postgresql": "SELECT table_name, column_name, data_type, ordinal_position "
    "FROM information_schema.columns WHERE table_schema = current_schema() "
    "ORDER BY table_name, ordinal_position",
}


def _tables(settings: Settings) -> list[Table]:
    engine = db.engine_for(settings)
    with engine.connect() as connection:
        shape = (engine.dialect.name, *connection.exec_driver_sql(_SHAPE[engine.dialect.name]))
    tables = _reflected.get(shape)
    if tables is None:
        metadata = MetaData()
        metadata.reflect(engine)
        tables = sorted(metadata.tables.values(), key=lambda table: table.name)
        if tables:  # a blank database is looked at afresh each time
            _reflected[shape] = tables
    return tables


def _kept_columns(table: Table) -> list[str]:
    return [column.name for column in table.columns if (table.name, column.name) != IDLE_CLOCK]


def snapshot(settings: Settings) -> dict[str, Any]:
    """Every row of every table (but the idle clock), and the station's session file.

    Rows are read through the driver's own cursor, without SQLAlchemy's typing of each value:
    equal stored values are equal either way, and a snapshot is taken twice for every
    piece of junk the tests feed.
    """
    session_file = auth.session_file(settings)
    state: dict[str, Any] = {
        "session file": session_file.read_text() if session_file.exists() else None
    }
    path = settings.sqlite_path
    if path is not None and not path.exists():
        state["database files"] = sorted(found.name for found in path.parent.glob(path.name + "*"))
        return state
    tables = _tables(settings)
    engine = db.engine_for(settings)
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as connection:
        cursor = connection.connection.cursor()
        for table in tables:
            columns = ", ".join(quote(name) for name in _kept_columns(table))
            cursor.execute(f"SELECT {columns} FROM {quote(table.name)}")
            state[table.name] = sorted((tuple(row) for row in cursor.fetchall()), key=repr)
        cursor.close()
    return state
