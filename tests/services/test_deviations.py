"""Deviations through the service: an open one blocks release; closing is a QA signature that
may waive a recorded failure of a waivable criterion, and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lims.errors import AuditedRefusal, BadInput, NotFound, NotPermitted, RuleViolation
from lims.models import Deviation
from lims.services import deviations
from tests.support.lab import PASSWORD
from tests.support.quality import Quality


def _open(quality: Quality, criterion: str | None, **values: Any) -> int:
    opened = quality.run(
        deviations.open_deviation,
        lot=quality.lot_id,
        description="out of spec",
        criterion=criterion,
        **values,
    )
    return opened.deviation_id


def _close(quality: Quality, deviation_id: int, as_user: str = "rita", **how: Any) -> Any:
    quality.lab.login(as_user)
    return quality.run(
        deviations.close_deviation,
        deviation_id=deviation_id,
        resolution="assessed",
        password=PASSWORD,
        **how,
    )


def _opened_by(quality: Quality, test: str, value: str, **values: Any) -> int:
    """Record a failing result as tom; returns the OOS deviation it opened."""
    quality.lab.login("tom")
    quality.record(test, value, **values)
    [deviation] = [d for d in quality.show().deviations if d.status == "open" and d.kind == "oos"]
    assert deviation.criterion == test
    return deviation.deviation_id


def _results(quality: Quality, test: str) -> list[tuple[str, str, int | None]]:
    return [(r.value, r.status, r.deviation_id) for r in quality.show().results if r.test == test]


def test_an_open_deviation_blocks_release(quality: Quality) -> None:
    quality.record_passing()
    number = _open(quality, None)
    assert f"deviation {number} open" in " ".join(quality.evaluation().blocking)
    closed = _close(quality, number)
    assert closed.status == "closed"
    assert quality.evaluation().releasable


def test_closing_a_deviation_is_a_qa_signature(quality: Quality) -> None:
    number = _open(quality, None)
    with pytest.raises(NotPermitted):
        quality.run(
            deviations.close_deviation, deviation_id=number, resolution="x", password=PASSWORD
        )
    quality.lab.login("rita")
    with pytest.raises(AuditedRefusal):
        quality.run(
            deviations.close_deviation,
            deviation_id=number,
            resolution="x",
            password="wrong password!!",
        )


def test_a_failing_result_opens_an_oos_deviation_at_once(quality: Quality) -> None:
    quality.record_passing()
    number = _opened_by(quality, "mycoplasma", "positive", reason="retest")
    [opened] = [d for d in quality.show().deviations if d.deviation_id == number]
    assert (opened.kind, opened.criterion, opened.status) == ("oos", "mycoplasma", "open")
    assert "positive" in opened.description
    assert f"deviation {number} open" in " ".join(quality.evaluation().blocking)
    quality.lab.login("tom")
    assert quality.record("cd73", "97", reason="repeat").verdict == "pass"  # another test
    assert len([d for d in quality.show().deviations if d.kind == "oos"]) == 1


def test_a_plain_retest_of_a_test_under_investigation_is_refused(quality: Quality) -> None:
    quality.record_passing()
    number = _opened_by(quality, "mycoplasma", "positive", reason="retest")
    with pytest.raises(RuleViolation, match=f"--investigation {number}"):
        quality.record("mycoplasma", "negative", reason="retest")
    assert _results(quality, "mycoplasma")[-1] == ("positive", "valid", number)


def test_an_investigation_result_counts_only_once_the_original_is_invalidated(
    quality: Quality,
) -> None:
    quality.record_passing()
    number = _opened_by(quality, "cd105", "90", reason="second stain")
    quality.record("cd105", "97", investigation=number)
    assert _results(quality, "cd105")[1:] == [
        ("90", "valid", number),
        ("97", "investigation", number),
    ]
    assert not quality.evaluation().releasable
    _close(quality, number, invalidate=True)
    assert _results(quality, "cd105")[1:] == [
        ("90", "invalidated", number),
        ("97", "valid", number),
    ]
    assert quality.evaluation().releasable
    quality.lab.login("tom")
    quality.record("cd105", "98", reason="routine repeat")  # a later retest counts too
    assert _results(quality, "cd105")[-2:] == [("97", "superseded", number), ("98", "valid", None)]


def test_a_failing_investigation_result_opens_its_own_deviation_once_it_counts(
    quality: Quality,
) -> None:
    quality.record_passing()
    first = _opened_by(quality, "cd105", "90", reason="second stain")
    quality.record("cd105", "91", investigation=first)
    _close(quality, first, invalidate=True)
    [second] = [d for d in quality.show().deviations if d.status == "open"]
    assert (second.kind, second.criterion) == ("oos", "cd105")
    assert _results(quality, "cd105")[-1] == ("91", "valid", second.deviation_id)


def test_a_confirmed_failure_cannot_be_retested_away(quality: Quality) -> None:
    quality.record_passing()
    number = _opened_by(quality, "cd105", "90", reason="second stain")
    quality.record("cd105", "97", investigation=number)
    _close(quality, number, confirm=True)
    assert _results(quality, "cd105")[1:] == [
        ("90", "valid", number),
        ("97", "investigation", number),
    ]
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match=f"confirmed by deviation {number}"):
        quality.record("cd105", "98", reason="third stain")
    assert "cd105 failed: 90 % (spec ≥ 95 %)" in quality.evaluation().blocking


def test_a_confirmed_failure_is_waived_at_the_physicians_request_and_another_qa_releases(
    quality: Quality,
) -> None:
    quality.record_passing()
    number = _opened_by(quality, "cd105", "90", reason="second stain")
    closed = _close(
        quality, number, confirm=True, waive=True, physician_request="Dr Rossi, 2026-12-01"
    )
    assert (closed.waived, closed.outcome, closed.physician_request) == (
        True,
        "confirmed",
        "Dr Rossi, 2026-12-01",
    )
    verdict = next(v for v in quality.evaluation().criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.waived_by) == ("fail", number)
    with pytest.raises(RuleViolation, match="rita waived a failure"):
        quality.release("rita")
    assert quality.release("quinn").summary.status == "released"


@pytest.mark.parametrize(("test", "value"), [("sterility", "positive"), ("endotoxin", "10")])
def test_safety_tests_can_never_be_waived(quality: Quality, test: str, value: str) -> None:
    number = _opened_by(quality, test, value)
    with pytest.raises(RuleViolation, match="never be waived"):
        _close(quality, number, confirm=True, waive=True, physician_request="Dr Rossi")


@pytest.mark.parametrize(
    ("how", "field"),
    [
        ({}, "invalidate/confirm"),
        ({"invalidate": True, "confirm": True}, "invalidate/confirm"),
        ({"waive": True, "physician_request": "Dr Rossi"}, "waive"),
        ({"invalidate": True, "waive": True, "physician_request": "Dr Rossi"}, "waive"),
        ({"confirm": True, "waive": True}, "physician-request"),
        ({"confirm": True, "physician_request": "Dr Rossi"}, "physician-request"),
    ],
)
def test_an_oos_deviation_is_closed_one_way_only(
    quality: Quality, how: dict[str, Any], field: str
) -> None:
    number = _opened_by(quality, "cd105", "90")
    with pytest.raises(BadInput) as refused:
        _close(quality, number, **how)
    assert refused.value.field == field
    assert quality.show().deviations[-1].status == "open"


def test_only_an_oos_deviation_is_invalidated_confirmed_or_waived(quality: Quality) -> None:
    quality.record("cd105", "97")
    number = _open(quality, "cd105")
    for how in ({"invalidate": True}, {"confirm": True}):
        with pytest.raises(RuleViolation, match="not an out-of-specification result"):
            _close(quality, number, **how)
    with pytest.raises(BadInput) as refused:
        _close(quality, number, waive=True, physician_request="Dr Rossi")
    assert refused.value.field == "waive"


def test_investigation_results_belong_to_an_open_oos_deviation_of_that_test(
    quality: Quality,
) -> None:
    number = _opened_by(quality, "cd105", "90")
    manual = _open(quality, "cd73")
    with pytest.raises(RuleViolation, match="not an out-of-specification result"):
        quality.record("cd73", "97", investigation=manual)
    with pytest.raises(RuleViolation, match="investigates cd105, not cd90"):
        quality.record("cd90", "97", investigation=number)
    with pytest.raises(NotFound):
        quality.record("cd105", "97", investigation=999)
    with pytest.raises(BadInput) as refused:
        quality.record("cd105", "97", investigation="x")
    assert refused.value.field == "investigation"
    _close(quality, number, confirm=True)
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="closed: its investigation is over"):
        quality.record("cd105", "97", investigation=number)


def test_a_criterion_belongs_to_a_lot_and_must_exist(quality: Quality) -> None:
    with pytest.raises(BadInput) as refused:
        quality.run(
            deviations.open_deviation,
            culture=quality.culture_id,
            description="x",
            criterion="cd105",
        )
    assert refused.value.field == "criterion"
    with pytest.raises(BadInput):
        _open(quality, "cd999")


# Recorded from the code before the views moved (issue 10), which hashed a deviation's
# `--json` plus the closure: a signature stored then must still mean the same record.
@pytest.mark.parametrize(
    ("deviation", "subject", "passage", "resolution", "waived", "digest"),
    [
        (
            Deviation(
                id=7,
                culture_id=3,
                passage_id=11,
                kind="low_viability",
                description="A999926000001-C1-P2: viability 72 % is below 80 %",
                status="open",
                opened_at=datetime(2026, 11, 30, 8, 15, 30, 123456, tzinfo=UTC),
                opened_by="tom",
            ),
            "A999926000001-C1",
            "A999926000001-C1-P2",
            "recount within spec; no impact",
            False,
            "6f3da87925499875f2d6e72f12928a4ade7f676fd061edce14863349f5323e87",
        ),
        (
            Deviation(
                id=12,
                lot_id=2,
                kind="manual",
                criterion="cd105",
                description="CD105 93.5 %:\nantibody lot near expiry — ünïcode",
                status="open",
                opened_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
                opened_by="quinn",
            ),
            "A999926000001-L1",
            None,
            "accepted by QP, see CAPA-12",
            True,
            "6b158cfde49c410cb8df5a1c7f47da2a2015ceaf7c4004d65aad918ebd47c28e",
        ),
    ],
)
def test_what_a_closing_signature_hashes_is_what_it_always_hashed(
    deviation: Deviation,
    subject: str,
    passage: str | None,
    resolution: str,
    waived: bool,
    digest: str,
) -> None:
    assert (
        deviations.closing_hash(deviation, subject, passage, resolution=resolution, waived=waived)
        == digest
    )


def test_a_deviation_is_opened_with_the_severity_given_major_by_default(quality: Quality) -> None:
    plain = _open(quality, None)
    critical = _open(quality, None, severity="critical")
    severities = {d.deviation_id: d.severity for d in quality.show().deviations}
    assert severities == {plain: "major", critical: "critical"}
    with pytest.raises(BadInput, match="severity: must be one of minor, major, critical"):
        _open(quality, None, severity="catastrophic")
