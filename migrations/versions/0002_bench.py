"""bench: patients, aspirates, reagents, cultures, passages, deviations

Revision ID: 0002_bench
Revises: 0001_foundation
Create Date: 2026-11-27 12:26:11.951600

The bench: pseudonymous patients, aspirates with their ISBT 128 DIN (unique
per facility, year and sequence), reagent lots, cultures, passages with the
growth values derived from their counts, and deviations opened on cultures.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_bench"
down_revision: str | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("initials", sa.String(length=4), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=False),
        sa.Column("consent_date", sa.Date(), nullable=True),
        sa.Column("study", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint("birth_year BETWEEN 1900 AND 2100", name=op.f("ck_patients_birth_year")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("code", name=op.f("uq_patients_code")),
    )
    op.create_table(
        "reagent_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lot", sa.String(length=100), nullable=False),
        sa.Column("supplier", sa.String(length=100), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reagent_lots")),
        sa.UniqueConstraint("name", "lot", name=op.f("uq_reagent_lots_name_lot")),
    )
    op.create_table(
        "aspirates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("din", sa.String(length=13), nullable=False),
        sa.Column("din_check", sa.String(length=1), nullable=False),
        sa.Column("fin", sa.String(length=5), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("volume_ml", sa.Double(), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("anticoagulant", sa.String(length=100), nullable=True),
        sa.Column("tnc", sa.BigInteger(), nullable=True),
        sa.Column("temperature_c", sa.Double(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "received_at > collected_at", name=op.f("ck_aspirates_received_after_collected")
        ),
        sa.CheckConstraint("sequence BETWEEN 1 AND 999999", name=op.f("ck_aspirates_sequence")),
        sa.CheckConstraint("volume_ml > 0", name=op.f("ck_aspirates_volume_ml")),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_aspirates_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aspirates")),
        sa.UniqueConstraint("din", name=op.f("uq_aspirates_din")),
        sa.UniqueConstraint("fin", "year", "sequence", name=op.f("uq_aspirates_fin_year_sequence")),
    )
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_aspirates_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "cultures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("aspirate_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("cells_plated", sa.BigInteger(), nullable=False),
        sa.Column("vessels", sa.Integer(), nullable=False),
        sa.Column("area_cm2", sa.Double(), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint("kind IN ('primary', 'seeded')", name=op.f("ck_cultures_kind")),
        sa.CheckConstraint(
            "status IN ('active', 'formulated', 'discarded')", name=op.f("ck_cultures_status")
        ),
        sa.CheckConstraint(
            "cells_plated > 0 AND vessels > 0 AND area_cm2 > 0", name=op.f("ck_cultures_plating")
        ),
        sa.ForeignKeyConstraint(
            ["aspirate_id"], ["aspirates.id"], name=op.f("fk_cultures_aspirate_id_aspirates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cultures")),
        sa.UniqueConstraint("aspirate_id", "number", name=op.f("uq_cultures_aspirate_id_number")),
        sa.UniqueConstraint("code", name=op.f("uq_cultures_code")),
    )
    with op.batch_alter_table("cultures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cultures_aspirate_id"), ["aspirate_id"], unique=False)

    op.create_table(
        "passages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("harvested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("harvested", sa.BigInteger(), nullable=False),
        sa.Column("viability", sa.Double(), nullable=False),
        sa.Column("seeded", sa.BigInteger(), nullable=False),
        sa.Column("vessels", sa.Integer(), nullable=False),
        sa.Column("area_cm2", sa.Double(), nullable=False),
        sa.Column("confluence", sa.Double(), nullable=True),
        sa.Column("population_doublings", sa.Double(), nullable=True),
        sa.Column("cumulative_population_doublings", sa.Double(), nullable=False),
        sa.Column("doubling_time_hours", sa.Double(), nullable=True),
        sa.Column("fold_expansion", sa.Double(), nullable=True),
        sa.Column("seeding_density_per_cm2", sa.Double(), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "harvested > 0 AND seeded > 0 AND seeded <= harvested", name=op.f("ck_passages_counts")
        ),
        sa.CheckConstraint("vessels > 0 AND area_cm2 > 0", name=op.f("ck_passages_vessels")),
        sa.CheckConstraint("viability BETWEEN 0 AND 100", name=op.f("ck_passages_viability")),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_passages_culture_id_cultures")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passages")),
        sa.UniqueConstraint("code", name=op.f("uq_passages_code")),
        sa.UniqueConstraint("culture_id", "number", name=op.f("uq_passages_culture_id_number")),
    )
    op.create_table(
        "deviations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=True),
        sa.Column("passage_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_deviations_status")),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_deviations_culture_id_cultures")
        ),
        sa.ForeignKeyConstraint(
            ["passage_id"], ["passages.id"], name=op.f("fk_deviations_passage_id_passages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deviations")),
    )
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deviations_culture_id"), ["culture_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviations_passage_id"), ["passage_id"], unique=False)

    op.create_table(
        "reagent_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reagent_lot_id", sa.Integer(), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=False),
        sa.Column("passage_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_reagent_uses_culture_id_cultures")
        ),
        sa.ForeignKeyConstraint(
            ["passage_id"], ["passages.id"], name=op.f("fk_reagent_uses_passage_id_passages")
        ),
        sa.ForeignKeyConstraint(
            ["reagent_lot_id"],
            ["reagent_lots.id"],
            name=op.f("fk_reagent_uses_reagent_lot_id_reagent_lots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reagent_uses")),
    )
    with op.batch_alter_table("reagent_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reagent_uses_culture_id"), ["culture_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reagent_uses_passage_id"), ["passage_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reagent_uses_reagent_lot_id"), ["reagent_lot_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reagent_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reagent_uses_reagent_lot_id"))
        batch_op.drop_index(batch_op.f("ix_reagent_uses_passage_id"))
        batch_op.drop_index(batch_op.f("ix_reagent_uses_culture_id"))

    op.drop_table("reagent_uses")
    with op.batch_alter_table("deviations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviations_passage_id"))
        batch_op.drop_index(batch_op.f("ix_deviations_culture_id"))

    op.drop_table("deviations")
    op.drop_table("passages")
    with op.batch_alter_table("cultures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cultures_aspirate_id"))

    op.drop_table("cultures")
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aspirates_patient_id"))

    op.drop_table("aspirates")
    op.drop_table("reagent_lots")
    op.drop_table("patients")
