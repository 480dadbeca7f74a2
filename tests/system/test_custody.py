"""Issue 16's "done when", from the shell, on whichever backend the suite runs on: a lot is
refused another patient's CSF and suspended in its patient's own; its vials travel in two
shipments (create, add, dispatch, receive), one of them through a temperature excursion that
holds the lot until QA closes its deviation, then are issued and administered at the site;
`lims trace` from the marrow's DIN and from the last vial gives the same tree.

tom (technician) works at the bench and ships; rita releases; quinn closes the deviation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tests.support.bench import NO_REAGENTS, NOW
from tests.support.cli import csf_vehicle, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import LOT_PASSAGES, Quality
from tests.support.shipments import SITES, set_sites
from tests.support.vials import scan_of, vial_ids

PATIENT, OTHER = "PT-0001", "PT-0002"
FORMULATED = NOW - timedelta(hours=6)


def _signed(lab: Lab, user: str, *args: str) -> dict[str, Any]:
    lab.login(user)
    return dict(ok(*args, "--password-stdin", input=PASSWORD + "\n"))


def _formulated_in_own_csf(quality: Quality) -> str:
    """Refused the other patient's CSF, then formulated in the patient's own: the lot."""
    quality.lab.login("tom")
    quality.patient(OTHER)
    culture = quality.scenario.primary_culture(PATIENT, **NO_REAGENTS).summary.culture_id
    for values in LOT_PASSAGES:
        quality.passage(culture, **values)
    formulation = (
        *("lot", "formulate", culture, "--harvested", "1.6e8", "--viability", "93"),
        *("--vials", "3", "--cells-per-vial", "4e7", "--volume-ml", "2"),
        *("--at", FORMULATED.isoformat()),
    )
    theirs = csf_vehicle(OTHER, FORMULATED, vehicle_ml="6")
    refused(invoke(*formulation, *theirs), 1, f"patient {OTHER}'s", f"not {PATIENT}'s")
    own = csf_vehicle(PATIENT, FORMULATED, vehicle_ml="6")
    formulated = ok(*formulation, *own)
    assert (formulated["vehicle_din"], formulated["vehicle_ml"]) == (own[1], 6)
    return str(formulated["lot_id"])


def _shipped(quality: Quality, vials: list[str], temperature_ok: str) -> dict[str, Any]:
    """The vials packed, dispatched and received at OR-1, each label scanned."""
    made = ok("ship", "create", "--to", "OR-1", "--courier", "hospital porter")
    shipment = made["shipment_id"]
    for vial in vials:
        ok("ship", "add", shipment, vial, "--scan", scan_of(quality, vial))
    assert ok("ship", "dispatch", shipment)["status"] == "dispatched"
    scans = [option for vial in vials for option in ("--scan", scan_of(quality, vial))]
    received = ok("ship", "receive", shipment, *scans, "--temperature-ok", temperature_ok)
    assert received["status"] == "received"
    return dict(received)


def test_a_lot_in_its_patients_csf_travels_is_held_by_an_excursion_and_is_given(
    lab: Lab,
) -> None:
    quality = Quality(lab)
    set_sites(lab, SITES)
    lot = _formulated_in_own_csf(quality)
    quality.scenario.record_qc(lot, at=FORMULATED + timedelta(hours=1))
    _signed(lab, "rita", "lot", "release", lot)
    lab.login("tom")
    first, second, last = vial_ids(lot, 3)

    warm = _shipped(quality, [first, second], temperature_ok="no")
    [excursion] = warm["deviations"]
    shown = ok("lot", "show", lot)
    assert shown["on_hold"] is True
    statuses = [v["status"] for v in ok("vial", "list", lot)]
    assert statuses == ["received", "received", "released"]
    refused(
        invoke("vial", "issue", first, "--patient", PATIENT, "--scan", scan_of(quality, first)),
        1,
    )
    _signed(
        lab,
        "quinn",
        *("deviation", "close", str(excursion["deviation_id"])),
        *("--resolution", "logger file reviewed: 9 min at 9 °C, within the product's limits"),
    )
    lab.login("tom")
    assert ok("lot", "show", lot)["on_hold"] is False

    _shipped(quality, [last], temperature_ok="yes")
    for vial in (first, last):
        scan = scan_of(quality, vial)
        assert ok("vial", "issue", vial, "--patient", PATIENT, "--scan", scan)["status"] == (
            "issued"
        )
        given = ok("vial", "administer", vial, "--patient", PATIENT, "--scan", scan)
        assert given["status"] == "administered"

    din = lot.split("-")[0]
    from_donation, from_vial = ok("trace", din), ok("trace", last)
    assert from_donation == from_vial
    assert json.dumps(from_donation).count('"kind": "shipment"') == 2
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
