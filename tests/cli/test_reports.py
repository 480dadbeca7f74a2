"""`lims report recall` as QA and the bedside use it: the notice of a recalled lot, or of a
released lot on hold, for the treating physician; any other lot is refused (1), an unknown
one not found (3), and an --out that cannot be written is bad input (2), each writing nothing.

The lab is tests.support.quality.Quality: rita releases lot L1, tom gives V01 to PT-0001,
quinn recalls the lot; tom prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lims.scenario import PATIENT_CODE
from lims.services import lots, vials
from tests.support.bench import day
from tests.support.cli import invoke, ok, refused
from tests.support.devices import null_device
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import scan_of

REASON = "endotoxin of the retained sample above limit"


def recall_prints(quality: Quality) -> list[str]:
    return [a for a in quality.audit_actions() if a == "report.recall"]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "reports"
    out.mkdir()
    return out


def _given_one(quality: Quality) -> Quality:
    released_lot(quality)
    given = f"{quality.lot_id}-V01"
    for service in (vials.issue, vials.administer):
        quality.run(service, vial=given, scan=scan_of(quality, given), patient=PATIENT_CODE)
    return quality


@pytest.fixture
def released(lab: Lab) -> Quality:
    return lab.built("reports-released", lambda: _given_one(Quality(lab)))


@pytest.fixture
def recalled(released: Quality) -> Quality:
    released.lab.login("quinn")
    released.run(lots.recall, lot=released.lot_id, password=PASSWORD, reason=REASON)
    released.lab.login("tom")
    return released


def test_report_recall_writes_the_notice_for_the_physician(
    recalled: Quality, out_dir: Path
) -> None:
    from pypdf import PdfReader

    out = out_dir / "recall.pdf"
    written = ok("report", "recall", recalled.lot_id, "--out", str(out))
    assert written == {
        "lot_id": recalled.lot_id,
        "path": str(out),
        "pages": 1,
        "sha256": written["sha256"],
    }
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert f"{recalled.lot_id}-V01 administered {PATIENT_CODE}" in text
    assert "Tom Tester (tom)" in text
    assert REASON in text
    assert "1 of 4 vials were administered" in text
    assert recall_prints(recalled) == ["report.recall"]

    again = out_dir / "again.pdf"
    said = invoke("report", "recall", recalled.lot_id, "--out", str(again))
    assert said.exit_code == 0, said.stderr
    assert said.stdout.strip() == (
        f"Recall notice of {recalled.lot_id} written to {again} (1 page)."
    )
    assert again.read_bytes().startswith(b"%PDF")


def test_report_recall_refuses_a_lot_neither_recalled_nor_held(
    released: Quality, out_dir: Path
) -> None:
    out = out_dir / "recall.pdf"
    result = invoke("report", "recall", released.lot_id, "--out", str(out))
    refused(
        result,
        1,
        f"lot {released.lot_id} is released: only a recalled lot, or a released lot on hold, "
        "has a notice for the physician",
    )
    assert list(out_dir.iterdir()) == []
    assert recall_prints(released) == []
    assert "report.hold" not in released.audit_actions()


def test_report_recall_of_a_released_lot_on_hold_writes_a_hold_notice(
    released: Quality, out_dir: Path
) -> None:
    from pypdf import PdfReader

    released.record("endotoxin", "9.5", reason="retained sample, day 3", at=day(28))
    out = out_dir / "hold.pdf"
    said = invoke("report", "recall", released.lot_id, "--out", str(out))
    assert said.exit_code == 0, said.stderr
    assert said.stdout.strip() == f"Hold notice of {released.lot_id} written to {out} (1 page)."
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    assert f"Hold notice — lot {released.lot_id} LOT ON HOLD: endotoxin failed: 9.5" in text
    assert f"{released.lot_id}-V01 administered {PATIENT_CODE}" in text
    assert "Recall notice" not in text
    assert recall_prints(released) == []
    assert released.audit_actions().count("report.hold") == 1


def test_report_recall_of_an_unknown_lot_is_not_found(recalled: Quality, out_dir: Path) -> None:
    result = invoke("report", "recall", "A999926999999-L1", "--out", str(out_dir / "r.pdf"))
    refused(result, 3, "A999926999999-L1")
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("out", ["nowhere/recall.pdf", "."])
def test_report_recall_refuses_an_out_it_cannot_write(
    recalled: Quality, out_dir: Path, out: str
) -> None:
    result = invoke("report", "recall", recalled.lot_id, "--out", str(out_dir / out))
    refused(result, 2, "out")
    assert list(out_dir.iterdir()) == []
    assert recall_prints(recalled) == []


# --- issue 12: a report never replaces anything lims did not write -----------------------------


def test_report_batch_never_replaces_the_database(released: Quality) -> None:
    """Issue 12: `lims report batch LOT --out lims.db` (any role) replaced the database."""
    database = released.settings.sqlite_path
    if database is None:
        pytest.skip("the database is a file on SQLite only")
    entries = released.lab.audit_count()
    for force in ((), ("--force",)):
        result = invoke("report", "batch", released.lot_id, "--out", str(database), *force)
        refused(result, 1, str(database.resolve()), "database")
    assert released.lab.audit_count() == entries
    ok("audit", "verify")


def test_report_batch_never_replaces_a_device(released: Quality, out_dir: Path) -> None:
    """Issue 12: run as root, `--out /dev/null` replaced the device node. Refused for any
    account; the test's own null device stands in, so a regression cannot break the machine's."""
    device = null_device(out_dir)
    for force in ((), ("--force",)):
        result = invoke("report", "batch", released.lot_id, "--out", str(device), *force)
        refused(result, 2, f"out: {device.resolve()} is a device")
    assert device.is_char_device()
    assert [a for a in released.audit_actions() if a == "report.batch"] == []


def test_report_force_replaces_only_a_report_lims_wrote(released: Quality, out_dir: Path) -> None:
    report = out_dir / "batch.pdf"
    first = ok("report", "batch", released.lot_id, "--out", str(report))
    refused(
        invoke("report", "batch", released.lot_id, "--out", str(report)),
        1,
        f"out: {report.resolve()} exists; lims replaces only a file it wrote itself (--force)",
    )
    second = ok("report", "batch", released.lot_id, "--out", str(report), "--force")
    assert second["sha256"] != first["sha256"]  # printed later: a new trail entry in it
    mine = out_dir / "mine.pdf"
    mine.write_bytes(report.read_bytes())  # the same bytes, at a path lims never wrote
    refused(
        invoke("report", "batch", released.lot_id, "--out", str(mine), "--force"),
        1,
        "is not a report lims wrote",
    )
    assert sorted(p.name for p in out_dir.iterdir()) == ["batch.pdf", "mine.pdf"]
