"""Issue 17: label counts that do not lie, vials that take no label, a rejected lot's vials,
divisions of a DIN, and the ISBT 128 Data Matrix accepted wherever a vial is scanned.

The lab is tests.support.quality.Quality: lot L1 of four vials for PT-0001.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from lims.domain.ids import LotId
from lims.models import Deviation, LabelReconciliation, Vial
from lims.services import lots
from lims.uow import unit_of_work
from tests.support.cli import invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import datamatrix_of, give, vial_ids

PATIENT = "PT-0001"
PRODUCT_CODE = "S1234"


@pytest.fixture
def quality(lab: Lab) -> Quality:
    return lab.built("quality", lambda: Quality(lab))


@pytest.fixture
def released(lab: Lab) -> Quality:
    return lab.built("labels-released", lambda: released_lot(Quality(lab)))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "labels"
    directory.mkdir()
    return directory


def print_labels(lot: str, fmt: str, out: Path, *extra: str) -> Any:
    return invoke("label", "print", lot, "--format", fmt, "--out", str(out), *extra)


def counts(lot: str) -> list[int]:
    return [vial["labels_printed"] for vial in ok("vial", "list", lot)]


def lot_entries(lot: str, action: str) -> list[dict[str, Any]]:
    return [
        entry["new"]
        for entry in ok("audit", "log", "--entity", f"lot:{lot}")
        if entry["action"] == action
    ]


def fake_lp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """An `lp` (and `cancel`) first on PATH running BODY (sh); the file they log calls in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "lp.log"
    for name, script in (("lp", body), ("cancel", "exit 0")):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\ncat > /dev/null\n{script}\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


# --- a print counts only once it is whole ----------------------------------------------------


def test_a_preview_is_watermarked_audited_as_a_preview_and_counts_nothing(
    released: Quality, out: Path
) -> None:
    lot = released.lot_id
    job = ok("label", "print", lot, "--format", "png", "--out", str(out), "--preview")
    assert job["preview"] is True
    assert sorted(path.name for path in out.iterdir()) == [
        f"{vial}-preview.png" for vial in vial_ids(lot)
    ]
    assert counts(lot) == [0, 0, 0, 0]
    assert lot_entries(lot, "label.print") == []
    [entry] = lot_entries(lot, "label.preview")
    assert (entry["count"], entry["vials"]) == (0, vial_ids(lot))
    # The first real print after a preview is no reprint.
    first = ok("label", "print", lot, "--format", "png", "--out", str(out))
    assert first["reprints"] == {}
    assert counts(lot) == [1, 1, 1, 1]


def test_a_preview_is_never_sent_to_a_printer(released: Quality, out: Path) -> None:
    result = print_labels(released.lot_id, "pdf", out, "--preview", "--printer", "zebra1")
    refused(result, 2, "printer", "preview")
    assert list(out.iterdir()) == []


def test_a_print_lp_refuses_counts_nothing_and_leaves_no_file(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = released.lot_id
    fake_lp(
        tmp_path,
        monkeypatch,
        'echo "lp: The printer or class does not exist." >&2\necho "  (queue nowhere)" >&2\nexit 1',
    )
    # lp's two lines of refusal are told as one.
    line = refused(print_labels(lot, "zpl", out, "--printer", "nowhere"), 5, "lp")
    assert "The printer or class does not exist. (queue nowhere)" in line
    assert "no label was counted" in line
    assert list(out.iterdir()) == []
    assert counts(lot) == [0, 0, 0, 0]
    assert lot_entries(lot, "label.print") == []


def test_a_failed_reprint_replaces_no_earlier_file(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = released.lot_id
    ok("label", "print", lot, "--format", "zpl", "--out", str(out))
    before = (out / f"{lot}-labels.zpl").read_bytes()
    fake_lp(tmp_path, monkeypatch, "exit 1")
    refused(print_labels(lot, "zpl", out, "--printer", "zebra1", "--force"), 5, "lp")
    assert (out / f"{lot}-labels.zpl").read_bytes() == before
    assert counts(lot) == [1, 1, 1, 1]


def test_when_lp_refuses_a_later_file_the_jobs_it_accepted_are_cancelled(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = released.lot_id
    # Accepts the first file of the print, refuses the next.
    log = fake_lp(
        tmp_path,
        monkeypatch,
        f'if [ -e "{tmp_path}/once" ]; then exit 1; fi\ntouch "{tmp_path}/once"\n'
        'echo "request id is zebra1-7 (1 file(s))"',
    )
    line = refused(print_labels(lot, "png", out, "--printer", "zebra1"), 5, "lp")
    assert "zebra1-7" in line
    assert "cancel zebra1-7" in log.read_text()
    assert counts(lot) == [0, 0, 0, 0]
    assert list(out.iterdir()) == []


def test_a_print_lp_accepted_counts_and_records_lps_answer(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lot = released.lot_id
    log = fake_lp(tmp_path, monkeypatch, 'echo "request id is zebra1-3 (1 file(s))"')
    job = ok("label", "print", lot, "--format", "zpl", "--out", str(out), "--printer", "zebra1")
    assert job["printer_jobs"] == ["request id is zebra1-3 (1 file(s))"]
    assert "-o raw" in log.read_text()
    assert counts(lot) == [1, 1, 1, 1]
    [entry] = lot_entries(lot, "label.print")
    assert entry["printer_jobs"] == job["printer_jobs"]
    assert len(entry["sha256"]) == 1


# --- which vials take a label -----------------------------------------------------------------


def test_an_administered_vial_gets_no_label(released: Quality, out: Path) -> None:
    lot = released.lot_id
    given = vial_ids(lot)[0]
    give(released, given)
    released.lab.login("tom")
    refused(print_labels(lot, "png", out, "--vial", given), 1, given, "administered")
    refused(print_labels(lot, "png", out), 1, given)
    assert list(out.iterdir()) == []


def test_a_rejected_lots_vials_are_rejected_and_can_only_be_destroyed(
    quality: Quality, out: Path
) -> None:
    lot = quality.lot_id
    quality.lab.login("quinn")
    ok("lot", "reject", lot, "--reason", "sterility failed", "--password-stdin", input=PASSWORD)
    assert {vial["status"] for vial in ok("vial", "list", lot)} == {"rejected"}
    quality.lab.login("tom")
    vial = vial_ids(lot)[0]
    entries = [
        entry
        for entry in ok("audit", "log", "--entity", f"vial:{vial}")
        if entry["action"] == "vial.reject"
    ]
    assert [entry["new"]["status"] for entry in entries] == ["rejected"]
    ok("vial", "destroy", vial, "--reason", "lot rejected")
    job = ok(
        "label", "print", lot, "--format", "svg", "--out", str(out), "--vial", vial_ids(lot)[1]
    )
    assert job["count"] == 1


def test_a_recalled_vials_label_says_recalled(released: Quality) -> None:
    from lims.services.printing import BANNERS, banner_for

    lot = released.lot_id
    released.lab.login("quinn")
    ok("lot", "recall", lot, "--reason", "donor result", "--password-stdin", input=PASSWORD)
    with unit_of_work(released.settings, write=False, authenticated=False) as uow:
        vial = uow.session.exec(select(Vial).where(col(Vial.code) == vial_ids(lot)[0])).one()
        assert vial.status == "recalled"
        # Whatever the lot shows (expired, say), a recalled vial's label says recalled.
        assert banner_for(vial, "expired") == BANNERS["recalled"]


# --- divisions ---------------------------------------------------------------------------------


def test_vials_are_divisions_of_their_din_and_sister_lots_take_the_next(quality: Quality) -> None:
    din = LotId.parse(quality.lot_id).din.code
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        rows = uow.session.exec(select(Vial).order_by(col(Vial.id))).all()
        assert [(vial.din, vial.division) for vial in rows] == [(din, n) for n in (1, 2, 3, 4)]
        assert lots.next_divisions(uow.session, din, 2) == [5, 6]
        assert lots.next_divisions(uow.session, "A999926999999", 1) == [1]
    [entry] = lot_entries(quality.lot_id, "lot.formulate")
    assert entry["divisions"] == dict(zip(vial_ids(quality.lot_id), [1, 2, 3, 4], strict=True))


# --- scanning the Data Matrix and the DIN -----------------------------------------------------


def test_a_vials_data_matrix_verifies_it_where_the_site_has_a_product_code(
    released: Quality,
) -> None:
    released.lab.set_site(labels={"product_code": PRODUCT_CODE})
    released.lab.login("tom")
    vial = vial_ids(released.lot_id)[2]
    result = ok("vial", "verify", "--scan", datamatrix_of(released, vial), "--patient", PATIENT)
    assert (result["result"], result["vial_id"]) == ("MATCH", vial)


def test_a_data_matrix_of_another_product_or_collection_type_does_not_match(
    released: Quality,
) -> None:
    released.lab.set_site(labels={"product_code": "S9999"})
    released.lab.login("tom")
    vial = vial_ids(released.lot_id)[0]
    result = invoke("vial", "verify", "--scan", datamatrix_of(released, vial), "--patient", PATIENT)
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout
    assert "S1234 1 A0, not S9999" in result.stdout


def test_the_dins_code_128_is_not_a_vials_code(released: Quality) -> None:
    din = LotId.parse(released.lot_id).din
    result = invoke("vial", "verify", "--scan", din.isbt128, "--patient", PATIENT)
    refused(result, 2, "scan", "donation's DIN", "2-D code")


# --- reconciling the count --------------------------------------------------------------------


def test_a_balanced_label_count_is_reconciled(released: Quality, out: Path) -> None:
    lot = released.lot_id
    ok("label", "print", lot, "--format", "zpl", "--out", str(out))
    ok(
        "label",
        "print",
        lot,
        "--format",
        "zpl",
        "--out",
        str(out),
        "--force",
        "--vial",
        vial_ids(lot)[0],
    )
    view = ok("label", "reconcile", lot, "--applied", "4", "--destroyed", "1")
    assert (view["printed"], view["balanced"], view["deviation"]) == (5, True, None)
    [entry] = lot_entries(lot, "label.reconcile")
    assert entry == {
        "printed": 5,
        "applied": 4,
        "destroyed": 1,
        "balanced": True,
        "deviation": None,
    }


def test_a_count_that_does_not_balance_is_refused_and_opens_a_deviation(
    released: Quality, out: Path
) -> None:
    lot = released.lot_id
    ok("label", "print", lot, "--format", "zpl", "--out", str(out))
    line = refused(invoke("label", "reconcile", lot, "--applied", "3", "--destroyed", "0"), 1)
    assert "4 printed, 3 applied, 0 destroyed (+1)" in line
    assert "deviation" in line
    with unit_of_work(released.settings, write=False, authenticated=False) as uow:
        [row] = uow.session.exec(select(LabelReconciliation)).all()
        assert (row.printed, row.applied, row.destroyed) == (4, 3, 0)
        deviation = uow.session.get(Deviation, row.deviation_id)
        assert deviation is not None
        assert (deviation.kind, deviation.status) == ("label_count", "open")
    [entry] = lot_entries(lot, "label.reconcile")
    assert entry["balanced"] is False


@pytest.mark.parametrize(("option", "value"), [("--applied", "-1"), ("--destroyed", "-3")])
def test_a_negative_label_count_is_bad_input(released: Quality, option: str, value: str) -> None:
    other = "--destroyed" if option == "--applied" else "--applied"
    result = invoke("label", "reconcile", released.lot_id, option, value, other, "0")
    refused(result, 2, option.removeprefix("--"))
    assert lot_entries(released.lot_id, "label.reconcile") == []
