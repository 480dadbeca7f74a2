"""equipment_storage: the equipment register and calibrations, storage and what is in it

Revision ID: 0011_equipment_storage
Revises: 0010_instrument_counts
Create Date: 2026-12-06 09:00:00

equipment is the register; calibrations each piece's calibrations (the latest at a step's
time decides whether it could be used); equipment_uses which step used which piece, with
the calibration in force then. storage_locations are the lab's tanks, freezers, racks,
shelves and boxes; bank_vials cryopreserved cells frozen from a passage's harvest;
retained_samples a lot's retained samples; storage_positions which box position holds
which. A culture may now be thawed from a bank vial (cultures.kind 'thawed').
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_equipment_storage"
down_revision: str | None = "0010_instrument_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: steps name their equipment, which an
# older lims would neither check nor record, and cultures may be thawed from a bank vial.
WRITE_FORMAT = 7

NEW_TABLES = (
    "storage_positions",
    "retained_samples",
    "equipment_uses",
    "bank_vials",
    "calibrations",
    "storage_locations",
    "equipment",
)
CULTURE_KINDS = "kind IN ('primary', 'seeded', 'split', 'thawed')"
EARLIER_CULTURE_KINDS = "kind IN ('primary', 'seeded', 'split')"


def _culture_kinds(allowed: str) -> None:
    with op.batch_alter_table("cultures", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_cultures_kind"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_cultures_kind"), allowed)


def upgrade() -> None:
    op.create_table(
        "equipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=True),
        sa.Column("location", sa.String(length=100), nullable=True),
        sa.Column("calibration_interval_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "kind IN ('biosafety_cabinet', 'incubator', 'centrifuge', 'cell_counter', 'freezer', "
            "'ln2_tank', 'refrigerator', 'label_printer', 'other')",
            name=op.f("ck_equipment_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'out_of_service', 'retired')", name=op.f("ck_equipment_status")
        ),
        sa.CheckConstraint(
            "calibration_interval_days IS NULL OR calibration_interval_days > 0",
            name=op.f("ck_equipment_calibration_interval_days"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment")),
        sa.UniqueConstraint("code", name=op.f("uq_equipment_code")),
    )
    op.create_index(op.f("ix_equipment_serial"), "equipment", ["serial"], unique=False)
    op.create_table(
        "storage_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("grid_rows", sa.Integer(), nullable=True),
        sa.Column("grid_columns", sa.Integer(), nullable=True),
        sa.Column("temperature_c", sa.Double(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "(kind = 'box') = (grid_rows IS NOT NULL AND grid_columns IS NOT NULL)",
            name=op.f("ck_storage_locations_grid"),
        ),
        sa.CheckConstraint(
            "kind IN ('tank', 'freezer', 'rack', 'box', 'shelf')",
            name=op.f("ck_storage_locations_kind"),
        ),
        sa.CheckConstraint(
            "grid_columns IS NULL OR grid_columns BETWEEN 1 AND 99",
            name=op.f("ck_storage_locations_grid_columns"),
        ),
        sa.CheckConstraint(
            "grid_rows IS NULL OR grid_rows BETWEEN 1 AND 26",
            name=op.f("ck_storage_locations_grid_rows"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["storage_locations.id"],
            name=op.f("fk_storage_locations_parent_id_storage_locations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_locations")),
        sa.UniqueConstraint("path", name=op.f("uq_storage_locations_path")),
    )
    op.create_index(
        op.f("ix_storage_locations_parent_id"), "storage_locations", ["parent_id"], unique=False
    )
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("calibrated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calibrated_date_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("certificate", sa.String(length=100), nullable=True),
        sa.Column("result", sa.String(length=4), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint("result IN ('pass', 'fail')", name=op.f("ck_calibrations_result")),
        sa.CheckConstraint("due_at > calibrated_at", name=op.f("ck_calibrations_due")),
        sa.ForeignKeyConstraint(
            ["equipment_id"], ["equipment.id"], name=op.f("fk_calibrations_equipment_id_equipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calibrations")),
    )
    op.create_index(
        op.f("ix_calibrations_equipment_id"), "calibrations", ["equipment_id"], unique=False
    )
    op.create_table(
        "bank_vials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=False),
        sa.Column("passage_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("cells", sa.BigInteger(), nullable=False),
        sa.Column("medium", sa.String(length=100), nullable=True),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("thawed_into_id", sa.Integer(), nullable=True),
        sa.Column("thaw_viability", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "status IN ('stored', 'thawed', 'discarded')", name=op.f("ck_bank_vials_status")
        ),
        sa.CheckConstraint("cells > 0", name=op.f("ck_bank_vials_cells")),
        sa.CheckConstraint(
            "thaw_viability IS NULL OR thaw_viability BETWEEN 0 AND 100",
            name=op.f("ck_bank_vials_thaw_viability"),
        ),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_bank_vials_culture_id_cultures")
        ),
        sa.ForeignKeyConstraint(
            ["passage_id"], ["passages.id"], name=op.f("fk_bank_vials_passage_id_passages")
        ),
        sa.ForeignKeyConstraint(
            ["thawed_into_id"], ["cultures.id"], name=op.f("fk_bank_vials_thawed_into_id_cultures")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_vials")),
        sa.UniqueConstraint("code", name=op.f("uq_bank_vials_code")),
        sa.UniqueConstraint("culture_id", "number", name=op.f("uq_bank_vials_culture_id_number")),
        sa.UniqueConstraint("thawed_into_id", name=op.f("uq_bank_vials_thawed_into_id")),
    )
    op.create_index(op.f("ix_bank_vials_culture_id"), "bank_vials", ["culture_id"], unique=False)
    op.create_index(op.f("ix_bank_vials_passage_id"), "bank_vials", ["passage_id"], unique=False)
    op.create_table(
        "equipment_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("equipment_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("culture_id", sa.Integer(), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calibration_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calibration_id"],
            ["calibrations.id"],
            name=op.f("fk_equipment_uses_calibration_id_calibrations"),
        ),
        sa.ForeignKeyConstraint(
            ["culture_id"], ["cultures.id"], name=op.f("fk_equipment_uses_culture_id_cultures")
        ),
        sa.ForeignKeyConstraint(
            ["equipment_id"],
            ["equipment.id"],
            name=op.f("fk_equipment_uses_equipment_id_equipment"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_equipment_uses_lot_id_lots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipment_uses")),
        sa.UniqueConstraint(
            "equipment_id",
            "action",
            "entity_id",
            name=op.f("uq_equipment_uses_equipment_id_action_entity_id"),
        ),
    )
    op.create_index(
        op.f("ix_equipment_uses_calibration_id"), "equipment_uses", ["calibration_id"], unique=False
    )
    op.create_index(
        op.f("ix_equipment_uses_culture_id"), "equipment_uses", ["culture_id"], unique=False
    )
    op.create_index(
        op.f("ix_equipment_uses_entity_type_entity_id"),
        "equipment_uses",
        ["entity_type", "entity_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_equipment_uses_equipment_id"), "equipment_uses", ["equipment_id"], unique=False
    )
    op.create_index(op.f("ix_equipment_uses_lot_id"), "equipment_uses", ["lot_id"], unique=False)
    op.create_table(
        "retained_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("retained_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "status IN ('stored', 'removed')", name=op.f("ck_retained_samples_status")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lots.id"], name=op.f("fk_retained_samples_lot_id_lots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retained_samples")),
        sa.UniqueConstraint("code", name=op.f("uq_retained_samples_code")),
        sa.UniqueConstraint("lot_id", "number", name=op.f("uq_retained_samples_lot_id_number")),
    )
    op.create_index(
        op.f("ix_retained_samples_lot_id"), "retained_samples", ["lot_id"], unique=False
    )
    op.create_table(
        "storage_positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("grid_row", sa.Integer(), nullable=False),
        sa.Column("grid_column", sa.Integer(), nullable=False),
        sa.Column("bank_vial_id", sa.Integer(), nullable=True),
        sa.Column("retained_sample_id", sa.Integer(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "(bank_vial_id IS NULL) <> (retained_sample_id IS NULL)",
            name=op.f("ck_storage_positions_one_item"),
        ),
        sa.CheckConstraint(
            "grid_row >= 1 AND grid_column >= 1", name=op.f("ck_storage_positions_position")
        ),
        sa.ForeignKeyConstraint(
            ["bank_vial_id"],
            ["bank_vials.id"],
            name=op.f("fk_storage_positions_bank_vial_id_bank_vials"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["storage_locations.id"],
            name=op.f("fk_storage_positions_location_id_storage_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["retained_sample_id"],
            ["retained_samples.id"],
            name=op.f("fk_storage_positions_retained_sample_id_retained_samples"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_positions")),
        sa.UniqueConstraint("bank_vial_id", name=op.f("uq_storage_positions_bank_vial_id")),
        sa.UniqueConstraint(
            "location_id",
            "grid_row",
            "grid_column",
            name=op.f("uq_storage_positions_location_id_grid_row_grid_column"),
        ),
        sa.UniqueConstraint(
            "retained_sample_id", name=op.f("uq_storage_positions_retained_sample_id")
        ),
    )
    op.create_index(
        op.f("ix_storage_positions_location_id"), "storage_positions", ["location_id"], unique=False
    )

    _culture_kinds(CULTURE_KINDS)
    op.execute(
        sa.text("UPDATE write_format SET minimum = :minimum WHERE minimum < :minimum").bindparams(
            minimum=WRITE_FORMAT
        )
    )


def downgrade() -> None:
    # Before this revision nothing recorded equipment or storage: the register, its
    # calibrations, which equipment each step used and where each vial is kept would be lost.
    bind = op.get_bind()
    kept = [
        table
        for table in NEW_TABLES
        if bind.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar()
    ]
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0011_equipment_storage: the equipment register, its "
            f"calibrations and uses, and what is kept where would be lost ({', '.join(kept)})"
        )
    _culture_kinds(EARLIER_CULTURE_KINDS)
    for table in NEW_TABLES:
        op.drop_table(table)
