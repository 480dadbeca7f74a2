"""Late entries through the services: a step dated more than records.late_entry_hours
before it is typed needs a reason, and is marked in its view, its JSON and the batch
record; a vial is given only before its expiry, however the step is dated.

The tests' labs take back-dated steps as contemporaneous (tests.support.lab); these set
the site's limit back to its default of 24 hours.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col

from lims.errors import BadInput, RuleViolation
from lims.models import Lot, Vial
from lims.scenario import PATIENT_CODE
from lims.services import cultures, reports, vials
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from lims.views import to_json
from lims.views.quality import WrittenReport
from tests.support.bench import NOW, Bench, day
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.vials import scan_of

WHY = "count sheet found in the incubator room"


@pytest.fixture
def bench(lab: Lab) -> Bench:
    """A bench whose site keeps records.late_entry_hours at its default, 24 h."""
    bench = Bench(lab)
    lab.set_site(records={"late_entry_hours": 24})
    return bench


def pdf_text(path: Path) -> str:
    """The PDF's text, its whitespace (where table cells wrap) made single spaces."""
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def written(quality: Quality, service: Callable[..., WrittenReport], out: Path) -> WrittenReport:
    """The lot's report by SERVICE, published as the command publishes it once committed."""
    report: WrittenReport = quality.run(service, lot=quality.lot_id, out=out)
    report.files.publish()
    return report


def test_a_month_of_steps_typed_today_needs_reasons_and_stays_marked(bench: Bench) -> None:
    """Why: every step of a month could be typed today with --at, and nothing showed it."""
    bench.patient()
    din = bench.aspirate().din.code
    before = bench.audit_actions()
    with pytest.raises(BadInput) as refused:
        bench.culture(din, late_reason=None)
    assert refused.value.field == "late-reason"
    assert bench.audit_actions() == before
    culture = bench.culture(din, late_reason=WHY).summary
    assert (culture.late_entry, culture.late_reason) == (True, WHY)
    with pytest.raises(BadInput) as passage_refused:
        bench.passage(culture.culture_id, day(14), late_reason=None)
    assert passage_refused.value.field == "late-reason"
    logged = bench.passage(culture.culture_id, day(14), seeded=3_000_000, late_reason=WHY)
    shown = to_json(logged)
    assert (shown["late_entry"], shown["late_reason"]) == (True, WHY)
    assert shown["entered_at"] >= NOW.isoformat().replace("+00:00", "Z")[:19]
    child = bench.run(
        cultures.split_culture,
        culture=culture.culture_id,
        seeded=100_000,
        vessels=1,
        area_cm2=25,
        at=day(15),
        late_reason=WHY,
    )
    assert child.summary.late_entry
    detail = to_json(bench.read(cultures.show_culture, culture=culture.culture_id))
    assert detail["late_entry"]
    assert detail["passages"][0]["late_entry"]
    assert "late_entry.record" in bench.audit_actions()


def test_a_step_on_time_takes_no_late_reason_and_is_not_marked(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate(
        collected_at=NOW - timedelta(hours=5), received_at=NOW - timedelta(hours=4)
    ).din.code
    with pytest.raises(BadInput) as refused:
        bench.culture(din, at=NOW - timedelta(hours=3), late_reason=WHY)
    assert refused.value.field == "late-reason"
    culture = bench.culture(din, at=NOW - timedelta(hours=3)).summary
    assert (culture.late_entry, culture.late_reason) == (False, None)


def _issued_then_expired(quality: Quality) -> str:
    """L1 released and V01 issued on day 27; the lot expired on day 28 (two days ago)."""
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    vial = f"{quality.lot_id}-V01"
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT_CODE)
    with unit_of_work(quality.settings, authenticated=False) as uow:
        uow.session.execute(update(Vial).where(col(Vial.code) == vial).values(issued_at=day(27)))
        uow.session.execute(
            update(Lot).where(col(Lot.code) == quality.lot_id).values(expires_at=day(28))
        )
    quality.lab.set_site(records={"late_entry_hours": 24})
    return vial


def test_an_administration_at_or_after_expiry_is_refused_whatever_its_reason(
    quality: Quality,
) -> None:
    """Why: an expired vial was recorded as administered by back-dating --at."""
    vial = _issued_then_expired(quality)
    scan = scan_of(quality, vial)
    for at in (day(28), utcnow()):
        with pytest.raises(RuleViolation, match="expired"):
            quality.run(
                vials.administer,
                vial=vial,
                scan=scan,
                patient=PATIENT_CODE,
                at=at,
                late_reason=WHY if at == day(28) else None,
            )


def test_an_administration_dated_before_expiry_typed_after_it_is_a_late_entry(
    quality: Quality, tmp_path: Path
) -> None:
    vial = _issued_then_expired(quality)
    scan = scan_of(quality, vial)
    at = day(28) - timedelta(hours=1)
    with pytest.raises(BadInput) as refused:
        quality.run(vials.administer, vial=vial, scan=scan, patient=PATIENT_CODE, at=at)
    assert refused.value.field == "late-reason"
    given = quality.run(
        vials.administer, vial=vial, scan=scan, patient=PATIENT_CODE, at=at, late_reason=WHY
    )
    shown = to_json(given)
    assert shown["late_entry"] is True
    [mark] = shown["late_entries"]
    assert (mark["action"], mark["reason"]) == ("vial.administered", WHY)
    assert to_json(quality.read(vials.show_vial, vial=vial))["late_entries"] == [mark]
    [state] = [v for v in to_json(quality.show())["vial_states"] if v["vial_id"] == vial]
    assert state["late_entries"] == [mark]
    out = tmp_path / "batch.pdf"
    written(quality, reports.write_batch_record, out)
    assert f"{vial} vial.administered late entry: dated" in pdf_text(out)


def test_the_batch_record_marks_the_steps_entered_late(quality: Quality, tmp_path: Path) -> None:
    quality.lab.set_site(records={"late_entry_hours": 24})
    child = quality.run(
        cultures.split_culture,
        culture=quality.culture_id,
        seeded=10_000_000,
        vessels=6,
        area_cm2=1000,
        at=day(20) + timedelta(hours=1),
        late_reason=WHY,
    ).summary.culture_id
    quality.passage(child, day(24), harvested=40_000_000, seeded=10_000_000, late_reason=WHY)
    lot = quality.formulate(child, harvested=40_000_000, vials=1, late_reason=WHY)
    assert (lot.summary.late_entry, lot.summary.late_reason) == (True, WHY)
    quality.lot_id = lot.summary.lot_id
    out = tmp_path / "batch.pdf"
    written(quality, reports.write_batch_record, out)
    text = pdf_text(out)
    assert text.count("LATE ENTRY") >= 3, text
    assert "P3 late entry: harvested" in text


def test_a_harvest_time_corrected_weeks_back_is_a_late_entry(bench: Bench) -> None:
    """A passage logged on time, its --at then corrected to two weeks before: the record now
    states a time typed long after it, and is marked like any late entry."""
    bench.patient()
    received = NOW - timedelta(days=20)
    din = bench.aspirate(
        collected_at=received - timedelta(hours=2), received_at=received, late_reason=WHY
    ).din.code
    culture = bench.culture(din, at=NOW - timedelta(days=18), late_reason=WHY)
    code = culture.summary.culture_id
    on_time = bench.passage(code, NOW - timedelta(hours=1), seeded=3_000_000, late_reason=None)
    assert not on_time.late_entry
    passage = on_time.passage_id
    earlier = NOW - timedelta(days=6)
    with pytest.raises(BadInput) as refused:
        bench.run(cultures.correct_passage, passage=passage, at=earlier, reason="sheet date")
    assert refused.value.field == "late-reason"
    corrected = bench.run(
        cultures.correct_passage, passage=passage, at=earlier, reason="sheet date", late_reason=WHY
    )
    shown = to_json(corrected.passage)
    assert (shown["late_entry"], shown["late_reason"]) == (True, WHY)
