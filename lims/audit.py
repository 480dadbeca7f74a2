"""The audit trail: append-only, hash-chained, written in the same transaction as its change.

Each entry's fields are encoded into canonical text, stored beside the
columns; its hash is SHA-256 over that text (UTF-8) followed by the previous
entry's hash. Verification hashes the stored text (no re-serialising) and has
the database check that every column still agrees with it, so an edit to any
column, a deleted, inserted or reordered entry is found and named, even when
the append-only triggers were dropped first.

The encoding joins the fields with U+001F (unit separator), nullable fields
marked "=" (a value follows) or "-" (null). No value may contain the
separator, so a stored record has exactly eight of them and agrees with one
set of columns only: moving text from one column into another cannot keep it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import ColumnElement, Select, String, cast, func, literal, or_, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col

from lims.models import AuditEntry, AuditHead, User
from lims.timeutil import audit_timestamp, json_time, utcnow
from lims.validation import free_text
from lims.views import from_record
from lims.views.trail import AuditView, ChainVerification

GENESIS_HASH = "0" * 64
SEPARATOR = "\x1f"
VALUE_MARK, NULL_MARK = "=", "-"

# The order in which an entry's fields are encoded; never change it.
CHAINED_COLUMNS = (
    "seq",
    "at",
    "username",
    "action",
    "entity_type",
    "entity_id",
    "old_value",
    "new_value",
    "reason",
)


NULLABLE_COLUMNS = frozenset({"username", "old_value", "new_value", "reason"})

Subject = tuple[str, str]
"""What an entry is about: its entity type and id, e.g. ("lot", "A999926000001-L1")."""


def encode_fields(values: Sequence[str | None]) -> str:
    """The canonical text of an entry's fields, in CHAINED_COLUMNS order."""
    parts = []
    for name, value in zip(CHAINED_COLUMNS, values, strict=True):
        if value is not None and SEPARATOR in value:
            raise ValueError(f"audit {name} contains the record separator U+001F")
        if name in NULLABLE_COLUMNS:
            parts.append(NULL_MARK if value is None else VALUE_MARK + value)
        elif value is None:
            raise ValueError(f"audit {name} must not be null")
        else:
            parts.append(value)
    return SEPARATOR.join(parts)


def chain_hash(canonical: str, prev_hash: str) -> str:
    return hashlib.sha256(canonical.encode() + prev_hash.encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return json_time(value)
    raise TypeError(f"cannot put {type(value).__name__} into an audit value")


def to_json(value: dict[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def record(
    session: Session,
    *,
    username: str | None,
    action: str,
    entity_type: str,
    entity_id: str,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction, after the chain's current head."""
    head = session.execute(
        select(AuditHead).where(col(AuditHead.id) == 1).with_for_update()
    ).scalar_one()
    entry = AuditEntry(
        seq=head.seq + 1,
        at=audit_timestamp(utcnow()),
        username=username,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        old_value=to_json(old),
        new_value=to_json(new),
        reason=reason,
        prev_hash=head.hash,
        hash="",
        canonical="",
    )
    fields = [getattr(entry, name) for name in CHAINED_COLUMNS]
    fields[0] = str(entry.seq)
    entry.canonical = encode_fields(fields)
    entry.hash = chain_hash(entry.canonical, head.hash)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.add(head)
    return entry


def record_about(
    session: Session,
    subject: Subject,
    action: str,
    *,
    by: str | None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry about `subject`, done by the user named `by` (None: by lims itself)."""
    entity_type, entity_id = subject
    return record(
        session,
        username=by,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        old=old,
        new=new,
        reason=reason,
    )


def record_changes(
    session: Session,
    subject: Subject,
    action: str,
    changes: Mapping[str, tuple[Any, Any]],
    *,
    by: str,
    reason: str,
) -> AuditEntry:
    """Append an entry for a correction, from each changed field's (old, new) values."""
    return record_about(
        session,
        subject,
        action,
        by=by,
        old={name: old for name, (old, _) in changes.items()},
        new={name: new for name, (_, new) in changes.items()},
        reason=reason,
    )


def record_created(
    session: Session,
    created: object,
    subject: Subject,
    action: str,
    *,
    by: str,
    new: dict[str, Any],
) -> None:
    """Save a new record and, beside it, the entry saying who made it and what it holds.

    The record is flushed first, so that it has its id before the caller goes on.
    """
    session.add(created)
    session.flush()
    record_about(session, subject, action, by=by, new=new)


def _encoded_columns() -> ColumnElement[str]:
    """The canonical encoding of an entry, computed by the database from its columns."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    encoded: ColumnElement[str] | None = None
    for name in CHAINED_COLUMNS:
        field: ColumnElement[str] = cast(table.c[name], String)
        if name in NULLABLE_COLUMNS:
            field = func.coalesce(literal(VALUE_MARK).op("||")(field), literal(NULL_MARK))
        encoded = field if encoded is None else encoded.op("||")(literal(SEPARATOR)).op("||")(field)
    assert encoded is not None
    return encoded


ProgressCallback = Callable[[int, int], None]
_BATCH = 20_000
_CHAIN_QUERY = (
    "SELECT seq, prev_hash, hash, canonical FROM audit_entries WHERE seq <= {upper} ORDER BY seq"
)


def verify(
    connection: Connection, on_progress: ProgressCallback | None = None
) -> ChainVerification:
    """Walk the chain from the first entry; stop at the first one that does not hold.

    Two walks run side by side over the entries present when verification
    starts: this thread streams the stored records and hashes them; a second
    connection has the database find the first entry whose columns disagree
    with its record. The first entry either walk finds bad is named.
    """
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    # One statement, so one snapshot on every backend.
    upper, head_seq, head_hash = connection.execute(
        select(
            select(func.coalesce(func.max(table.c.seq), 0)).scalar_subquery(),
            select(col(AuditHead.seq)).scalar_subquery(),
            select(col(AuditHead.hash)).scalar_subquery(),
        )
    ).one()
    with ThreadPoolExecutor(max_workers=1) as pool:
        disagreeing = pool.submit(_first_disagreeing_seq, connection.engine, upper)
        walked = _walk_chain(connection, upper, on_progress)
        first_disagreeing = disagreeing.result()

    checked, prev_hash, failed_row = walked
    if first_disagreeing is not None and (failed_row is None or first_disagreeing < failed_row[0]):
        row = connection.execute(
            select(table.c.seq, table.c.prev_hash, table.c.hash, table.c.canonical).where(
                table.c.seq == first_disagreeing
            )
        ).one()
        bad_seq, problem = _diagnose(first_disagreeing, row.prev_hash, *row, columns_agree=False)
        return _outcome(first_disagreeing - 1, row.prev_hash, (bad_seq, problem))
    if failed_row is not None:
        bad_seq, problem = _diagnose(
            checked + 1, prev_hash, *failed_row, columns_agree=first_disagreeing != failed_row[0]
        )
        return _outcome(checked, prev_hash, (bad_seq, problem))

    head = None if head_seq is None else (head_seq, head_hash)
    return _outcome(checked, prev_hash, _check_head(head, checked, prev_hash))


def _outcome(good: int, head_hash: str, bad: tuple[int, str] | None = None) -> ChainVerification:
    """The last good entry's number and hash, and the first bad entry with what is wrong."""
    first_bad_seq, problem = bad if bad is not None else (None, None)
    return ChainVerification(
        entries=good,
        head_seq=good,
        head_hash=head_hash,
        first_bad_seq=first_bad_seq,
        problem=problem,
    )


def _walk_chain(
    connection: Connection, upper: int, on_progress: ProgressCallback | None
) -> tuple[int, str, tuple[int, str, str, str] | None]:
    """Hash the stored records in order: (entries that held, last hash, first row that did not)."""
    # The driver's cursor, not SQLAlchemy rows: this loop is the whole cost of verification.
    raw = connection.connection.driver_connection
    assert raw is not None
    if connection.dialect.name == "postgresql":
        cursor = raw.cursor(name="lims_audit_verify")  # streamed from the server
    else:
        cursor = raw.cursor()
    cursor.execute(_CHAIN_QUERY.format(upper=int(upper)))
    expected_seq, prev_hash, sha256 = 1, GENESIS_HASH, hashlib.sha256
    try:
        while batch := cursor.fetchmany(_BATCH):
            for row in batch:
                seq, stored_prev, stored_hash, canonical = row
                if (
                    seq != expected_seq
                    or stored_prev != prev_hash
                    or sha256(canonical.encode() + prev_hash.encode()).hexdigest() != stored_hash
                ):
                    return expected_seq - 1, prev_hash, tuple(row)
                prev_hash = stored_hash
                expected_seq += 1
            if on_progress is not None:
                on_progress(expected_seq - 1, upper)
    finally:
        cursor.close()
    return expected_seq - 1, prev_hash, None


def _first_disagreeing_seq(engine: Engine, upper: int) -> int | None:
    """The first entry whose columns no longer encode to its stored record."""
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return connection.execute(
            select(func.min(table.c.seq)).where(
                table.c.seq <= upper,
                ~table.c.canonical.is_not_distinct_from(_encoded_columns()),
            )
        ).scalar()


def _diagnose(
    expected_seq: int,
    prev_hash: str,
    seq: int,
    stored_prev: str,
    stored_hash: str,
    canonical: str,
    *,
    columns_agree: bool,
) -> tuple[int, str]:
    """Name the first bad entry, given the first row that did not hold."""
    if seq > expected_seq:
        return expected_seq, f"entry {expected_seq} is missing"
    if seq < expected_seq:
        return seq, f"entry {seq} is duplicated or out of order"
    recorded_seq = _recorded_seq(canonical)
    if recorded_seq is not None and recorded_seq < seq:
        return recorded_seq, (
            f"entry {recorded_seq} was inserted: entry {seq} holds what entry {recorded_seq} held"
        )
    if recorded_seq is not None and recorded_seq > seq:
        return seq, f"entries were reordered: entry {seq} holds entry {recorded_seq}"
    if not columns_agree:
        return seq, f"entry {seq} was edited: its columns differ from its record"
    if stored_prev != prev_hash:
        if seq > 1 and chain_hash(canonical, stored_prev) == stored_hash:
            # Intact itself, but linked to another predecessor: that one was replaced.
            return seq - 1, f"entry {seq - 1} was rewritten: entry {seq} no longer links to it"
        return seq, f"entry {seq} does not link to entry {seq - 1}"
    return seq, f"entry {seq} was edited: its hash does not match"


def _recorded_seq(canonical: str) -> int | None:
    """The sequence number written into an entry's canonical record."""
    digits = canonical.partition(SEPARATOR)[0]
    return int(digits) if digits.isdigit() else None


def _check_head(
    head: tuple[int, str] | None, last_seq: int, last_hash: str
) -> tuple[int, str] | None:
    if head is None:
        return last_seq + 1, "the chain head record is missing"
    head_seq, head_hash = head
    if head_seq > last_seq:
        return last_seq + 1, f"entries {last_seq + 1}-{head_seq} are missing"
    if head_seq < last_seq:
        return head_seq + 1, f"entries after {head_seq} were added outside lims"
    if head_hash != last_hash:
        return last_seq, f"entry {last_seq} does not match the chain head (edited outside lims)"
    return None


def _view(entry: AuditEntry, full_name: str | None) -> AuditView:
    return from_record(
        AuditView,
        entry,
        moment=datetime.strptime(entry.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
        old=None if entry.old_value is None else json.loads(entry.old_value),
        new=None if entry.new_value is None else json.loads(entry.new_value),
        full_name=full_name,
    )


def _views(session: Session, query: Select[Any]) -> list[AuditView]:
    """The entries query finds, each with its user's full name: an entry keeps only the
    user name, and a reader needs to know which person that was (21 CFR 11.50)."""
    named = query.outerjoin(User, col(User.username) == AuditEntry.username).add_columns(
        col(User.full_name)
    )
    return [_view(entry, full_name) for entry, full_name in session.execute(named).all()]


def entries_about(session: Session, subjects: Iterable[Subject]) -> list[AuditView]:
    """Every entry about any of the (entity type, entity id) subjects, oldest first."""
    wanted: dict[str, set[str]] = {}
    for entity_type, entity_id in subjects:
        wanted.setdefault(entity_type, set()).add(entity_id)
    if not wanted:
        return []
    condition = or_(
        *(
            (col(AuditEntry.entity_type) == entity_type) & col(AuditEntry.entity_id).in_(ids)
            for entity_type, ids in wanted.items()
        )
    )
    query = select(AuditEntry).where(condition).order_by(col(AuditEntry.seq))
    return _views(session, query)


class Filters(TypedDict, total=False):
    """What `entries` narrows the trail to; each one given must match."""

    entity_type: str | None
    entity_id: str | None
    username: str | None
    last: int | None  # only the newest N


def entries(
    session: Session, *, since: datetime | None = None, **filters: Unpack[Filters]
) -> list[AuditView]:
    """Entries matching every filter given, oldest first; `last` keeps only the newest N."""
    entity_type, entity_id = filters.get("entity_type"), filters.get("entity_id")
    username, last = filters.get("username"), filters.get("last")
    for field, value in (("entity", entity_type), ("entity", entity_id), ("user", username)):
        if value is not None:
            free_text(field, value, max_length=64)
    query = select(AuditEntry)
    if entity_type is not None:
        query = query.where(col(AuditEntry.entity_type) == entity_type)
    if entity_id is not None:
        query = query.where(col(AuditEntry.entity_id) == entity_id)
    if username is not None:
        query = query.where(col(AuditEntry.username) == username)
    if since is not None:
        query = query.where(col(AuditEntry.at) >= audit_timestamp(since))
    query = query.order_by(col(AuditEntry.seq).desc() if last else col(AuditEntry.seq))
    if last:
        query = query.limit(last)
    found = _views(session, query)
    return sorted(found, key=lambda view: view.seq) if last else found
