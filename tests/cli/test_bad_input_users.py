"""Bad input to the user, session and audit commands: one line, exit 2, nothing written.

The rule (DESIGN.md, "Rules that never bend"): bad input gets one line on
stderr that starts "error: " and names the field and what is allowed, a
non-zero exit (2 for bad input), no traceback, and no change to the database.
The other half of the rule: hostile free text that IS valid (quotes, SQL,
right-to-left marks, emoji) is stored and shown exactly as typed.

Hypothesis draws the junk. Each example has exactly one bad field and valid
values everywhere else, so the command can only refuse; the whole database
(every row of every table) is compared before and after, as is the station's
session file. Only login_sessions.last_seen_at is left out: a read-only
command that answers (audit log) restarts its session's idle clock.

A NUL character cannot reach lims from a shell (argv is C strings), so the
generated junk leaves it out and one test feeds it in explicitly. Bytes that
are not UTF-8 can: Python hands them over as lone surrogates (U+DC80-U+DCFF),
so the junk includes those, and a subprocess test passes raw bytes.

The junk, the in-process runner and snapshot() are tests.support.junk's, shared
with the other tests/cli/test_bad_input_*.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from itertools import count

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from lims.config import Settings
from lims.domain.signatures import comparable_name, full_name_problem
from tests.support.floor import Floor, _refused_writing_nothing
from tests.support.junk import (
    _NUMBERS,
    _TRICKY,
    JUNK,
    Ran,
    _one_line_error,
    _run,
    _valid_text,
    fuzz,
    snapshot,
)
from tests.support.lab import PASSWORD, Lab

# --- what is valid, restated from the issue and the error messages -------------------

USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,31}")
ROLES = ("technician", "qa", "admin")
FULL_NAME_MAX = 100
REASON_MAX = 2000
PASSWORD_MIN, PASSWORD_MAX = 12, 1024
TECH = "tom"  # a technician every lab in this file has


def _valid_username(value: str) -> bool:
    return USERNAME.fullmatch(value) is not None


def _valid_password(value: str, username: str) -> bool:
    return (
        PASSWORD_MIN <= len(value) <= PASSWORD_MAX
        and value.strip() == value
        and value.lower() != username.lower()
        and _valid_text(value, PASSWORD_MAX)
    )


# A positional argument of exactly --help asks for help, which is not bad input.
POSITIONAL_JUNK = JUNK.filter(lambda text: text != "--help")
# The password comes from the first line of standard input, as text.
PASSWORD_JUNK = JUNK.map(lambda text: re.sub("[\r\n\ud800-\udfff]", "", text))

# Valid values for the fields that are not under test; hostile, but within the rules.
GOOD_FULL_NAMES = st.sampled_from(
    ["Tom Tech", "O'Brien; DROP TABLE users; --", "<script>evil</script>", "Zoë 😀 Ñúñez", "--json"]
)
GOOD_REASONS = st.sampled_from(["moved to QA", "'; DROP TABLE users; --", "\u202e", "--json", "-"])
NEW_USERNAMES = st.from_regex(USERNAME, fullmatch=True).filter(
    lambda name: name not in ("admin", TECH)
)


# --- running a command and judging the refusal -----------------------------------------


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    field: str
    junk: str
    stdin: str | None = None


# Click's own refusals of a token that looks like an option (e.g. a user name of "-3").
CLICK_USAGE = (
    "No such option",
    "Missing argument",
    "Missing option",
    "requires an argument",
    "unexpected extra argument",
)
SAYS_WHAT_IS_ALLOWED = ("must", "found no password")


# --- judging a refusal, and the state it must leave alone -------------------------------


def _names_field(line: str, field: str, junk: str) -> bool:
    """Whether a refusal names the field and what is allowed, or the token Click could not place."""
    if line.startswith(f"error: {field}: "):  # lims: "FIELD: must be ..."
        return any(word in line for word in SAYS_WHAT_IS_ALLOWED)
    if f"'--{field}'" in line or f"'{field}'" in line:  # Click: Invalid value for '--last': ...
        return True
    # A positional that looks like an option: Click names the token it could not place.
    return junk.startswith("-") and any(usage in line for usage in CLICK_USAGE)


def _assert_refused(ran: Ran, case: Case, exit_codes: tuple[int, ...] = (2,)) -> None:
    line = _one_line_error(ran, exit_codes)
    assert _names_field(line, case.field, case.junk), f"{line!r} does not name {case.field!r}"


def _assert_refused_and_unchanged(settings: Settings, case: Case) -> None:
    before = snapshot(settings)
    ran = _run(*case.args, stdin=case.stdin)
    _assert_refused(ran, case)
    assert snapshot(settings) == before, f"{case.args!r} changed the database"


@pytest.fixture
def admin_lab(lab: Lab) -> Lab:
    """The lab with a technician, logged in as admin at this station."""
    lab.add_user(TECH, "technician")
    return lab


# --- lims user add ----------------------------------------------------------------------


def _user_add(
    field: str,
    *,
    name: str = "bob",
    full_name: str = "Bob Tester",
    role: str = "qa",
    password: str = PASSWORD,
) -> Case:
    values = {"name": name, "full-name": full_name, "role": role, "password": password}
    args = ("user", "add", name, "--full-name", full_name, "--role", role, "--password-stdin")
    return Case(args, field, values[field], stdin=password + "\n")


@st.composite
def user_add_cases(draw: st.DrawFn) -> Case:
    field = draw(st.sampled_from(["name", "full-name", "role", "password"]))
    name = draw(NEW_USERNAMES)
    full_name = draw(GOOD_FULL_NAMES)
    role = draw(st.sampled_from(ROLES))
    password = PASSWORD
    if field == "name":
        name = draw(POSITIONAL_JUNK.filter(lambda text: not _valid_username(text)))
    elif field == "full-name":
        full_name = draw(JUNK.filter(lambda text: not _valid_text(text, FULL_NAME_MAX)))
    elif field == "role":
        role = draw(JUNK.filter(lambda text: text not in ROLES))
    else:
        password = draw(
            st.one_of(PASSWORD_JUNK, st.just(name.upper())).filter(
                lambda text: not _valid_password(text, name)
            )
        )
    return _user_add(field, name=name, full_name=full_name, role=role, password=password)


@fuzz(80)
@given(case=user_add_cases())
@example(case=_user_add("full-name", full_name="x" * (FULL_NAME_MAX + 1)))
@example(case=_user_add("full-name", full_name="Bob\u202e\x1b[2J"))
@example(case=_user_add("name", name="Robert'); DROP TABLE users;--"))
@example(case=_user_add("role", role="--json"))
@example(case=_user_add("password", password=""))
@example(case=_user_add("password", password="x" * (PASSWORD_MAX + 1)))
def test_user_add_refuses_junk_and_writes_nothing(admin_lab: Lab, case: Case) -> None:
    _assert_refused_and_unchanged(admin_lab.settings, case)


# --- lims user deactivate / unlock / set-role -------------------------------------------


def _user_change(command: str, field: str, *, name: str = TECH, reason: str | None = None) -> Case:
    args = ("user", command, name, *(("--reason", reason) if reason is not None else ()))
    return Case(args, field, {"name": name, "reason": reason or ""}[field])


@st.composite
def user_change_cases(draw: st.DrawFn, command: str) -> Case:
    field = draw(st.sampled_from(["name", "reason"]))
    if field == "name":
        name = draw(POSITIONAL_JUNK.filter(lambda text: not _valid_username(text)))
        reason = draw(st.none() | GOOD_REASONS)
        return _user_change(command, field, name=name, reason=reason)
    reason = draw(JUNK.filter(lambda text: not _valid_text(text, REASON_MAX)))
    return _user_change(command, field, reason=reason)


@pytest.mark.parametrize("command", ["deactivate", "unlock"])
@fuzz(50)
@given(data=st.data())
def test_deactivate_and_unlock_refuse_junk_and_write_nothing(
    admin_lab: Lab, command: str, data: st.DataObject
) -> None:
    case = data.draw(user_change_cases(command))
    _assert_refused_and_unchanged(admin_lab.settings, case)


def test_deactivate_and_unlock_refuse_pinned_junk(admin_lab: Lab) -> None:
    for command in ("deactivate", "unlock"):
        for case in [
            _user_change(command, "reason", reason=""),
            _user_change(command, "reason", reason="   "),
            _user_change(command, "reason", reason="x" * (REASON_MAX + 1)),
            _user_change(command, "reason", reason="ok\nforged second line"),
            _user_change(command, "name", name="-3"),
            _user_change(command, "name", name="tom'; DROP TABLE users; --"),
        ]:
            _assert_refused_and_unchanged(admin_lab.settings, case)


def _set_role(
    field: str, *, name: str = TECH, role: str = "qa", reason: str = "moved to QA"
) -> Case:
    args = ("user", "set-role", name, role, "--reason", reason)
    return Case(args, field, {"name": name, "role": role, "reason": reason}[field])


@st.composite
def set_role_cases(draw: st.DrawFn) -> Case:
    field = draw(st.sampled_from(["name", "role", "reason"]))
    if field == "name":
        return _set_role(field, name=draw(POSITIONAL_JUNK.filter(lambda t: not _valid_username(t))))
    if field == "role":
        return _set_role(field, role=draw(POSITIONAL_JUNK.filter(lambda text: text not in ROLES)))
    return _set_role(field, reason=draw(JUNK.filter(lambda t: not _valid_text(t, REASON_MAX))))


@fuzz(60)
@given(case=set_role_cases())
@example(case=_set_role("role", role="QA"))
@example(case=_set_role("role", role="admin\u200b"))
@example(case=_set_role("reason", reason=""))
@example(case=_set_role("reason", reason="\u202e" * (REASON_MAX + 1)))
def test_set_role_refuses_junk_and_writes_nothing(admin_lab: Lab, case: Case) -> None:
    _assert_refused_and_unchanged(admin_lab.settings, case)


# --- lims init ----------------------------------------------------------------------------


def _init(
    field: str, *, admin: str = "ada", full_name: str = "Ada Admin", password: str = PASSWORD
) -> Case:
    args = ("init", "--admin", admin, "--full-name", full_name, "--password-stdin")
    values = {"admin": admin, "full-name": full_name, "password": password}
    return Case(args, field, values[field], stdin=password + "\n")


@st.composite
def init_cases(draw: st.DrawFn) -> Case:
    field = draw(st.sampled_from(["admin", "full-name", "password"]))
    if field == "admin":
        return _init(field, admin=draw(JUNK.filter(lambda text: not _valid_username(text))))
    if field == "full-name":
        return _init(
            field, full_name=draw(JUNK.filter(lambda t: not _valid_text(t, FULL_NAME_MAX)))
        )
    password = draw(PASSWORD_JUNK.filter(lambda text: not _valid_password(text, "ada")))
    return _init(field, password=password)


@fuzz(60)
@given(case=init_cases())
@example(case=_init("password", password="ada"))
@example(case=_init("admin", admin="Ada"))
@example(case=_init("full-name", full_name=" "))
def test_init_refuses_junk_and_creates_no_database(settings: Settings, case: Case) -> None:
    before = snapshot(settings)
    assert "users" not in before  # a blank database: nothing to compare but its absence
    ran = _run(*case.args, stdin=case.stdin)
    _assert_refused(ran, case)
    assert snapshot(settings) == before, f"{case.args!r} created or changed a database"


@fuzz(25)
@given(case=init_cases())
def test_init_on_a_lab_refuses_junk_and_writes_nothing(lab: Lab, case: Case) -> None:
    _assert_refused_and_unchanged(lab.settings, case)


# --- lims login: a refused login is audited, but never starts a session ----------------


@st.composite
def login_cases(draw: st.DrawFn) -> Case:
    field = draw(st.sampled_from(["name", "password"]))
    if field == "name":
        name = draw(POSITIONAL_JUNK.filter(lambda text: not _valid_username(text)))
        return Case(("login", name, "--password-stdin"), field, name, stdin=PASSWORD + "\n")
    name = draw(st.sampled_from([TECH, "nobody"]))
    password = draw(PASSWORD_JUNK.filter(lambda text: text != PASSWORD))
    return Case(("login", name, "--password-stdin"), field, password, stdin=password + "\n")


@fuzz(30)
@given(case=login_cases())
@example(case=Case(("login", TECH, "--password-stdin"), "password", "", stdin="\n"))
@example(case=Case(("login", "--json", "--password-stdin"), "name", "--json", stdin="x\n"))
def test_login_with_junk_starts_no_session(admin_lab: Lab, case: Case) -> None:
    settings = admin_lab.settings
    before = snapshot(settings)
    ran = _run(*case.args, stdin=case.stdin)
    line = _one_line_error(ran, exit_codes=(2, 4))
    if ran.exit_code == 2:
        assert _names_field(line, case.field, case.junk), line
    after = snapshot(settings)
    assert after["login_sessions"] == before["login_sessions"], "a refused login touched sessions"
    assert after["session file"] == before["session file"], "a refused login replaced the token"


# --- lims audit log: read-only, but it parses what it is given ---------------------------

AUDIT_FILTERS = {
    "entity": st.one_of(JUNK, JUNK.map(lambda text: "user:" + text), st.just("user:" + TECH)),
    "user": st.one_of(JUNK, st.sampled_from(["admin", TECH, "nobody"])),
    "since": st.one_of(
        JUNK,
        st.dates().map(lambda day: day.isoformat()),
        st.datetimes(timezones=st.none() | st.timezones()).map(lambda moment: moment.isoformat()),
    ),
    "last": st.one_of(_NUMBERS, JUNK),
}


@st.composite
def audit_log_filters(draw: st.DrawFn) -> tuple[tuple[str, str], ...]:
    chosen = draw(st.lists(st.sampled_from(sorted(AUDIT_FILTERS)), min_size=1, unique=True))
    return tuple((field, draw(AUDIT_FILTERS[field])) for field in chosen)


@fuzz(80)
@given(filters=audit_log_filters(), as_json=st.booleans())
# A count beyond 64 bits once escaped --last's parsing and failed in the database.
@example(filters=(("last", str(2**63)),), as_json=False)
# A byte that is not UTF-8 ($'\xff' from a shell) arrives as U+DCFF.
@example(filters=(("user", "\udcff"),), as_json=False)
@example(filters=(("entity", "user:\udcff"),), as_json=False)
def test_audit_log_answers_or_refuses_junk_filters_cleanly(
    admin_lab: Lab, filters: tuple[tuple[str, str], ...], as_json: bool
) -> None:
    settings = admin_lab.settings
    args = ["audit", "log", *(part for field, value in filters for part in (f"--{field}", value))]
    before = snapshot(settings)
    ran = _run(*args, *(["--json"] if as_json else []))
    if ran.exit_code != 0:
        line = _one_line_error(ran)
        assert any(_names_field(line, field, value) for field, value in filters), line
    assert snapshot(settings) == before


# --- usage errors, and the NUL a shell cannot send ----------------------------------------


def test_usage_errors_are_one_line_exit_2_and_write_nothing(admin_lab: Lab) -> None:
    settings = admin_lab.settings
    failures = []
    for args in [
        ("user", "add", "bob", "--full-name", "Bob", "--password-stdin"),
        ("user", "add", "--full-name", "Bob", "--role", "qa", "--password-stdin"),
        ("user", "add", "bob", "--full-name", "Bob", "--role", "qa", "--role"),
        ("user", "add", "bob", "--full-name", "Bob", "--role", "qa", "--rol", "qa"),
        ("user", "set-role", TECH, "qa"),
        ("user", "set-role", TECH, "--reason", "promoted"),
        ("user", "set-role", TECH, "qa", "admin", "--reason", "promoted"),
        ("user", "set-role", TECH, "qa", "--reason", "promoted", "--json=yes"),
        ("user", "deactivate"),
        ("user", "deactivate", TECH, "--reason"),
        ("user", "deactivate", TECH, "also-this-one"),
        ("user", "unlock", TECH, "--force"),
        ("user", "frobnicate", TECH),
        ("init", "--full-name", "Ada Admin", "--password-stdin"),
        ("login",),
        ("login", TECH, TECH),
        ("audit", "log", "--last", "0"),
        ("audit", "log", "--last", "-1"),
        ("audit", "log", "--last", "three"),
        ("audit", "log", "--last", "1.5"),
        ("audit", "log", "--since"),
    ]:
        before = snapshot(settings)
        try:
            _one_line_error(_run(*args, stdin=PASSWORD + "\n"))
            assert snapshot(settings) == before, "changed the database"
        except AssertionError as error:
            failures.append(f"{args!r}: {error}")
    assert not failures, "\n".join(failures)


NUL_CASES = [
    _user_add("name", name="bo\x00b"),
    _user_add("full-name", full_name="Bob\x00Tester"),
    _user_add("role", role="qa\x00"),
    _user_add("password", password="correct horse\x00battery"),
    _user_change("deactivate", "name", name=TECH + "\x00"),
    _user_change("deactivate", "reason", reason="left\x00"),
    _user_change("unlock", "reason", reason="\x00"),
    _set_role("role", role="qa\x00"),
    _set_role("reason", reason="promoted\x00"),
    _init("admin", admin="ada\x00"),
    _init("full-name", full_name="Ada\x00Admin"),
    Case(("login", TECH + "\x00", "--password-stdin"), "name", TECH, stdin=PASSWORD + "\n"),
]
NUL_FILTERS = [("since", "2026-01-01\x00"), ("last", "1\x00"), ("entity", "user:tom\x00")]
NUL_FILTERS += [("user", "tom\x00")]


def test_a_nul_character_is_refused_cleanly(admin_lab: Lab) -> None:
    """A NUL cannot come from a shell, but a script calling lims can pass one."""
    settings = admin_lab.settings
    failures = []
    for case in NUL_CASES:
        try:
            _assert_refused_and_unchanged(settings, case)
        except AssertionError as error:
            failures.append(f"{case.args!r}: {error}")
    for field, value in NUL_FILTERS:
        before = snapshot(settings)
        ran = _run("audit", "log", f"--{field}", value)
        try:
            # A filter either matches nothing or is refused naming itself, on every backend.
            if ran.exit_code != 0:
                line = _one_line_error(ran)
                assert _names_field(line, field, value), f"{line!r} does not name {field!r}"
            assert snapshot(settings) == before
        except AssertionError as error:
            failures.append(f"audit log --{field} {value!r}: {error}")
    assert not failures, "\n".join(failures)


# --- bytes that are not UTF-8 ------------------------------------------------------------


def _lims_process(args: list[bytes], *, stdin: bytes = b"", io_encoding: str | None = None) -> Ran:
    """`lims ARGS` as a separate process, as a shell starts it."""
    env = dict(os.environ)
    if io_encoding is not None:
        env["PYTHONIOENCODING"] = io_encoding
    process = subprocess.run(
        [sys.executable, "-m", "lims", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    return Ran(
        process.returncode,
        process.stdout.decode(errors="backslashreplace"),
        process.stderr.decode(errors="backslashreplace"),
    )


def test_an_argument_byte_that_is_not_utf8_is_refused_or_matches_nothing(admin_lab: Lab) -> None:
    """From a shell, `lims audit log --user $'\\xff'`; Python hands lims U+DCFF."""
    before = snapshot(admin_lab.settings)
    ran = _lims_process([b"audit", b"log", b"--user", b"\xff"])
    if ran.exit_code != 0:
        line = _one_line_error(ran)
        assert _names_field(line, "user", ""), f"{line!r} does not name 'user'"
    assert snapshot(admin_lab.settings) == before


PASSWORD_NOT_UTF8 = b"\xff" + PASSWORD.encode() + b"\n"
PASSWORD_COMMANDS = [
    ("user", "add", "bob", "--full-name", "Bob", "--role", "qa", "--password-stdin"),
    ("init", "--admin", "ada", "--full-name", "Ada Admin", "--password-stdin"),
    ("login", TECH, "--password-stdin"),
]


def test_a_password_line_that_is_not_utf8_is_refused_cleanly(admin_lab: Lab) -> None:
    """Under a UTF-8 locale (en_US.UTF-8) Python reads standard input strictly."""
    settings = admin_lab.settings
    failures = []
    for args in PASSWORD_COMMANDS:
        before = snapshot(settings)
        ran = _run(*args, stdin=PASSWORD_NOT_UTF8)
        # A refused login is audited, but starts no session; the others write nothing.
        kept = ("login_sessions", "session file") if args[0] == "login" else tuple(before)
        try:
            line = _one_line_error(ran, exit_codes=(2, 4) if args[0] == "login" else (2,))
            assert "unexpected" not in line, line
            after = snapshot(settings)
            assert {key: after[key] for key in kept} == {key: before[key] for key in kept}
        except AssertionError as error:
            failures.append(f"lims {' '.join(args)} <<< {PASSWORD_NOT_UTF8!r}: {error}")
    assert not failures, "\n".join(failures)


def test_a_password_line_that_is_not_utf8_is_refused_cleanly_under_the_c_locale(
    admin_lab: Lab,
) -> None:
    """Under the C or POSIX locale Python reads it with surrogateescape: U+DCFF reaches lims."""
    settings = admin_lab.settings
    before = snapshot(settings)
    ran = _lims_process(
        [b"login", TECH.encode(), b"--password-stdin"],
        stdin=PASSWORD_NOT_UTF8,
        io_encoding="utf-8:surrogateescape",
    )
    line = _one_line_error(ran, exit_codes=(2, 4))
    assert "unexpected" not in line, line
    after = snapshot(settings)
    assert after["login_sessions"] == before["login_sessions"]
    assert after["session file"] == before["session file"]


# --- the other half: hostile text that is valid is kept exactly as typed ---------------

VALID_FREE_CHAR = st.one_of(st.characters(exclude_categories=["Cc", "Cs"]), _TRICKY)
HOSTILE_BUT_VALID = [
    "'; DROP TABLE users; --",
    'Robert"); DROP TABLE audit_entries;--',
    "\u202eevil\u202c Admin",
    "Zoë 👩‍🔬 Ñúñez 😀",
    "[bold red]markup[/bold red]",
    "<script>alert(1)</script>",
    "%s %d {0} $(reboot) `id`",
    "  leading and trailing  ",
    "\\N{NULL}",
    "--json",
    "-",
]
_new_names = count(1)
_taken_full_names = {comparable_name("Ada Admin"), comparable_name("Tom Tester")}  # the lab's own


def _full_names(settings: Settings) -> dict[str, str]:
    ran = _run("user", "list", "--json")
    assert ran.exit_code == 0, ran.stderr
    return {user["username"]: user["full_name"] for user in json.loads(ran.stdout)}


@fuzz(10)
@given(
    full_name=st.text(VALID_FREE_CHAR, min_size=1, max_size=FULL_NAME_MAX).filter(
        lambda text: _valid_text(text, FULL_NAME_MAX) and full_name_problem(text) is None
    )
)
@example(full_name="x" * FULL_NAME_MAX)
@example(full_name="  leading and trailing  ")
@example(full_name="😀" * FULL_NAME_MAX)
def test_a_valid_hostile_full_name_is_stored_and_shown_verbatim(
    admin_lab: Lab, full_name: str
) -> None:
    # The examples share one lab, where an active user's full name is taken.
    assume(comparable_name(full_name) not in _taken_full_names)
    _taken_full_names.add(comparable_name(full_name))
    name = f"hostile{next(_new_names)}"
    args = ("user", "add", name, "--full-name", full_name, "--role", "technician")
    added = _run(*args, "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["full_name"] == full_name
    assert _full_names(admin_lab.settings)[name] == full_name
    trail = json.loads(_run("audit", "log", "--entity", f"user:{name}", "--json").stdout)
    assert trail[-1]["new"]["full_name"] == full_name


def test_hostile_full_names_are_shown_verbatim_in_json_and_in_the_table(admin_lab: Lab) -> None:
    expected = {}
    # Hostile text a full name may hold: no invisible characters, no mixed scripts.
    printable = [text for text in HOSTILE_BUT_VALID if full_name_problem(text) is None]
    for number, full_name in enumerate(printable[:6]):
        name = f"hostile{number}"
        args = ("user", "add", name, "--full-name", full_name, "--role", "qa", "--password-stdin")
        added = _run(*args, stdin=PASSWORD + "\n")
        assert added.exit_code == 0, (full_name, added.stderr)
        expected[name] = full_name
    shown = _full_names(admin_lab.settings)
    assert {name: shown[name] for name in expected} == expected
    table = _run("user", "list")
    assert table.exit_code == 0, table.stderr
    for full_name in expected.values():
        assert full_name.strip() in table.stdout, full_name


@fuzz(40)
@given(
    reason=st.one_of(
        st.sampled_from(HOSTILE_BUT_VALID),
        st.text(VALID_FREE_CHAR, min_size=1, max_size=200),
    ).filter(lambda text: _valid_text(text, REASON_MAX))
)
@example(reason="\u202e" * REASON_MAX)
def test_a_valid_hostile_reason_is_kept_verbatim_in_the_trail(admin_lab: Lab, reason: str) -> None:
    current = {user["username"]: user for user in json.loads(_run("user", "list", "--json").stdout)}
    old = current[TECH]["role"]
    new = "qa" if old == "technician" else "technician"
    changed = _run("user", "set-role", TECH, new, "--reason", reason)
    assert changed.exit_code == 0, changed.stderr
    (entry,) = json.loads(
        _run("audit", "log", "--entity", f"user:{TECH}", "--last", "1", "--json").stdout
    )
    assert (entry["action"], entry["old"], entry["new"]) == (
        "user.role_change",
        {"role": old},
        {"role": new},
    )
    assert entry["reason"] == reason


# --- lims logout, on the QA floor (tests.support.floor) -----------------------------------------


def test_logout_with_junk_arguments_is_refused_and_keeps_the_session(floor: Floor) -> None:
    failures = []
    for args in (("x",), ("--json",), ("--all",), ("tom",), ("--", "--help"), ("\x1b[2J",)):
        try:
            _refused_writing_nothing(floor, ("logout", *args), "logout", args[-1])
        except AssertionError as error:
            failures.append(f"logout {args!r}: {error}")
    assert not failures, "\n".join(failures)
