"""site_records: versioned site settings and release specifications; each lot's version

Revision ID: 0006_site_records
Revises: 0005_write_format
Create Date: 2026-12-01 09:00:00

Safety-deciding settings leave the environment and lims.toml for the database. A database
that already holds work (it has users) gets version 1 of both from the packaged defaults
of this revision, written out below rather than imported, so that a later lims's defaults
never reach an existing site through a migration; its lots are judged by that version 1.
A blank database gets nothing here: `lims init` stores version 1 from the site's files.
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006_site_records"
down_revision: str | None = "0005_write_format"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: lots carry their specification version.
WRITE_FORMAT = 2
REASON = "stored by migration 0006_site_records from the packaged defaults"

SITE_SETTINGS = {
    "facility": {"name": "Example Cell Therapy Facility", "fin": "A9999"},
    "security": {
        "session_idle_minutes": 30,
        "session_max_hours": 12,
        "password_min_length": 12,
        "lockout_threshold": 5,
        "argon2_time_cost": 3,
        "argon2_memory_kib": 65536,
        "argon2_parallelism": 4,
    },
    "patients": {
        "code_pattern": "[A-Z0-9-]{3,32}",
        "code_description": "3-32 upper-case letters, digits and dashes",
    },
    "aspirate": {"max_volume_ml": 100.0, "min_temperature_c": 2.0, "max_temperature_c": 30.0},
    "expansion": {
        "viability_flag_below_percent": 80.0,
        "seeding_density_min_per_cm2": 1000.0,
        "seeding_density_max_per_cm2": 10000.0,
        "reseeding_density_per_cm2": 5000.0,
        "max_passage": 5,
    },
    "lot": {
        "shelf_life_hours": 48.0,
        "vehicle": "autologous CSF",
        "formulation_blocked_by": ["passage_limit", "no_growth"],
    },
    "labels": {
        "template": "vial-70x50",
        "product": "Autologous bone-marrow MSC",
        "storage": "Store at 15-25 °C. Do not refrigerate or irradiate.",
        "caution": "Caution: New Drug - Limited by Federal (or United States) law to "
        "investigational use.",
        "isbt128_barcode": True,
    },
}

SPECIFICATION = {
    "viability": {
        "kind": "numeric",
        "description": "viability of the final product (trypan blue)",
        "unit": "%",
        "min": 70.0,
        "required": True,
        "waivable": True,
    },
    "sterility": {
        "kind": "categorical",
        "description": "sterility (Ph. Eur. 2.6.27 / USP <71>)",
        "values": ["negative", "positive"],
        "passing": ["negative"],
        "required": True,
        "waivable": False,
    },
    "mycoplasma": {
        "kind": "categorical",
        "description": "mycoplasma (Ph. Eur. 2.6.7, NAT)",
        "values": ["negative", "positive"],
        "passing": ["negative"],
        "required": True,
        "waivable": False,
    },
    "endotoxin": {
        "kind": "numeric",
        "description": "bacterial endotoxin (LAL)",
        "unit": "EU/mL",
        "max": 7.0,
        "required": True,
        "waivable": False,
    },
    "cd73": {
        "kind": "numeric",
        "description": "CD73 positive",
        "unit": "%",
        "min": 95.0,
        "required": True,
        "waivable": True,
    },
    "cd90": {
        "kind": "numeric",
        "description": "CD90 positive",
        "unit": "%",
        "min": 95.0,
        "required": True,
        "waivable": True,
    },
    "cd105": {
        "kind": "numeric",
        "description": "CD105 positive",
        "unit": "%",
        "min": 95.0,
        "required": True,
        "waivable": True,
    },
    "cd45": {
        "kind": "numeric",
        "description": "CD45 positive",
        "unit": "%",
        "max": 2.0,
        "required": True,
        "waivable": True,
    },
    "cd34": {
        "kind": "numeric",
        "description": "CD34 positive",
        "unit": "%",
        "max": 2.0,
        "required": True,
        "waivable": True,
    },
    "cd14": {
        "kind": "numeric",
        "description": "CD14 positive",
        "unit": "%",
        "max": 2.0,
        "required": True,
        "waivable": True,
    },
    "cd19": {
        "kind": "numeric",
        "description": "CD19 positive",
        "unit": "%",
        "max": 2.0,
        "required": True,
        "waivable": True,
    },
    "hla_dr": {
        "kind": "numeric",
        "description": "HLA-DR positive",
        "unit": "%",
        "max": 2.0,
        "required": True,
        "waivable": True,
    },
    "karyotype": {
        "kind": "categorical",
        "description": "karyotype (G-banding)",
        "values": ["normal", "abnormal"],
        "passing": ["normal"],
        "required": False,
        "waivable": True,
    },
    "cell_dose": {
        "kind": "derived",
        "description": "viable cells per vial",
        "unit": "cells/vial",
        "min": 1000000.0,
        "max": 100000000.0,
        "required": True,
        "waivable": True,
    },
    "final_passage": {
        "kind": "derived",
        "description": "passage of the cells formulated",
        "unit": "passages",
        "max": 5.0,
        "required": True,
        "waivable": False,
    },
}


def _canonical(value: dict[str, object]) -> str:
    """As lims.site.canonical: the same settings are the same text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    site_settings = op.create_table(
        "site_settings",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("values", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_site_settings")),
    )
    specifications = op.create_table(
        "specifications",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(length=32), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_specifications")),
    )
    connection = op.get_bind()
    if connection.execute(sa.text("SELECT count(*) FROM users")).scalar():
        now = datetime.now(UTC)
        if connection.dialect.name == "sqlite":
            now = now.replace(tzinfo=None)  # as lims.models.UTCDateTime stores it
        op.bulk_insert(
            site_settings,
            [
                {
                    "version": 1,
                    "values": _canonical(SITE_SETTINGS),
                    "reason": REASON,
                    "recorded_by": None,
                    "recorded_at": now,
                }
            ],
        )
        op.bulk_insert(
            specifications,
            [
                {
                    "version": 1,
                    "spec": _canonical(SPECIFICATION),
                    "reason": REASON,
                    "approved_by": None,
                    "approved_at": now,
                }
            ],
        )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spec_version", sa.Integer(), nullable=True))
    op.execute("UPDATE lots SET spec_version = 1")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.alter_column("spec_version", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_lots_spec_version_specifications"),
            "specifications",
            ["spec_version"],
            ["version"],
        )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("specification_version", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_signatures_specification_version"),
            ["specification_version"],
            unique=False,
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_signatures_specification_version_specifications"),
            "specifications",
            ["specification_version"],
            ["version"],
        )
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_signatures_specification_version_specifications"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_signatures_specification_version"))
        batch_op.drop_column("specification_version")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_lots_spec_version_specifications"), type_="foreignkey"
        )
        batch_op.drop_column("spec_version")
    op.drop_table("specifications")
    op.drop_table("site_settings")
