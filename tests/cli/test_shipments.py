"""Shipments (issue 16, part 2) through the CLI: the commands' wiring, exit codes and JSON
keys, and the site setting `sites` they ship to.

The lab is tests.support.shipments: lot L1 of PT-0001 released (four vials), sites OR-1 and
HOSP-2, tom (technician) logged in. The rules themselves are tested through the services
(tests/services/test_shipments.py); here each command is run as a user types it.

Exit codes: 0 ok, 1 a rule (a MISMATCH, an empty or undispatched shipment, a vial packed
twice), 2 bad input, 3 not found (a shipment, a site), 4 not permitted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import Invocation, invoke, ok, plain, refused
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.shipments import SITES, shipping
from tests.support.vials import datamatrix_of, scan_of, vial_ids

PATIENT = "PT-0001"
SHIPMENT_KEYS = {
    "shipment_id",
    "status",
    "site_code",
    "site_name",
    "site_address",
    "courier",
    "logger",
    "created_at",
    "created_by",
    "dispatched_at",
    "dispatched_by",
    "received_at",
    "received_by",
    "temperature_ok",
    "ended_at",
    "ended_by",
    "end_reason",
    "logger_file",
    "vials",
    "late_entry",
    "late_entries",
}
PACKED_KEYS = {
    "vial_id",
    "lot_id",
    "patient",
    "status",
    "added_at",
    "added_by",
    "removed_at",
    "removed_by",
    "remove_reason",
}
LIST_KEYS = {
    "shipment_id",
    "status",
    "site_code",
    "site_name",
    "courier",
    "logger",
    "vials",
    "created_at",
    "dispatched_at",
    "received_at",
    "temperature_ok",
    "late_entry",
}


@pytest.fixture(name="shipping")
def shipping_lab(lab: Lab) -> Quality:
    return shipping(lab)


def create(*extra: str) -> str:
    made = ok("ship", "create", "--to", "OR-1", "--courier", "porter", *extra)
    return str(made["shipment_id"])


def add(quality: Quality, shipment: str, vial: str) -> Invocation:
    return invoke("ship", "add", shipment, vial, "--scan", scan_of(quality, vial))


def receive(quality: Quality, shipment: str, *vials: str, ok_: str = "yes") -> Invocation:
    scans = [word for vial in vials for word in ("--scan", scan_of(quality, vial))]
    return invoke("ship", "receive", shipment, *scans, "--temperature-ok", ok_, "--json")


def test_a_shipment_from_creation_to_receipt_prints_its_keys(
    shipping: Quality, tmp_path: Path
) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    made = ok("ship", "create", "--to", "or-1", "--courier", "porter", "--logger", "TL-0042")
    assert set(made) == SHIPMENT_KEYS
    assert (made["shipment_id"], made["status"], made["site_code"]) == (
        "SHP-000001",
        "open",
        "OR-1",
    )
    shipment = made["shipment_id"]
    for vial in (first, second):
        packed = add(shipping, shipment, vial)
        assert packed.exit_code == 0, packed.stderr
    shown = ok("ship", "show", shipment)
    assert set(shown) == SHIPMENT_KEYS
    assert [set(vial) for vial in shown["vials"]] == [PACKED_KEYS, PACKED_KEYS]
    assert ok("vial", "show", first)["shipment"] == shipment
    sent = ok("ship", "dispatch", shipment)
    assert (sent["status"], sent["dispatched_by"]) == ("dispatched", "tom")
    logger = tmp_path / "TL-0042.csv"
    logger.write_text("time,temperature_c\n2026-12-01T08:00,4.1\n", encoding="utf-8")
    scans = [word for vial in (first, second) for word in ("--scan", scan_of(shipping, vial))]
    receipt = ok(
        "ship", "receive", shipment, *scans, "--temperature-ok", "yes", "--logger-file", str(logger)
    )
    assert set(receipt) == SHIPMENT_KEYS | {"deviations"}
    assert (receipt["status"], receipt["temperature_ok"], receipt["deviations"]) == (
        "received",
        True,
        [],
    )
    assert set(receipt["logger_file"]) == {
        "file_name",
        "size_bytes",
        "sha256",
        "recorded_at",
        "recorded_by",
    }
    assert receipt["logger_file"]["file_name"] == "TL-0042.csv"
    [listed] = ok("ship", "list")
    assert set(listed) == LIST_KEYS
    assert (listed["vials"], listed["status"]) == (2, "received")
    assert ok("ship", "list", "--status", "open") == []
    [vial_state] = [
        v for v in ok("lot", "show", shipping.lot_id)["vial_states"] if v["vial_id"] == first
    ]
    assert (vial_state["status"], vial_state["shipment"]) == ("received", shipment)
    table = plain(invoke("ship", "show", shipment).stdout)
    for words in ("Shipment SHP-000001", "OR-1: Operating theatre 1", "TL-0042.csv", "in range"):
        assert words in table, words
    issued = invoke(
        "vial", "issue", first, "--patient", PATIENT, "--scan", scan_of(shipping, first)
    )
    assert issued.exit_code == 0, issued.stderr


def test_an_excursion_prints_the_deviations_it_opened(shipping: Quality) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = create()
    assert add(shipping, shipment, first).exit_code == 0
    ok("ship", "dispatch", shipment)
    scanned = scan_of(shipping, first)
    printed = invoke("ship", "receive", shipment, "--scan", scanned, "--temperature-ok", "no")
    assert printed.exit_code == 0, printed.stderr
    assert f"DEVIATION 1 opened on lot {shipping.lot_id}" in plain(printed.stdout)
    assert "OUT OF RANGE" in printed.stdout
    [deviation] = ok("deviation", "list", "--open")
    assert (deviation["kind"], deviation["subject"]) == ("shipment", shipping.lot_id)


def test_refusals_exit_with_their_codes(shipping: Quality) -> None:
    first, second, *_ = vial_ids(shipping.lot_id)
    refused(invoke("ship", "show", "SHP-999999"), 3, "no shipment SHP-999999")
    refused(invoke("ship", "show", "SHP-1"), 2, "shipment: must be a shipment id such as")
    refused(
        invoke("ship", "create", "--to", "OR-9", "--courier", "porter"),
        3,
        "no site OR-9",
        "OR-1, HOSP-2",
    )
    refused(invoke("ship", "create", "--to", "OR 9", "--courier", "porter"), 2, "to: must be")
    refused(invoke("ship", "list", "--status", "shipped"), 2, "status: must be one of open")
    shipment = create()
    refused(invoke("ship", "dispatch", shipment), 1, f"shipment {shipment} is empty")
    wrong = invoke("ship", "add", shipment, first, "--scan", scan_of(shipping, second))
    refused(wrong, 1, "MISMATCH", f"the scan is of {second}, not of {first}")
    assert add(shipping, shipment, first).exit_code == 0
    refused(add(shipping, shipment, first), 1, "already packed in this shipment")
    packed = invoke(
        "vial", "issue", first, "--patient", PATIENT, "--scan", scan_of(shipping, first)
    )
    refused(packed, 1, f"packed in shipment {shipment}")
    refused(receive(shipping, shipment, first), 1, "only a dispatched shipment can be received")
    refused(
        invoke(
            "ship",
            "receive",
            shipment,
            "--scan",
            scan_of(shipping, first),
            "--temperature-ok",
            "maybe",
        ),
        2,
        "temperature-ok: must be one of yes, no",
    )
    refused(invoke("ship", "lost", shipment, "--reason", "gone"), 1, "only a dispatched shipment")
    ok("ship", "dispatch", shipment)
    refused(receive(shipping, shipment, second), 1, "MISMATCH", f"vial {second} is not in")
    refused(
        invoke("ship", "cancel", shipment, "--reason", "late"),
        1,
        "only a shipment not yet dispatched can be cancelled",
    )
    lost = ok("ship", "lost", shipment, "--reason", "courier lost the box")
    assert (lost["status"], lost["end_reason"]) == ("lost", "courier lost the box")
    assert ok("vial", "show", first)["status"] == "lost"


def test_a_wrong_vial_is_taken_out_and_a_shipment_cancelled(shipping: Quality) -> None:
    first, *_ = vial_ids(shipping.lot_id)
    shipment = create()
    assert add(shipping, shipment, first).exit_code == 0
    taken = ok("ship", "remove", shipment, first, "--reason", "wrong vial packed")
    [vial] = taken["vials"]
    assert (vial["vial_id"], vial["remove_reason"]) == (first, "wrong vial packed")
    cancelled = ok("ship", "cancel", shipment, "--reason", "surgery postponed")
    assert (cancelled["status"], cancelled["ended_by"]) == ("cancelled", "tom")
    assert ok("vial", "show", first)["shipment"] is None


# --- the site setting `sites` -------------------------------------------------------------------


def site_set(value: str) -> Invocation:
    return invoke("site", "set", "sites", value, "--reason", "shipping SOP rev 2", "--json")


def test_an_admin_sets_the_sites_whole_and_every_view_shows_them(lab: Lab) -> None:
    lab.login("admin")
    changed = site_set(json.dumps(SITES))
    assert changed.exit_code == 0, changed.stderr
    assert json.loads(changed.stdout)["settings"]["sites"] == SITES
    assert ok("site", "show")["settings"]["sites"] == SITES
    assert ok("config", "show")["settings"]["sites"] == {
        "value": SITES,
        "source": "site record, version 2",
    }
    [entry] = [e for e in ok("audit", "log") if e["action"] == "site.set" and e["old"]]
    assert (entry["old"], entry["new"]) == ({"sites": []}, {"sites": SITES})
    assert "OR-1 — Operating theatre 1 — Neurosurgery, 1 Example St" in plain(
        invoke("site", "show").stdout
    )


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("junk", ("sites: must be a JSON list",)),
        ('{"code": "OR-1"}', ("sites: must be a JSON list",)),
        ('[{"code": "or 1", "name": "x", "address": "y"}]', ("sites: item 1, code", "or 1")),
        ('[{"code": "OR-1", "name": "x"}]', ("sites: item 1, address: Field required",)),
        ('[{"code": "OR-1", "name": "x", "address": "y", "fax": "1"}]', ("item 1, fax: unknown",)),
        (f'[{{"code": "{"A" * 17}", "name": "x", "address": "y"}}]', ("item 1, code",)),
        ('["OR-1"]', ("sites: item 1",)),
        (
            '[{"code": "OR-1", "name": "x", "address": "y"}, '
            '{"code": "OR-1", "name": "z", "address": "w"}]',
            ("sites: sites must not repeat a code",),
        ),
        ("[]", ("sites: is already [] in site settings version 1",)),
    ],
)
def test_bad_sites_are_refused_naming_the_key(lab: Lab, value: str, words: tuple[str, ...]) -> None:
    lab.login("admin")
    refused(site_set(value), 2, *words)
    assert ok("site", "show")["version"] == 1


def test_a_site_is_set_whole_not_key_by_key(lab: Lab) -> None:
    lab.login("admin")
    refused(
        invoke("site", "set", "sites.code", "OR-1", "--reason", "x"),
        2,
        "sites.code: sites is set whole",
    )


def test_only_an_admin_sets_the_sites(shipping: Quality) -> None:
    refused(site_set(json.dumps(SITES[:1])), 4, "admin")


def test_a_shipment_is_packed_and_received_scanning_the_vials_data_matrix(
    shipping: Quality,
) -> None:
    """Issue 17: wherever a vial is scanned, its ISBT 128 Data Matrix is taken too."""
    shipping.lab.set_site(labels={"product_code": "S1234"})
    shipping.lab.login("tom")
    first, second, *_ = vial_ids(shipping.lot_id)
    shipment = create()
    for vial in (first, second):
        packed = invoke("ship", "add", shipment, vial, "--scan", datamatrix_of(shipping, vial))
        assert packed.exit_code == 0, packed.stderr
    wrong = invoke("ship", "add", shipment, first, "--scan", datamatrix_of(shipping, second))
    assert wrong.exit_code == 1
    ok("ship", "dispatch", shipment)
    scans = [word for vial in (second, first) for word in ("--scan", datamatrix_of(shipping, vial))]
    receipt = ok("ship", "receive", shipment, *scans, "--temperature-ok", "yes")
    assert receipt["status"] == "received"
