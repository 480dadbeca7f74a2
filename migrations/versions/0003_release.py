"""release: lots, vials, QC results, signatures; deviations on lots, closed and waived

Revision ID: 0003_release
Revises: 0002_bench
Create Date: 2026-11-27 12:45:55.027816
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_release"
down_revision: str | None = "0002_bench"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=False),
        sa.Column("aspirate_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("harvested", sa.BigInteger(), nullable=False),
        sa.Column("viability", sa.Double(), nullable=False),
        sa.Column("vials", sa.Integer(), nullable=False),
        sa.Column("cells_per_vial", sa.BigInteger(), nullable=False),
        sa.Column("volume_ml", sa.Double(), nullable=False),
        sa.Column("vehicle", sa.String(length=100), nullable=False),
        sa.Column("final_passage", sa.Integer(), nullable=False),
        sa.Column("formulated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "status IN ('quarantine', 'released', 'rejected')", name=op.f("ck_lots_status")
        ),
        sa.CheckConstraint("expires_at > formulated_at", name=op.f("ck_lots_expiry")),
        sa.CheckConstraint(
            "viability BETWEEN 0 AND 100 AND volume_ml > 0", name=op.f("ck_lots_measures")
        ),
        sa.CheckConstraint(
            "vials > 0 AND cells_per_vial > 0 AND vials * cells_per_vial <= harvested",
            name=op.f("ck_lots_cells"),
        ),
        sa.ForeignKeyConstraint(
            ["aspirate_id"], ["aspirates.id"], name=op.f("fk_lots_aspirate_id_aspirates")
        ),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_lots_culture_id_cultures")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_lots_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("aspirate_id", "number", name=op.f("uq_lots_aspirate_id_number")),
        sa.UniqueConstraint("code", name=op.f("uq_lots_code")),
        sa.UniqueConstraint("culture_id", name=op.f("uq_lots_culture_id")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lots_aspirate_id"), ["aspirate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lots_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "qc_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("test", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Double(), nullable=True),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("method", sa.String(length=100), nullable=True),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_qc_results_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_results")),
    )
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qc_results_lot_id_test"), ["lot_id", "test"], unique=False
        )

    op.create_table(
        "vials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cells", sa.BigInteger(), nullable=False),
        sa.Column("volume_ml", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed')",
            name=op.f("ck_vials_status"),
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_vials_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vials")),
        sa.UniqueConstraint("code", name=op.f("uq_vials_code")),
        sa.UniqueConstraint("lot_id", "number", name=op.f("uq_vials_lot_id_number")),
    )
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("deviation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("full_name", sa.String(length=100), nullable=False),
        sa.Column("meaning", sa.String(length=200), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("manifest_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["deviation_id"], ["deviations.id"], name=op.f("fk_signatures_deviation_id_deviations")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_signatures_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_signatures_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signatures_deviation_id"), ["deviation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_signatures_lot_id"), ["lot_id"], unique=False)

    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lot_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("criterion", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("waived", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("waived_result_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deviations_lot_id"), ["lot_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_deviations_waived_result_id"), ["waived_result_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deviations_waived_result_id_qc_results"),
            "qc_results",
            ["waived_result_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_deviations_lot_id_lots"), "lots", ["lot_id"], ["id"]
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_deviations_subject"), "culture_id IS NOT NULL OR lot_id IS NOT NULL"
        )

    with op.batch_alter_table("reagent_uses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lot_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_reagent_uses_lot_id"), ["lot_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_reagent_uses_lot_id_lots"), "lots", ["lot_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("reagent_uses", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_reagent_uses_lot_id_lots"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_reagent_uses_lot_id"))
        batch_op.drop_column("lot_id")

    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deviations_subject"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_deviations_lot_id_lots"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_deviations_waived_result_id_qc_results"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deviations_waived_result_id"))
        batch_op.drop_index(batch_op.f("ix_deviations_lot_id"))
        batch_op.drop_column("waived_result_id")
        batch_op.drop_column("waived")
        batch_op.drop_column("resolution")
        batch_op.drop_column("closed_by")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("criterion")
        batch_op.drop_column("lot_id")

    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatures_lot_id"))
        batch_op.drop_index(batch_op.f("ix_signatures_deviation_id"))

    op.drop_table("signatures")
    op.drop_table("vials")
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qc_results_lot_id_test"))

    op.drop_table("qc_results")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_patient_id"))
        batch_op.drop_index(batch_op.f("ix_lots_aspirate_id"))

    op.drop_table("lots")
