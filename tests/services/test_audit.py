"""The audit trail: chained, append-only, and tampering is found and named."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Connection

from lims import audit, db
from lims.config import Settings
from lims.uow import unit_of_work
from tests.support.lab import ON_POSTGRES
from tests.support.trail import ENTRIES, _tamper, _verify


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
