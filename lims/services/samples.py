"""Retained samples of a lot (21 CFR 1271.260): kept in box positions for testing later,
removed for testing or disposal.

Samples are retained of a lot in quarantine, released or recalled (an investigation of a
recalled lot tests them); a rejected lot is not kept (states.LOT, retain_samples). Keeping
samples is not a manufacturing step: a patient's withdrawn consent does not stop it, as
their materials must be accounted for to the end (lims.services.consent).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, func, select

from lims.domain import ids, quantities, storage
from lims.domain.states import LOT, RETAINED_SAMPLE
from lims.models import LONG_TEXT_MAX, RetainedSample
from lims.services import bindings, late_entries, lookup, placement, records
from lims.services import storage as storage_rules
from lims.services.transitions import change_status
from lims.timeutil import after, past_moment, utcnow
from lims.uow import UnitOfWork
from lims.validation import free_text
from lims.views.storage import Retention, StoredItem

RETAIN_AT_ONCE_MAX = 100  # more is a typing error: a lot's retained samples are a handful


def retain_samples(
    uow: UnitOfWork,
    *,
    lot: str,
    count: str | int,
    into: str,
    at: str | datetime | None = None,
    late_reason: str | None = None,
) -> Retention:
    """Keep `count` samples of a lot, numbered on from its earlier ones, in a box: from the
    position given on in row-major order (each free), or in its first free positions."""
    session, settings = uow.session, uow.settings
    actor = uow.require("record_bench_work")
    number = quantities.whole_number("count", count, low=1, high=RETAIN_AT_ONCE_MAX)
    path, start = storage.split_place(into, "into")
    now = utcnow()
    retained_at = past_moment("at", at, settings.tz, now)
    found = lookup.lot(session, lot)
    box = lookup.storage_location(session, path, "into")
    # The lot's state and the box's grid decide what follows: they must be what the trail says.
    bindings.require_agreement(
        session, [("lot", found.code), (storage_rules.ENTITY_TYPE, box.path)]
    )
    rows, columns = placement.require_box(box, "into")
    if start is not None:
        storage.position(start, rows, columns, "into")
    after("at", retained_at, found.formulated_at, f"lot {found.code}'s formulation", settings.tz)
    late = late_entries.reason_for(uow, retained_at, now, late_reason)
    LOT.check("retain_samples", code=found.code, status=found.status)
    last = session.exec(
        select(func.max(RetainedSample.number)).where(col(RetainedSample.lot_id) == found.id)
    ).one()
    codes = ids.retained_sample_ids(ids.LotId.parse(found.code), last, number)
    places = placement.positions(session, box, start, number, "into")
    assert found.id is not None
    samples = []
    for code, place in zip(codes, places, strict=True):
        sample = RetainedSample(
            code=code.code, lot_id=found.id, number=code.number, retained_at=retained_at
        )
        new = {
            "lot": found.code,
            "number": code.number,
            "status": sample.status,
            "retained_at": retained_at,
            "position": storage.place_label(box.path, place),
        }
        records.create(
            session,
            sample,
            "sample.retain",
            by=actor,
            at=now,
            new=new,
            late_reason=late,
            stated_at=retained_at,
        )
        samples.append(sample)
    placement.place(session, box, samples, places, by=actor.username, when=retained_at)
    retained = col(RetainedSample.id).in_([sample.id for sample in samples])
    return Retention(lot_id=found.code, samples=storage_rules.items(session, samples=retained))


def remove_sample(uow: UnitOfWork, *, sample: str, reason: str) -> StoredItem:
    """Take a retained sample out of storage for testing or disposal: its position is free."""
    session = uow.session
    actor = uow.require("record_bench_work")
    free_text("reason", reason, max_length=LONG_TEXT_MAX, multiline=True)
    found = lookup.retained_sample(session, sample)
    bindings.require_agreement(session, [(RETAINED_SAMPLE.entity_type, found.code)])
    RETAINED_SAMPLE.check("remove", code=found.code, status=found.status)
    was = placement.label(placement.where(session, found))
    found.ended_at, found.ended_by, found.end_reason = utcnow(), actor.username, reason
    change_status(
        session,
        RETAINED_SAMPLE,
        found,
        "remove",
        by=actor.username,
        new={"position": None, "removed_from": was},
        reason=reason,
    )
    placement.vacate(session, found)
    return storage_rules.item_view(session, found)


def list_samples(uow: UnitOfWork, *, lot: str) -> list[StoredItem]:
    """Every retained sample of a lot, stored or removed."""
    session = uow.session
    uow.require("read_records")
    return storage_rules.samples_of_lot(session, lookup.lot(session, lot))
