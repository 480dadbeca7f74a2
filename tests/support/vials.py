"""Vials of a Quality lab: their ids, the QR payload on a label, another lot, an expired lot,
a vial given to its patient."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from lims.domain import isbt128
from lims.domain.ids import LotId
from lims.domain.payload import Payload
from lims.models import Lot, Patient, Vial
from lims.services import lookup, vials
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views.vials import VialView
from tests.support.quality import Quality


def vial_ids(lot: str, count: int = 4) -> list[str]:
    return [f"{lot}-V{number:02d}" for number in range(1, count + 1)]


def scan_of(quality: Quality, vial: str, *, patient: str | None = None) -> str:
    """The QR payload on VIAL's label, as the record says it (or naming another patient)."""
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        found = lookup.vial(uow.session, vial)
        lot = uow.session.get(Lot, found.lot_id)
        assert lot is not None
        owner = uow.session.get(Patient, lot.patient_id)
        assert owner is not None
        return Payload(
            found.code, LotId.parse(lot.code).din.code, patient or owner.code, lot.expires_at
        ).encode()


def add_lot(quality: Quality, patient: str) -> str:
    """Another formulated lot (quarantine) for PATIENT, registered if need be; its id."""
    quality.lab.login("tom")
    return quality.new_lot(patient).summary.lot_id


def expire(quality: Quality, lot: str) -> None:
    """Move LOT's expiry to an hour ago (still after its formulation), as plain SQL."""
    with unit_of_work(quality.settings, authenticated=False) as uow:
        uow.session.execute(
            update(Lot).where(col(Lot.code) == lot).values(expires_at=utcnow() - timedelta(hours=1))
        )


def give(quality: Quality, vial: str, **details: Any) -> VialView:
    """Issue VIAL to its lot's patient and administer it now, with DETAILS (route, physician);
    the lot must be released. The administered vial's view."""
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        found = lookup.vial(uow.session, vial)
        lot = uow.session.get(Lot, found.lot_id)
        assert lot is not None
        owner = uow.session.get(Patient, lot.patient_id)
        assert owner is not None
        patient = owner.code
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=patient)
    given: VialView = quality.run(
        vials.administer, vial=vial, scan=scan_of(quality, vial), patient=patient, **details
    )
    return given


def datamatrix_of(
    quality: Quality, vial_code: str, *, product_code: str = "S1234", collection: str = "1"
) -> str:
    """The ISBT 128 Data Matrix on VIAL_CODE's label: its DIN, a product code with its
    division and collection type, and its lot's expiry."""
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        vial = uow.session.exec(select(Vial).where(col(Vial.code) == vial_code)).one()
        lot = uow.session.get(Lot, vial.lot_id)
        assert lot is not None
        return isbt128.compound_message(
            LotId.parse(lot.code).din,
            isbt128.ProductCode(product_code, collection, vial.division),
            lot.expires_at,
        )
