"""A lot's vehicle: the patient's own CSF, received as a donation with a DIN of its own
(`aspirate receive --material csf`) and drawn into lots at formulation (`lot formulate
--vehicle-din DIN --vehicle-ml V`).

A donation may be drawn into a lot only if it is CSF, of the lot's patient, received before
the formulation and no older than vehicle.max_age_hours at it (from its collection), with no
deviation on it left open, and with the volume asked still left. What is left is the volume
received less what the lots naming it drew. Those rows are relied on only once they agree
with the trail: every draw states on the donation which lots draw on it (`drawn_by`, bound to
the lots' rows in lims.services.bindings) and on each lot its DIN and mL, so a lot moved on
or off the donation by hand, or its mL or the volume received changed, is refused here,
saving nothing. Writers are serialised (lims.db), and the check runs in the formulation's
own transaction, so two formulations at once cannot both draw the last mL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from lims import audit
from lims.domain.states import DEVIATION
from lims.errors import RuleViolation
from lims.models import CSF, Aspirate, Deviation, Lot, Patient
from lims.services import bindings
from lims.services.aspirates import din_of, draws, volume_left
from lims.timeutil import after, show_time
from lims.uow import UnitOfWork
from lims.views.bench import VehicleDraw

DRAW = "aspirate.draw"  # a lot drew on the donation at formulation
DRAW_CORRECTED = "aspirate.draw_corrected"  # a lot correction moved or changed its draw
SMALLEST_ML = 0.01  # what a syringe measures


def require_agreement(session: Session, donation: Aspirate) -> list[VehicleDraw]:
    """The lots drawing on the donation, once the donation's row and theirs are what the
    trail says: what is left is counted from them, and a correction states them anew."""
    drawers = draws(session, [donation.id]).get(donation.id or 0, [])
    bindings.require_agreement(
        session, [("aspirate", donation.din), *(("lot", draw.lot_id) for draw in drawers)]
    )
    return drawers


def require_drawable(
    uow: UnitOfWork,
    donation: Aspirate,
    *,
    patient: Patient,
    formulated_at: datetime,
    wanted_ml: float,
    lot: str | None = None,
    at_field: str | None = None,
) -> None:
    """Refuse, saving nothing, unless `wanted_ml` of the donation may suspend the cells of a
    lot of `patient` formulated at `formulated_at`. `lot`, being corrected, gives back what
    it drew before; `at_field` names the option a time before the donation's receipt was
    typed in (a formulation's --at), which is then bad input rather than a refusal."""
    session, settings = uow.session, uow.settings
    donation_din = din_of(donation).display
    drawers = require_agreement(session, donation)
    if donation.material != CSF:
        raise RuleViolation(
            f"aspirate {donation_din} is bone marrow, not CSF: a lot is suspended in a CSF "
            "donation of its patient (lims aspirate receive --material csf)"
        )
    if donation.patient_id != patient.id:
        owner = session.get(Patient, donation.patient_id)
        assert owner is not None
        raise RuleViolation(
            f"CSF {donation_din} is patient {owner.code}'s, not {patient.code}'s: a lot is "
            "suspended in its own patient's CSF"
        )
    zone = settings.tz
    if at_field is not None:
        after(at_field, formulated_at, donation.received_at, f"receipt of CSF {donation_din}", zone)
    elif formulated_at <= donation.received_at:
        raise RuleViolation(
            f"CSF {donation_din} was received {show_time(donation.received_at, zone)}, not "
            f"before the formulation {show_time(formulated_at, zone)}"
        )
    limit = settings.vehicle.max_age_hours
    age = formulated_at - donation.collected_at
    if age > timedelta(hours=limit):
        raise RuleViolation(
            f"CSF {donation_din} was collected {show_time(donation.collected_at, zone)}, "
            f"{age.total_seconds() / 3600:.1f} h before the formulation: more than {limit:g} h "
            "(vehicle.max_age_hours)"
        )
    pending = session.exec(
        select(Deviation)
        .where(
            col(Deviation.aspirate_id) == donation.id,
            col(Deviation.status).in_(DEVIATION.pending_states()),
        )
        .order_by(col(Deviation.id))
    ).first()
    if pending is not None:
        raise RuleViolation(
            f"CSF {donation_din} has deviation {pending.id} open ({pending.description}): "
            "QA closes it before the CSF suspends a product"
        )
    others = [draw for draw in drawers if draw.lot_id != lot]
    left = volume_left(donation.volume_ml, others)
    if wanted_ml > left:
        drawn = "".join(f", {draw.vehicle_ml:g} mL by {draw.lot_id}" for draw in others)
        raise RuleViolation(
            f"CSF {donation_din} has {left:g} mL left ({donation.volume_ml:g} mL received"
            f"{drawn}), less than the {wanted_ml:g} mL asked"
        )


def record_draw(
    session: Session,
    donation: Aspirate,
    lot: Lot,
    *,
    by: str,
    reason: str | None = None,
) -> None:
    """State on the donation the lots that now draw on it and what is left, after `lot` drew
    on it or, corrected (`reason`), moved its draw on or off it or changed it. The lot's row
    is saved first: the statement is what the rows now hold."""
    session.flush()
    drawers = draws(session, [donation.id]).get(donation.id or 0, [])
    own = next((draw.vehicle_ml for draw in drawers if draw.lot_id == lot.code), None)
    audit.record_about(
        session,
        ("aspirate", donation.din),
        DRAW if reason is None else DRAW_CORRECTED,
        by=by,
        new={
            "lot": lot.code,
            "vehicle_ml": own,
            "drawn_by": sorted(draw.lot_id for draw in drawers),
            "volume_left_ml": volume_left(donation.volume_ml, drawers),
        },
        reason=reason,
    )
