"""Printed reports through the service: the recall notice for the treating physician, and the
batch record showing every QC result, deviation outcome, hold and recall.

The lab is tests.support.quality.Quality: tom formulated lot L1 of four vials for PT-0001;
rita releases it and quinn, the other QA user, holds, lifts and recalls it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from lims.errors import BadInput, NotFound, RuleViolation
from lims.scenario import PATIENT_CODE
from lims.services import deviations, events, lookup, lots, reports, vials
from lims.timeutil import show_time, utcnow
from lims.uow import unit_of_work
from lims.views.quality import WrittenReport
from tests.support.bench import day
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, Quality, released_lot
from tests.support.vials import give, scan_of

# Markup characters in what was typed are printed as typed.
REASON = "sterility of the retained sample positive <b>& rising</b>"
PHYSICIAN = "Dr A. Rossi <neurology>"


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
def released(lab: Lab) -> Quality:
    """L1 released by rita; tom logged in."""
    return lab.built("reports-released-lot", lambda: released_lot(Quality(lab)))


@pytest.fixture
def recalled(released: Quality) -> Quality:
    """L1 released; V01 given to PT-0001 and V02 issued by tom; then held, lifted, recalled."""
    quality = released
    quality.lab.login("tom")
    for vial in (f"{quality.lot_id}-V01", f"{quality.lot_id}-V02"):
        scan = scan_of(quality, vial)
        quality.run(vials.issue, vial=vial, scan=scan, patient=PATIENT_CODE)
    first = f"{quality.lot_id}-V01"
    quality.run(
        vials.administer,
        vial=first,
        scan=scan_of(quality, first),
        patient=PATIENT_CODE,
        route="intraspinal",
        physician=PHYSICIAN,
    )
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
        f"{administered_at(recalled, f'{recalled.lot_id}-V01')} Tom Tester (tom) intraspinal "
        f"{PHYSICIAN}",
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


@pytest.mark.parametrize("stage", ["quarantine", "quarantine on hold", "released"])
def test_a_lot_neither_recalled_nor_released_and_held_has_no_notice(
    quality: Quality, out_dir: Path, stage: str
) -> None:
    if stage == "released":
        quality.record_passing()
        quality.release()
    if stage == "quarantine on hold":  # no vial of it can have reached a patient
        quality.lab.login("quinn")
        quality.run(lots.hold, lot=quality.lot_id, password=PASSWORD, reason="incubator alarm")
        assert quality.show().on_hold
    quality.lab.login("tom")
    out = out_dir / "recall.pdf"
    status = stage.split()[0]
    with pytest.raises(
        RuleViolation,
        match=f"lot {quality.lot_id} is {status}: only a recalled lot, or a released lot on "
        "hold, has a notice for the physician",
    ):
        quality.run(reports.write_recall_notice, lot=quality.lot_id, out=out)
    assert list(out_dir.iterdir()) == []
    assert audit_of(quality, "report.recall") == audit_of(quality, "report.hold") == []


def test_a_release_whose_meaning_reads_recalled_is_no_recall(
    quality: Quality, out_dir: Path
) -> None:
    """QA types a release's meaning: one reading "recalled: ..." printed a recall notice for a
    released lot, on hold or not, and a batch record saying RECALLED."""
    quality.record_passing()
    quality.lab.login("rita")
    quality.run(lots.release, lot=quality.lot_id, password=PASSWORD, meaning="recalled: typo")
    quality.lab.login("tom")
    out = out_dir / "notice.pdf"
    with pytest.raises(RuleViolation, match=f"lot {quality.lot_id} is released: only a recalled"):
        quality.run(reports.write_recall_notice, lot=quality.lot_id, out=out)
    assert list(out_dir.iterdir()) == []
    assert audit_of(quality, "report.recall") == []
    batch = out_dir / "batch.pdf"
    written(quality, reports.write_batch_record, batch)
    assert "RECALLED" not in pdf_text(batch)
    quality.lab.login("quinn")
    quality.run(lots.hold, lot=quality.lot_id, password=PASSWORD, reason="incubator alarm")
    quality.lab.login("tom")
    written(quality, reports.write_recall_notice, out)
    text = pdf_text(out)
    assert f"Hold notice — lot {quality.lot_id}" in text
    assert "RECALLED" not in text
    assert audit_of(quality, "report.recall") == []


@pytest.fixture
def held(released: Quality) -> Quality:
    """L1 released; V01 given to PT-0001 by tom, intraspinal, on Dr Rossi's order; then the
    final sterility read comes back positive: an OOS deviation holds the lot."""
    quality = released
    quality.lab.login("tom")
    give(quality, f"{quality.lot_id}-V01", route="intraspinal", physician=PHYSICIAN)
    quality.record("sterility", "positive", reason="final 14-day read", at=day(28))
    assert quality.show().on_hold
    return quality


def test_a_released_lot_on_hold_gets_a_hold_notice_for_the_physician(
    held: Quality, out_dir: Path
) -> None:
    out = out_dir / "hold.pdf"
    report = written(held, reports.write_recall_notice, out)
    [entry] = audit_of(held, "report.hold")
    assert entry == {"file": str(out.resolve()), "pages": report.pages, "sha256": report.sha256}
    assert audit_of(held, "report.recall") == []
    text = pdf_text(out)
    reasons = held.show().hold_reasons
    assert any("sterility" in reason for reason in reasons)
    for expected in (
        f"Hold notice — lot {held.lot_id}",
        f"LOT ON HOLD: {' '.join(reasons)}",
        f"held because {'; '.join(reasons)}",
        f"{held.lot_id}-V01 administered {PATIENT_CODE} "
        f"{administered_at(held, f'{held.lot_id}-V01')} Tom Tester (tom) intraspinal {PHYSICIAN}",
        f"{held.lot_id}-V02 released",
        f"1 of 4 vials were administered to patient {PATIENT_CODE}.",
        "is held with the lot: it may not be given to any patient",
        "QA decides whether to recall the lot",
        f"hold notice of lot {held.lot_id}",
    ):
        assert expected in text, (expected, text)
    for absent in ("Recall notice", "RECALLED", "recalled with the lot", "may only be destroyed"):
        assert absent not in text, absent


def test_once_recalled_the_held_lot_gets_the_recall_notice(held: Quality, out_dir: Path) -> None:
    held.lab.login("quinn")
    held.run(lots.recall, lot=held.lot_id, password=PASSWORD, reason="sterility positive")
    held.lab.login("tom")
    out = out_dir / "recall.pdf"
    written(held, reports.write_recall_notice, out)
    text = pdf_text(out)
    assert f"Recall notice — lot {held.lot_id}" in text
    assert "LOT RECALLED: sterility positive" in text
    assert "Hold notice" not in text
    assert f"intraspinal {PHYSICIAN}" in text


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


# --- issue 13: administration details, follow-up, a release on interim results ---------------


def test_the_batch_record_shows_how_each_vial_was_given_and_what_followed(
    held: Quality, out_dir: Path
) -> None:
    vial = f"{held.lot_id}-V01"
    observed = held.run(
        events.record_event,
        patient=PATIENT_CODE,
        at=utcnow(),
        kind="observation",
        description="walks unaided <b>at 1 week</b>",
    )
    reaction = held.run(
        events.record_event,
        patient=PATIENT_CODE,
        vial=vial,
        at=utcnow(),
        kind="adverse_event",
        severity="severe",
        serious=True,
        related="probable",
        description="meningism",
    )
    [opened] = reaction.deviations

    def shown(moment: datetime) -> str:
        return show_time(moment, held.settings.tz)

    out = out_dir / "batch.pdf"
    written(held, reports.write_batch_record, out)
    text = pdf_text(out)
    given_at = administered_at(held, vial)
    for expected in (
        f"{vial} administered 40,000,000 2 {given_at} by tom intraspinal {PHYSICIAN} —",
        f"{held.lot_id}-V02 released 40,000,000 2",
        "15. Follow-up # occurred vial event description recorded deviations",
        f"{observed.event_id} {shown(observed.occurred_at)} — observation walks unaided "
        f"<b>at 1 week</b> {shown(observed.recorded_at)} by tom —",
        f"{reaction.event_id} {shown(reaction.occurred_at)} {vial} adverse_event, severe, "
        f"SERIOUS, related: probable meningism {shown(reaction.recorded_at)} by tom {opened}",
        f"Event {reaction.event_id}: serious, relation to the product probable: an expedited "
        "safety report may be due (21 CFR 312.32; EU Regulation 536/2014).",
        "16. Audit trail of this lot",
        f"event.record event:{reaction.event_id}",
        f"event.record event:{observed.event_id}",
    ):
        assert expected in text, (expected, text)


def test_the_batch_record_of_a_lot_never_followed_up_says_so(
    released: Quality, out_dir: Path
) -> None:
    released.lab.login("tom")
    out = out_dir / "batch.pdf"
    written(released, reports.write_batch_record, out)
    text = pdf_text(out)
    # A page's footer may fall between the heading and its line.
    heading = text.index("15. Follow-up")
    assert text.index("No follow-up event recorded.", heading) < text.index("16. Audit trail")
    assert "FINAL RESULTS PENDING" not in text
    assert "interim results" not in text


def _released_on_interim_results(quality: Quality) -> None:
    """L1 with every result in but sterility's, started pending, both interim tests negative,
    released by rita on them."""
    for test, value in PASSING.items():
        if test != "sterility":
            quality.record(test, value)
    for test in ("gram_stain", "sterility_interim"):
        quality.record(test, "negative", method="Gram stain / BacT")
    quality.record("sterility", "pending", method="BacT/ALERT, 14 d")
    quality.lab.login("rita")
    quality.run(lots.release, lot=quality.lot_id, password=PASSWORD)


def test_the_batch_record_shows_a_release_on_interim_results_and_its_completion(
    quality: Quality, out_dir: Path
) -> None:
    """What `lot release` with final results pending and `lot complete` store, and each
    vial's acknowledgement at issue, as the batch record prints them: the tests pending while
    they are, final results in once recorded (it said pending until QA completed the release),
    then the completion."""
    _released_on_interim_results(quality)
    quality.lab.login("tom")
    vial, other = f"{quality.lot_id}-V01", f"{quality.lot_id}-V02"
    quality.run(
        vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT_CODE,
        acknowledge_pending=True,
    )  # fmt: skip
    text = _batch_text(quality, out_dir / "pending.pdf")
    assert "RELEASED WITH FINAL RESULTS PENDING: sterility; the release is not completed" in text
    assert (
        "release released on interim results, final results pending: sterility; not "
        "completed: QA has not yet reviewed the final results"
    ) in text
    assert f"{vial} issued 40,000,000 2 — — — sterility" in text
    assert f"{other} released 40,000,000 2 — — — —" in text

    quality.record("sterility", "negative", at=day(28), method="BacT/ALERT, 14 d")
    text = _batch_text(quality, out_dir / "final.pdf")
    # The release's signature still says what was pending when it was signed.
    assert "FINAL RESULTS PENDING" not in text
    assert "RELEASED ON INTERIM RESULTS: final results in; the release is not completed" in text
    assert (
        "release released on interim results (sterility pending at release); final results "
        "in, not completed: QA has not yet reviewed them"
    ) in text

    quality.lab.login("quinn")
    completed = quality.run(lots.complete, lot=quality.lot_id, password=PASSWORD)
    completed_at = next(s for s in completed.signatures if "reviewed" in s.meaning).signed_at
    text = _batch_text(quality, out_dir / "completed.pdf")
    assert "RELEASED WITH FINAL RESULTS PENDING" not in text
    assert "RELEASED ON INTERIM RESULTS" not in text
    assert (
        "final results pending: sterility; completed "
        f"{show_time(completed_at, quality.settings.tz)} by quinn: final results reviewed"
    ) in text
    assert f"{vial} issued 40,000,000 2 — — — sterility" in text  # acknowledged, for good
    assert f"{other} released 40,000,000 2 — — — —" in text


def _batch_text(quality: Quality, out: Path) -> str:
    quality.lab.login("tom")
    written(quality, reports.write_batch_record, out)
    return pdf_text(out)


def test_the_batch_record_prints_lists_edited_outside_lims_as_they_stand(
    released: Quality, out_dir: Path
) -> None:
    """A lot's tests pending at release and a vial's acknowledged ones, edited by hand into
    text that is no list: lot show and vial show print them as they stand (`audit verify`
    names the rows); the batch record failed with an internal error."""
    vial = f"{released.lot_id}-V01"
    released.sql(
        "UPDATE lots SET pending_at_release = 'sterility' WHERE code = :c", c=released.lot_id
    )
    released.sql("UPDATE vials SET acknowledged_pending = '5' WHERE code = :c", c=vial)
    text = _batch_text(released, out_dir / "batch.pdf")
    assert "RELEASED WITH FINAL RESULTS PENDING" not in text
    assert "released on interim results (sterility pending at release)" in text
    assert f"{vial} released 40,000,000 2 — — — 5" in text


def test_the_batch_record_prints_a_follow_up_description_of_any_length_accepted(
    released: Quality, out_dir: Path
) -> None:
    """An event's description of 2,000 characters, as many as event record accepts, is taller
    than a page in its column: report batch failed (reportlab's LayoutError, exit 70)."""
    released.lab.login("tom")
    vial = f"{released.lot_id}-V01"
    give(released, vial)
    description = " ".join(f"w{n:03d}" for n in range(399)) + " last."
    assert len(description) == 2000
    released.run(
        events.record_event,
        patient=PATIENT_CODE,
        vial=vial,
        at=utcnow(),
        kind="adverse_event",
        severity="mild",
        description=description,
    )
    text = _batch_text(released, out_dir / "batch.pdf")
    follow_up = text[text.index("15. Follow-up") : text.index("16. Audit trail")]
    assert all(word in follow_up for word in description.split())
