"""Alembic environment: lims's own metadata and database URL, batch mode on SQLite."""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import lims.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from lims import db
from lims.config import load_settings

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = db.engine_for(load_settings(), create=True)
    with engine.connect() as connection:
        run_migrations(connection)


if context.is_offline_mode():
    raise SystemExit("lims migrations run online only: use `lims db upgrade`")
run_migrations_online()
