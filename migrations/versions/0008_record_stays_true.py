"""record_stays_true: consent, lineage, late entries, accounts and written files

Revision ID: 0008_record_stays_true
Revises: 0007_oos_holds_recall
Create Date: 2026-12-03 09:00:00

Patients gain a weight and a withdrawal of consent; an aspirate may be received as
nonconforming, with a deviation that names it (deviations.aspirate_id). A culture may be
split from another's harvest (cultures.parent_id, source_passage_id, kind `split`). Steps
entered late are kept in late_entries with their reason. Users gain when and by whom their
password was set, and password_history keeps the ones they had. written_files holds the
SHA-256 of every file lims wrote, the only files `--force` may replace.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_record_stays_true"
down_revision: str | None = "0007_oos_holds_recall"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: split cultures, late entries, and
# deviations on aspirates, which an older lims would not read.
WRITE_FORMAT = 4

KINDS_BEFORE = "kind IN ('primary', 'seeded')"
KINDS = "kind IN ('primary', 'seeded', 'split')"
SUBJECT_BEFORE = "culture_id IS NOT NULL OR lot_id IS NOT NULL"
SUBJECT = "culture_id IS NOT NULL OR lot_id IS NOT NULL OR aspirate_id IS NOT NULL"


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(_time("password_set_at", nullable=True))
        batch_op.add_column(
            sa.Column(
                "password_set_by_admin", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    # Before this revision no one could change their own password: every account but the
    # first admin's (who chose theirs at `lims init`) still has the one an admin typed.
    op.execute(
        sa.text(
            "UPDATE users SET password_set_by_admin = :admin_set"
            " WHERE id <> (SELECT min(id) FROM users)"
        ).bindparams(admin_set=True)
    )
    op.create_table(
        "password_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        _time("set_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_history_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_history_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight_kg", sa.Double(), nullable=True))
        batch_op.add_column(_time("withdrawn_at", nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("withdraw_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("nonconforming", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("cultures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source_passage_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cultures_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cultures_source_passage_id"), ["source_passage_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_cultures_parent_id_cultures"), "cultures", ["parent_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_cultures_source_passage_id_passages"),
            "passages",
            ["source_passage_id"],
            ["id"],
        )
        batch_op.drop_constraint(batch_op.f("ck_cultures_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_cultures_kind"), KINDS)
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("aspirate_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_deviations_aspirate_id"), ["aspirate_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deviations_aspirate_id_aspirates"), "aspirates", ["aspirate_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_deviations_subject"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deviations_subject"), SUBJECT)
    op.create_table(
        "late_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        _time("at"),
        _time("entered_at"),
        sa.Column("entered_by", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_late_entries")),
    )
    with op.batch_alter_table("late_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_late_entries_entity_type_entity_id"),
            ["entity_type", "entity_id"],
            unique=False,
        )
    op.create_table(
        "written_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _time("written_at"),
        sa.Column("written_by", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_written_files")),
    )
    with op.batch_alter_table("written_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_written_files_sha256"), ["sha256"], unique=False)
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    # Before this revision a split culture, a late entry's reason, an aspirate's deviation
    # and a withdrawal of consent have nowhere to be kept: refuse rather than lose them.
    kept = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT (SELECT count(*) FROM cultures WHERE parent_id IS NOT NULL)"
                " + (SELECT count(*) FROM late_entries)"
                " + (SELECT count(*) FROM deviations WHERE aspirate_id IS NOT NULL)"
                " + (SELECT count(*) FROM patients WHERE withdrawn_at IS NOT NULL)"
            )
        )
        .scalar()
    )
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0008_record_stays_true: split cultures, late entries, "
            "deviations on aspirates or withdrawals of consent would be lost"
        )
    with op.batch_alter_table("written_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_written_files_sha256"))
    op.drop_table("written_files")
    with op.batch_alter_table("late_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_late_entries_entity_type_entity_id"))
    op.drop_table("late_entries")
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deviations_subject"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deviations_subject"), SUBJECT_BEFORE)
        batch_op.drop_constraint(
            batch_op.f("fk_deviations_aspirate_id_aspirates"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deviations_aspirate_id"))
        batch_op.drop_column("aspirate_id")
    with op.batch_alter_table("cultures", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cultures_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_cultures_kind"), KINDS_BEFORE)
        batch_op.drop_constraint(
            batch_op.f("fk_cultures_source_passage_id_passages"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_cultures_parent_id_cultures"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_cultures_source_passage_id"))
        batch_op.drop_index(batch_op.f("ix_cultures_parent_id"))
        batch_op.drop_column("source_passage_id")
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.drop_column("nonconforming")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("withdraw_reason")
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("weight_kg")
    with op.batch_alter_table("password_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_history_user_id"))
    op.drop_table("password_history")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("password_set_by_admin")
        batch_op.drop_column("password_set_at")
