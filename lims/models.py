"""The tables. The schema changes only through Alembic revisions in migrations/."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from lims.roles import ROLES

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USERNAME_MAX = 32
FULL_NAME_MAX = 100
HASH_HEX_LENGTH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times with a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(role) for role in ROLES)})", name="role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(USERNAME_MAX), nullable=False, unique=True))
    full_name: str = Field(sa_column=Column(String(FULL_NAME_MAX), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    active: bool = Field(default=True, nullable=False)
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    locked_at: datetime | None = _time(nullable=True)
    created_at: datetime = _time()
    last_login_at: datetime | None = _time(nullable=True)


class LoginSession(SQLModel, table=True):
    """A station's login; the token itself lives only in the station's session file."""

    __tablename__ = "login_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    )
    token_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False, unique=True))
    started_at: datetime = _time()
    last_seen_at: datetime = _time()
    ended_at: datetime | None = _time(nullable=True)
    end_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))


class AuditEntry(SQLModel, table=True):
    """One link of the append-only, hash-chained audit trail (see lims.audit)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index(None, "entity_type", "entity_id"),
        Index(None, "username"),
        Index(None, "at"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Fixed-width UTC text rather than a timestamp type, so that its bytes are
    # the same on SQLite and PostgreSQL and can be checked against `canonical`.
    at: str = Field(sa_column=Column(String(27), nullable=False))
    username: str | None = Field(default=None, sa_column=Column(String(USERNAME_MAX)))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    entity_type: str = Field(sa_column=Column(String(32), nullable=False))
    entity_id: str = Field(sa_column=Column(String(64), nullable=False))
    old_value: str | None = Field(default=None, sa_column=Column(Text))
    new_value: str | None = Field(default=None, sa_column=Column(Text))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    canonical: str = Field(sa_column=Column(Text, nullable=False))


class AuditHead(SQLModel, table=True):
    """The chain's last link, one row: the lock writers queue on, and a guard on the tail."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
