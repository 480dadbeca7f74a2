"""instrument_counts: cell-counter exports imported, and the steps that used their counts

Revision ID: 0010_instrument_counts
Revises: 0009_fresh_product
Create Date: 2026-12-05 09:00:00

count_files keeps each imported export's bytes and SHA-256; cell_counts one row per sample
as the instrument reported it, and which step took its numbers. Aspirates, cultures,
passages and lots name the count their numbers came from (count_id; none when typed).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_instrument_counts"
down_revision: str | None = "0009_fresh_product"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: a step's numbers may come from a
# count, which an older lims would neither show nor keep from being used twice.
WRITE_FORMAT = 6

STEP_TABLES = ("aspirates", "cultures", "passages", "lots")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "count_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=16), nullable=False),
        sa.Column("parser", sa.String(length=100), nullable=False),
        _time("imported_at"),
        sa.Column("imported_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_count_files_sha256")),
    )
    op.create_table(
        "cell_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("serial", sa.String(length=100), nullable=True),
        sa.Column("operator", sa.String(length=100), nullable=True),
        _time("analysed_at"),
        sa.Column("analysed_date_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sample", sa.String(length=100), nullable=False),
        sa.Column("sample_name", sa.String(length=100), nullable=True),
        sa.Column("viable_per_ml", sa.Double(), nullable=False),
        sa.Column("total_per_ml", sa.Double(), nullable=True),
        sa.Column("viability", sa.Double(), nullable=False),
        sa.Column("diameter_um", sa.Double(), nullable=True),
        sa.Column("dilution", sa.Double(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("used_by", sa.String(length=100), nullable=True),
        _time("used_at", nullable=True),
        sa.Column("suspension_ml", sa.Double(), nullable=True),
        sa.CheckConstraint("viability BETWEEN 0 AND 100", name=op.f("ck_cell_counts_viability")),
        sa.CheckConstraint(
            "viable_per_ml >= 0 AND (total_per_ml IS NULL OR total_per_ml >= viable_per_ml)",
            name=op.f("ck_cell_counts_density"),
        ),
        sa.CheckConstraint(
            "(used_by IS NULL) = (used_at IS NULL AND suspension_ml IS NULL)",
            name=op.f("ck_cell_counts_use"),
        ),
        sa.CheckConstraint(
            "suspension_ml IS NULL OR suspension_ml > 0", name=op.f("ck_cell_counts_suspension_ml")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["count_files.id"], name=op.f("fk_cell_counts_file_id_count_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_counts")),
        sa.UniqueConstraint("file_id", "position", name=op.f("uq_cell_counts_file_id_position")),
    )
    with op.batch_alter_table("cell_counts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cell_counts_file_id"), ["file_id"], unique=False)
    for table in STEP_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("count_id", sa.Integer(), nullable=True))
            batch_op.create_unique_constraint(batch_op.f(f"uq_{table}_count_id"), ["count_id"])
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_count_id_cell_counts"), "cell_counts", ["count_id"], ["id"]
            )
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    # Before this revision a step's numbers could only be typed: an imported file and the
    # provenance of the numbers taken from it would be lost.
    kept = op.get_bind().execute(sa.text("SELECT count(*) FROM count_files")).scalar()
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0010_instrument_counts: imported cell-counter files and "
            "the counts steps took their numbers from would be lost"
        )
    for table in reversed(STEP_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(
                batch_op.f(f"fk_{table}_count_id_cell_counts"), type_="foreignkey"
            )
            batch_op.drop_constraint(batch_op.f(f"uq_{table}_count_id"), type_="unique")
            batch_op.drop_column("count_id")
    with op.batch_alter_table("cell_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cell_counts_file_id"))
    op.drop_table("cell_counts")
    op.drop_table("count_files")
