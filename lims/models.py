"""The tables. The schema changes only through Alembic revisions in migrations/."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from lims.domain.equipment import CALIBRATION_RESULTS, EQUIPMENT_KINDS
from lims.domain.ids import DIN_LENGTH, PATIENT_CODE_MAX, ShipmentId
from lims.domain.screening import RESULTS as SCREENING_RESULTS
from lims.domain.screening import TEST_MAX as SCREENING_TEST_MAX
from lims.domain.states import (
    BankVialState,
    CultureState,
    DeviationSeverity,
    DeviationState,
    EquipmentState,
    LotState,
    OOSOutcome,
    RetainedSampleState,
    ShipmentState,
    VialState,
)
from lims.domain.storage import BOX_COLUMNS_MAX, BOX_ROWS_MAX, PATH_MAX, STORAGE_KINDS
from lims.roles import ROLES

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Record(SQLModel):
    """Every table's base. Tables are read and written through SQLAlchemy, which never needs
    pydantic's validators, so they are built only if something asks for them."""

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]


USERNAME_MAX = 32
FULL_NAME_MAX = 100
HASH_HEX_LENGTH = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times with a zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class User(Record, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(role) for role in ROLES)})", name="role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(USERNAME_MAX), nullable=False, unique=True))
    full_name: str = Field(sa_column=Column(String(FULL_NAME_MAX), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    active: bool = Field(default=True, nullable=False)
    failed_logins: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    locked_at: datetime | None = _time(nullable=True)
    created_at: datetime = _time()
    last_login_at: datetime | None = _time(nullable=True)
    # When the password was last set, and whether an admin set it: such a password must be
    # changed by its owner before any other command (21 CFR 11.300(b)).
    password_set_at: datetime | None = _time(nullable=True)
    password_set_by_admin: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class PasswordHistory(Record, table=True):
    """A password a user had, kept (hashed) so the last few are not chosen again."""

    __tablename__ = "password_history"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    )
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    set_at: datetime = _time()


class LoginSession(Record, table=True):
    """A station's login; the token itself lives only in the station's session file."""

    __tablename__ = "login_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    )
    token_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False, unique=True))
    started_at: datetime = _time()
    last_seen_at: datetime = _time()
    ended_at: datetime | None = _time(nullable=True)
    end_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))


class AuditEntry(Record, table=True):
    """One link of the append-only, hash-chained audit trail (see lims.audit)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index(None, "entity_type", "entity_id"),
        Index(None, "username"),
        Index(None, "at"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Fixed-width UTC text rather than a timestamp type, so that its bytes are
    # the same on SQLite and PostgreSQL and can be checked against `canonical`.
    at: str = Field(sa_column=Column(String(27), nullable=False))
    username: str | None = Field(default=None, sa_column=Column(String(USERNAME_MAX)))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    entity_type: str = Field(sa_column=Column(String(32), nullable=False))
    entity_id: str = Field(sa_column=Column(String(64), nullable=False))
    old_value: str | None = Field(default=None, sa_column=Column(Text))
    new_value: str | None = Field(default=None, sa_column=Column(Text))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    canonical: str = Field(sa_column=Column(Text, nullable=False))


class AuditHead(Record, table=True):
    """The chain's last link, one row: the lock writers queue on, and a guard on the tail."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))


class WriteFormat(Record, table=True):
    """One row: the lowest write format (lims.db.WRITE_FORMAT) that may write to this database.

    Migrations and any lims whose writes differ raise it, so an older lims cannot write
    records in a shape the newer one no longer expects.
    """

    __tablename__ = "write_format"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    minimum: int = Field(sa_column=Column(Integer, nullable=False))


# --- the site's records: its settings and its release specification, versioned ---------


class SiteSettingsVersion(Record, table=True):
    """One version of the site's settings (lims.config.SITE_SECTIONS but release), as JSON.

    Rows are only ever added: the latest version is in force. `values` is canonical JSON
    (lims.site.canonical), so equal settings are equal text.
    """

    __tablename__ = "site_settings"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    values: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: str | None = Field(
        default=None, sa_column=Column(String(USERNAME_MAX), nullable=True)
    )
    recorded_at: datetime = _time()


class SpecificationVersion(Record, table=True):
    """One version of the release specification, approved by a QA signature (but the first).

    A lot is judged by the version in force when it was formulated (lots.spec_version).
    """

    __tablename__ = "specifications"

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    spec: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    approved_by: str | None = Field(
        default=None, sa_column=Column(String(USERNAME_MAX), nullable=True)
    )
    approved_at: datetime = _time()


# --- the bench: patients, aspirates, reagents, cultures, passages, deviations ---------

SHORT_TEXT_MAX = 100
COUNT_FILE_NAME_MAX = 255
LONG_TEXT_MAX = 2000
# split: from a passage's harvest; thawed: from a bank vial frozen from a passage's harvest.
CULTURE_KINDS = ("primary", "seeded", "split", "thawed")
CULTURE_STATES = tuple(state.value for state in CultureState)
DEVIATION_STATES = tuple(state.value for state in DeviationState)
DEVIATION_OUTCOMES = tuple(outcome.value for outcome in OOSOutcome)
DEVIATION_SEVERITIES = tuple(severity.value for severity in DeviationSeverity)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _username_column(nullable: bool = False) -> Any:
    return Field(sa_column=Column(String(USERNAME_MAX), nullable=nullable))


def _text(length: int, nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(String(length), nullable=nullable))


def _number(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(Double(), nullable=nullable))


def _count(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable))


def _whole(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(Integer, nullable=nullable))


def _status(initial: str, length: int = 16) -> Any:
    """A lifecycle's state (lims.domain.states), `initial` when the record is made."""
    return Field(default=initial, sa_column=Column(String(length), nullable=False))


def _reference(target: str, nullable: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target), nullable=nullable, index=True),
    )


def _count_used() -> Any:
    """The instrument count a step's numbers came from; None when they were typed. A count
    is used by one step only, which the cell_counts row guards (used_by)."""
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("cell_counts.id"), nullable=True, unique=True),
    )


class Patient(Record, table=True):
    """The donor, who is also the recipient. Pseudonymous: no name, SSN or record number."""

    __tablename__ = "patients"
    __table_args__ = (CheckConstraint("birth_year BETWEEN 1900 AND 2100", name="birth_year"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(PATIENT_CODE_MAX), nullable=False, unique=True))
    initials: str = Field(sa_column=Column(String(4), nullable=False))
    birth_year: int = _whole()
    # Required for every patient added since consent was enforced; older ones may lack it,
    # and then no aspirate of theirs is received.
    consent_date: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    study: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    weight_kg: float | None = _number(nullable=True)
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
    # Consent withdrawn: no further manufacturing step on this patient's materials.
    withdrawn_at: datetime | None = _time(nullable=True)
    withdrawn_by: str | None = _text(USERNAME_MAX, nullable=True)
    withdraw_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


MARROW, CSF = "bone_marrow", "csf"
MATERIALS = (MARROW, CSF)


class Aspirate(Record, table=True):
    """A donation as received, bone marrow or CSF, identified by its ISBT 128 DIN."""

    __tablename__ = "aspirates"
    __table_args__ = (
        UniqueConstraint("fin", "year", "sequence"),
        CheckConstraint("sequence BETWEEN 1 AND 999999", name="sequence"),
        CheckConstraint("volume_ml > 0", name="volume_ml"),
        CheckConstraint("received_at > collected_at", name="received_after_collected"),
        CheckConstraint(_in("material", MATERIALS), name="material"),
    )

    id: int | None = Field(default=None, primary_key=True)
    din: str = Field(sa_column=Column(String(13), nullable=False, unique=True))
    # What was collected: bone marrow to expand, or CSF to suspend the product in (the
    # vehicle), each a donation of the patient with a DIN of its own.
    material: str = Field(
        default=MARROW,
        sa_column=Column(String(16), nullable=False, server_default=MARROW),
    )
    din_check: str = Field(sa_column=Column(String(1), nullable=False))
    fin: str = Field(sa_column=Column(String(5), nullable=False))
    year: int = _whole()
    sequence: int = _whole()
    patient_id: int = _reference("patients.id")
    collected_at: datetime = _time()
    received_at: datetime = _time()
    volume_ml: float = _number()
    site: str = _text(SHORT_TEXT_MAX)
    anticoagulant: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    tnc: int | None = _count(nullable=True)
    temperature_c: float | None = _number(nullable=True)
    # Received outside the site's conditions (e.g. too long in transit) and kept on record
    # with a deviation rather than refused.
    nonconforming: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
    count_id: int | None = _count_used()


class CountFile(Record, table=True):
    """A cell counter's export as imported: its bytes, kept so every station sees the
    original, and their SHA-256, by which a file is imported once."""

    __tablename__ = "count_files"

    id: int | None = Field(default=None, primary_key=True)
    file_name: str = _text(COUNT_FILE_NAME_MAX)
    sha256: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False, unique=True))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size_bytes: int = _whole()
    instrument: str = _text(16)
    # What read it: "allotropy 0.1.150" or the Allotrope document's own converter.
    parser: str = _text(SHORT_TEXT_MAX)
    imported_at: datetime = _time()
    imported_by: str = _username_column()


class CellCount(Record, table=True):
    """One sample's result in an imported count file, as the instrument reported it, and the
    step that took its numbers (used_by, with the suspension volume they were scaled by)."""

    __tablename__ = "cell_counts"
    __table_args__ = (
        UniqueConstraint("file_id", "position"),
        CheckConstraint("viability BETWEEN 0 AND 100", name="viability"),
        CheckConstraint(
            "viable_per_ml >= 0 AND (total_per_ml IS NULL OR total_per_ml >= viable_per_ml)",
            name="density",
        ),
        CheckConstraint(
            "(used_by IS NULL) = (used_at IS NULL AND suspension_ml IS NULL)", name="use"
        ),
        CheckConstraint("suspension_ml IS NULL OR suspension_ml > 0", name="suspension_ml"),
    )

    id: int | None = Field(default=None, primary_key=True)
    file_id: int = _reference("count_files.id")
    position: int = _whole()  # the sample's place in the file, from 1
    instrument: str = _text(16)
    model: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    serial: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    operator: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    analysed_at: datetime = _time()
    # The file gives the day but not the time of analysis (NC-View): analysed_at is the
    # start of that day in the station's zone.
    analysed_date_only: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    sample: str = _text(SHORT_TEXT_MAX)
    sample_name: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    viable_per_ml: float = _number()
    total_per_ml: float | None = _number(nullable=True)
    viability: float = _number()
    diameter_um: float | None = _number(nullable=True)
    dilution: float | None = _number(nullable=True)
    status: str = Field(sa_column=Column(Text, nullable=False))
    used_by: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    used_at: datetime | None = _time(nullable=True)
    suspension_ml: float | None = _number(nullable=True)


class ReagentLot(Record, table=True):
    """A lot of a reagent (medium, serum, enzyme, gradient) and when it expires."""

    __tablename__ = "reagent_lots"
    __table_args__ = (UniqueConstraint("name", "lot"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = _text(SHORT_TEXT_MAX)
    lot: str = _text(SHORT_TEXT_MAX)
    supplier: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    expires_on: date = Field(sa_column=Column(Date, nullable=False))
    # The first moment after the expiry date, in the zone of the station that recorded it.
    expires_at: datetime = _time()
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class Culture(Record, table=True):
    """Cells from one aspirate expanding in vessels: primary (from MNC), seeded, or split
    from another culture's harvest (parent_id, source_passage_id), whose passage count and
    cumulative population doublings it carries on."""

    __tablename__ = "cultures"
    __table_args__ = (
        UniqueConstraint("aspirate_id", "number"),
        CheckConstraint(_in("kind", CULTURE_KINDS), name="kind"),
        CheckConstraint(_in("status", CULTURE_STATES), name="status"),
        CheckConstraint("cells_plated > 0 AND vessels > 0 AND area_cm2 > 0", name="plating"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    aspirate_id: int = _reference("aspirates.id")
    number: int = _whole()
    kind: str = _text(8)
    cells_plated: int = _count()
    vessels: int = _whole()
    area_cm2: float = _number()
    method: str = _text(SHORT_TEXT_MAX)
    started_at: datetime = _time()
    status: str = _status(CultureState.ACTIVE)
    parent_id: int | None = _reference("cultures.id", nullable=True)
    # Passages also point here, so this constraint is added after both tables.
    source_passage_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("passages.id", use_alter=True), nullable=True, index=True
        ),
    )
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
    count_id: int | None = _count_used()


class Passage(Record, table=True):
    """A harvest of a culture and the reseeding that followed; growth derived from the counts."""

    __tablename__ = "passages"
    __table_args__ = (
        UniqueConstraint("culture_id", "number"),
        CheckConstraint("harvested > 0 AND seeded > 0 AND seeded <= harvested", name="counts"),
        CheckConstraint("viability BETWEEN 0 AND 100", name="viability"),
        CheckConstraint("vessels > 0 AND area_cm2 > 0", name="vessels"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    culture_id: int = Field(sa_column=Column(Integer, ForeignKey("cultures.id"), nullable=False))
    number: int = _whole()
    harvested_at: datetime = _time()
    harvested: int = _count()
    viability: float = _number()
    seeded: int = _count()
    vessels: int = _whole()
    area_cm2: float = _number()
    confluence: float | None = _number(nullable=True)
    population_doublings: float | None = _number(nullable=True)
    cumulative_population_doublings: float = _number()
    doubling_time_hours: float | None = _number(nullable=True)
    fold_expansion: float | None = _number(nullable=True)
    seeding_density_per_cm2: float = _number()
    corrections: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
    count_id: int | None = _count_used()


class ReagentUse(Record, table=True):
    """A reagent lot used at a culture's start, at one of its passages, or at formulation."""

    __tablename__ = "reagent_uses"

    id: int | None = Field(default=None, primary_key=True)
    reagent_lot_id: int = _reference("reagent_lots.id")
    culture_id: int = _reference("cultures.id")
    passage_id: int | None = _reference("passages.id", nullable=True)
    lot_id: int | None = _reference("lots.id", nullable=True)


class Deviation(Record, table=True):
    """A departure from the process on a culture or a lot, opened by a person or a bench rule.

    Closing it is a QA signature; closing with a waiver lets release proceed
    past the failed criterion it names, and only past that result.
    """

    __tablename__ = "deviations"
    __table_args__ = (
        CheckConstraint(_in("status", DEVIATION_STATES), name="status"),
        CheckConstraint(
            "culture_id IS NOT NULL OR lot_id IS NOT NULL OR aspirate_id IS NOT NULL",
            name="subject",
        ),
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', DEVIATION_OUTCOMES)}", name="outcome"),
        CheckConstraint(_in("severity", DEVIATION_SEVERITIES), name="severity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # A nonconforming aspirate's deviation names the aspirate alone.
    aspirate_id: int | None = _reference("aspirates.id", nullable=True)
    culture_id: int | None = _reference("cultures.id", nullable=True)
    passage_id: int | None = _reference("passages.id", nullable=True)
    lot_id: int | None = _reference("lots.id", nullable=True)
    criterion: str | None = _text(32, nullable=True)
    kind: str = _text(32)
    description: str = Field(sa_column=Column(Text, nullable=False))
    status: str = _status(DeviationState.OPEN, length=8)
    opened_at: datetime = _time()
    opened_by: str = _username_column()
    closed_at: datetime | None = _time(nullable=True)
    closed_by: str | None = _text(USERNAME_MAX, nullable=True)
    resolution: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    waived: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # The result the waiver covers; a retest needs its own.
    waived_result_id: int | None = _reference("qc_results.id", nullable=True)
    # An out-of-specification deviation (kind oos): the failing result that opened it, and
    # how QA closed it: the result invalidated (a lab error proven) or confirmed.
    result_id: int | None = _reference("qc_results.id", nullable=True)
    outcome: str | None = _text(16, nullable=True)
    # The treating physician's documented request to use the product despite a confirmed
    # failure (EU GMP Part IV 11.5): what a waiver of an OOS result rests on.
    physician_request: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # How much it matters (EU GMP Part I 1.4(xiv)): a failed final result of a product that
    # may already be with patients is critical.
    severity: str = Field(
        default=DeviationSeverity.MAJOR,
        sa_column=Column(String(8), nullable=False, server_default=DeviationSeverity.MAJOR.value),
    )
    # The follow-up event that opened it: a serious adverse event possibly related to a lot.
    event_id: int | None = _reference("follow_up_events.id", nullable=True)


# --- QA: lots, vials, QC results, signatures ------------------------------------------

LOT_STATES = tuple(state.value for state in LotState)
VIAL_STATES = tuple(state.value for state in VialState)


class Lot(Record, table=True):
    """A product lot formulated from a culture's final harvest, for that culture's patient."""

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("aspirate_id", "number"),
        CheckConstraint(_in("status", LOT_STATES), name="status"),
        CheckConstraint(
            "vials > 0 AND cells_per_vial > 0 AND vials * cells_per_vial <= harvested",
            name="cells",
        ),
        CheckConstraint("viability BETWEEN 0 AND 100 AND volume_ml > 0", name="measures"),
        CheckConstraint("expires_at > formulated_at", name="expiry"),
        CheckConstraint(
            "(vehicle_aspirate_id IS NULL) = (vehicle_ml IS NULL) "
            "AND (vehicle_ml IS NULL OR vehicle_ml > 0)",
            name="vehicle",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    culture_id: int = Field(
        sa_column=Column(Integer, ForeignKey("cultures.id"), nullable=False, unique=True)
    )
    aspirate_id: int = _reference("aspirates.id")
    # The recipient: for an autologous lot, the patient who gave the aspirate.
    patient_id: int = _reference("patients.id")
    number: int = _whole()
    harvested: int = _count()
    viability: float = _number()
    vials: int = _whole()
    cells_per_vial: int = _count()
    volume_ml: float = _number()
    vehicle: str = _text(SHORT_TEXT_MAX)
    # The patient's own CSF the cells are suspended in, and how much of it was drawn.
    vehicle_aspirate_id: int | None = _reference("aspirates.id", nullable=True)
    vehicle_ml: float | None = _number(nullable=True)
    final_passage: int = _whole()
    # The release specification version in force at formulation: the lot is judged by it.
    spec_version: int = Field(
        sa_column=Column(Integer, ForeignKey("specifications.version"), nullable=False)
    )
    formulated_at: datetime = _time()
    expires_at: datetime = _time()
    status: str = _status(LotState.QUARANTINE)
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
    # A release on interim results: the tests whose final results were pending at release
    # (JSON list), and QA's later signature that those final results were reviewed.
    pending_at_release: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    release_completed_at: datetime | None = _time(nullable=True)
    release_completed_by: str | None = _text(USERNAME_MAX, nullable=True)
    count_id: int | None = _count_used()


class Vial(Record, table=True):
    __tablename__ = "vials"
    __table_args__ = (
        UniqueConstraint("lot_id", "number"),
        # Each vial is a division of its donation's product (ISBT 128 data structure 003):
        # sister lots of one DIN never share a division.
        UniqueConstraint("din", "division"),
        CheckConstraint("division >= 1", name="division"),
        CheckConstraint(_in("status", VIAL_STATES), name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    lot_id: int = Field(sa_column=Column(Integer, ForeignKey("lots.id"), nullable=False))
    number: int = _whole()
    din: str = _text(DIN_LENGTH)
    division: int = _whole()
    status: str = _status(VialState.QUARANTINE)
    cells: int = _count()
    volume_ml: float = _number()
    labels_printed: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    issued_at: datetime | None = _time(nullable=True)
    issued_by: str | None = _text(USERNAME_MAX, nullable=True)
    administered_at: datetime | None = _time(nullable=True)
    administered_by: str | None = _text(USERNAME_MAX, nullable=True)
    destroyed_at: datetime | None = _time(nullable=True)
    destroyed_by: str | None = _text(USERNAME_MAX, nullable=True)
    destroy_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Issued while final results of its lot were pending: the tests the issuer acknowledged.
    acknowledged_pending: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # How and by whose order it was given.
    route: str | None = _text(32, nullable=True)
    physician: str | None = _text(SHORT_TEXT_MAX, nullable=True)


class QCResult(Record, table=True):
    """One result of a release test; a retest adds a row, and the latest counts."""

    __tablename__ = "qc_results"
    __table_args__ = (
        Index(None, "lot_id", "test"),
        CheckConstraint("qualifier IS NULL OR qualifier IN ('<', '>')", name="qualifier"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = Field(sa_column=Column(Integer, ForeignKey("lots.id"), nullable=False))
    test: str = _text(32)
    value: str = _text(64)
    number: float | None = _number(nullable=True)
    unit: str | None = _text(20, nullable=True)
    method: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    tested_at: datetime = _time()
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Recorded as part of the investigation of an out-of-specification result: it counts
    # only once that deviation is closed with the original invalidated. The constraint is
    # added after both tables, as deviations also point here.
    investigation_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("deviations.id", use_alter=True), nullable=True, index=True
        ),
    )
    # A test started whose final result is still to come (value "pending"), and when it is
    # expected; tested_at is then when it was started.
    pending: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    expected_final_at: datetime | None = _time(nullable=True)
    # A numeric result beyond the method's range, "<" or ">" its number (value "<0.5").
    qualifier: str | None = _text(1, nullable=True)
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class LotHold(Record, table=True):
    """A hold QA placed on a lot (a signature), and its lifting (another): while it stands,
    the lot's vials go to no patient and the lot is not released."""

    __tablename__ = "lot_holds"

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = _reference("lots.id")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    placed_at: datetime = _time()
    placed_by: str = _username_column()
    lifted_at: datetime | None = _time(nullable=True)
    lifted_by: str | None = _text(USERNAME_MAX, nullable=True)
    lift_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LateEntry(Record, table=True):
    """A step entered more than records.late_entry_hours after the time it states (its
    `at`), with the reason given: every view marks it "late entry"."""

    __tablename__ = "late_entries"
    __table_args__ = (Index(None, "entity_type", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    # The step as its audit entry names it (e.g. passage.log) and the record it made.
    action: str = _text(64)
    entity_type: str = _text(32)
    entity_id: str = _text(64)
    at: datetime = _time()
    entered_at: datetime = _time()
    entered_by: str = _username_column()
    reason: str = Field(sa_column=Column(Text, nullable=False))


EVENT_KINDS = ("adverse_event", "observation")
EVENT_SEVERITIES = ("mild", "moderate", "severe", "life_threatening", "fatal")
EVENT_RELATEDNESS = ("unrelated", "unlikely", "possible", "probable", "definite")


class FollowUpEvent(Record, table=True):
    """What happened to a patient after administration: an adverse event or an observation
    (21 CFR 312.32; EU Regulation 536/2014, Art. 41-43), with the vial it followed, if named."""

    __tablename__ = "follow_up_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        CheckConstraint(
            f"severity IS NULL OR {_in('severity', EVENT_SEVERITIES)}", name="severity"
        ),
        CheckConstraint(f"related IS NULL OR {_in('related', EVENT_RELATEDNESS)}", name="related"),
        CheckConstraint("kind <> 'adverse_event' OR severity IS NOT NULL", name="ae_severity"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = _reference("patients.id")
    vial_id: int | None = _reference("vials.id", nullable=True)
    kind: str = _text(16)
    severity: str | None = _text(16, nullable=True)
    serious: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    related: str | None = _text(16, nullable=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    occurred_at: datetime = _time()
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class WrittenFile(Record, table=True):
    """A file lims wrote (label, report, backup) and the SHA-256 of what it wrote: the only
    kind of existing file `--force` may replace, and only while it still holds those bytes."""

    __tablename__ = "written_files"
    __table_args__ = (Index(None, "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(sa_column=Column(Text, nullable=False))
    sha256: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    kind: str = _text(32)
    written_at: datetime = _time()
    written_by: str | None = _text(USERNAME_MAX, nullable=True)


class Signature(Record, table=True):
    """An electronic signature (21 CFR 11.50): who, when, what it means, and over which record.

    manifest_hash covers the signed record's identity as well as its content,
    so a signature row moved to another lot or deviation no longer verifies (11.70).
    """

    __tablename__ = "signatures"

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int | None = _reference("lots.id", nullable=True)
    deviation_id: int | None = _reference("deviations.id", nullable=True)
    specification_version: int | None = _reference("specifications.version", nullable=True)
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))
    username: str = _username_column()
    full_name: str = Field(sa_column=Column(String(FULL_NAME_MAX), nullable=False))
    meaning: str = _text(200)
    signed_at: datetime = _time()
    record_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    manifest_hash: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False))
    # Which shape of the signed record record_hash was made from (lims.services.lots);
    # None for a lot signed before shapes were numbered.
    record_shape: int | None = _whole(nullable=True)


# --- equipment: the register, calibrations, and the steps that used each piece ---------

EQUIPMENT_STATES = tuple(state.value for state in EquipmentState)
EQUIPMENT_CODE_MAX = 32


class Equipment(Record, table=True):
    """A piece of equipment in the register, by the id the lab gives it (e.g. BSC-01)."""

    __tablename__ = "equipment"
    __table_args__ = (
        CheckConstraint(_in("kind", EQUIPMENT_KINDS), name="kind"),
        CheckConstraint(_in("status", EQUIPMENT_STATES), name="status"),
        CheckConstraint(
            "calibration_interval_days IS NULL OR calibration_interval_days > 0",
            name="calibration_interval_days",
        ),
        Index(None, "serial"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(EQUIPMENT_CODE_MAX), nullable=False, unique=True))
    kind: str = _text(24)
    name: str = _text(SHORT_TEXT_MAX)
    serial: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    location: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    # Set: the piece is used only within a passing calibration, due at most this many days on.
    calibration_interval_days: int | None = _whole(nullable=True)
    status: str = _status(EquipmentState.ACTIVE)
    added_at: datetime = _time()
    added_by: str = _username_column()


class Calibration(Record, table=True):
    """A calibration (or certification) of a piece of equipment: when, until when, the result.

    The latest one at a step's time decides whether the piece could be used then: a pass
    due on or after the step's day.
    """

    __tablename__ = "calibrations"
    __table_args__ = (
        CheckConstraint(_in("result", CALIBRATION_RESULTS), name="result"),
        CheckConstraint("due_at > calibrated_at", name="due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = _reference("equipment.id")
    calibrated_at: datetime = _time()
    # --at was a day: calibrated_at is the start of it in the recording station's zone.
    calibrated_date_only: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    due_on: date = Field(sa_column=Column(Date, nullable=False))
    # The first moment after the due date (inclusive, as a reagent's expiry), in the zone of
    # the station that recorded it.
    due_at: datetime = _time()
    certificate: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    result: str = _text(4)
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class EquipmentUse(Record, table=True):
    """A piece of equipment named by a step (or, for a cell counter, matched by the serial in
    an imported count), with the calibration in force at the step's time."""

    __tablename__ = "equipment_uses"
    __table_args__ = (
        UniqueConstraint("equipment_id", "action", "entity_id"),
        Index(None, "entity_type", "entity_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = _reference("equipment.id")
    # The step as its audit entry names it (e.g. passage.log) and the record it made.
    action: str = _text(64)
    entity_type: str = _text(32)
    entity_id: str = _text(64)
    # What the product came through: the culture and the lot the step was on, where it was.
    culture_id: int | None = _reference("cultures.id", nullable=True)
    lot_id: int | None = _reference("lots.id", nullable=True)
    used_at: datetime = _time()
    calibration_id: int | None = _reference("calibrations.id", nullable=True)
    recorded_at: datetime = _time()


# --- storage: locations, bank vials, retained samples and the positions they are in -----

BANK_VIAL_STATES = tuple(state.value for state in BankVialState)
RETAINED_SAMPLE_STATES = tuple(state.value for state in RetainedSampleState)


class StorageLocation(Record, table=True):
    """A place things are kept, by its slash-separated path (LN2-1/rack-3/box-07). Boxes
    have a grid of positions (rows lettered from A, columns numbered from 1)."""

    __tablename__ = "storage_locations"
    __table_args__ = (
        CheckConstraint(_in("kind", STORAGE_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'box') = (grid_rows IS NOT NULL AND grid_columns IS NOT NULL)", name="grid"
        ),
        CheckConstraint(
            f"grid_rows IS NULL OR grid_rows BETWEEN 1 AND {BOX_ROWS_MAX}", name="grid_rows"
        ),
        CheckConstraint(
            f"grid_columns IS NULL OR grid_columns BETWEEN 1 AND {BOX_COLUMNS_MAX}",
            name="grid_columns",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(sa_column=Column(String(PATH_MAX), nullable=False, unique=True))
    parent_id: int | None = _reference("storage_locations.id", nullable=True)
    kind: str = _text(8)
    grid_rows: int | None = _whole(nullable=True)
    grid_columns: int | None = _whole(nullable=True)
    temperature_c: float | None = _number(nullable=True)
    added_at: datetime = _time()
    added_by: str = _username_column()


class BankVial(Record, table=True):
    """Cryopreserved cells frozen from a passage's harvest, e.g. A999926000001-C1-B01; thawed,
    they start a child culture that carries on the passage number and cumulative PD."""

    __tablename__ = "bank_vials"
    __table_args__ = (
        UniqueConstraint("culture_id", "number"),
        CheckConstraint(_in("status", BANK_VIAL_STATES), name="status"),
        CheckConstraint("cells > 0", name="cells"),
        CheckConstraint(
            "thaw_viability IS NULL OR thaw_viability BETWEEN 0 AND 100", name="thaw_viability"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    culture_id: int = _reference("cultures.id")
    passage_id: int = _reference("passages.id")  # the harvest its cells came from
    number: int = _whole()
    cells: int = _count()
    medium: str | None = _text(SHORT_TEXT_MAX, nullable=True)
    frozen_at: datetime = _time()
    status: str = _status(BankVialState.STORED)
    thawed_into_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("cultures.id"), nullable=True, unique=True),
    )
    thaw_viability: float | None = _number(nullable=True)  # %, counted after thawing
    ended_at: datetime | None = _time(nullable=True)
    ended_by: str | None = _text(USERNAME_MAX, nullable=True)
    end_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class RetainedSample(Record, table=True):
    """A sample of a lot kept for later testing (21 CFR 1271.260), e.g. A999926000001-L1-R01."""

    __tablename__ = "retained_samples"
    __table_args__ = (
        UniqueConstraint("lot_id", "number"),
        CheckConstraint(_in("status", RETAINED_SAMPLE_STATES), name="status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(40), nullable=False, unique=True))
    lot_id: int = _reference("lots.id")
    number: int = _whole()
    retained_at: datetime = _time()
    status: str = _status(RetainedSampleState.STORED)
    ended_at: datetime | None = _time(nullable=True)
    ended_by: str | None = _text(USERNAME_MAX, nullable=True)
    end_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class StoragePosition(Record, table=True):
    """An occupied position in a box, and what is in it: one bank vial or one retained
    sample. The row goes when its item leaves storage; the trail keeps every placement."""

    __tablename__ = "storage_positions"
    __table_args__ = (
        UniqueConstraint("location_id", "grid_row", "grid_column"),
        CheckConstraint("(bank_vial_id IS NULL) <> (retained_sample_id IS NULL)", name="one_item"),
        CheckConstraint("grid_row >= 1 AND grid_column >= 1", name="position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    location_id: int = _reference("storage_locations.id")
    grid_row: int = _whole()
    grid_column: int = _whole()
    bank_vial_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("bank_vials.id"), nullable=True, unique=True),
    )
    retained_sample_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("retained_samples.id"), nullable=True, unique=True),
    )
    placed_at: datetime = _time()
    placed_by: str = _username_column()


SHIPMENT_STATES = tuple(state.value for state in ShipmentState)
SITE_CODE_MAX = 16


class Shipment(Record, table=True):
    """Released vials sent to another site (21 CFR 1271.265(b)-(c), 1271.290(b)): packed,
    dispatched with a courier, received with every vial scanned. Its id, SHP-000001, is
    its number (lims.domain.ids.ShipmentId), as a count's is."""

    __tablename__ = "shipments"
    __table_args__ = (CheckConstraint(_in("status", SHIPMENT_STATES), name="status"),)

    id: int | None = Field(default=None, primary_key=True)
    # The consignee as the site setting `sites` named it when the shipment was made.
    site_code: str = _text(SITE_CODE_MAX)
    site_name: str = _text(SHORT_TEXT_MAX)
    site_address: str = Field(sa_column=Column(Text, nullable=False))
    courier: str = _text(SHORT_TEXT_MAX)
    logger: str | None = _text(SHORT_TEXT_MAX, nullable=True)  # the temperature logger's id
    status: str = _status(ShipmentState.OPEN)
    created_at: datetime = _time()
    created_by: str = _username_column()
    dispatched_at: datetime | None = _time(nullable=True)
    dispatched_by: str | None = _text(USERNAME_MAX, nullable=True)
    received_at: datetime | None = _time(nullable=True)
    received_by: str | None = _text(USERNAME_MAX, nullable=True)
    temperature_ok: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    ended_at: datetime | None = _time(nullable=True)  # lost or cancelled
    ended_by: str | None = _text(USERNAME_MAX, nullable=True)
    end_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    recorded_at: datetime = _time()

    @property
    def code(self) -> str:
        """SHP-000001: as messages, the trail and labels name it."""
        assert self.id is not None, "a shipment is numbered once saved"
        return ShipmentId(self.id).code


class ShipmentVial(Record, table=True):
    """A vial packed in a shipment (its scan matched), and when it was taken out again."""

    __tablename__ = "shipment_vials"
    __table_args__ = (UniqueConstraint("shipment_id", "vial_id"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = _reference("shipments.id")
    vial_id: int = _reference("vials.id")
    added_at: datetime = _time()
    added_by: str = _username_column()
    removed_at: datetime | None = _time(nullable=True)
    removed_by: str | None = _text(USERNAME_MAX, nullable=True)
    remove_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Screening(Record, table=True):
    """One donor screening result of a patient (21 CFR 1271.85): the latest of each test
    counts, and any reactive result marks every label of the patient's cells."""

    __tablename__ = "screenings"
    __table_args__ = (
        Index(None, "patient_id", "test"),
        CheckConstraint(_in("result", SCREENING_RESULTS), name="result"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = _reference("patients.id")
    test: str = _text(SCREENING_TEST_MAX)
    result: str = _text(16)
    performed_at: datetime = _time()
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class LabelReconciliation(Record, table=True):
    """A lot's label count closed: every label printed applied to a vial or destroyed."""

    __tablename__ = "label_reconciliations"
    __table_args__ = (
        CheckConstraint("printed >= 0 AND applied >= 0 AND destroyed >= 0", name="counts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lot_id: int = _reference("lots.id")
    printed: int = _whole()
    applied: int = _whole()
    destroyed: int = _whole()
    # The deviation a count that does not add up opened.
    deviation_id: int | None = _reference("deviations.id", nullable=True)
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()


class LoggerFile(Record, table=True):
    """A shipment's temperature logger export as received: its bytes and their SHA-256,
    kept like a cell counter's file."""

    __tablename__ = "logger_files"

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("shipments.id"), nullable=False, unique=True)
    )
    file_name: str = _text(COUNT_FILE_NAME_MAX)
    sha256: str = Field(sa_column=Column(String(HASH_HEX_LENGTH), nullable=False, unique=True))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size_bytes: int = _whole()
    recorded_at: datetime = _time()
    recorded_by: str = _username_column()
