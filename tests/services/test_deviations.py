"""Deviations through the service: an open one blocks release; closing is a QA signature that
may waive a recorded failure of a waivable criterion, and nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lims.errors import AuditedRefusal, BadInput, NotPermitted, RuleViolation
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


def _close(quality: Quality, deviation_id: int, *, waive: bool) -> deviations.DeviationView:
    quality.lab.login("rita")
    return quality.run(
        deviations.close_deviation,
        deviation_id=deviation_id,
        resolution="assessed",
        password=PASSWORD,
        waive=waive,
    )


def test_an_open_deviation_blocks_release(quality: Quality) -> None:
    quality.record_passing()
    number = _open(quality, None)
    assert f"deviation {number} open" in " ".join(quality.evaluation().blocking)
    closed = _close(quality, number, waive=False)
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


def test_a_waiver_lets_release_proceed_past_that_result_only(quality: Quality) -> None:
    quality.record_passing()
    quality.record("cd105", "90", reason="repeat")
    quality.lab.login("tom")
    number = _open(quality, "cd105")
    _close(quality, number, waive=True)
    verdict = next(v for v in quality.evaluation().criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.waived_by) == ("fail", number)
    assert quality.evaluation().releasable
    quality.lab.login("tom")
    quality.record("cd105", "85", reason="third stain")
    assert any(reason.startswith("cd105 failed: 85 %") for reason in quality.evaluation().blocking)


@pytest.mark.parametrize(("test", "value"), [("sterility", "positive"), ("endotoxin", "10")])
def test_safety_tests_can_never_be_waived(quality: Quality, test: str, value: str) -> None:
    quality.record(test, value)
    number = _open(quality, test)
    with pytest.raises(RuleViolation, match="never be waived"):
        _close(quality, number, waive=True)


def test_only_a_deviation_naming_a_failed_criterion_waives(quality: Quality) -> None:
    quality.record("cd105", "97")
    with pytest.raises(RuleViolation, match="names no release criterion"):
        _close(quality, _open(quality, None), waive=True)
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="nothing to waive"):
        _close(quality, _open(quality, "cd105"), waive=True)


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
