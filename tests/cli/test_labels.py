"""Vial labels (issues 5 and 17): `lims label print` in PNG, SVG, PDF and ZPL, their content,
reprints, the cryovial and bag templates, site templates and printing through `lp`.

Every PNG label written here is decoded with zxing-cpp, an independent
decoder: the QR code must hold the vial's payload and, on a bag label, the Code 128
symbol the ISBT 128 DIN ("=" + DIN + "00"); a cryovial label has no room for it. The lab
is tests.support.quality.Quality: lot L1 of four vials for PT-0001 (initials MR, born
1958), formulated by tom.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lims import resources
from lims.domain import payload as qr
from lims.domain.ids import parse_din
from lims.services import lots
from lims.staging import StagedFiles
from lims.timeutil import utcnow
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import add_lot, expire, vial_ids

PATIENT = "PT-0001"
QUARANTINE = "QUARANTINE — NOT FOR ADMINISTRATION"
REJECTED = "REJECTED — DO NOT USE"
EXPIRED = "EXPIRED — DO NOT USE"
AUTOLOGOUS = "FOR AUTOLOGOUS USE ONLY"
DEFAULT_STORAGE = "Store at 15-25 °C. Do not refrigerate or irradiate."
DEFAULT_CAUTION = (
    "Caution: New Drug - Limited by Federal (or United States) law to investigational use."
)
DEFAULT_FACILITY = "Example Cell Therapy Facility"
DEFAULT_ADDRESS = "Example Street 1, 00000 Example City"
DEFAULT_ROUTE = "For intraspinal injection"
NOT_EVALUATED = "NOT EVALUATED FOR INFECTIOUS SUBSTANCES"
PRODUCT_CODE_UNASSIGNED = "product code not assigned"


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


# --- helpers ---------------------------------------------------------------------------------


def print_labels(lot: str, fmt: str, out: Path, *extra: str) -> Invocation:
    return invoke("label", "print", lot, "--format", fmt, "--out", str(out), *extra)


def printed(lot: str, fmt: str, out: Path, *extra: str) -> Any:
    return ok("label", "print", lot, "--format", fmt, "--out", str(out), *extra)


def flat(text: str) -> str:
    """Whitespace collapsed: lines wrap on a label, and extracted text spaces differently."""
    return " ".join(text.split())


def din_of(lot: str) -> str:
    return lot.split("-")[0]


def barcodes(path: Path) -> dict[str, list[str]]:
    """What zxing-cpp reads in a PNG: symbology name -> texts."""
    import zxingcpp
    from PIL import Image

    found: dict[str, list[str]] = {}
    with Image.open(path) as image:
        for symbol in zxingcpp.read_barcodes(image):
            assert symbol.valid, symbol.error
            if symbol.format == zxingcpp.BarcodeFormat.QRCode:
                assert symbol.ec_level in ("M", "Q", "H"), symbol.ec_level  # M or better
            found.setdefault(symbol.format.name, []).append(symbol.text)
    return found


def assert_png_label(path: Path, lot: str, vial: str, *, isbt128: bool = False) -> None:
    """The PNG decodes: its QR holds VIAL's payload, and (isbt128: on a bag label) the
    Code 128 the ISBT 128 DIN."""
    found = barcodes(path)
    assert found.get("QRCode"), (path, found)
    [text] = found["QRCode"]
    scanned = qr.decode(text)
    assert scanned.vial_id == vial
    assert scanned.patient == PATIENT
    assert scanned.din == din_of(lot)
    assert text.split("/")[2] == parse_din(din_of(lot)).code + parse_din(din_of(lot)).check
    if isbt128:
        assert found.get("Code128") == [f"={din_of(lot)}00"], found
    else:
        assert set(found) == {"QRCode"}, found


def svg_text(path: Path) -> str:
    """The text of an SVG label (which must be well-formed XML), lines joined: text is drawn
    as the font's outlines, each run labelled with what it says."""
    root = ET.parse(path).getroot()  # noqa: S314 (lims wrote it)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert not any(node.tag.endswith("}text") for node in root.iter())
    return flat(
        " ".join(node.get("aria-label", "") for node in root.iter() if node.tag.endswith("}g"))
    )


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return flat(" ".join(page.extract_text() or "" for page in PdfReader(path).pages))


def zpl_blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"\^XA.*?\^XZ", text, flags=re.DOTALL)
    assert text.count("^XA") == text.count("^XZ") == len(blocks)
    return blocks


def _unhex(match: re.Match[str]) -> str:
    return bytes.fromhex(match.group(0).replace("_", "")).decode("utf-8")


def zpl_text(block: str) -> str:
    """The field data of one ZPL label, ^FH hex escapes (_E2_80_94) decoded."""
    fields = re.findall(r"\^FD(.*?)\^FS", block, flags=re.DOTALL)
    return flat(" ".join(re.sub(r"(?:_[0-9A-F]{2})+", _unhex, field) for field in fields))


def printable(text: str, fmt: str) -> str:
    """TEXT as a format prints it: a Zebra printer's font has no em dash."""
    return text.replace("—", "-") if fmt == "zpl" else text


def label_print_entries(lot: str) -> list[dict[str, Any]]:
    return [
        entry["new"]
        for entry in ok("audit", "log", "--entity", f"lot:{lot}")
        if entry["action"] == "label.print"
    ]


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


# --- PNG, with both symbols decoded ----------------------------------------------------------


def test_png_gives_one_decodable_label_per_vial(released: Quality, out: Path) -> None:
    lot = released.lot_id
    job = printed(lot, "png", out)
    assert files_in(out) == [f"{vial}.png" for vial in vial_ids(lot)]
    assert (job["lot_id"], job["format"], job["count"]) == (lot, "png", 4)
    assert job["vials"] == vial_ids(lot)
    assert sorted(Path(path).name for path in job["files"]) == files_in(out)
    for vial in vial_ids(lot):
        assert_png_label(out / f"{vial}.png", lot, vial)


def test_the_png_qr_payload_verifies_at_the_bedside(released: Quality, out: Path) -> None:
    """What the label's QR code holds is what `lims vial verify` accepts."""
    lot = released.lot_id
    vial = vial_ids(lot)[2]
    printed(lot, "png", out, "--vial", vial)
    [text] = barcodes(out / f"{vial}.png")["QRCode"]
    result = ok("vial", "verify", "--scan", text, "--patient", PATIENT)
    assert (result["result"], result["vial_id"]) == ("MATCH", vial)


@pytest.mark.parametrize(
    ("template", "size"), [("cryovial", (38, 13)), ("bag", (70, 50)), ("vial-70x50", (70, 50))]
)
def test_png_is_at_the_templates_size_and_dpi(
    released: Quality, out: Path, template: str, size: tuple[int, int]
) -> None:
    from PIL import Image

    vial = vial_ids(released.lot_id)[0]
    job = printed(released.lot_id, "png", out, "--vial", vial, "--template", template)
    assert job["template"] == template
    with Image.open(out / f"{vial}.png") as image:
        assert image.size == tuple(round(mm / 25.4 * 300) for mm in size)
        assert [round(value) for value in image.info["dpi"]] == [300, 300]
    assert_png_label(out / f"{vial}.png", released.lot_id, vial, isbt128=template != "cryovial")


def test_without_the_isbt128_option_only_the_qr_code_is_printed(
    released: Quality, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released.lab.set_site(labels={"isbt128_barcode": False})
    released.lab.login("tom")
    lot = released.lot_id
    printed(lot, "png", out, "--template", "bag")
    for vial in vial_ids(lot):
        assert_png_label(out / f"{vial}.png", lot, vial, isbt128=False)
    zpl = out / "zpl"
    zpl.mkdir()
    printed(lot, "zpl", zpl, "--template", "bag")
    for block in zpl_blocks(zpl / f"{lot}-labels.zpl"):
        assert "^BQ" in block
        assert "^BC" not in block


def test_the_qr_code_has_a_quiet_zone_of_four_modules() -> None:
    from lims.documents.labels import qr_matrix

    matrix = qr_matrix(
        qr.Payload("A999926000001-L1-V01", "A999926000001", PATIENT, utcnow()).encode()
    )
    size = len(matrix)
    assert all(len(row) == size for row in matrix)
    for index in (0, 1, 2, 3, size - 4, size - 3, size - 2, size - 1):
        assert not any(matrix[index]), index
        assert not any(row[index] for row in matrix), index
    assert any(matrix[4])  # the finder patterns start right after it


def test_quarantine_labels_decode_too(quality: Quality, out: Path) -> None:
    lot = quality.lot_id
    printed(lot, "png", out)
    for vial in vial_ids(lot):
        assert_png_label(out / f"{vial}.png", lot, vial)


# --- SVG, PDF, ZPL ---------------------------------------------------------------------------


def test_svg_gives_one_well_formed_file_per_vial(released: Quality, out: Path) -> None:
    lot = released.lot_id
    printed(lot, "svg", out)
    assert files_in(out) == [f"{vial}.svg" for vial in vial_ids(lot)]
    for vial in vial_ids(lot):
        root = ET.parse(out / f"{vial}.svg").getroot()  # noqa: S314 (lims wrote it)
        assert [node.text for node in root.iter() if node.tag.endswith("}title")] == [vial]
        assert "PT-0001" in svg_text(out / f"{vial}.svg")


def test_pdf_gives_one_sheet_with_every_vial(released: Quality, out: Path) -> None:
    lot = released.lot_id
    job = printed(lot, "pdf", out)
    assert files_in(out) == [f"{lot}-labels.pdf"]
    assert job["count"] == 4
    text = pdf_text(out / f"{lot}-labels.pdf")
    assert text.count("FOR AUTOLOGOUS USE ONLY") == 4
    refused(
        print_labels(lot, "pdf", out / "bag", "--template", "bag"), 2, "labels.stock", "70 x 50"
    )
    released.lab.set_site(labels={"stock": BAG_STOCK})
    released.lab.login("tom")
    bag = out / "bag"
    printed(lot, "pdf", bag, "--template", "bag")
    text = pdf_text(bag / f"{lot}-labels.pdf")
    for vial in vial_ids(lot):
        assert vial in text


def test_zpl_gives_one_block_per_vial_with_a_qr_and_a_code128(released: Quality, out: Path) -> None:
    lot = released.lot_id
    job = printed(lot, "zpl", out, "--template", "bag")
    assert files_in(out) == [f"{lot}-labels.zpl"]
    assert job["count"] == 4
    blocks = zpl_blocks(out / f"{lot}-labels.zpl")
    assert len(blocks) == 4
    for vial, block in zip(vial_ids(lot), blocks, strict=True):
        assert block.count("^BQ") == 1
        assert block.count("^BC") == 1
        [(level, data)] = re.findall(r"\^BQ[^\^]*\^FD([HQML])A,(.*?)\^FS", block)
        assert level in "MQH"  # error correction M or better
        assert qr.decode(data).vial_id == vial
        assert f"^FD={din_of(lot)}00^FS" in block
        assert vial in zpl_text(block)


# --- content ---------------------------------------------------------------------------------


# An A4 sheet of 2 x 5 bag labels (70 x 50 mm), for PDF bag labels.
BAG_STOCK = {
    "description": "A4, 2 x 5 labels of 70 x 50 mm",
    "label_width_mm": 70.0,
    "label_height_mm": 50.0,
    "columns": 2,
    "rows": 5,
    "margin_left_mm": 30.0,
    "margin_top_mm": 15.0,
    "gap_x_mm": 5.0,
    "gap_y_mm": 3.0,
}


def texts_of_every_format(
    quality: Quality, lot: str, vial: str, out: Path, template: str = "bag"
) -> dict[str, str]:
    """The text of VIAL's label as SVG, ZPL and PDF, printed into subfolders of OUT; for a
    bag label the site's PDF stock is first set to a sheet of bag labels."""
    if template == "bag":
        quality.lab.set_site(labels={"stock": BAG_STOCK})
        quality.lab.login("tom")
    texts = {}
    for fmt in ("svg", "zpl", "pdf"):
        folder = out / fmt
        folder.mkdir()
        printed(lot, fmt, folder, "--vial", vial, "--template", template)
        if fmt == "svg":
            texts[fmt] = svg_text(folder / f"{vial}.svg")
        elif fmt == "zpl":
            [block] = zpl_blocks(folder / f"{lot}-labels.zpl")
            texts[fmt] = zpl_text(block)
        else:
            texts[fmt] = pdf_text(folder / f"{lot}-labels.pdf")
    return texts


def test_a_quarantine_lots_labels_say_not_for_administration(quality: Quality, out: Path) -> None:
    lot = quality.lot_id
    for fmt, text in texts_of_every_format(quality, lot, vial_ids(lot)[0], out).items():
        assert printable(QUARANTINE, fmt) in text, (fmt, text)
        assert REJECTED not in text, fmt


def test_a_rejected_lots_labels_say_do_not_use(quality: Quality, out: Path) -> None:
    quality.lab.login("rita")
    quality.run(lots.reject, lot=quality.lot_id, password=PASSWORD, reason="sterility positive")
    quality.lab.login("tom")
    lot = quality.lot_id
    for fmt, text in texts_of_every_format(quality, lot, vial_ids(lot)[1], out).items():
        assert printable(REJECTED, fmt) in text, (fmt, text)
        assert "QUARANTINE" not in text, fmt


def test_a_released_lots_labels_carry_no_banner(released: Quality, out: Path) -> None:
    lot = released.lot_id
    for fmt, text in texts_of_every_format(released, lot, vial_ids(lot)[0], out).items():
        assert "QUARANTINE" not in text, fmt
        assert "REJECTED" not in text, fmt
        assert "DO NOT USE" not in text, fmt


def test_an_expired_lots_labels_say_expired(released: Quality, out: Path) -> None:
    expire(released, released.lot_id)
    lot = released.lot_id
    text = texts_of_every_format(released, lot, vial_ids(lot)[0], out)["svg"]
    assert EXPIRED in text


def test_every_label_carries_the_required_content(released: Quality, out: Path) -> None:
    lot = released.lot_id
    vial = vial_ids(lot)[3]
    din = parse_din(din_of(lot))
    texts = texts_of_every_format(
        released, lot, vial, out
    )  # svg first, then zpl and pdf reprint it
    assert "REPRINT" not in texts["svg"]
    for fmt, text in texts.items():
        for needed in [
            "Autologous bone-marrow MSC",
            f"Vial {vial}",
            f"{din.fin} {din.year:02d} {din.sequence:06d} {din.check}",
            f"{PRODUCT_CODE_UNASSIGNED}, division D0",
            f"Patient {PATIENT} MR born 1958",
            "40,000,000 cells in 2 mL",
            "EXP ",
            AUTOLOGOUS,
            flat(DEFAULT_STORAGE),
            DEFAULT_FACILITY,
            DEFAULT_ADDRESS,
            DEFAULT_ROUTE,
            NOT_EVALUATED,
            flat(DEFAULT_CAUTION),
        ]:
            assert needed in text, (fmt, needed, text)


def test_a_cryovial_label_carries_the_small_container_minimum(released: Quality, out: Path) -> None:
    """ISBT 128 ST-001 §7.3.1: the DIN (in the 2-D code and eye-readable, its check character
    boxed), the product code and division; here also the patient, expiry and autologous use."""
    lot = released.lot_id
    vial = vial_ids(lot)[1]
    din = parse_din(din_of(lot))
    for fmt, text in texts_of_every_format(released, lot, vial, out, "cryovial").items():
        for needed in [
            f"{din.fin} {din.year:02d} {din.sequence:06d} {din.check}",
            f"{PRODUCT_CODE_UNASSIGNED}, division B0",
            f"Patient {PATIENT} MR born 1958",
            "EXP ",
            AUTOLOGOUS,
        ]:
            assert needed in text, (fmt, needed, text)
        assert DEFAULT_FACILITY not in text, fmt


def test_a_label_names_the_csf_the_cells_are_in_and_its_qr_payload_does_not(
    released: Quality, out: Path
) -> None:
    """The vehicle's DIN (check character boxed, as lims prints a DIN on a label) and the mL
    of it in the lot, under the dose; the QR payload stays the cells' donation's."""
    lot = released.lot_id
    vehicle = released.show().summary.vehicle_din
    assert vehicle is not None
    for fmt, text in texts_of_every_format(released, lot, vial_ids(lot)[0], out).items():
        assert f"CSF DIN {vehicle.display}, 8 mL" in text, (fmt, text)
    [block] = zpl_blocks(out / "zpl" / f"{lot}-labels.zpl")
    [(_, data)] = re.findall(r"\^BQ[^\^]*\^FD([HQML])A,(.*?)\^FS", block)
    assert vehicle.code not in data
    assert qr.decode(data).din == din_of(lot)


def test_the_facility_storage_caution_and_product_come_from_the_configuration(
    released: Quality, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = {
        "storage": "Store in vapour-phase liquid nitrogen at -150 °C or below.",
        "caution": "For use in clinical trial MSC-ALS-02 only.",
        "product": "MSC for intrathecal use",
    }
    released.lab.set_site(facility={"name": "Turin Cell Factory"}, labels=labels)
    released.lab.login("tom")
    lot = released.lot_id
    for fmt, text in texts_of_every_format(released, lot, vial_ids(lot)[0], out).items():
        for value in ["Turin Cell Factory", *labels.values()]:
            assert flat(value) in text, (fmt, value, text)
        assert DEFAULT_FACILITY not in text, fmt
        assert "investigational use" not in text, fmt
        assert "Autologous bone-marrow MSC" not in text, fmt
        assert AUTOLOGOUS in text, fmt


def test_no_patient_data_beyond_the_code_initials_and_birth_year(
    released: Quality, out: Path
) -> None:
    lot = released.lot_id
    printed(lot, "png", out, "--vial", vial_ids(lot)[0])
    [text] = barcodes(out / f"{vial_ids(lot)[0]}.png")["QRCode"]
    assert text.split("/")[3] == PATIENT
    assert "MR" not in text.replace(PATIENT, "")
    assert "1958" not in text


# --- reprints --------------------------------------------------------------------------------


def test_reprints_are_counted_marked_and_audited(released: Quality, tmp_path: Path) -> None:
    lot = released.lot_id
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    job = printed(lot, "svg", first)
    assert job["reprints"] == {}
    for vial in vial_ids(lot):
        assert "REPRINT" not in svg_text(first / f"{vial}.svg")
    assert {v["labels_printed"] for v in ok("vial", "list", lot)} == {1}

    job = printed(lot, "svg", second)
    assert job["reprints"] == dict.fromkeys(vial_ids(lot), 1)
    for vial in vial_ids(lot):
        assert "REPRINT 1" in svg_text(second / f"{vial}.svg")
    assert {v["labels_printed"] for v in ok("vial", "list", lot)} == {2}

    vial = vial_ids(lot)[1]
    job = printed(lot, "zpl", third, "--vial", vial)
    assert job["reprints"] == {vial: 2}
    [block] = zpl_blocks(third / f"{lot}-labels.zpl")
    assert "REPRINT 2" in zpl_text(block)
    assert [v["labels_printed"] for v in ok("vial", "list", lot)] == [2, 3, 2, 2]

    entries = label_print_entries(lot)
    assert [(e["format"], e["count"], e["vials"], e["reprints"]) for e in entries] == [
        ("svg", 4, vial_ids(lot), {}),
        ("svg", 4, vial_ids(lot), dict.fromkeys(vial_ids(lot), 1)),
        ("zpl", 1, [vial], {vial: 2}),
    ]
    users = {
        entry["user"]
        for entry in ok("audit", "log", "--entity", f"lot:{lot}")
        if entry["action"] == "label.print"
    }
    assert users == {"tom"}


def test_a_reprinted_png_is_marked_and_still_decodes(released: Quality, tmp_path: Path) -> None:
    lot = released.lot_id
    vial = vial_ids(lot)[0]
    for name in ("first", "again"):
        (tmp_path / name).mkdir()
        printed(lot, "png", tmp_path / name, "--vial", vial)
    assert_png_label(tmp_path / "again" / f"{vial}.png", lot, vial)
    first = (tmp_path / "first" / f"{vial}.png").read_bytes()
    assert (tmp_path / "again" / f"{vial}.png").read_bytes() != first  # the REPRINT 1 mark


# --- choosing vials, and refusals ------------------------------------------------------------


def test_vial_option_prints_only_the_named_vials(released: Quality, out: Path) -> None:
    lot = released.lot_id
    chosen = [vial_ids(lot)[1], vial_ids(lot)[3]]
    job = printed(lot, "png", out, "--vial", chosen[0], "--vial", chosen[1])
    assert files_in(out) == [f"{vial}.png" for vial in chosen]
    assert (job["count"], job["vials"]) == (2, chosen)
    for vial in chosen:
        assert_png_label(out / f"{vial}.png", lot, vial)
    assert [v["labels_printed"] for v in ok("vial", "list", lot)] == [0, 1, 0, 1]


def test_a_vial_of_another_lot_is_refused(released: Quality, out: Path) -> None:
    lot = released.lot_id
    other = vial_ids(add_lot(released, PATIENT))[0]
    refused(print_labels(lot, "png", out, "--vial", other), 2, "vial", other)
    refused(print_labels(lot, "png", out, "--vial", f"{lot}-V09"), 3, f"{lot}-V09")
    assert files_in(out) == []
    assert label_print_entries(lot) == []
    assert {v["labels_printed"] for v in ok("vial", "list", lot)} == {0}


def test_a_vial_named_twice_is_printed_once_or_refused(released: Quality, out: Path) -> None:
    """`--vial V01 --vial v01`: one label and one count, or a refusal with nothing printed;
    never a failure after the print was audited."""
    lot = released.lot_id
    vial = vial_ids(lot)[0]
    result = print_labels(lot, "png", out, "--vial", vial, "--vial", vial.lower())
    counts = [v["labels_printed"] for v in ok("vial", "list", lot)]
    entries = label_print_entries(lot)
    if result.exit_code == 0:
        assert files_in(out) == [f"{vial}.png"]
        assert counts == [1, 0, 0, 0]
        assert [(e["count"], e["vials"]) for e in entries] == [(1, [vial])]
    else:
        refused(result, 2, "vial")
        assert files_in(out) == []
        assert counts == [0, 0, 0, 0]
        assert entries == []


def test_a_destroyed_vial_gets_no_label(released: Quality, out: Path) -> None:
    lot = released.lot_id
    destroyed = vial_ids(lot)[2]
    ok("vial", "destroy", destroyed, "--reason", "cracked")
    refused(print_labels(lot, "png", out, "--vial", destroyed), 1, destroyed, "destroyed")
    refused(print_labels(lot, "svg", out), 1, destroyed, "destroyed")
    assert files_in(out) == []
    assert label_print_entries(lot) == []
    printed(lot, "svg", out, "--vial", vial_ids(lot)[0])
    assert files_in(out) == [f"{vial_ids(lot)[0]}.svg"]


@pytest.mark.parametrize("fmt", ["bmp", "PNGG", "", "jpg"])
def test_an_unknown_format_is_refused(released: Quality, out: Path, fmt: str) -> None:
    refused(print_labels(released.lot_id, fmt, out), 2, "format")
    assert files_in(out) == []


def test_out_is_made_if_missing_and_must_be_a_directory(released: Quality, tmp_path: Path) -> None:
    lot = released.lot_id
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    for not_a_directory in (a_file, a_file / "labels"):
        result = print_labels(lot, "png", not_a_directory)
        assert result.exit_code == 2, result.stderr
    assert label_print_entries(lot) == []
    made = tmp_path / "missing" / "labels"
    printed(lot, "png", made)
    assert len(files_in(made)) == 4
    assert stat.S_IMODE(made.stat().st_mode) & 0o007 == 0


def test_an_unknown_lot_is_not_found(released: Quality, out: Path) -> None:
    missing = released.lot_id[:-1] + "7"
    refused(print_labels(missing, "png", out), 3, missing)


def test_admin_may_not_print_labels(released: Quality, out: Path) -> None:
    released.lab.login("admin")
    refused(print_labels(released.lot_id, "png", out), 4)
    assert files_in(out) == []


# --- site templates --------------------------------------------------------------------------


def shipped_template() -> str:
    return (resources.labels_dir() / "bag.toml").read_text(encoding="utf-8")


def test_a_site_template_sets_the_label_size(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    text = shipped_template()
    text = re.sub(r"(?m)^width_mm = 70\.0$", "width_mm = 90.0", text, count=1)
    text = re.sub(r"(?m)^height_mm = 50\.0$", "height_mm = 60.0", text, count=1)
    text = re.sub(r"(?m)^dpi = 300$", "dpi = 200", text)
    assert "width_mm = 90.0" in text
    assert "height_mm = 60.0" in text
    assert "dpi = 200" in text
    site = tmp_path / "site-90x60.toml"
    site.write_text(text, encoding="utf-8")
    released.lab.set_site(labels={"template": str(site)})
    released.lab.login("tom")
    lot = released.lot_id
    printed(lot, "png", out)
    for vial in vial_ids(lot):
        with Image.open(out / f"{vial}.png") as image:
            assert image.size == (round(90 / 25.4 * 200), round(60 / 25.4 * 200))
        assert_png_label(out / f"{vial}.png", lot, vial, isbt128=True)
    svg = out / "svg"
    svg.mkdir()
    printed(lot, "svg", svg, "--vial", vial_ids(lot)[0])
    root = ET.parse(svg / f"{vial_ids(lot)[0]}.svg").getroot()  # noqa: S314
    assert (root.get("width"), root.get("height")) == ("90.0mm", "60.0mm")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda t: t.replace("dpi = 300", "dpi = = 300"), id="not TOML"),
        pytest.param(lambda t: t.replace("width_mm = 70.0", "width_mm = -70.0"), id="negative"),
        pytest.param(lambda t: t.replace("dpi = 300", "dpi = 'high'"), id="not a number"),
        pytest.param(lambda t: t + "\ncolour = 'red'\n", id="unknown key"),
        pytest.param(lambda t: t.split("[symbol]")[0], id="sections missing"),
        pytest.param(
            lambda t: t.replace("x_mm = 3.0\ny_mm = 38.0", "x_mm = 9.0\ny_mm = 38.0"),
            id="linear outside the label",
        ),
        pytest.param(
            lambda t: t.replace('"product", "vial"', '"product", "colour"'), id="unknown field"
        ),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_a_malformed_site_template_is_a_configuration_error(
    released: Quality,
    out: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Any,
) -> None:
    site = tmp_path / "broken.toml"
    site.write_text(change(shipped_template()), encoding="utf-8")
    released.lab.set_site(labels={"template": str(site)})
    released.lab.login("tom")
    line = refused(print_labels(released.lot_id, "png", out), 2, "labels.template")
    assert line.startswith("error: labels.template")
    assert files_in(out) == []
    assert label_print_entries(released.lot_id) == []


def test_an_unknown_template_name_names_the_shipped_ones(
    released: Quality, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released.lab.set_site(labels={"template": "vial-10x10"})
    released.lab.login("tom")
    refused(print_labels(released.lot_id, "png", out), 2, "labels.template", "bag", "cryovial")


# --- printing through lp ---------------------------------------------------------------------


def fake_lp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """An `lp` first on PATH running BODY (sh); the file it records its arguments in, each
    call's standard input kept beside it as lp-N.data."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "lp.log"
    script = bin_dir / "lp"
    script.write_text(
        f'#!/bin/sh\nfor arg in "$@"; do echo "$arg" >> "{log}"; done\n'
        f'cat > "{tmp_path}/lp-$(wc -l < "{log}").data"\n{body}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_zpl_goes_to_the_printer_raw(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_lp(tmp_path, monkeypatch, "exit 0")
    lot = released.lot_id
    job = printed(lot, "zpl", out, "--printer", "zebra1")
    assert job["printer"] == "zebra1"
    zpl = out / f"{lot}-labels.zpl"
    assert log.read_text().splitlines() == ["-d", "zebra1", "-t", zpl.name, "-o", "raw"]
    assert len(zpl_blocks(zpl)) == 4
    [sent] = tmp_path.glob("lp-*.data")
    assert sent.read_bytes() == zpl.read_bytes()
    [entry] = label_print_entries(lot)
    assert entry["printer"] == "zebra1"


def test_png_goes_to_the_printer_not_raw(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = fake_lp(tmp_path, monkeypatch, "exit 0")
    lot = released.lot_id
    printed(lot, "png", out, "--printer", "office_2")
    arguments = log.read_text().splitlines()
    assert "raw" not in arguments
    # One job a label, each named for its file.
    assert arguments == [
        word for vial in vial_ids(lot) for word in ("-d", "office_2", "-t", f"{vial}.png")
    ]
    assert len(list(tmp_path.glob("lp-*.data"))) == 4


def test_a_failing_lp_is_the_station_unavailable_in_one_line(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_lp(
        tmp_path,
        monkeypatch,
        'echo "lp: The printer or class does not exist." >&2\nexit 1',
    )
    lot = released.lot_id
    line = refused(print_labels(lot, "zpl", out, "--printer", "nowhere"), 5, "lp")
    assert "The printer or class does not exist." in line
    assert files_in(out) == []  # a print lp refused leaves nothing (test_label_counts.py)


def test_without_lp_installed_printing_says_so(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    refused(print_labels(released.lot_id, "zpl", out, "--printer", "zebra1"), 5, "lp")


def test_labels_that_cannot_be_written_are_the_station_unavailable(
    released: Quality, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: StagedFiles, path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StagedFiles, "write", full_disk)
    lot = released.lot_id
    line = refused(print_labels(lot, "pdf", out), 5, "cannot write labels to")
    assert line.endswith(": No space left on device")
    assert files_in(out) == []
    assert label_print_entries(lot) == []


@pytest.mark.parametrize("name", ["zebra 1", "zebra1;rm", "a/b", ""])
def test_a_printer_name_must_be_a_queue_name(
    released: Quality, out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    log = fake_lp(tmp_path, monkeypatch, "exit 0")
    result = print_labels(released.lot_id, "zpl", out, "--printer", name)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert not log.exists()
    assert files_in(out) == []


# --- issue 12: labels never replace anything lims did not write --------------------------------


def test_planted_links_at_the_old_staged_names_are_never_written_through(
    released: Quality, out: Path
) -> None:
    """Issue 12: staged files had predictable names (.NAME.PID.part) and followed symlinks: in a
    shared directory another user pointed them at a root-only file and at lims.db."""
    lot = released.lot_id
    root_only = out.parent / "root-only"
    root_only.write_bytes(b"secret")
    root_only.chmod(0o600)
    database = released.settings.sqlite_path
    targets = {f"{lot}-labels.pdf": root_only, f"{lot}-V01.png": database or root_only}
    before = {target: target.read_bytes() for target in targets.values()}
    for name, target in targets.items():
        (out / f".{name}.{os.getpid()}.part").symlink_to(target)
    printed(lot, "pdf", out)
    printed(lot, "png", out, "--vial", f"{lot}-V01")
    for target, content in before.items():
        assert target.read_bytes() == content
    assert (out / f"{lot}-labels.pdf").read_bytes().startswith(b"%PDF")
    assert not (out / f"{lot}-labels.pdf").is_symlink()
    ok("audit", "verify")


def test_an_existing_label_file_is_refused_and_force_replaces_only_lims_own(
    released: Quality, out: Path
) -> None:
    lot = released.lot_id
    first = printed(lot, "zpl", out)
    sheet = out / f"{lot}-labels.zpl"
    refused(print_labels(lot, "zpl", out), 1, str(sheet.resolve()), "exists", "--force")
    again = printed(lot, "zpl", out, "--force")
    assert again["files"] == first["files"]
    assert sheet.read_text().count("REPRINT") > 0
    [*_, entry] = label_print_entries(lot)
    assert entry["sha256"] == [hashlib.sha256(sheet.read_bytes()).hexdigest()]
    sheet.write_text("^XA^FDedited^FS^XZ\n")
    refused(print_labels(lot, "zpl", out, "--force"), 1, "is not a label lims wrote")
    assert sheet.read_text() == "^XA^FDedited^FS^XZ\n"
    assert files_in(out) == [sheet.name]


def test_an_out_directory_name_too_long_to_make_is_bad_input(quality: Quality, out: Path) -> None:
    refused(print_labels(quality.lot_id, "zpl", out / ("x" * 300)), 2, "File name too long")
