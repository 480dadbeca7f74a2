"""vials: labels printed, issue, administration and destruction of each vial

Revision ID: 0004_vials
Revises: 0003_release
Create Date: 2026-11-27 13:22:26.382306
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_vials"
down_revision: str | None = "0003_release"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("labels_printed", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("issued_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("administered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("administered_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("destroyed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("destroy_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.drop_column("destroy_reason")
        batch_op.drop_column("destroyed_by")
        batch_op.drop_column("destroyed_at")
        batch_op.drop_column("administered_by")
        batch_op.drop_column("administered_at")
        batch_op.drop_column("issued_by")
        batch_op.drop_column("issued_at")
        batch_op.drop_column("labels_printed")
