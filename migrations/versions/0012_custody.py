"""custody: the patient's CSF as the vehicle, shipments of vials to other sites

Revision ID: 0012_custody
Revises: 0011_equipment_storage
Create Date: 2026-12-13 09:00:00

aspirates.material tells bone marrow from CSF, a second donation of the patient with its own
DIN; lots.vehicle_aspirate_id and vehicle_ml name the CSF a lot is suspended in and how much
of it was drawn. shipments are released vials sent to another site, shipment_vials which vial
went in which, logger_files the temperature logger's export kept at receipt. A vial may now
be shipped, received or lost.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_custody"
down_revision: str | None = "0011_equipment_storage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lims.db.WRITE_FORMAT when this revision was written: a lot may name its CSF by DIN and vials
# travel in shipments, which an older lims would neither check nor show.
WRITE_FORMAT = 8

NEW_TABLES = ("logger_files", "shipment_vials", "shipments")
VIAL_STATES = (
    "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed', 'recalled', "
    "'shipped', 'received', 'lost')"
)
EARLIER_VIAL_STATES = (
    "status IN ('quarantine', 'released', 'issued', 'administered', 'destroyed', 'recalled')"
)


def _vial_states(allowed: str) -> None:
    with op.batch_alter_table("vials", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_vials_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_vials_status"), allowed)


def upgrade() -> None:
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "material", sa.String(length=16), server_default="bone_marrow", nullable=False
            )
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_aspirates_material"), "material IN ('bone_marrow', 'csf')"
        )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vehicle_aspirate_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("vehicle_ml", sa.Double(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_lots_vehicle_aspirate_id"), ["vehicle_aspirate_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_lots_vehicle_aspirate_id_aspirates"),
            "aspirates",
            ["vehicle_aspirate_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_lots_vehicle"),
            "(vehicle_aspirate_id IS NULL) = (vehicle_ml IS NULL) "
            "AND (vehicle_ml IS NULL OR vehicle_ml > 0)",
        )
    _vial_states(VIAL_STATES)
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(length=16), nullable=False),
        sa.Column("site_name", sa.String(length=100), nullable=False),
        sa.Column("site_address", sa.Text(), nullable=False),
        sa.Column("courier", sa.String(length=100), nullable=False),
        sa.Column("logger", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_by", sa.String(length=32), nullable=True),
        sa.Column("temperature_ok", sa.Boolean(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=32), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'dispatched', 'received', 'lost', 'cancelled')",
            name=op.f("ck_shipments_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    op.create_table(
        "shipment_vials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("vial_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=32), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by", sa.String(length=32), nullable=True),
        sa.Column("remove_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_shipment_vials_shipment_id_shipments")
        ),
        sa.ForeignKeyConstraint(
            ["vial_id"], ["vials.id"], name=op.f("fk_shipment_vials_vial_id_vials")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_vials")),
        sa.UniqueConstraint(
            "shipment_id", "vial_id", name=op.f("uq_shipment_vials_shipment_id_vial_id")
        ),
    )
    op.create_index(
        op.f("ix_shipment_vials_shipment_id"), "shipment_vials", ["shipment_id"], unique=False
    )
    op.create_index(op.f("ix_shipment_vials_vial_id"), "shipment_vials", ["vial_id"], unique=False)
    op.create_table(
        "logger_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipments.id"], name=op.f("fk_logger_files_shipment_id_shipments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logger_files")),
        sa.UniqueConstraint("sha256", name=op.f("uq_logger_files_sha256")),
        sa.UniqueConstraint("shipment_id", name=op.f("uq_logger_files_shipment_id")),
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
    # Before this revision a lot's vehicle was text and vials never left the lab: the CSF
    # donations, which lot drew on which, and every shipment would be lost.
    bind = op.get_bind()
    kept = [table for table in NEW_TABLES if _count(bind, table)]
    if _count(bind, "aspirates", "material <> 'bone_marrow'"):
        kept.append("aspirates (CSF)")
    if _count(bind, "lots", "vehicle_aspirate_id IS NOT NULL"):
        kept.append("lots (vehicle DIN)")
    if _count(bind, "vials", "status IN ('shipped', 'received', 'lost')"):
        kept.append("vials (shipped, received or lost)")
    if kept:
        raise RuntimeError(
            "cannot downgrade below 0012_custody: the patient's CSF donations, the lots "
            f"suspended in them and the vials' shipments would be lost ({', '.join(kept)})"
        )
    for table in NEW_TABLES:
        op.drop_table(table)
    _vial_states(EARLIER_VIAL_STATES)
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_lots_vehicle"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_lots_vehicle_aspirate_id_aspirates"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_lots_vehicle_aspirate_id"))
        batch_op.drop_column("vehicle_ml")
        batch_op.drop_column("vehicle_aspirate_id")
    with op.batch_alter_table("aspirates", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_aspirates_material"), type_="check")
        batch_op.drop_column("material")
