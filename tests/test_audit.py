"""The audit trail: chained, append-only, and tampering is found and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lims import audit, db
from lims.config import Settings
from lims.uow import Schema, unit_of_work
from lims.views.trail import ChainVerification
from tests.support import ON_POSTGRES, PASSWORD, Lab, invoke

ENTRIES = 6


def _append(settings: Settings, count: int, *, reason: str | None = None) -> None:
    with unit_of_work(settings, authenticated=False) as uow:
        for number in range(count):
            audit.record(
                uow.session,
                username="tech",
                action="test.step",
                entity_type="thing",
                entity_id=f"T{number}",
                old={"value": number},
                new={"value": number + 1},
                reason=reason,
            )


def _verify(settings: Settings) -> ChainVerification:
    with unit_of_work(settings, write=False, authenticated=False) as uow:
        return audit.verify(uow.session.connection())


def _tamper(settings: Settings, *statements: str, **params: object) -> None:
    """Change the trail as an attacker with database access would: triggers dropped first."""
    drop = {
        "sqlite": [
            "DROP TRIGGER IF EXISTS audit_entries_no_update",
            "DROP TRIGGER IF EXISTS audit_entries_no_delete",
        ],
        "postgresql": ["DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries"],
    }
    engine = db.engine_for(settings)
    with engine.begin() as connection:
        for statement in [*drop[engine.dialect.name], *statements]:
            connection.execute(text(statement), params)


@pytest.fixture
def trail(settings: Settings) -> Settings:
    """A database whose trail holds the upgrade entry plus ENTRIES more."""
    with unit_of_work(settings, authenticated=False, schema=Schema.UPGRADE):
        pass
    _append(settings, ENTRIES)
    return settings


def test_entries_chain_each_to_the_one_before(trail: Settings) -> None:
    with db.engine_for(trail).connect() as connection:
        rows = connection.execute(
            text("SELECT seq, prev_hash, hash, canonical FROM audit_entries ORDER BY seq")
        ).all()
        head = connection.execute(text("SELECT seq, hash FROM audit_head")).one()
    assert [row.seq for row in rows] == list(range(1, ENTRIES + 2))
    previous = audit.GENESIS_HASH
    for row in rows:
        assert row.prev_hash == previous
        assert row.hash == audit.chain_hash(row.canonical, previous)
        previous = row.hash
    assert (head.seq, head.hash) == (rows[-1].seq, rows[-1].hash)


def test_an_intact_trail_verifies(trail: Settings) -> None:
    result = _verify(trail)
    assert result.intact
    assert result.entries == ENTRIES + 1
    assert result.head_seq == ENTRIES + 1


def test_a_write_that_fails_leaves_no_audit_entry(trail: Settings) -> None:
    def failing_change() -> None:
        with unit_of_work(trail, authenticated=False) as uow:
            audit.record(
                uow.session, username="x", action="test.lost", entity_type="thing", entity_id="L"
            )
            raise RuntimeError("the change it describes failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert _verify(trail).entries == ENTRIES + 1


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("at", "'2020-01-01T00:00:00.000000Z'"),
        ("username", "'mallory'"),
        ("username", "NULL"),
        ("action", "'test.other'"),
        ("entity_type", "'other'"),
        ("entity_id", "'T9'"),
        ("old_value", "NULL"),
        ("new_value", "'{\"value\": 99}'"),
        ("reason", "'approved'"),
        ("canonical", "'forged'"),
        ("hash", "'" + "f" * 64 + "'"),
        ("prev_hash", "'" + "e" * 64 + "'"),
    ],
)
def test_an_edit_to_any_column_names_the_entry(trail: Settings, column: str, value: str) -> None:
    _tamper(trail, f"UPDATE audit_entries SET {column} = {value} WHERE seq = 4")
    result = _verify(trail)
    assert result.first_bad_seq == 4, result.problem
    assert result.entries == 3


def test_a_rewritten_entry_with_a_recomputed_hash_is_named(trail: Settings) -> None:
    with db.engine_for(trail).connect() as connection:
        row = connection.execute(text("SELECT * FROM audit_entries WHERE seq = 4")).one()
    fields = [getattr(row, name) for name in audit.CHAINED_COLUMNS]
    fields[0] = "4"
    fields[audit.CHAINED_COLUMNS.index("reason")] = "covered up"
    canonical = audit.encode_fields(fields)
    forged_hash = audit.chain_hash(canonical, row.prev_hash)
    _tamper(
        trail,
        "UPDATE audit_entries SET reason = 'covered up', canonical = :canonical, "
        "hash = :hash WHERE seq = 4",
        canonical=canonical,
        hash=forged_hash,
    )
    result = _verify(trail)
    assert result.first_bad_seq == 4, result.problem


def test_a_deleted_entry_is_named(trail: Settings) -> None:
    _tamper(trail, "DELETE FROM audit_entries WHERE seq = 3")
    result = _verify(trail)
    assert result.first_bad_seq == 3
    assert "missing" in (result.problem or "")


def test_deleting_the_newest_entries_is_found_through_the_head(trail: Settings) -> None:
    _tamper(trail, f"DELETE FROM audit_entries WHERE seq >= {ENTRIES}")
    result = _verify(trail)
    assert result.first_bad_seq == ENTRIES


def test_reordered_entries_are_named(trail: Settings) -> None:
    _tamper(
        trail,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_entries SET seq = 3 WHERE seq = 4",
        "UPDATE audit_entries SET seq = 4 WHERE seq = 1000",
    )
    result = _verify(trail)
    assert result.first_bad_seq == 3, result.problem


def _forged_entry(connection: Connection, seq: int, prev_hash: str) -> dict[str, object]:
    fields = [str(seq), "2026-01-01T00:00:00.000000Z", "mallory", "x.y", "thing", "F", None]
    fields += [None, None]
    canonical = audit.encode_fields(fields)
    return {
        "seq": seq,
        "at": fields[1],
        "username": "mallory",
        "action": "x.y",
        "entity_type": "thing",
        "entity_id": "F",
        "prev_hash": prev_hash,
        "hash": audit.chain_hash(canonical, prev_hash),
        "canonical": canonical,
    }


_INSERT = (
    "INSERT INTO audit_entries (seq, at, username, action, entity_type, entity_id, "
    "prev_hash, hash, canonical) VALUES (:seq, :at, :username, :action, :entity_type, "
    ":entity_id, :prev_hash, :hash, :canonical)"
)


def test_an_entry_appended_outside_lims_is_named(trail: Settings) -> None:
    last = ENTRIES + 1
    with db.engine_for(trail).begin() as connection:
        head_hash = connection.execute(text("SELECT hash FROM audit_head")).scalar_one()
        connection.execute(text(_INSERT), _forged_entry(connection, last + 1, head_hash))
    assert _verify(trail).first_bad_seq == last + 1


def test_an_entry_inserted_in_the_middle_is_named(trail: Settings) -> None:
    _tamper(trail, "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 4")
    _tamper(trail, "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 100")
    with db.engine_for(trail).begin() as connection:
        prev = connection.execute(text("SELECT hash FROM audit_entries WHERE seq = 3")).scalar()
        connection.execute(text(_INSERT), _forged_entry(connection, 4, prev))
    result = _verify(trail)
    assert result.first_bad_seq == 4, result.problem


readable_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00\x1f"),
    max_size=40,
)


@given(fields=st.lists(st.one_of(st.none(), readable_text), min_size=9, max_size=9))
def test_the_encoding_gives_back_exactly_the_fields_it_was_made_from(
    fields: list[str | None],
) -> None:
    fields = [
        f"{index}{value or ''}" if name not in audit.NULLABLE_COLUMNS else value
        for index, (name, value) in enumerate(zip(audit.CHAINED_COLUMNS, fields, strict=True))
    ]
    parts = audit.encode_fields(fields).split(audit.SEPARATOR)
    decoded = [
        (None if part == audit.NULL_MARK else part.removeprefix(audit.VALUE_MARK))
        if name in audit.NULLABLE_COLUMNS
        else part
        for name, part in zip(audit.CHAINED_COLUMNS, parts, strict=True)
    ]
    assert decoded == fields


def test_a_value_holding_the_separator_is_never_recorded(trail: Settings) -> None:
    with (
        pytest.raises(ValueError, match="separator"),
        unit_of_work(trail, authenticated=False) as uow,
    ):
        audit.record(
            uow.session,
            username="tech",
            action="test.step",
            entity_type="thing",
            entity_id="T1",
            reason="split\x1fhere",
        )


def test_moving_text_across_the_separator_is_caught(trail: Settings) -> None:
    _tamper(
        trail,
        "UPDATE audit_entries SET entity_type = entity_type || :sep || entity_id, "
        "entity_id = 'x' WHERE seq = 4",
        sep=audit.SEPARATOR,
    )
    assert _verify(trail).first_bad_seq == 4


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reason=readable_text, entity=readable_text.filter(lambda value: 0 < len(value) <= 64))
def test_the_database_encodes_any_text_as_lims_does(
    trail: Settings, reason: str, entity: str
) -> None:
    with unit_of_work(trail, authenticated=False) as uow:
        audit.record(
            uow.session,
            username=None,
            action="test.text",
            entity_type="thing",
            entity_id=entity,
            new={"text": reason},
            reason=reason,
        )
    assert _verify(trail).intact


_WRITER = """
import sys
from lims import audit
from lims.uow import unit_of_work
for number in range(int(sys.argv[1])):
    with unit_of_work(authenticated=False) as uow:
        audit.record(uow.session, username="station", action="test.concurrent",
                     entity_type="thing", entity_id=sys.argv[2] + str(number))
"""


@pytest.mark.slow
def test_concurrent_writers_never_fork_the_chain(trail: Settings) -> None:
    writers, each = 4, 15
    env = {**os.environ, "LIMS_DATABASE_URL": trail.database_url}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(each), f"W{writer}-"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in range(writers)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    result = _verify(trail)
    assert result.intact, result.problem
    assert result.entries == ENTRIES + 1 + writers * each


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
    assert {entry["action"] for entry in about_tech} == {"user.create", "auth.login"}
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


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL row lock")
def test_postgresql_writers_queue_on_the_audit_head(trail: Settings) -> None:
    with unit_of_work(trail, authenticated=False) as uow:
        locked = uow.session.execute(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'audit_head' AND l.mode = 'RowShareLock' "
                "AND l.pid = pg_backend_pid()"
            )
        ).scalar_one()
    assert locked == 1
