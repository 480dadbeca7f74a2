"""oos_holds_recall: out-of-specification results, holds and recall of lots and vials

Revision ID: 0007_oos_holds_recall
Revises: 0006_site_records
Create Date: 2026-12-02 09:00:00

A failing QC result opens an out-of-specification deviation (deviations.result_id), closed
with the result invalidated or confirmed (deviations.outcome) and, for a waiver, the
physician's request; a result recorded in its investigation names it
(qc_results.investigation_id). QA holds lots (lot_holds) and recalls them: lots and vials
gain the status `recalled`. A lot signature names the shape of the record it signed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_oos_holds_recall"
down_revision: str | None = "0006_site_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: results and deviations as above.
WRITE_FORMAT = 3

LOT_STATES_BEFORE = "status IN ('quarantine', 'released', 'rejected')"
LOT_STATES = "status IN ('quarantine', 'released', 'rejected', 'recalled')"
VIAL_STATES_BEFORE = "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed')"
VIAL_STATES = (
    "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed', 'recalled')"
)
OUTCOMES = "outcome IS NULL OR outcome IN ('invalidated', 'confirmed')"


def _statuses(table: str, allowed: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(f"ck_{table}_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f(f"ck_{table}_status"), allowed)


def upgrade() -> None:
    _statuses("lots", LOT_STATES)
    _statuses("vials", VIAL_STATES)
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("physician_request", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deviations_result_id"), ["result_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deviations_result_id_qc_results"), "qc_results", ["result_id"], ["id"]
        )
        batch_op.create_check_constraint(batch_op.f("ck_deviations_outcome"), OUTCOMES)
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("investigation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_qc_results_investigation_id"), ["investigation_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_qc_results_investigation_id_deviations"),
            "deviations",
            ["investigation_id"],
            ["id"],
        )
    op.create_table(
        "lot_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(length=32), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=32), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_lot_holds_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_holds")),
    )
    with op.batch_alter_table("lot_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lot_holds_lot_id"), ["lot_id"], unique=False)
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_shape", sa.Integer(), nullable=True))
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    # Before this revision a recalled lot or vial has no state to go back to, and a hold or
    # an OOS outcome nowhere to be kept: refuse rather than lose them.
    kept = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT (SELECT count(*) FROM lots WHERE status = 'recalled')"
                " + (SELECT count(*) FROM vials WHERE status = 'recalled')"
                " + (SELECT count(*) FROM lot_holds)"
                " + (SELECT count(*) FROM deviations WHERE outcome IS NOT NULL)"
            )
        )
        .scalar()
    )
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0007_oos_holds_recall: recalled lots or vials, holds or "
            "closed out-of-specification deviations would be lost"
        )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_column("record_shape")
    with op.batch_alter_table("lot_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_holds_lot_id"))
    op.drop_table("lot_holds")
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_qc_results_investigation_id_deviations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_qc_results_investigation_id"))
        batch_op.drop_column("investigation_id")
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deviations_outcome"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_deviations_result_id_qc_results"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deviations_result_id"))
        batch_op.drop_column("physician_request")
        batch_op.drop_column("outcome")
        batch_op.drop_column("result_id")
    _statuses("vials", VIAL_STATES_BEFORE)
    _statuses("lots", LOT_STATES_BEFORE)
