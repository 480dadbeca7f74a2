"""fresh_product: pending results, conditional release, censored values, follow-up

Revision ID: 0009_fresh_product
Revises: 0008_record_stays_true
Create Date: 2026-12-04 09:00:00

A QC result may be a test started whose final result is pending (qc_results.pending,
expected_final_at) or a number beyond the method's range (qualifier "<" or ">"). A lot
released on interim results keeps the tests pending at release and QA's later completion;
a vial keeps the pending tests its issuer acknowledged, and the route and physician of its
administration. Deviations gain a severity and the follow-up event that opened one;
follow_up_events keeps what happened to patients afterwards.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_fresh_product"
down_revision: str | None = "0008_record_stays_true"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: pending and censored results, which
# an older lims would judge as plain values.
WRITE_FORMAT = 5

SEVERITIES = "severity IN ('minor', 'major', 'critical')"


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "follow_up_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("vial_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("serious", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("related", sa.String(length=16), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        _time("occurred_at"),
        _time("recorded_at"),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "kind IN ('adverse_event', 'observation')", name=op.f("ck_follow_up_events_kind")
        ),
        sa.CheckConstraint(
            "severity IS NULL OR severity IN "
            "('mild', 'moderate', 'severe', 'life_threatening', 'fatal')",
            name=op.f("ck_follow_up_events_severity"),
        ),
        sa.CheckConstraint(
            "related IS NULL OR related IN "
            "('unrelated', 'unlikely', 'possible', 'probable', 'definite')",
            name=op.f("ck_follow_up_events_related"),
        ),
        sa.CheckConstraint(
            "kind <> 'adverse_event' OR severity IS NOT NULL",
            name=op.f("ck_follow_up_events_ae_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_follow_up_events_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["vial_id"], ["vials.id"], name=op.f("fk_follow_up_events_vial_id_vials")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_events")),
    )
    with op.batch_alter_table("follow_up_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_follow_up_events_patient_id"), ["patient_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_follow_up_events_vial_id"), ["vial_id"], unique=False)
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(_time("expected_final_at", nullable=True))
        batch_op.add_column(sa.Column("qualifier", sa.String(length=1), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_qc_results_qualifier"), "qualifier IS NULL OR qualifier IN ('<', '>')"
        )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_at_release", sa.Text(), nullable=True))
        batch_op.add_column(_time("release_completed_at", nullable=True))
        batch_op.add_column(sa.Column("release_completed_by", sa.String(length=32), nullable=True))
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acknowledged_pending", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("route", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("physician", sa.String(length=100), nullable=True))
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("severity", sa.String(length=8), server_default="major", nullable=False)
        )
        batch_op.add_column(sa.Column("event_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deviations_event_id"), ["event_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deviations_event_id_follow_up_events"),
            "follow_up_events",
            ["event_id"],
            ["id"],
        )
        batch_op.create_check_constraint(batch_op.f("ck_deviations_severity"), SEVERITIES)
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    # Before this revision a pending or censored result would read as a plain value, and a
    # conditional release, its acknowledgements and follow-up have nowhere to be kept.
    kept = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT (SELECT count(*) FROM qc_results"
                " WHERE pending = :yes OR qualifier IS NOT NULL)"
                " + (SELECT count(*) FROM lots WHERE pending_at_release IS NOT NULL)"
                " + (SELECT count(*) FROM vials WHERE acknowledged_pending IS NOT NULL"
                " OR route IS NOT NULL OR physician IS NOT NULL)"
                " + (SELECT count(*) FROM deviations WHERE severity <> 'major')"
                " + (SELECT count(*) FROM follow_up_events)"
            ).bindparams(yes=True)
        )
        .scalar()
    )
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0009_fresh_product: pending or censored results, "
            "conditional releases, administration details, deviation severities or follow-up "
            "events would be lost"
        )
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deviations_severity"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_deviations_event_id_follow_up_events"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_deviations_event_id"))
        batch_op.drop_column("event_id")
        batch_op.drop_column("severity")
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.drop_column("physician")
        batch_op.drop_column("route")
        batch_op.drop_column("acknowledged_pending")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_column("release_completed_by")
        batch_op.drop_column("release_completed_at")
        batch_op.drop_column("pending_at_release")
    with op.batch_alter_table("qc_results", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_qc_results_qualifier"), type_="check")
        batch_op.drop_column("qualifier")
        batch_op.drop_column("expected_final_at")
        batch_op.drop_column("pending")
    with op.batch_alter_table("follow_up_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_up_events_vial_id"))
        batch_op.drop_index(batch_op.f("ix_follow_up_events_patient_id"))
    op.drop_table("follow_up_events")
