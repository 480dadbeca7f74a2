"""Issue 17: labels through a real CUPS queue, decoded from what the queue delivered.

`.ci/run` sets up CUPS (`.ci/cups-queues`): a PDF printer (cups-pdf, writing into
PRINT_QUEUE_PDF_OUT) and a raw queue sending to a stand-in for a networked Zebra, which
appends what arrives to PRINT_QUEUE_RAW_OUT. A sheet of cryovial labels goes to the PDF
printer and a ZPL batch of bag labels to the raw queue through `lims label print
--printer`; the PDF that cups-pdf wrote is rasterised and the ZPL drawn by zpl-core, and
every vial's code is decoded with zxing-cpp. A print that CUPS refuses (a queue out of
service, PRINT_QUEUE_REJECTING, or one that does not exist) fails with lp's own reason and
counts nothing. Without those queues (a developer's machine without CUPS) the tests are
skipped, saying so.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lims.domain import payload
from lims.domain.ids import LotId
from tests.support import symbols
from tests.support.cli import invoke, ok, refused
from tests.support.lab import Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import vial_ids

PATIENT = "PT-0001"
WAIT_SECONDS = 60
# The tests print the same lot through shared queues: one worker runs them, one at a time.
pytestmark = pytest.mark.xdist_group("print-queue")


def _queue(kind: str) -> tuple[str, Path]:
    name, out = os.environ.get(f"PRINT_QUEUE_{kind}"), os.environ.get(f"PRINT_QUEUE_{kind}_OUT")
    if not name or not out:
        pytest.skip(f"no CUPS {kind.lower()} queue here (.ci/cups-queues sets one up)")
    return name, Path(out)


@pytest.fixture
def released(lab: Lab) -> Quality:
    return lab.built("labels-released", lambda: released_lot(Quality(lab)))


def _wait_for(found: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if callable(found) and found():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} did not arrive within {WAIT_SECONDS} s")


def assert_vial_codes(found: list[symbols.Found], lot: str) -> None:
    """Each label's QR code names its vial, the lot's DIN and the patient, in order."""
    texts = [text for page in found for kind, text in page if kind == "QRCode"]
    scanned = [payload.decode(text) for text in texts]
    assert sorted(s.vial_id for s in scanned) == vial_ids(lot)
    assert {(s.din, s.patient) for s in scanned} == {(LotId.parse(lot).din.code, PATIENT)}


def test_a_label_sheet_printed_to_a_pdf_queue_decodes_to_every_vial(
    released: Quality, tmp_path: Path
) -> None:
    queue, out = _queue("PDF")
    lot = released.lot_id
    started = time.time()
    before = set(out.glob("*.pdf"))

    def delivered() -> list[Path]:
        return [
            path for path in out.glob(f"{lot}-labels*.pdf")
            if path not in before or path.stat().st_mtime >= started
        ]  # fmt: skip

    job = ok("label", "print", lot, "--format", "pdf", "--out", str(tmp_path), "--printer", queue)
    assert job["printer_jobs"][0].startswith(f"request id is {queue}-")
    _wait_for(lambda: delivered() and delivered()[0].stat().st_size > 0, "the PDF")
    [path] = delivered()
    _wait_for(lambda: path.read_bytes().rstrip().endswith(b"%%EOF"), "the whole PDF")
    assert_vial_codes(symbols.decode_pdf(path.read_bytes()), lot)
    assert [vial["labels_printed"] for vial in ok("vial", "list", lot)] == [1, 1, 1, 1]


def test_a_zpl_batch_printed_to_a_raw_queue_decodes_to_every_vial(
    released: Quality, tmp_path: Path
) -> None:
    queue, out = _queue("RAW")
    lot = released.lot_id
    offset = out.stat().st_size if out.exists() else 0

    def arrived() -> str:
        if not out.exists():
            return ""
        with out.open("rb") as file:
            file.seek(offset)
            return file.read().decode()

    ok("label", "print", lot, "--format", "zpl", "--out", str(tmp_path), "--printer", queue,
       "--template", "bag")  # fmt: skip
    _wait_for(lambda: arrived().count("^XZ") == 4, "the ZPL batch")
    blocks = symbols.zpl_labels(arrived())
    assert arrived() == (tmp_path / f"{lot}-labels.zpl").read_text()
    found = [symbols.decode_zpl(block, tmp_path) for block in blocks]
    assert_vial_codes(found, lot)
    din = LotId.parse(lot).din.isbt128
    assert all(("Code128", din) in label for label in found)


@pytest.mark.parametrize(
    ("queue", "answer"),
    [("PRINT_QUEUE_REJECTING", "is not accepting jobs"), (None, "does not exist")],
    ids=["out-of-service", "absent"],
)
def test_a_print_cups_refuses_counts_nothing_and_replaces_no_file(
    released: Quality, tmp_path: Path, queue: str | None, answer: str
) -> None:
    rejecting = os.environ.get("PRINT_QUEUE_REJECTING")
    if not rejecting:
        pytest.skip("no CUPS queue refusing jobs here (.ci/cups-queues sets one up)")
    printer = rejecting if queue else "lims-no-such-queue"
    lot = released.lot_id
    out = tmp_path / "labels"
    label = out / f"{lot}-labels.zpl"

    def print_to_queue() -> str:
        result = invoke("label", "print", lot, "--format", "zpl", "--out", str(out),
                        "--printer", printer, "--force")  # fmt: skip
        return refused(result, 5, "lp", printer, answer)

    def labels_printed() -> list[int]:
        return [vial["labels_printed"] for vial in ok("vial", "list", lot)]

    print_to_queue()
    assert list(out.glob("*")) == []
    assert labels_printed() == [0, 0, 0, 0]
    ok("label", "print", lot, "--format", "zpl", "--out", str(out))
    first = label.read_bytes()
    print_to_queue()
    assert list(out.glob("*")) == [label]
    assert label.read_bytes() == first  # not the refused reprint's REPRINT 1 labels
    assert labels_printed() == [1, 1, 1, 1]
