"""Printed reports through the service: the recall notice for the treating physician, and the
batch record showing every QC result, deviation outcome, hold and recall.

The lab is tests.support.quality.Quality: tom formulated lot L1 of four vials for PT-0001;
rita releases it and quinn, the other QA user, holds, lifts and recalls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from lims.errors import BadInput, NotFound, RuleViolation
from lims.scenario import PATIENT_CODE
from lims.services import deviations, lookup, lots, reports, vials
from lims.timeutil import show_time
from lims.uow import unit_of_work
from lims.views.quality import WrittenReport
from tests.support.lab import PASSWORD
from tests.support.quality import Quality
from tests.support.vials import scan_of

# Markup characters in what was typed are printed as typed.
REASON = "sterility of the retained sample positive <b>& rising</b>"


def pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def administered_at(quality: Quality, vial: str) -> str:
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        return show_time(lookup.vial(uow.session, vial).administered_at, quality.settings.tz)


def audit_of(quality: Quality, action: str) -> list[dict[str, object]]:
    return [e.new or {} for e in quality.scenario.audit_trail() if e.action == action]


def written(quality: Quality, service: Callable[..., WrittenReport], out: Path) -> WrittenReport:
    """The lot's report by SERVICE, published as the command publishes it once committed."""
    report: WrittenReport = quality.run(service, lot=quality.lot_id, out=out)
    report.files.publish()
    return report


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """Where reports are written: apart from the station's database."""
    out = tmp_path / "reports"
    out.mkdir()
    return out


@pytest.fixture
def released(quality: Quality) -> Quality:
    quality.record_passing()
    quality.release()
    return quality


@pytest.fixture
def recalled(released: Quality) -> Quality:
    """L1 released; V01 given to PT-0001 and V02 issued by tom; then held, lifted, recalled."""
    quality = released
    quality.lab.login("tom")
    for vial in (f"{quality.lot_id}-V01", f"{quality.lot_id}-V02"):
        scan = scan_of(quality, vial)
        quality.run(vials.issue, vial=vial, scan=scan, patient=PATIENT_CODE)
    first = f"{quality.lot_id}-V01"
    quality.run(vials.administer, vial=first, scan=scan_of(quality, first), patient=PATIENT_CODE)
    quality.lab.login("quinn")
    for service, reason in ((lots.hold, "shipper alarm"), (lots.unhold, "alarm was a fault")):
        quality.run(service, lot=quality.lot_id, password=PASSWORD, reason=reason)
    quality.run(lots.recall, lot=quality.lot_id, password=PASSWORD, reason=REASON)
    quality.lab.login("tom")
    return quality


# --- the recall notice -----------------------------------------------------------------------


def test_the_recall_notice_names_who_gave_which_vial_and_that_the_rest_are_recalled(
    recalled: Quality, out_dir: Path
) -> None:
    out = out_dir / "recall.pdf"
    report = written(recalled, reports.write_recall_notice, out)
    assert (report.lot_id, report.path, report.pages) == (recalled.lot_id, out, 1)
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    [entry] = audit_of(recalled, "report.recall")
    assert entry == {"file": str(out.resolve()), "pages": 1, "sha256": report.sha256}

    text = pdf_text(out)
    detail = recalled.show().summary
    settings = recalled.settings
    for expected in (
        settings.facility.name,
        f"Recall notice — lot {recalled.lot_id}",
        f"LOT RECALLED: {REASON}",
        detail.din.display,
        settings.labels.product,
        "Quinn Tester (quinn)",
        f"reason {REASON}",
        f"{recalled.lot_id}-V01 administered {PATIENT_CODE} "
        f"{administered_at(recalled, f'{recalled.lot_id}-V01')} Tom Tester (tom)",
        f"{recalled.lot_id}-V02 recalled",
        f"{recalled.lot_id}-V03 recalled",
        f"{recalled.lot_id}-V04 recalled",
        f"1 of 4 vials were administered to patient {PATIENT_CODE}.",
        "may only be destroyed",
        "printed",
        "by Tom Tester (tom)",
        "page 1 of 1",
    ):
        assert expected in text, (expected, text)


@pytest.mark.parametrize("stage", ["quarantine", "released"])
def test_a_lot_not_recalled_has_no_recall_notice(
    quality: Quality, out_dir: Path, stage: str
) -> None:
    if stage == "released":
        quality.record_passing()
        quality.release()
        quality.lab.login("tom")
    out = out_dir / "recall.pdf"
    with pytest.raises(RuleViolation, match=f"lot {quality.lot_id} is {stage}, not recalled"):
        quality.run(reports.write_recall_notice, lot=quality.lot_id, out=out)
    assert list(out_dir.iterdir()) == []
    assert audit_of(quality, "report.recall") == []


def test_the_recall_notice_checks_its_path_and_its_lot(recalled: Quality, out_dir: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        recalled.run(reports.write_recall_notice, lot=recalled.lot_id, out=out_dir / "no" / "r.pdf")
    with pytest.raises(BadInput, match="not the directory"):
        recalled.run(reports.write_recall_notice, lot=recalled.lot_id, out=out_dir)
    with pytest.raises(NotFound):
        recalled.run(reports.write_recall_notice, lot="A999926999999-L1", out=out_dir / "r.pdf")
    assert list(out_dir.iterdir()) == []


# --- the batch record ------------------------------------------------------------------------


def test_the_batch_record_shows_every_result_with_its_status_and_deviation(
    quality: Quality, out_dir: Path
) -> None:
    quality.record_passing()
    invalidated = _opened_by(quality, "cd105", "90", reason="second stain")
    quality.record("cd105", "97", investigation=invalidated)
    _close(quality, invalidated, invalidate=True)
    waived = _opened_by(quality, "cd90", "80", reason="third stain")
    _close(quality, waived, confirm=True, waive=True, physician_request="Dr Rossi, 2026-12-01")
    investigated = _opened_by(quality, "mycoplasma", "positive", reason="repeat")
    quality.record("mycoplasma", "negative", investigation=investigated)
    out = out_dir / "batch.pdf"
    written(quality, reports.write_batch_record, out)

    text = pdf_text(out)
    assert "release specification version 1" in text
    for expected in (
        f"cd105 90 % INVALIDATED {invalidated}",
        f"cd105 97 % valid {invalidated}",
        f"mycoplasma positive valid {investigated}",
        f"mycoplasma negative INVESTIGATION {investigated}",
        f"cd90 80 % valid {waived}",
        f"{invalidated} {quality.lot_id} closed cd105 out of specification",
        "invalidated — pipetting error proven",
        "confirmed Dr Rossi, 2026-12-01",
        "second stain",
    ):
        assert expected in text, (expected, text)
    assert "RECALLED" not in text


def test_the_batch_record_of_a_recalled_lot_says_so_and_shows_its_holds(
    recalled: Quality, out_dir: Path
) -> None:
    out = out_dir / "batch.pdf"
    written(recalled, reports.write_batch_record, out)
    text = pdf_text(out)
    assert f"Batch record — lot {recalled.lot_id} RECALLED " in text
    assert f"by Quinn Tester (quinn): {REASON}" in text
    assert "status RECALLED" in text
    for expected in ("shipper alarm", "alarm was a fault", "by quinn"):
        assert expected in text, (expected, text)


def _opened_by(quality: Quality, test: str, value: str, **values: object) -> int:
    """Record a failing result as tom; the OOS deviation it opened."""
    quality.lab.login("tom")
    quality.record(test, value, **values)
    [opened] = [d for d in quality.show().deviations if d.status == "open" and d.kind == "oos"]
    return opened.deviation_id


def _close(quality: Quality, deviation_id: int, **how: object) -> None:
    quality.lab.login("rita")
    quality.run(
        deviations.close_deviation,
        deviation_id=deviation_id,
        resolution="pipetting error proven",
        password=PASSWORD,
        **how,
    )
