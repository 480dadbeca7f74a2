"""write_format: the lowest lims write format allowed to write to the database

Revision ID: 0005_write_format
Revises: 0004_vials
Create Date: 2026-11-30 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_write_format"
down_revision: str | None = "0004_vials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written; a later revision raises it again.
WRITE_FORMAT = 1


def upgrade() -> None:
    table = op.create_table(
        "write_format",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("minimum", sa.Integer(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_write_format_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_format")),
    )
    op.bulk_insert(table, [{"id": 1, "minimum": WRITE_FORMAT}])


def downgrade() -> None:
    op.drop_table("write_format")
