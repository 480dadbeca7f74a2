"""Finding a record by the id a user typed or scanned: one function per kind of record.

Every service looks records up here, so none needs another service to find one.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlmodel import Session, col, func, select

from lims.config import Settings
from lims.domain import ids, storage
from lims.errors import NotFound
from lims.models import (
    Aspirate,
    BankVial,
    CellCount,
    Culture,
    Equipment,
    Lot,
    Passage,
    Patient,
    RetainedSample,
    Shipment,
    StorageLocation,
    Vial,
)


class _Coded(Protocol):
    code: str


Coded = TypeVar("Coded", bound=_Coded)


def by_code(
    session: Session,
    model: type[Coded],
    kind: type[ids.ChainId],
    code: str,
    *,
    field: str,
) -> Coded:
    """The record with this id, typed in any case and with blanks around it (ChainId.read)."""
    typed = kind.read(code, field).code
    found = session.exec(select(model).where(col(model.code) == typed)).first()
    if found is None:
        raise NotFound(f"no {kind.kind} {typed}")
    return found


def valid_patient_code(settings: Settings, code: str, field: str = "code") -> str:
    rules = settings.patients
    return ids.patient_code(code, rules.code_pattern, rules.code_description, field)


def patient(session: Session, settings: Settings, code: str, field: str = "patient") -> Patient:
    found = session.exec(
        select(Patient).where(col(Patient.code) == valid_patient_code(settings, code, field))
    ).first()
    if found is None:
        raise NotFound(f"no patient with code {code!r}")
    return found


def aspirate(session: Session, din_text: str, field: str = "din") -> Aspirate:
    din = ids.parse_din(din_text, field)
    found = session.exec(select(Aspirate).where(col(Aspirate.din) == din.code)).first()
    if found is None:
        raise NotFound(f"no aspirate with DIN {din.display}")
    return found


def culture(session: Session, code: str, field: str = "culture") -> Culture:
    return by_code(session, Culture, ids.CultureId, code, field=field)


def passage(session: Session, code: str, field: str = "passage") -> Passage:
    return by_code(session, Passage, ids.PassageId, code, field=field)


def lot(session: Session, code: str, field: str = "lot") -> Lot:
    return by_code(session, Lot, ids.LotId, code, field=field)


def vial(session: Session, code: str, field: str = "vial") -> Vial:
    return by_code(session, Vial, ids.VialId, code, field=field)


def bank_vial(session: Session, code: str, field: str = "bank_vial") -> BankVial:
    return by_code(session, BankVial, ids.BankVialId, code, field=field)


def retained_sample(session: Session, code: str, field: str = "sample") -> RetainedSample:
    return by_code(session, RetainedSample, ids.RetainedSampleId, code, field=field)


def equipment(session: Session, code: str, field: str = "equipment") -> Equipment:
    typed = ids.equipment_id(code, field)
    found = session.exec(select(Equipment).where(col(Equipment.code) == typed)).first()
    if found is None:
        raise NotFound(f"no equipment {typed} in the register")
    return found


def storage_location(session: Session, path: str, field: str = "path") -> StorageLocation:
    """The location at this path, typed in any letter case."""
    typed = storage.storage_path(path, field)
    found = session.exec(
        select(StorageLocation).where(
            func.lower(col(StorageLocation.path)) == storage.path_key(typed)
        )
    ).first()
    if found is None:
        raise NotFound(f"no storage location {typed}")
    return found


# The database numbers counts and shipments in a 32-bit integer: a CNT- or SHP- id above it
# names no record (and PostgreSQL would refuse to compare it with one).
ROW_NUMBER_MAX = 2**31 - 1


def count(session: Session, code: str, field: str = "count") -> CellCount:
    number = ids.CountId.read(code, field).number
    found = session.get(CellCount, number) if number <= ROW_NUMBER_MAX else None
    if found is None:
        raise NotFound(f"no count {ids.CountId(number).code}")
    return found


def shipment(session: Session, code: str, field: str = "shipment") -> Shipment:
    number = ids.ShipmentId.read(code, field).number
    found = session.get(Shipment, number) if number <= ROW_NUMBER_MAX else None
    if found is None:
        raise NotFound(f"no shipment {ids.ShipmentId(number).code}")
    return found
