"""Shipments (issue 16, part 2): released vials travel to another site on record.

The lab is lot L1 of PT-0001, four vials released by rita, and a site setting naming two
sites. Each rule is broken here and must be refused: a vial packed without its scan, twice,
or issued while packed; a shipment sent empty, received unsent, received without every
vial scanned exactly once; a row edited by hand. A temperature excursion holds the lots,
a lot recalled on the way is recalled on receipt, a lost shipment loses its vials.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, NotPermitted, RuleViolation
from lims.services import bindings, lots, qc, reports, shipments, vials
from lims.services.vials import VialMismatch
from lims.timeutil import utcnow
from lims.views.shipments import ShipmentReceipt, ShipmentView
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import RESULTS_AT, Quality
from tests.support.shipments import SITES, set_sites, shipping
from tests.support.vials import add_lot, expire, give, scan_of, vial_ids

PATIENT = "PT-0001"


@pytest.fixture(name="shipping")
def shipping_lab(lab: Lab) -> Quality:
    return shipping(lab)


def create(quality: Quality, **values: Any) -> str:
    made: ShipmentView = quality.run(
        shipments.create_shipment, **{"to": "OR-1", "courier": "porter", **values}
    )
    return made.shipment_id


def add(quality: Quality, shipment: str, *packed: str) -> ShipmentView:
    view: ShipmentView | None = None
    for vial in packed:
        view = quality.run(
            shipments.add_vial, shipment=shipment, vial=vial, scan=scan_of(quality, vial)
        )
    assert view is not None
    return view


def dispatched(quality: Quality, *packed: str) -> str:
    shipment = create(quality)
    add(quality, shipment, *packed)
    quality.run(shipments.dispatch, shipment=shipment)
    return shipment


def receive(
    quality: Quality, shipment: str, *scanned: str, temperature_ok: str = "yes", **values: Any
) -> ShipmentReceipt:
    receipt: ShipmentReceipt = quality.run(
        shipments.receive,
        shipment=shipment,
        scans=[scan_of(quality, vial) for vial in scanned],
        temperature_ok=temperature_ok,
        **values,
    )
    return receipt


def status(quality: Quality, vial: str) -> str:
    shown: str = quality.read(vials.show_vial, vial=vial).status
    return shown


def issue(quality: Quality, vial: str) -> Any:
    return quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)


def _disagreement(quality: Quality) -> Any:
    verification = quality.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


def test_vials_travel_created_packed_dispatched_received_then_issued_and_given(
    shipping: Quality,
) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping, logger="TL-0042")
    packed = add(shipping, shipment, first, second)
    assert [vial.vial_id for vial in packed.packed] == [first, second]
    assert (packed.status, packed.site_name, packed.logger) == (
        "open",
        "Operating theatre 1",
        "TL-0042",
    )
    assert status(shipping, first) == "released"
    assert shipping.read(vials.show_vial, vial=first).shipment == shipment
    sent = shipping.run(shipments.dispatch, shipment=shipment)
    assert sent.status == "dispatched"
    assert [status(shipping, vial) for vial in (first, second)] == ["shipped", "shipped"]
    receipt = receive(shipping, shipment, second, first)
    assert (receipt.shipment.status, receipt.shipment.temperature_ok, receipt.deviations) == (
        "received",
        True,
        [],
    )
    assert [status(shipping, vial) for vial in (first, second)] == ["received", "received"]
    given = give(shipping, first, route="intraspinal")
    assert given.status == "administered"
    lot_vials = {v.vial_id: v for v in shipping.show().vials}
    assert (lot_vials[first].shipment, lot_vials[first].status) == (shipment, "administered")
    assert lot_vials[vial_ids(shipping.lot_id)[2]].shipment is None
    actions = shipping.audit_actions()
    for action in ("shipment.create", "shipment.add", "shipment.dispatch", "vial.shipped"):
        assert action in actions
    assert actions.count("vial.received") == 2
    assert _disagreement(shipping) is None
    assert [s.shipment_id for s in shipping.read(shipments.list_shipments)] == [shipment]
    [listed] = shipping.read(shipments.list_shipments, status="received")
    assert (listed.vials, listed.site_code) == (2, "OR-1")


# --- where to: the site setting `sites` -------------------------------------------------------


def test_a_site_is_one_the_setting_names_in_any_case_and_its_address_is_copied(
    shipping: Quality, lab: Lab
) -> None:
    shipment = create(shipping, to=" hosp-2 ")
    set_sites(lab, SITES[:1])
    lab.login("tom")
    shown = shipping.read(shipments.show_shipment, shipment=shipment.lower())
    assert (shown.site_code, shown.site_address) == ("HOSP-2", "2 Example Road")
    with pytest.raises(
        NotFound, match="no site HOSP-2 in the site setting sites, which names OR-1"
    ):
        create(shipping, to="HOSP-2")
    with pytest.raises(BadInput, match=r"^to: must be a site code"):
        create(shipping, to="OR 1")
    set_sites(lab, [])
    lab.login("tom")
    with pytest.raises(NotFound, match="names none yet"):
        create(shipping)


# --- packing -----------------------------------------------------------------------------------


def test_a_vial_is_packed_only_with_its_own_label_scanned_and_a_mismatch_is_on_record(
    shipping: Quality,
) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping)
    before = shipping.lab.audit_count()
    with pytest.raises(VialMismatch, match=f"the scan is of {second}, not of {first}"):
        shipping.run(
            shipments.add_vial, shipment=shipment, vial=first, scan=scan_of(shipping, second)
        )
    entries = shipping.scenario.audit_trail()[before:]
    assert [(e.action, e.entity_id) for e in entries] == [("shipment.add.refused", second)]
    with pytest.raises(VialMismatch, match=r"label of .* does not agree with its record"):
        shipping.run(
            shipments.add_vial,
            shipment=shipment,
            vial=first,
            scan=scan_of(shipping, first, patient="PT-0002"),
        )
    assert shipping.read(shipments.show_shipment, shipment=shipment).vials == []


def test_only_a_released_vial_of_a_lot_not_on_hold_is_packed(shipping: Quality, lab: Lab) -> None:
    quarantined = f"{add_lot(shipping, 'PT-0002')}-V01"
    shipment = create(shipping)
    with pytest.raises(VialMismatch, match="quarantine"):
        add(shipping, shipment, quarantined)
    lab.login("rita")
    shipping.run(lots.hold, lot=shipping.lot_id, password=PASSWORD, reason="incubator alarm")
    lab.login("tom")
    with pytest.raises(VialMismatch, match="on hold"):
        add(shipping, shipment, f"{shipping.lot_id}-V01")


def test_a_vial_is_packed_once_and_while_packed_goes_to_no_patient(shipping: Quality) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment, other = create(shipping), create(shipping)
    add(shipping, shipment, first)
    with pytest.raises(RuleViolation, match=f"vial {first} is already packed in this shipment"):
        add(shipping, shipment, first)
    with pytest.raises(RuleViolation, match=f"already packed in shipment {shipment}"):
        add(shipping, other, first)
    with pytest.raises(VialMismatch, match=f"packed in shipment {shipment}, not yet dispatched"):
        issue(shipping, first)
    with pytest.raises(RuleViolation, match=f"packed in shipment {shipment}"):
        shipping.run(vials.destroy, vial=first, reason="dropped")
    verdict = shipping.run(vials.verify, scan=scan_of(shipping, first), patient=PATIENT)
    assert not verdict.match
    assert issue(shipping, second).status == "issued"  # packing one vial holds no other


def test_a_vial_taken_out_stays_in_the_lab_and_may_be_packed_again(shipping: Quality) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping)
    add(shipping, shipment, first, second)
    with pytest.raises(BadInput, match=r"^reason: must not be empty"):
        shipping.run(shipments.remove_vial, shipment=shipment, vial=first, reason=" ")
    taken = shipping.run(
        shipments.remove_vial, shipment=shipment, vial=first, reason="wrong vial packed"
    )
    assert [vial.vial_id for vial in taken.packed] == [second]
    [out] = [vial for vial in taken.vials if vial.vial_id == first]
    assert (out.removed_by, out.remove_reason) == ("tom", "wrong vial packed")
    with pytest.raises(RuleViolation, match=f"vial {first} is not in shipment {shipment}"):
        shipping.run(shipments.remove_vial, shipment=shipment, vial=first, reason="again")
    assert shipping.read(vials.show_vial, vial=first).shipment is None
    repacked = add(shipping, shipment, first)
    assert sorted(vial.vial_id for vial in repacked.packed) == [first, second]
    assert _disagreement(shipping) is None
    shipping.run(shipments.remove_vial, shipment=shipment, vial=first, reason="wrong after all")
    assert issue(shipping, first).status == "issued"
    assert _disagreement(shipping) is None


def test_a_cancelled_shipment_sets_its_vials_free_and_takes_nothing_more(shipping: Quality) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping)
    add(shipping, shipment, first)
    cancelled = shipping.run(shipments.cancel, shipment=shipment, reason="surgery postponed")
    assert (cancelled.status, cancelled.end_reason) == ("cancelled", "surgery postponed")
    assert shipping.read(vials.show_vial, vial=first).shipment is None
    for refused, values in (
        (shipments.add_vial, {"vial": first, "scan": scan_of(shipping, first)}),
        (shipments.dispatch, {}),
        (shipments.cancel, {"reason": "twice"}),
    ):
        with pytest.raises(RuleViolation, match=f"shipment {shipment} is cancelled"):
            shipping.run(refused, shipment=shipment, **values)
    add(shipping, create(shipping), first)  # free to go in another


# --- dispatch -----------------------------------------------------------------------------------


def test_dispatch_sends_every_vial_packed_and_nothing_is_packed_or_taken_out_after(
    shipping: Quality,
) -> None:
    first, second, third, _ = vial_ids(shipping.lot_id)
    empty = create(shipping)
    with pytest.raises(RuleViolation, match=f"shipment {empty} is empty"):
        shipping.run(shipments.dispatch, shipment=empty)
    shipment = dispatched(shipping, first, second)
    with pytest.raises(RuleViolation, match="only an open shipment can be dispatched"):
        shipping.run(shipments.dispatch, shipment=shipment)
    with pytest.raises(RuleViolation, match="vials are added only before it is dispatched"):
        add(shipping, shipment, third)
    with pytest.raises(RuleViolation, match="vials are taken out only before it is dispatched"):
        shipping.run(shipments.remove_vial, shipment=shipment, vial=first, reason="late")
    with pytest.raises(RuleViolation, match="only a shipment not yet dispatched can be cancelled"):
        shipping.run(shipments.cancel, shipment=shipment, reason="late")
    # In transit a vial can only arrive or be lost.
    with pytest.raises(VialMismatch, match=f"{first} is shipped, not released or received"):
        issue(shipping, first)
    with pytest.raises(RuleViolation, match="it can no longer be destroyed"):
        shipping.run(vials.destroy, vial=first, reason="dropped")


def test_each_step_comes_after_the_one_before(shipping: Quality) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    made_at = utcnow() - timedelta(hours=2)
    shipment = create(shipping, at=made_at)
    add(shipping, shipment, first)
    with pytest.raises(BadInput, match=r"^at: must be after shipment .* was made"):
        shipping.run(shipments.dispatch, shipment=shipment, at=made_at - timedelta(minutes=1))
    with pytest.raises(BadInput, match=r"^at: must be after its last vial was packed"):
        shipping.run(shipments.dispatch, shipment=shipment, at=made_at + timedelta(minutes=1))
    sent_at = utcnow()
    shipping.run(shipments.dispatch, shipment=shipment, at=sent_at)
    with pytest.raises(BadInput, match=r"^at: must be after shipment .* was dispatched"):
        receive(shipping, shipment, first, at=sent_at - timedelta(seconds=1))
    with pytest.raises(BadInput, match=r"^at: must not be in the future"):
        receive(shipping, shipment, first, at=utcnow() + timedelta(hours=1))


def test_a_step_dated_long_ago_needs_its_late_reason_and_stays_marked(
    shipping: Quality, lab: Lab
) -> None:
    lab.set_site(records={"late_entry_hours": 24})
    lab.login("tom")
    two_days_ago = utcnow() - timedelta(days=2)
    with pytest.raises(BadInput, match=r"^late-reason: required"):
        create(shipping, at=two_days_ago)
    shipment = create(shipping, at=two_days_ago, late_reason="typed from the courier's sheet")
    shown = shipping.read(shipments.show_shipment, shipment=shipment)
    assert shown.late_entry
    assert [mark.action for mark in shown.late_entries] == ["shipment.create"]
    [listed] = shipping.read(shipments.list_shipments)
    assert listed.late_entry


def test_a_lot_put_on_hold_after_packing_keeps_its_vials_in_the_lab(
    shipping: Quality, lab: Lab
) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping)
    add(shipping, shipment, first)
    lab.login("rita")
    shipping.run(lots.hold, lot=shipping.lot_id, password=PASSWORD, reason="incubator alarm")
    lab.login("tom")
    with pytest.raises(RuleViolation, match=f"lot {shipping.lot_id} is on hold.*ship remove"):
        shipping.run(shipments.dispatch, shipment=shipment)
    assert status(shipping, first) == "released"


def test_a_lot_recalled_after_packing_keeps_its_vials_in_the_lab(
    shipping: Quality, lab: Lab
) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = create(shipping)
    add(shipping, shipment, first)
    lab.login("rita")
    shipping.run(lots.recall, lot=shipping.lot_id, password=PASSWORD, reason="late OOS")
    lab.login("tom")
    with pytest.raises(RuleViolation, match=f"vial {first} is recalled, not released: .*remove"):
        shipping.run(shipments.dispatch, shipment=shipment)
    assert status(shipping, first) == "recalled"


# --- receipt ------------------------------------------------------------------------------------


def test_receipt_needs_a_dispatched_shipment_and_every_vial_scanned_exactly_once(
    shipping: Quality,
) -> None:
    first, second, third, _ = vial_ids(shipping.lot_id)
    unsent = create(shipping)
    add(shipping, unsent, third)
    with pytest.raises(RuleViolation, match="only a dispatched shipment can be received"):
        receive(shipping, unsent, third)
    shipment = dispatched(shipping, first, second)
    with pytest.raises(RuleViolation, match=f"not scanned: {second}"):
        receive(shipping, shipment, first)
    with pytest.raises(RuleViolation, match=f"scanned more than once: {first}"):
        receive(shipping, shipment, first, first, second)
    with pytest.raises(BadInput, match=r"^scan: give --scan"):
        receive(shipping, shipment)
    with pytest.raises(BadInput, match=f"^{shipments.TEMPERATURE_FIELD}: must be one of yes, no"):
        receive(shipping, shipment, first, second, temperature_ok="maybe")
    assert [status(shipping, vial) for vial in (first, second)] == ["shipped", "shipped"]
    assert shipping.read(shipments.show_shipment, shipment=shipment).status == "dispatched"


def test_a_scan_of_a_vial_not_in_the_shipment_or_of_a_wrong_label_is_an_audited_mismatch(
    shipping: Quality,
) -> None:
    first, second, third, _ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first, second)
    before = shipping.lab.audit_count()
    with pytest.raises(shipments.ShipmentMismatch, match=f"{third}: vial {third} is not in"):
        receive(shipping, shipment, first, second, third)
    wrong_label = scan_of(shipping, second, patient="PT-0002")
    with pytest.raises(shipments.ShipmentMismatch, match="does not agree with its record"):
        shipping.run(
            shipments.receive,
            shipment=shipment,
            scans=[scan_of(shipping, first), wrong_label],
            temperature_ok="yes",
        )
    entries = shipping.scenario.audit_trail()[before:]
    assert [(e.action, e.entity_id) for e in entries] == [
        ("shipment.receive.refused", third),
        ("shipment.receive.refused", second),
    ]
    assert [status(shipping, vial) for vial in (first, second)] == ["shipped", "shipped"]


def test_a_temperature_excursion_opens_a_deviation_on_each_lot_which_holds_it(
    shipping: Quality, lab: Lab
) -> None:
    other = add_lot(shipping, PATIENT)
    kept, shipping.lot_id = shipping.lot_id, other
    shipping.record_passing()
    shipping.release()
    shipping.lot_id = kept
    lab.login("tom")
    first, second = f"{kept}-V01", f"{other}-V01"
    shipment = dispatched(shipping, first, second)
    receipt = receive(shipping, shipment, first, second, temperature_ok="no")
    assert receipt.shipment.temperature_ok is False
    assert sorted(d.subject for d in receipt.deviations) == sorted([kept, other])
    assert all(d.kind == "shipment" and shipment in d.description for d in receipt.deviations)
    for lot in (kept, other):
        detail = shipping.read(lots.show_lot, lot=lot)
        assert detail.on_hold, lot
    with pytest.raises(VialMismatch, match=f"lot {kept} is on hold: deviation"):
        issue(shipping, first)
    assert status(shipping, first) == "received"


def test_a_lot_held_on_the_way_is_received_and_its_vials_wait(shipping: Quality, lab: Lab) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first)
    lab.login("rita")
    shipping.run(lots.hold, lot=shipping.lot_id, password=PASSWORD, reason="seal broken")
    lab.login("tom")
    receive(shipping, shipment, first)
    assert status(shipping, first) == "received"
    with pytest.raises(VialMismatch, match="on hold"):
        issue(shipping, first)


def test_a_lot_recalled_on_the_way_has_its_vials_received_as_recalled(
    shipping: Quality, lab: Lab
) -> None:
    first, second, third, _ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first, second)
    lab.login("rita")
    shipping.run(lots.recall, lot=shipping.lot_id, password=PASSWORD, reason="late failure")
    lab.login("tom")
    # The recall reached the vials in the lab, not those on the way.
    assert [status(shipping, vial) for vial in (first, third)] == ["shipped", "recalled"]
    receive(shipping, shipment, first, second)
    assert [status(shipping, vial) for vial in (first, second)] == ["recalled", "recalled"]
    trail = [(e.action, e.entity_id) for e in shipping.scenario.audit_trail()]
    assert trail.index(("vial.received", first)) < trail.index(("vial.recall", first))
    assert _disagreement(shipping) is None


def test_the_recall_notice_names_the_vials_in_transit_and_where_they_are_going(
    shipping: Quality, lab: Lab, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first)
    lab.login("rita")
    shipping.run(lots.recall, lot=shipping.lot_id, password=PASSWORD, reason="late failure")
    out = tmp_path / "recall.pdf"
    shipping.run(reports.write_recall_notice, lot=shipping.lot_id, out=out).files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert f"{first} shipped" in text
    assert f"{second} recalled" in text
    assert (
        f"Vial {first} is in transit ({shipment} to OR-1): it is recalled when the shipment is "
        "received, and the site receiving it must not give it." in text
    )


def test_a_vial_in_transit_past_its_expiry_is_shown_shipped_not_expired(
    shipping: Quality,
) -> None:
    """What needs doing with it is to receive it or report it lost: its state says so."""
    first, second, *_ = vial_ids(shipping.lot_id)
    dispatched(shipping, first)
    expire(shipping, shipping.lot_id)
    assert [status(shipping, vial) for vial in (first, second)] == ["shipped", "expired"]


def test_a_lost_shipment_loses_its_vials(shipping: Quality) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    unsent = create(shipping)
    with pytest.raises(RuleViolation, match="only a dispatched shipment can be lost"):
        shipping.run(shipments.report_lost, shipment=unsent, reason="never left")
    shipment = dispatched(shipping, first, second)
    lost = shipping.run(shipments.report_lost, shipment=shipment, reason="courier lost the box")
    assert (lost.status, lost.end_reason, lost.ended_by) == ("lost", "courier lost the box", "tom")
    assert [status(shipping, vial) for vial in (first, second)] == ["lost", "lost"]
    with pytest.raises(RuleViolation, match="only a dispatched shipment can be received"):
        receive(shipping, shipment, first, second)
    assert _disagreement(shipping) is None


def test_the_logger_file_is_kept_once_with_its_sha256(shipping: Quality, tmp_path: Path) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    logger = tmp_path / "TL-0042.csv"
    logger.write_text("time,temperature_c\n2026-12-01T08:00,4.1\n", encoding="utf-8")
    shipment = dispatched(shipping, first)
    receive(shipping, shipment, first, logger_file=logger)
    kept = shipping.read(shipments.show_shipment, shipment=shipment).logger_file
    assert kept is not None
    assert (kept.file_name, kept.size_bytes) == ("TL-0042.csv", logger.stat().st_size)
    other = dispatched(shipping, second)
    with pytest.raises(RuleViolation, match=f"was kept with shipment {shipment}"):
        receive(shipping, other, second, logger_file=logger)
    with pytest.raises(NotFound, match="no file"):
        receive(shipping, other, second, logger_file=tmp_path / "missing.csv")
    with pytest.raises(BadInput, match=r"^logger-file: .* is not a regular file"):
        receive(shipping, other, second, logger_file=tmp_path)
    assert _disagreement(shipping) is None
    shipping.sql("UPDATE logger_files SET content = :changed", changed=b"time,temperature_c\n")
    found = _disagreement(shipping)
    assert (found.table, found.column) == ("logger_files", None)


def test_the_batch_record_names_each_shipment_of_the_lots_vials(
    shipping: Quality, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    first, *_ = vial_ids(shipping.lot_id)
    logger = tmp_path / "TL-0042.csv"
    logger.write_text("time,temperature_c\n", encoding="utf-8")
    shipment = dispatched(shipping, first)
    receive(shipping, shipment, first, logger_file=logger)
    out = tmp_path / "batch.pdf"
    report = shipping.run(reports.write_batch_record, lot=shipping.lot_id, out=out)
    report.files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    kept = shipping.read(shipments.show_shipment, shipment=shipment).logger_file
    assert kept is not None
    assert "Shipments" in text
    for expected in (f"{shipment} (received)", "OR-1: Operating theatre 1", "TL-0042.csv"):
        assert expected in text, expected
    assert kept.sha256 in text.replace(" ", "")
    assert f"{first} (received)" in text


# --- who may, and rows edited by hand -----------------------------------------------------------


def test_admin_ships_nothing_and_anyone_reads(shipping: Quality, lab: Lab) -> None:
    shipment = create(shipping)
    lab.login("admin")
    with pytest.raises(NotPermitted):
        create(shipping)
    with pytest.raises(NotPermitted):
        shipping.run(shipments.cancel, shipment=shipment, reason="mine")
    assert shipping.read(shipments.show_shipment, shipment=shipment).status == "open"
    lab.login("quinn")  # QA records bench work too
    add(shipping, shipment, f"{shipping.lot_id}-V01")


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE shipment_vials SET removed_at = added_at, removed_by = 'tom'",
        "DELETE FROM shipment_vials",
        "UPDATE shipments SET status = 'cancelled'",
    ],
)
def test_a_vial_set_free_of_its_shipment_by_hand_is_still_refused(
    shipping: Quality, edit: str
) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    add(shipping, create(shipping), first)
    shipping.sql(edit)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}"):
        issue(shipping, first)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}"):
        shipping.run(vials.destroy, vial=first, reason="dropped")
    assert _disagreement(shipping) is not None


@pytest.mark.parametrize(
    ("edit", "table", "column"),
    [
        ("UPDATE shipments SET temperature_ok = TRUE", "shipments", "temperature_ok"),
        ("UPDATE shipments SET site_code = 'HOSP-2'", "shipments", "site_code"),
        ("UPDATE shipments SET site_address = '9 Elsewhere Lane'", "shipments", "site_address"),
        ("UPDATE shipments SET site_name = 'Example General'", "shipments", "site_name"),
        ("UPDATE shipments SET courier = 'someone else'", "shipments", "courier"),
        ("UPDATE shipments SET logger = 'TL-9999'", "shipments", "logger"),
        ("UPDATE shipments SET received_at = dispatched_at", "shipments", "received_at"),
        (
            "UPDATE shipment_vials SET shipment_id = shipment_id + 1",
            "shipment_vials",
            "shipment_id",
        ),
    ],
)
def test_a_shipment_rewritten_by_hand_disagrees_with_the_trail(
    shipping: Quality, edit: str, table: str, column: str
) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first)
    create(shipping)  # a second shipment, for a row moved into it
    receive(shipping, shipment, first, temperature_ok="no")
    assert _disagreement(shipping) is None
    shipping.sql(edit)
    found = _disagreement(shipping)
    assert (found.table, found.column) == (table, column)


def test_a_receipt_relies_on_its_rows_agreeing_with_the_trail(shipping: Quality) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = dispatched(shipping, first, second)
    shipping.sql("UPDATE shipments SET dispatched_at = created_at")
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}shipments {shipment}"):
        receive(shipping, shipment, first, second)


def test_a_qc_failure_after_receipt_holds_the_received_vials(shipping: Quality) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    receive(shipping, dispatched(shipping, first), first)
    shipping.run(
        qc.record_result,
        lot=shipping.lot_id,
        test="endotoxin",
        value="9",
        at=RESULTS_AT + timedelta(days=1),
        reason="retained sample retested",
    )
    with pytest.raises(VialMismatch, match="on hold"):
        issue(shipping, first)
