"""A release before sterility is final (issue 13): a test started pending, the release on
interim results, vials issued with the pending tests acknowledged, the final result after
release and QA's completion, or the critical deviation a failing one opens.

The lab is tests.support.quality's: lot L1 for PT-0001 formulated by tom on day 26, its
results recorded on day 27; quinn and rita sign.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from lims.domain.states import DeviationSeverity
from lims.errors import BadInput, NotPermitted, RuleViolation
from lims.models import SpecificationVersion
from lims.services import deviations, lots, vials
from lims.uow import unit_of_work
from lims.views.quality import LotDetail
from tests.support.bench import day
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, RESULTS_AT, Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
METHOD = "BacT/ALERT, 14 d"
EXPECTED = RESULTS_AT + timedelta(days=14)
FINAL_AT = day(29)  # two days after the start: a final result by then is unusual, not wrong
CONDITIONAL = "released — final results pending: sterility"


@pytest.fixture
def pending(quality: Quality) -> Quality:
    """L1 with every result in but sterility's, started pending, and both interim tests
    negative: ready for a release on interim results."""
    _interim_results(quality)
    _start(quality)
    return quality


def _interim_results(quality: Quality, **values: str) -> None:
    for test, value in PASSING.items():
        if test != "sterility":
            quality.record(test, value)
    for test in ("gram_stain", "sterility_interim"):
        if values.get(test, "negative") is not None:
            quality.record(test, values.get(test, "negative"), method="Gram stain / BacT")


def _start(quality: Quality, **values: Any) -> Any:
    options = {"method": METHOD, "expected_final": EXPECTED, **values}
    return quality.record("sterility", "pending", **options)


def _release(quality: Quality, lab: Lab, signer: str = "rita", **values: Any) -> LotDetail:
    lab.login(signer)
    return quality.run(lots.release, lot=quality.lot_id, password=PASSWORD, **values)


def _complete(quality: Quality, lab: Lab, signer: str = "rita") -> LotDetail:
    lab.login(signer)
    return quality.run(lots.complete, lot=quality.lot_id, password=PASSWORD)


def _final(quality: Quality, lab: Lab, value: str, **values: Any) -> Any:
    lab.login("tom")
    return quality.record("sterility", value, at=FINAL_AT, method=METHOD, **values)


def _issue(quality: Quality, vial: str, **values: Any) -> Any:
    quality.lab.login("tom")
    scan = scan_of(quality, vial)
    return quality.run(vials.issue, vial=vial, scan=scan, patient=PATIENT, **values)


def _entries(quality: Quality, action: str) -> list[Any]:
    return [entry for entry in quality.scenario.audit_trail() if entry.action == action]


# --- a test started ----------------------------------------------------------------------------


def test_a_test_started_is_pending_with_its_expected_final_result(pending: Quality) -> None:
    evaluation = pending.evaluation()
    [sterility] = [c for c in evaluation.criteria if c.test == "sterility"]
    assert (sterility.verdict, sterility.result) == ("pending", None)
    [started] = evaluation.pending
    assert (started.test, started.method, started.started_at, started.expected_final_at) == (
        "sterility",
        METHOD,
        RESULTS_AT,
        EXPECTED,
    )
    assert [r.status for r in evaluation.results if r.test == "sterility"] == ["pending"]
    assert evaluation.releasable
    [entry] = _entries(pending, "qc.start")
    assert entry.new["pending"] is True
    assert entry.new["value"] == "pending"
    assert entry.new["expected_final_at"] == EXPECTED.isoformat()


def test_a_test_may_be_started_without_an_expected_final_result(quality: Quality) -> None:
    _interim_results(quality)
    _start(quality, expected_final=None)
    assert quality.evaluation().pending[0].expected_final_at is None


@pytest.mark.parametrize(
    ("test", "values", "field", "words"),
    [
        ("mycoplasma", {}, "value", "mycoplasma cannot be recorded as pending"),
        ("karyotype", {}, "value", "karyotype cannot be recorded as pending"),
        ("sterility", {"method": None}, "method", "required to start a test pending"),
        ("sterility", {"unit": "%"}, "unit", "must be left out"),
        ("sterility", {"investigation": 1}, "investigation", "no result of an investigation"),
        ("sterility", {"expected_final": RESULTS_AT}, "expected-final", "must be after"),
        (
            "sterility",
            {"expected_final": RESULTS_AT - timedelta(hours=1)},
            "expected-final",
            "must be after the start of sterility",
        ),
        ("sterility", {"expected_final": "next week"}, "expected-final", "must be"),
    ],
)
def test_a_test_is_started_only_as_the_specification_and_its_options_allow(
    quality: Quality, test: str, values: dict[str, Any], field: str, words: str
) -> None:
    count = quality.lab.audit_count()
    with pytest.raises(BadInput) as refused:
        quality.record(test, "pending", **{"method": METHOD, **values})
    assert (refused.value.field, words in refused.value.message) == (field, True)
    assert quality.lab.audit_count() == count


def test_an_expected_final_result_is_only_for_a_test_started(quality: Quality) -> None:
    with pytest.raises(BadInput, match="expected-final: only with the value pending"):
        quality.record("sterility", "negative", expected_final=EXPECTED)


def test_a_test_is_started_once_and_never_over_a_result_that_counts(
    pending: Quality, lab: Lab
) -> None:
    with pytest.raises(RuleViolation, match=r"sterility of .* is already pending, started at"):
        _start(pending)
    _final(pending, lab, "negative")
    with pytest.raises(RuleViolation, match=r"already has a result that counts \(negative"):
        _start(pending, at=day(29.5))


def test_a_test_is_started_pending_only_before_release(quality: Quality) -> None:
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="is released: a test is started pending only before"):
        _start(quality, at=day(28))


def test_the_final_result_needs_no_reason_and_must_follow_the_start(
    pending: Quality, lab: Lab
) -> None:
    for before in (RESULTS_AT, RESULTS_AT - timedelta(minutes=1)):
        with pytest.raises(RuleViolation, match="must be dated after the test was started at"):
            pending.record("sterility", "negative", at=before)
    final = _final(pending, lab, "negative")
    assert (final.verdict, final.result, final.notice) == ("pass", "negative", None)
    assert [entry.new["value"] for entry in _entries(pending, "qc.record")][-1] == "negative"
    assert _entries(pending, "qc.retest") == []
    assert [r.status for r in pending.evaluation().results if r.test == "sterility"] == [
        "completed",
        "valid",
    ]
    with pytest.raises(BadInput, match="reason: required for a retest: sterility already has"):
        pending.record("sterility", "negative", at=day(29.5))


# --- the release on interim results ------------------------------------------------------------


def test_a_lot_pending_sterility_is_released_on_interim_results(pending: Quality, lab: Lab) -> None:
    released = _release(pending, lab)
    assert released.summary.status == "released"
    assert released.signatures[-1].meaning == CONDITIONAL
    assert released.signatures[-1].record_unchanged
    assert (released.pending_tests, released.pending_at_release) == (["sterility"], ["sterility"])
    assert released.release_complete is False
    assert released.on_hold is False
    [entry] = _entries(pending, "lot.release")
    assert entry.new["pending_at_release"] == ["sterility"]
    assert entry.new["meaning"] == CONDITIONAL


def test_a_meaning_given_is_followed_by_the_tests_pending(pending: Quality, lab: Lab) -> None:
    with pytest.raises(BadInput, match="meaning: must leave room for — final results pending"):
        _release(pending, lab, meaning="x" * 190)
    released = _release(pending, lab, meaning="approved on interim results")
    assert released.signatures[-1].meaning == (
        "approved on interim results — final results pending: sterility"
    )


def test_a_release_with_every_result_in_is_complete_and_names_nothing(
    quality: Quality, lab: Lab
) -> None:
    assert quality.show().release_complete is None  # never released
    quality.record_passing()
    released = _release(quality, lab)
    assert released.signatures[-1].meaning == lots.RELEASE_MEANING
    assert (released.pending_tests, released.pending_at_release) == ([], [])
    assert released.release_complete is True
    assert "pending_at_release" not in _entries(quality, "lot.release")[0].new


@pytest.mark.parametrize(
    ("interim", "reason"),
    [
        ({"gram_stain": None}, "gram_stain missing"),
        ({"sterility_interim": "positive"}, "sterility_interim failed: positive"),
    ],
)
def test_a_lot_pending_is_not_released_unless_every_interim_test_passes(
    quality: Quality, lab: Lab, interim: dict[str, Any], reason: str
) -> None:
    _interim_results(quality, **interim)
    _start(quality)
    with pytest.raises(RuleViolation, match=f"sterility pending: .*{reason}"):
        _release(quality, lab)
    assert quality.show().summary.status == "quarantine"


# --- vials of a lot with final results pending --------------------------------------------------


def test_a_vial_is_issued_only_with_the_pending_tests_acknowledged(
    pending: Quality, lab: Lab
) -> None:
    _release(pending, lab)
    vial = f"{pending.lot_id}-V01"
    lab.login("tom")
    count = lab.audit_count()
    with pytest.raises(RuleViolation) as refused:
        pending.run(vials.issue, vial=vial, scan=scan_of(pending, vial), patient=PATIENT)
    assert refused.value.message.startswith(
        f"final results of lot {pending.lot_id} are pending: sterility (expected "
    )
    assert "--acknowledge-pending" in refused.value.message
    assert lab.audit_count() == count
    issued = _issue(pending, vial, acknowledge_pending=True)
    assert (issued.status, issued.acknowledged_pending) == ("issued", ["sterility"])
    assert _entries(pending, "vial.issued")[-1].new["acknowledged_pending"] == ["sterility"]
    [shown] = [v for v in pending.show().vials if v.vial_id == vial]
    assert shown.acknowledged_pending == ["sterility"]
    verified = pending.run(
        vials.verify, scan=scan_of(pending, f"{pending.lot_id}-V02"), patient=PATIENT
    )
    assert verified.match
    assert verified.reason.endswith("; final results pending: sterility")


def test_once_the_final_result_is_in_a_vial_is_issued_as_any_other(
    pending: Quality, lab: Lab
) -> None:
    _release(pending, lab)
    _final(pending, lab, "negative")
    assert pending.show().pending_tests == []
    issued = _issue(pending, f"{pending.lot_id}-V01")
    assert issued.acknowledged_pending == []
    assert "acknowledged_pending" not in _entries(pending, "vial.issued")[-1].new


# --- the final result after release, and QA's completion ----------------------------------------


def test_qa_completes_the_release_once_the_final_result_passes(pending: Quality, lab: Lab) -> None:
    _release(pending, lab)
    with pytest.raises(RuleViolation, match="final results of sterility are still pending"):
        _complete(pending, lab)
    _final(pending, lab, "negative")
    shown = pending.show()
    assert (shown.pending_tests, shown.release_complete) == ([], False)
    completed = _complete(pending, lab)
    assert completed.release_complete is True
    assert completed.pending_at_release == ["sterility"]
    assert [s.meaning for s in completed.signatures] == [CONDITIONAL, lots.COMPLETE_MEANING]
    assert all(s.record_unchanged and s.linked for s in completed.signatures)
    [entry] = _entries(pending, "lot.complete")
    assert entry.username == "rita"
    assert entry.new["release_completed_by"] == "rita"
    assert entry.new["meaning"] == "final results reviewed"
    with pytest.raises(RuleViolation, match="was completed by rita at "):
        _complete(pending, lab, "quinn")


def test_a_release_is_completed_only_by_qa_who_did_no_step_of_it(
    pending: Quality, lab: Lab
) -> None:
    _release(pending, lab)
    lab.login("quinn")
    pending.record("sterility", "negative", at=FINAL_AT)  # QA may record results too
    with pytest.raises(RuleViolation, match=r"quinn recorded steps of .*recorded QC sterility"):
        _complete(pending, lab, "quinn")
    with pytest.raises(NotPermitted):
        _complete(pending, lab, "tom")
    lab.login("rita")
    with pytest.raises(NotPermitted, match="wrong password for rita"):
        pending.run(lots.complete, lot=pending.lot_id, password="not the password")
    assert pending.show().release_complete is False
    assert _complete(pending, lab).release_complete is True


def test_a_release_is_not_completed_by_qa_who_waived_a_failure_of_the_lot(
    pending: Quality, lab: Lab
) -> None:
    """A karyotype found abnormal after release, waived by quinn at the physician's request:
    the final results are reviewed by another QA reviewer, as the release would be."""
    _release(pending, lab)
    lab.login("tom")
    pending.record("karyotype", "abnormal", at=day(28))
    _final(pending, lab, "negative")
    [opened] = pending.show().deviations
    lab.login("quinn")
    pending.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="confirmed; the physician accepts it",
        password=PASSWORD,
        confirm=True,
        waive=True,
        physician_request="Dr A. Rossi, 2026-12-02",
    )
    assert pending.show().on_hold is False
    with pytest.raises(RuleViolation, match=r"quinn waived a failure of .*\(deviation 1\)"):
        _complete(pending, lab, "quinn")
    assert pending.show().release_complete is False
    assert _complete(pending, lab, "rita").release_complete is True


def test_only_a_release_on_interim_results_is_completed(quality: Quality, lab: Lab) -> None:
    quality.record_passing()
    with pytest.raises(RuleViolation, match="was not released on interim results"):
        _complete(quality, lab)
    _release(quality, lab)
    with pytest.raises(RuleViolation, match="was not released on interim results"):
        _complete(quality, lab)


def test_a_failing_final_result_holds_the_lot_critically_until_qa_recalls_it(
    pending: Quality, lab: Lab
) -> None:
    _release(pending, lab)
    _issue(pending, f"{pending.lot_id}-V01", acknowledge_pending=True)
    failed = _final(pending, lab, "positive")
    assert failed.verdict == "fail"
    assert failed.notice is not None
    assert f"lims report recall {pending.lot_id} --out FILE.pdf" in failed.notice
    assert "notify the treating physicians" in failed.notice
    shown = pending.show()
    [deviation] = shown.deviations
    assert (deviation.kind, deviation.severity, deviation.status) == ("oos", "critical", "open")
    assert shown.on_hold
    assert shown.pending_tests == []
    with pytest.raises(vials.VialMismatch, match="is on hold"):
        _issue(pending, f"{pending.lot_id}-V02")
    with pytest.raises(RuleViolation, match="cannot be completed: sterility failed: positive"):
        _complete(pending, lab)
    lab.login("rita")
    recalled = pending.run(
        lots.recall, lot=pending.lot_id, password=PASSWORD, reason="final sterility positive"
    )
    assert recalled.summary.status == "recalled"
    assert recalled.release_complete is False  # never completed: its final result failed


def test_a_failure_before_release_is_major_and_asks_no_notice(quality: Quality) -> None:
    failed = quality.record("cd73", "90")
    assert (failed.verdict, failed.notice) == ("fail", None)
    assert [d.severity for d in quality.show().deviations] == [DeviationSeverity.MAJOR]


def test_any_failure_on_a_released_lot_is_critical(quality: Quality, lab: Lab) -> None:
    quality.record_passing()
    _release(quality, lab)
    lab.login("tom")
    failed = quality.record("karyotype", "abnormal", at=day(28))
    assert failed.notice is not None
    assert [d.severity for d in quality.show().deviations] == [DeviationSeverity.CRITICAL]


def test_a_failing_interim_result_on_a_released_lot_is_critical(pending: Quality, lab: Lab) -> None:
    _release(pending, lab)
    lab.login("tom")
    failed = pending.record(
        "sterility_interim", "positive", at=day(28), reason="culture flagged growth on day 2"
    )
    assert failed.notice is not None
    shown = pending.show()
    assert [(d.criterion, d.severity) for d in shown.deviations] == [
        ("sterility_interim", "critical")
    ]
    assert shown.on_hold
    assert any(reason.startswith("sterility pending:") for reason in shown.hold_reasons)


def test_an_investigation_result_failing_on_a_released_lot_is_critical(
    quality: Quality, lab: Lab
) -> None:
    quality.record_passing()
    _release(quality, lab)
    lab.login("tom")
    quality.record("endotoxin", "12", reason="late repeat", at=day(28))
    [first] = quality.show().deviations
    quality.record("endotoxin", "15", investigation=first.deviation_id, at=day(28.5))
    lab.login("quinn")
    quality.run(
        deviations.close_deviation,
        deviation_id=first.deviation_id,
        resolution="dilution error proven",
        password=PASSWORD,
        invalidate=True,
    )
    second = [d for d in quality.show().deviations if d.deviation_id != first.deviation_id]
    assert [(d.criterion, d.severity, d.status) for d in second] == [
        ("endotoxin", "critical", "open")
    ]


def test_a_word_pending_of_a_sites_own_vocabulary_is_a_result(quality: Quality) -> None:
    """A site test that reads "pending" (and may not be released while pending) records it."""
    quality.lab.set_spec(
        {
            "review": {
                "kind": "categorical",
                "description": "batch review",
                "values": ["pending", "done"],
                "passing": ["done"],
                "required": False,
            }
        }
    )
    quality.lab.login("tom")
    quality.lot_id = quality.new_lot().summary.lot_id
    recorded = quality.record("review", "pending", at=day(29))
    assert (recorded.verdict, recorded.result) == ("fail", "pending")
    assert quality.evaluation().pending == []


def test_a_site_turns_release_while_pending_off_and_on_through_spec_set(
    quality: Quality,
) -> None:
    """Each lot by its own version: one formulated while it was off cannot start sterility."""
    lab = quality.lab
    lab.set_spec({"sterility": {"release_while_pending": False, "interim_tests": []}})
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        stored = json.loads(uow.session.get(SpecificationVersion, 2).spec)
    assert "release_while_pending" not in stored["sterility"]  # as a site stored it before
    lab.login("tom")
    before = quality.new_lot().summary.lot_id
    lab.set_spec({"sterility": {"release_while_pending": True, "interim_tests": ["gram_stain"]}})
    lab.login("tom")
    after = quality.new_lot().summary.lot_id
    for lot, allowed in ((before, False), (after, True)):
        quality.lot_id = lot
        if allowed:
            assert _start(quality).verdict == "pending"
        else:
            with pytest.raises(BadInput, match="specification version 2 does not allow"):
                _start(quality)
