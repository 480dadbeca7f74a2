"""Vials and the chain of identity (issue 5), through the CLI as the bench and bedside use it.

The lab is tests.support.quality.Quality: tom (technician) formulates lot
A9999..-L1 of four vials for PT-0001 from a culture passaged twice; quinn and
rita are QA. `released` records passing QC and has rita release the lot, then
logs tom back in. PT-0002 is a second, registered patient.

Exit codes: 0 ok, 1 a rule (MISMATCH, a refused move), 2 bad input (a scan
that does not parse or whose check value fails), 3 not found, 4 not permitted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from lims.domain.payload import Payload
from lims.services import lots
from lims.timeutil import json_time, utcnow
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import add_lot, expire, scan_of, vial_ids

PATIENT = "PT-0001"
OTHER = "PT-0002"
LIST_KEYS = {"vial_id", "status", "patient", "cells", "volume_ml", "expires_at", "labels_printed"}


# --- helpers ---------------------------------------------------------------------------------


def changed(payload: str, position: int) -> str:
    """The payload with one character changed."""
    old = payload[position]
    new = "7" if old != "7" else "8"
    return payload[:position] + new + payload[position + 1 :]


def count(quality: Quality, action: str) -> int:
    return quality.audit_actions().count(action)


def status(vial: str) -> str:
    return str(ok("vial", "show", vial)["status"])


def verify(quality: Quality, vial: str, patient: str = PATIENT) -> Invocation:
    return invoke("vial", "verify", "--scan", scan_of(quality, vial), "--patient", patient)


def issue(quality: Quality, vial: str, patient: str = PATIENT, scan: str | None = None) -> Any:
    return invoke(
        "vial", "issue", vial, "--patient", patient, "--scan", scan or scan_of(quality, vial)
    )


def administer(quality: Quality, vial: str, patient: str = PATIENT, *extra: str) -> Invocation:
    return invoke(
        "vial",
        "administer",
        vial,
        "--patient",
        patient,
        "--scan",
        scan_of(quality, vial),
        *extra,
    )


def mismatch(result: Invocation, *words: str) -> str:
    """A verification that did not match: exit 1 and a MISMATCH line naming each word."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    [line] = [line for line in result.stdout.splitlines() if "MISMATCH" in line]
    assert "MATCH " not in result.stdout.replace("MISMATCH", "")
    for word in words:
        assert word in line, (word, line)
    return line


# --- fixtures --------------------------------------------------------------------------------


def _with_other_patient(quality: Quality) -> Quality:
    quality.patient(OTHER)
    return quality


@pytest.fixture
def quality(lab: Lab) -> Quality:
    """Lot L1 for PT-0001, in quarantine; PT-0002 registered too; tom logged in."""
    return lab.built("vials-quality", lambda: _with_other_patient(Quality(lab)))


@pytest.fixture
def released(lab: Lab) -> Quality:
    """As quality, and L1 released by rita."""
    return lab.built("vials-released", lambda: released_lot(_with_other_patient(Quality(lab))))


# --- vial list and show ----------------------------------------------------------------------


def test_vial_list_gives_each_vial_in_quarantine_then_released(quality: Quality) -> None:
    listed = ok("vial", "list", quality.lot_id)
    assert [v["vial_id"] for v in listed] == vial_ids(quality.lot_id)
    expires = json_time(quality.show().summary.expires_at)
    for vial in listed:
        assert set(vial) >= LIST_KEYS
        assert vial["status"] == "quarantine"
        assert vial["patient"] == PATIENT
        assert vial["cells"] == 40_000_000
        assert vial["volume_ml"] == 2
        assert vial["expires_at"] == expires
        assert vial["labels_printed"] == 0
    assert ok("vial", "show", vial_ids(quality.lot_id)[0]) == listed[0]
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    assert {v["status"] for v in ok("vial", "list", quality.lot_id)} == {"released"}
    table = invoke("vial", "list", quality.lot_id)
    assert table.exit_code == 0, table.stderr
    assert vial_ids(quality.lot_id)[3] in table.stdout
    assert "released" in table.stdout


def test_vial_list_and_show_refuse_unknown_and_malformed_ids(quality: Quality) -> None:
    missing_lot = quality.lot_id[:-1] + "9"
    refused(invoke("vial", "list", missing_lot), 3, missing_lot)
    refused(invoke("vial", "list", "lot one"), 2, "lot")
    refused(invoke("vial", "show", f"{quality.lot_id}-V09"), 3, f"{quality.lot_id}-V09")
    refused(invoke("vial", "show", "V01"), 2, "vial")


# --- verification ----------------------------------------------------------------------------


def test_verify_matches_a_released_vial_to_its_patient(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    result = verify(released, vial)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "MATCH" in result.stdout
    assert "MISMATCH" not in result.stdout
    assert vial in result.stdout
    assert PATIENT in result.stdout
    answer = ok("vial", "verify", "--scan", scan_of(released, vial), "--patient", PATIENT)
    assert answer["result"] == "MATCH"
    assert answer["match"] is True
    assert (answer["vial_id"], answer["patient"], answer["vial_patient"]) == (
        vial,
        PATIENT,
        PATIENT,
    )
    assert status(vial) == "released"  # verifying moves nothing


def test_verify_against_another_patient_is_a_mismatch_naming_both(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    mismatch(verify(released, vial, OTHER), vial, PATIENT, OTHER)
    answer = invoke(
        "vial", "verify", "--scan", scan_of(released, vial), "--patient", OTHER, "--json"
    )
    assert answer.exit_code == 1
    shown = json.loads(answer.stdout)
    assert (shown["result"], shown["match"]) == ("MISMATCH", False)
    assert (shown["patient"], shown["vial_patient"]) == (OTHER, PATIENT)
    assert PATIENT in shown["reason"]
    assert OTHER in shown["reason"]


def test_verify_refuses_a_vial_still_in_quarantine(quality: Quality) -> None:
    vial = vial_ids(quality.lot_id)[0]
    mismatch(verify(quality, vial), vial, "quarantine")


def test_verify_refuses_an_issued_vial(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    mismatch(verify(released, vial), vial, "issued")


def test_verify_refuses_a_destroyed_vial(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[1]
    ok("vial", "destroy", vial, "--reason", "cracked during thaw")
    mismatch(verify(released, vial), vial, "destroyed")


def test_verify_and_issue_refuse_an_expired_vial(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert verify(released, vial).exit_code == 0
    expire(released, released.lot_id)
    assert {v["status"] for v in ok("vial", "list", released.lot_id)} == {"expired"}
    mismatch(verify(released, vial), vial, "expired")
    refused(issue(released, vial), 1, "MISMATCH", vial, "expired")
    assert status(vial) == "expired"
    # An expired vial can still be destroyed.
    assert ok("vial", "destroy", vial, "--reason", "expired")["status"] == "destroyed"


def test_a_label_that_disagrees_with_the_record_is_a_mismatch(released: Quality) -> None:
    """A well-sealed payload naming the wrong patient for this vial: not the record's label."""
    vial = vial_ids(released.lot_id)[0]
    forged = scan_of(released, vial, patient=OTHER)
    result = invoke("vial", "verify", "--scan", forged, "--patient", PATIENT)
    mismatch(result, vial, OTHER)


def test_a_vial_not_in_the_database_is_a_mismatch(released: Quality) -> None:
    stranger = Payload(
        f"{released.lot_id}-V09",
        released.lot_id.split("-")[0],
        PATIENT,
        released.show().summary.expires_at,
    ).encode()
    mismatch(invoke("vial", "verify", "--scan", stranger, "--patient", PATIENT), "V09")


@pytest.mark.parametrize("position", [0, 10, 30, 45, -1], ids=lambda p: f"at {p}")
def test_verify_refuses_a_payload_with_one_changed_character(
    released: Quality, position: int
) -> None:
    vial = vial_ids(released.lot_id)[0]
    payload = scan_of(released, vial)
    refused(
        invoke("vial", "verify", "--scan", changed(payload, position), "--patient", PATIENT),
        2,
        "scan",
    )
    assert verify(released, vial).exit_code == 0


def test_verify_refuses_a_malformed_patient_code(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    refused(
        invoke("vial", "verify", "--scan", scan_of(released, vial), "--patient", "pt 1"),
        2,
        "patient",
    )


def test_every_verification_is_audited_match_or_not(released: Quality) -> None:
    first, second = vial_ids(released.lot_id)[:2]
    before = count(released, "vial.verify")
    assert verify(released, first).exit_code == 0
    assert verify(released, first, OTHER).exit_code == 1
    ok("vial", "destroy", second, "--reason", "dropped")
    assert verify(released, second).exit_code == 1
    assert count(released, "vial.verify") == before + 3
    entries = [e for e in ok("audit", "log", "--entity", "vial") if e["action"] == "vial.verify"]
    assert [(e["entity_id"], e["new"]["result"], e["new"]["patient"]) for e in entries] == [
        (first, "MATCH", PATIENT),
        (first, "MISMATCH", OTHER),
        (second, "MISMATCH", PATIENT),
    ]
    assert {e["user"] for e in entries} == {"tom"}


# --- transitions: one test each --------------------------------------------------------------


def test_release_moves_the_lots_vials_from_quarantine_to_released(quality: Quality) -> None:
    assert {v["status"] for v in ok("vial", "list", quality.lot_id)} == {"quarantine"}
    refused(issue(quality, vial_ids(quality.lot_id)[0]), 1, "MISMATCH", "quarantine")
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    assert {v["status"] for v in ok("vial", "list", quality.lot_id)} == {"released"}


def test_issue_needs_a_matching_scan_of_that_very_vial(released: Quality) -> None:
    first, second = vial_ids(released.lot_id)[:2]
    refused(issue(released, first, scan=scan_of(released, second)), 1, "MISMATCH", first, second)
    assert status(first) == "released"
    assert status(second) == "released"
    refused(issue(released, first, OTHER), 1, "MISMATCH", PATIENT, OTHER)
    assert status(first) == "released"
    assert count(released, "vial.issued.refused") == 2
    assert count(released, "vial.issued") == 0
    [entry] = [
        e
        for e in ok("audit", "log", "--entity", f"vial:{first}")
        if e["action"] == "vial.issued.refused" and e["new"]["patient"] == OTHER
    ]
    assert entry["new"]["result"] == "MISMATCH"
    assert entry["new"]["vial_patient"] == PATIENT
    issued = issue(released, first)
    assert issued.exit_code == 0, issued.stderr
    assert status(first) == "issued"
    assert status(second) == "released"
    assert count(released, "vial.issued") == 1


def test_issue_reports_the_issued_vial_as_json(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[2]
    shown = ok("vial", "issue", vial, "--patient", PATIENT, "--scan", scan_of(released, vial))
    assert (shown["vial_id"], shown["status"], shown["patient"]) == (vial, "issued", PATIENT)


def test_an_issued_vial_cannot_be_issued_again(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    refused(issue(released, vial), 1, "MISMATCH", "issued")


def test_administration_needs_an_issued_vial_and_a_matching_scan(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    refused(administer(released, vial), 1, "MISMATCH", "released")
    assert issue(released, vial).exit_code == 0
    refused(administer(released, vial, OTHER), 1, "MISMATCH", PATIENT, OTHER)
    assert status(vial) == "issued"
    assert count(released, "vial.administered.refused") == 2
    given = administer(released, vial)
    assert given.exit_code == 0, given.stderr
    assert status(vial) == "administered"
    assert count(released, "vial.administered") == 1
    refused(administer(released, vial), 1, "MISMATCH", "administered")


def test_administration_takes_a_time_that_is_not_in_the_future(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    later = (utcnow() + timedelta(hours=2)).isoformat()
    refused(administer(released, vial, PATIENT, "--at", later), 2, "at")
    assert status(vial) == "issued"
    assert administer(released, vial).exit_code == 0


def test_administration_cannot_be_recorded_before_the_vial_was_issued(released: Quality) -> None:
    """Chronology: a vial issued now was not given to the patient yesterday (nor in 2000)."""
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    refused(administer(released, vial, PATIENT, "--at", yesterday), 2, "at")
    assert status(vial) == "issued"
    now = administer(released, vial)
    assert now.exit_code == 0, now.stderr


def test_an_administered_vial_cannot_be_destroyed(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    assert administer(released, vial).exit_code == 0
    refused(invoke("vial", "destroy", vial, "--reason", "mix-up"), 1, vial, "administered")
    assert status(vial) == "administered"
    assert count(released, "vial.destroy") == 0


@pytest.mark.parametrize("state", ["quarantine", "released", "issued"])
def test_a_vial_not_yet_administered_is_destroyed_with_a_reason(
    quality: Quality, state: str
) -> None:
    vial = vial_ids(quality.lot_id)[0]
    if state != "quarantine":
        quality.record_passing()
        quality.release()
        quality.lab.login("tom")
    if state == "issued":
        assert issue(quality, vial).exit_code == 0
    assert status(vial) == state
    refused(invoke("vial", "destroy", vial), 2, "--reason")
    refused(invoke("vial", "destroy", vial, "--reason", "   "), 2, "reason")
    assert status(vial) == state
    destroyed = ok("vial", "destroy", vial, "--reason", "cracked during thaw")
    assert destroyed["status"] == "destroyed"
    assert status(vial) == "destroyed"
    [entry] = [
        e for e in ok("audit", "log", "--entity", f"vial:{vial}") if e["action"] == "vial.destroy"
    ]
    assert entry["reason"] == "cracked during thaw"
    assert entry["old"] == {"status": state}
    refused(invoke("vial", "destroy", vial, "--reason", "again"), 1, "destroyed")


def test_a_destroyed_vial_cannot_be_issued(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    ok("vial", "destroy", vial, "--reason", "label smudged")
    refused(issue(released, vial), 1, "MISMATCH", vial, "destroyed")
    assert status(vial) == "destroyed"
    assert count(released, "vial.issued") == 0


def test_a_vial_of_a_rejected_lot_cannot_be_issued(quality: Quality) -> None:
    quality.lab.login("rita")
    quality.run(lots.reject, lot=quality.lot_id, password=PASSWORD, reason="sterility positive")
    quality.lab.login("tom")
    vial = vial_ids(quality.lot_id)[0]
    refused(issue(quality, vial), 1, "MISMATCH", vial)
    assert verify(quality, vial).exit_code == 1
    assert status(vial) != "issued"
    assert count(quality, "vial.issued") == 0


def test_a_vial_of_an_unreleased_lot_cannot_be_issued_even_with_its_own_scan(
    quality: Quality,
) -> None:
    for vial in vial_ids(quality.lot_id):
        refused(issue(quality, vial), 1, "MISMATCH", "quarantine")
    assert {v["status"] for v in ok("vial", "list", quality.lot_id)} == {"quarantine"}


# --- the scanner loop ------------------------------------------------------------------------


def test_scan_answers_each_line_in_order_and_fails_if_any_missed(released: Quality) -> None:
    first, second = vial_ids(released.lot_id)[:2]
    strangers = add_lot(released, OTHER)
    stranger = vial_ids(strangers)[0]
    lines = [
        scan_of(released, first),
        scan_of(released, second),
        scan_of(released, stranger),
        "not a label at all",
    ]
    before = count(released, "vial.verify")
    result = invoke("scan", "--patient", PATIENT, input="\n".join(lines) + "\n")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    out = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(out) == 5, out
    assert out[0].startswith("MATCH")
    assert first in out[0]
    assert out[1].startswith("MATCH")
    assert second in out[1]
    assert out[2].startswith("MISMATCH")
    assert stranger in out[2]
    assert OTHER in out[2]
    assert PATIENT in out[2]
    assert "MATCH" not in out[3].replace("MISMATCH", "")
    assert out[3].startswith(("UNREADABLE", "MISMATCH"))
    assert out[4] == "4 scanned: 2 MATCH, 2 MISMATCH"
    assert count(released, "vial.verify") == before + 3  # the unreadable line names no vial
    assert status(first) == "released"


def test_scan_exits_0_when_every_line_matched(released: Quality) -> None:
    first, second, third = vial_ids(released.lot_id)[:3]
    text = f"{scan_of(released, first)}\n\n  {scan_of(released, second)}  \r\n"
    text += scan_of(released, third)  # the last line without its Enter
    before = count(released, "vial.verify")
    result = invoke("scan", "--patient", PATIENT, input=text)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line.split()[0] for line in out[:3]] == ["MATCH", "MATCH", "MATCH"]
    assert [first in out[0], second in out[1], third in out[2]] == [True, True, True]
    assert out[3] == "3 scanned: 3 MATCH, 0 MISMATCH"
    assert count(released, "vial.verify") == before + 3


def test_scan_fails_on_a_single_mistyped_line(released: Quality) -> None:
    first = vial_ids(released.lot_id)[0]
    result = invoke("scan", "--patient", PATIENT, input=changed(scan_of(released, first), 20))
    assert result.exit_code == 1
    assert "1 scanned: 0 MATCH, 1 MISMATCH" in result.stdout


def test_scan_with_no_input_scans_nothing(released: Quality) -> None:
    result = invoke("scan", "--patient", PATIENT, input="")
    assert result.exit_code == 0, result.stderr
    assert "0 scanned: 0 MATCH, 0 MISMATCH" in result.stdout


def test_scan_json_gives_one_object_per_verified_line(released: Quality) -> None:
    first = vial_ids(released.lot_id)[0]
    text = f"{scan_of(released, first)}\n{scan_of(released, first)}\n"
    result = invoke("scan", "--patient", OTHER, "--json", input=text)
    assert result.exit_code == 1
    decoder, rest, answers = json.JSONDecoder(), result.stdout.strip(), []
    while rest:
        answer, end = decoder.raw_decode(rest)
        answers.append(answer)
        rest = rest[end:].strip()
    assert [a["result"] for a in answers] == ["MISMATCH", "MISMATCH"]
    assert {a["vial_patient"] for a in answers} == {PATIENT}
    assert "2 scanned: 0 MATCH, 2 MISMATCH" in result.stderr


# --- roles -----------------------------------------------------------------------------------


def test_admin_may_read_vials_but_not_verify_issue_or_destroy(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    payload = scan_of(released, vial)
    released.lab.login("admin")
    assert {v["status"] for v in ok("vial", "list", released.lot_id)} == {"released"}
    refused(invoke("vial", "issue", vial, "--patient", PATIENT, "--scan", payload), 4)
    refused(invoke("vial", "verify", "--scan", payload, "--patient", PATIENT), 4)
    refused(invoke("vial", "destroy", vial, "--reason", "x"), 4)
    assert status(vial) == "released"
    released.lab.login("quinn")
    assert ok("vial", "issue", vial, "--patient", PATIENT, "--scan", payload)["status"] == "issued"


def test_without_a_session_nothing_is_verified(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    payload = scan_of(released, vial)
    assert invoke("logout").exit_code == 0
    refused(invoke("vial", "verify", "--scan", payload, "--patient", PATIENT), 4)


# --- issue 13: the route and the treating physician ------------------------------------------


def test_vial_administer_keeps_the_route_and_physician_and_vial_show_prints_them(
    released: Quality,
) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    given = administer(
        released, vial, PATIENT, "--route", "intraspinal", "--physician", "Dr Rossi", "--json"
    )
    assert given.exit_code == 0, given.stderr
    shown = json.loads(given.stdout)
    assert (shown["route"], shown["physician"], shown["administered_by"]) == (
        "intraspinal",
        "Dr Rossi",
        "tom",
    )
    assert shown["administered_at"] is not None
    assert ok("vial", "show", vial) == shown
    [row] = [v for v in ok("lot", "show", released.lot_id)["vial_states"] if v["vial_id"] == vial]
    assert (row["route"], row["physician"], row["administered_by"]) == (
        "intraspinal",
        "Dr Rossi",
        "tom",
    )
    table = invoke("vial", "show", vial)
    for word in ("administered", "by tom", "route", "intraspinal", "physician", "Dr Rossi"):
        assert word in table.stdout, (word, table.stdout)


def test_vial_administer_refuses_a_route_the_site_does_not_list(released: Quality) -> None:
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    refused(
        administer(released, vial, PATIENT, "--route", "oral"),
        2,
        "error: route: must be one of intraspinal, intrathecal, intravenous",
        "(got 'oral')",
    )
    assert status(vial) == "issued"


@pytest.mark.parametrize("option", ["route", "physician"])
def test_vial_administer_without_what_the_site_requires_exits_2(
    released: Quality, lab: Lab, option: str
) -> None:
    lab.set_site(administration={f"{option}_required": True})
    released.lab.login("tom")
    vial = vial_ids(released.lot_id)[0]
    assert issue(released, vial).exit_code == 0
    refused(administer(released, vial), 2, f"error: {option}: must be given at this site")
    assert status(vial) == "issued"
