"""labels: each vial a division of its donation, rejected vials, donor screening, label counts

Revision ID: 0013_labels
Revises: 0012_custody
Create Date: 2026-12-20 09:00:00

vials.din and vials.division make each vial a division of its donation's product (ISBT 128
data structure 003), unique across every lot of the DIN; existing vials are numbered in the
order they were made. A vial may be rejected with its lot. screenings are a patient's donor
screening results; label_reconciliations close a lot's label count.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_labels"
down_revision: str | None = "0012_custody"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: a vial needs its division, and a
# rejected lot's vials are rejected, which an older lims would neither set nor check.
WRITE_FORMAT = 9

NEW_TABLES = ("label_reconciliations", "screenings")
VIAL_STATES = (
    "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed', 'recalled', "
    "'shipped', 'received', 'lost', 'rejected')"
)
EARLIER_VIAL_STATES = (
    "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed', 'recalled', "
    "'shipped', 'received', 'lost')"
)


def _vial_states(allowed: str) -> None:
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_vials_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_vials_status"), allowed)


def upgrade() -> None:
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("din", sa.String(length=13), nullable=True))
        batch_op.add_column(sa.Column("division", sa.Integer(), nullable=True))
    # A lot's code starts with its DIN; vials are divisions in the order they were made.
    op.execute(
        "UPDATE vials SET din = (SELECT substr(lots.code, 1, 13) FROM lots "
        "WHERE lots.id = vials.lot_id)"
    )
    op.execute(
        "UPDATE vials SET division = (SELECT count(*) FROM vials AS earlier "
        "WHERE earlier.din = vials.din AND earlier.id <= vials.id)"
    )
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.alter_column("din", existing_type=sa.String(length=13), nullable=False)
        batch_op.alter_column("division", existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_vials_din_division"), ["din", "division"])
        batch_op.create_check_constraint(batch_op.f("ck_vials_division"), "division >= 1")
    # Vials of lots rejected before stay as the trail has them: their lot's rejection
    # already keeps them from any use.
    _vial_states(VIAL_STATES)
    op.create_table(
        "screenings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("test", sa.String(length=32), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "result IN ('negative', 'reactive', 'not_done')", name=op.f("ck_screenings_result")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_screenings_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screenings")),
    )
    op.create_index(op.f("ix_screenings_patient_id"), "screenings", ["patient_id"], unique=False)
    op.create_index(
        op.f("ix_screenings_patient_id_test"), "screenings", ["patient_id", "test"], unique=False
    )
    op.create_table(
        "label_reconciliations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("printed", sa.Integer(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("destroyed", sa.Integer(), nullable=False),
        sa.Column("deviation_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "printed >= 0 AND applied >= 0 AND destroyed >= 0",
            name=op.f("ck_label_reconciliations_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["deviation_id"],
            ["deviations.id"],
            name=op.f("fk_label_reconciliations_deviation_id_deviations"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_label_reconciliations_lot_id_lots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_reconciliations")),
    )
    op.create_index(
        op.f("ix_label_reconciliations_deviation_id"),
        "label_reconciliations",
        ["deviation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_label_reconciliations_lot_id"), "label_reconciliations", ["lot_id"], unique=False
    )
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def _count(bind: sa.Connection, table: str, where: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table(table))
    if where is not None:
        query = query.where(sa.text(where))
    return int(bind.execute(query).scalar() or 0)


def downgrade() -> None:
    # Donor screening results, label counts and rejected vials have no place before this
    # revision.
    bind = op.get_bind()
    kept = [table for table in NEW_TABLES if _count(bind, table)]
    if _count(bind, "vials", "status = 'rejected'"):
        kept.append("vials (rejected)")
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0013_labels: donor screening results, label "
            f"reconciliations and rejected vials would be lost ({', '.join(kept)})"
        )
    for table in NEW_TABLES:
        op.drop_table(table)
    _vial_states(EARLIER_VIAL_STATES)
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_vials_division"), type_="check")
        batch_op.drop_constraint(batch_op.f("uq_vials_din_division"), type_="unique")
        batch_op.drop_column("division")
        batch_op.drop_column("din")
