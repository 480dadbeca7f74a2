"""Issue 17: labels drawn from their templates, without a database.

Every symbol is drawn by lims, put to pixels by something else (tests.support.symbols)
and decoded by zxing-cpp: cryovial and bag labels, QR and Data Matrix, in PNG, SVG, PDF
and ZPL. Also: a template's parts must lie on the label, the Code 128 DIN appears only
where it fits at the template's resolution, every character a label prints has a glyph,
a preview cannot be scanned, and a PDF sheet follows the site's stock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lims.config import LabelSettings, LabelStock
from lims.documents import labels
from lims.domain import isbt128, scanner_check, screening
from lims.domain.ids import parse_din
from lims.domain.payload import Payload
from lims.domain.states import LotState
from lims.errors import ConfigError
from lims.services.printing import BANNERS, NO_PRODUCT_CODE
from tests.support import symbols

DIN = parse_din("A999926000001")
EXPIRES = datetime(2026, 12, 28, 13, 0, tzinfo=UTC)
VIAL = "A999926000001-L1-V03"
BAG_STOCK = LabelStock(
    label_width_mm=70, label_height_mm=50, columns=2, rows=5, margin_left_mm=30,
    margin_top_mm=15, gap_x_mm=5, gap_y_mm=3,
)  # fmt: skip
SETTINGS = LabelSettings()


def a_label(
    symbology: str = "qr",
    *,
    division: int = 3,
    banner: str | None = None,
    reprint: int = 0,
    preview: bool = False,
    collection: str = isbt128.AUTOLOGOUS,
) -> labels.Label:
    product = isbt128.ProductCode("S1234", collection, division)
    symbol = (
        isbt128.compound_message(DIN, product, EXPIRES)
        if symbology == "datamatrix"
        else Payload(VIAL, DIN.code, "PT-0001", EXPIRES).encode()
    )
    fields = (
        ("product", SETTINGS.product, True),
        ("vial", f"Vial {VIAL}", False),
        ("product_code", product.eye_readable, False),
        ("patient", "Patient PT-0001  MR  born 1958", False),
        ("dose", "40,000,000 cells in 2 mL autologous CSF", False),
        ("vehicle", "CSF DIN A9999 26 000002 6, 8 mL", False),
        ("expiry", "EXP 2026-12-28 14:00+01:00", True),
        ("storage", SETTINGS.storage, False),
        ("route", SETTINGS.route, False),
        ("facility", "Example Cell Therapy Facility", False),
        ("address", "Example Street 1, 00000 Example City", False),
        ("autologous", "FOR AUTOLOGOUS USE ONLY", True),
        ("infectious", screening.NOT_EVALUATED, True),
        ("caution", SETTINGS.caution, False),
    )
    return labels.Label(
        VIAL, symbol, symbology, "A9999 26 000001", DIN.check, DIN.isbt128, fields, banner,
        reprint, preview,
    )  # fmt: skip


def drawn(template: labels.Template, label: labels.Label, fmt: str, tmp: Path) -> symbols.Found:
    """What a scanner reads on LABEL drawn in FMT."""
    if fmt == "png":
        return symbols.decode_png(labels.render_png(template, label))
    if fmt == "svg":
        return symbols.decode_svg(labels.render_svg(template, label))
    if fmt == "pdf":
        stock = BAG_STOCK if template.width_mm == 70 else LabelStock()
        [page] = symbols.decode_pdf(labels.render_pdf(template, stock, [label], "test"))
        return page
    block = labels.render_zpl(template, label)
    found = symbols.decode_zpl(block, tmp, template.dpi)
    # zpl-core draws no Data Matrix: the printer is sent the ^BX field's data.
    return found + [("DataMatrix", data) for data in symbols.zpl_datamatrix(block)]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf", "zpl"])
@pytest.mark.parametrize("template_name", ["cryovial", "bag"])
@pytest.mark.parametrize("symbology", ["qr", "datamatrix"])
def test_every_label_decodes_to_its_vial_din_product_code_and_division(
    tmp_path: Path, fmt: str, template_name: str, symbology: str
) -> None:
    template = labels.load_template(template_name)
    label = a_label(symbology)
    found = drawn(template, label, fmt, tmp_path)
    two_d = [text for kind, text in found if kind in ("QRCode", "DataMatrix")]
    assert two_d == [label.symbol], found
    if symbology == "datamatrix":
        scanned = isbt128.read_compound_message(two_d[0])
        assert (scanned.din, scanned.product.description) == (DIN.code, "S1234")
        assert isbt128.division_text(scanned.product.division) == "C0"
        assert scanned.expires_at == EXPIRES
    else:
        assert two_d[0].split("/")[1:3] == [VIAL, DIN.with_check]
    linear = [text for kind, text in found if kind == "Code128"]
    assert linear == ([DIN.isbt128] if template_name == "bag" else []), found


def test_a_division_beyond_the_first_level_travels_in_data_structure_032(tmp_path: Path) -> None:
    label = a_label("datamatrix", division=36)
    [(_, text)] = drawn(labels.load_template("cryovial"), label, "png", tmp_path)
    assert "=<S1234199=,000036=(" in text
    assert isbt128.read_compound_message(text).product.division == 36


def test_a_preview_cannot_be_scanned_as_a_vial(tmp_path: Path) -> None:
    """Its band crosses the 2-D code in every format, and says what it is."""
    for name in ("cryovial", "bag"):
        template = labels.load_template(name)
        for symbology in ("qr", "datamatrix"):
            label = a_label(symbology, preview=True)
            for fmt in ("png", "svg", "pdf"):
                found = drawn(template, label, fmt, tmp_path)
                assert [kind for kind, _ in found if kind != "Code128"] == [], (name, fmt)
            block = labels.render_zpl(template, label)
            assert "PREVIEW - NOT A LABEL" in block
            if symbology == "qr":  # zpl-core draws no Data Matrix
                found = symbols.decode_zpl(block, tmp_path, template.dpi)
                assert [kind for kind, _ in found if kind != "Code128"] == [], (name, "zpl")
        texts = [mark.text for mark in labels.layout(template, a_label(preview=True))
                 if isinstance(mark, labels.Text)]  # fmt: skip
        assert labels.PREVIEW in texts


def test_the_dins_check_character_is_printed_in_a_box() -> None:
    for name in ("cryovial", "bag"):
        marks = labels.layout(labels.load_template(name), a_label())
        for index, mark in enumerate(marks):
            if isinstance(mark, labels.Text) and mark.text == DIN.check:
                frame = marks[index + 1]
                assert isinstance(frame, labels.Rect)
                assert frame.outline is not None
                assert frame.x <= mark.x <= frame.x + frame.width
                break
        else:
            pytest.fail(f"{name}: no check character")


def test_the_eye_readable_din_is_under_the_code_128() -> None:
    marks = labels.layout(labels.load_template("bag"), a_label())
    [bars] = [mark for mark in marks if isinstance(mark, labels.Bars)]
    under = [
        mark for mark in marks
        if isinstance(mark, labels.Text) and mark.text == "A9999 26 000001"
        and mark.baseline > bars.y + bars.height
    ]  # fmt: skip
    assert len(under) == 1
    assert bars.x <= under[0].x <= bars.x + bars.module * len(bars.pattern)


# --- the Code 128 DIN only where it fits ------------------------------------------------------


def with_linear_box(dpi: int, width_mm: float) -> labels.Template:
    data = labels.load_template("bag").model_dump()
    data.update(dpi=dpi)
    data["linear"].update(width_mm=width_mm, x_mm=(70 - width_mm) / 2)
    return labels.Template.model_validate(data)


def test_the_code_128_takes_the_isbt_target_module_where_it_fits() -> None:
    modules = len(labels.code128_modules(DIN.isbt128))
    assert modules == 145 + 2 * labels.LINEAR_QUIET_MODULES
    assert labels.linear_module_mm(with_linear_box(300, 64), modules) == pytest.approx(0.254)
    assert labels.linear_module_mm(with_linear_box(203, 64), modules) == pytest.approx(0.25, 0.01)


def test_a_narrow_box_takes_the_smallest_module_the_resolution_allows_or_none() -> None:
    """About 28 mm at 0.17 mm modules: 2 dots at 300 dpi fit a 30 mm box, but at 203 dpi a
    dot is 0.125 mm and two are 36 mm long, so a label printed there has no Code 128."""
    modules = len(labels.code128_modules(DIN.isbt128))
    assert labels.linear_module_mm(with_linear_box(300, 30), modules) == pytest.approx(0.1693, 0.01)
    assert labels.linear_module_mm(with_linear_box(203, 30), modules) is None
    template = with_linear_box(203, 30)
    assert not any(isinstance(mark, labels.Bars) for mark in labels.layout(template, a_label()))


def test_a_box_too_low_for_the_symbol_draws_none() -> None:
    data = labels.load_template("bag").model_dump()
    data["linear"].update(height_mm=6.0, y_mm=43.0)
    template = labels.Template.model_validate(data)
    assert labels.linear_module_mm(template, 145) is None


def test_the_cryovial_has_no_code_128_at_any_resolution() -> None:
    assert labels.load_template("cryovial").linear is None


# --- templates ----------------------------------------------------------------------------------


def test_vial_70x50_is_the_bag_template() -> None:
    assert labels.load_template("vial-70x50") == labels.load_template("bag")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"symbol": {"x_mm": 30.0, "y_mm": 1.0, "size_mm": 11.2}}, ["symbol", "outside"]),
        ({"banner": {"x_mm": 12, "y_mm": 12, "width_mm": 25, "height_mm": 2.4}}, ["banner"]),
        (
            {"text": {"x_mm": 12, "y_mm": 3, "width_mm": 25, "height_mm": 7,
                      "fields": ["dose", "colour"]}},
            ["text.fields", "colour"],
        ),
        ({"min_text_pt": 9.0}, ["min_text_pt"]),
        ({"dpi": 100}, ["dpi"]),
    ],
)  # fmt: skip
def test_a_template_whose_parts_leave_the_label_is_refused_when_it_loads(
    change: dict[str, object], words: list[str]
) -> None:
    import tomllib

    data = tomllib.loads((labels.resources.labels_dir() / "cryovial.toml").read_text())
    data.update(change)
    with pytest.raises(ConfigError) as refused:
        labels.template_from(data, "site.toml")
    message = refused.value.message
    assert message.startswith("labels.template: site.toml: ")
    for word in words:
        assert word in message


def test_text_that_does_not_fit_even_at_the_smallest_size_is_refused() -> None:
    data = labels.load_template("cryovial").model_dump()
    data["text"]["fields"] = list(labels.FIELDS)
    template = labels.Template.model_validate(data)
    with pytest.raises(ConfigError, match="does not fit"):
        labels.layout(template, a_label())


def test_a_word_wider_than_a_line_is_broken_where_the_line_is_full() -> None:
    lines = labels._wrapped("Patient " + "W" * 60, 20, 4, False)
    assert "".join(lines).replace(" ", "") == "Patient" + "W" * 60
    assert all(labels.text_width_mm(line, 4) <= 20 for line in lines)


def test_long_text_is_set_smaller_to_fit_its_block() -> None:
    template = labels.load_template("bag")
    sizes = {
        mark.size_pt
        for mark in labels.layout(template, a_label())
        if isinstance(mark, labels.Text) and mark.text.startswith("Vial ")
    }
    [size] = sizes
    assert template.min_text_pt <= size <= template.text_pt


def test_nothing_on_a_shipped_template_is_set_below_4_pt_even_at_its_longest() -> None:
    """What a site prints by default (no product code), a long patient code (24 of the 32
    characters a code may have: its line wraps), every banner and a reprint: the cryovial
    still holds it at 4 pt or more."""
    longest = a_label()
    fields = tuple(
        (name, {"product_code": f"{NO_PRODUCT_CODE}, division Z0",
                "patient": f"Patient {'P' * 24}  ABC  born 1958"}.get(name, text), bold)
        for name, text, bold in longest.fields
    )  # fmt: skip
    for name in ("cryovial", "bag"):
        template = labels.load_template(name)
        for banner in BANNERS.values():
            label = labels.Label(**{**longest.__dict__, "fields": fields, "banner": banner,
                                    "reprint": 12})  # fmt: skip
            marks = labels.layout(template, label)
            sizes = {mark.text: mark.size_pt for mark in marks if isinstance(mark, labels.Text)}
            assert min(sizes.values()) >= labels.LEGIBLE_PT, (name, sizes)
            assert sizes[banner] >= labels.LEGIBLE_PT
            assert "REPRINT 12" in sizes


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"min_text_pt": 3.5}, "min_text_pt"),
        ({"marks": {"x_mm": 0.4, "y_mm": 9.2, "text_pt": 3.0}}, "marks.text_pt"),
        ({"din": {"x_mm": 10, "y_mm": 0.4, "text_pt": 3.9}}, "din.text_pt"),
        ({"text_pt": 3.9}, "text_pt"),
    ],
)
def test_a_text_size_below_what_can_be_read_is_refused(change: dict[str, object], key: str) -> None:
    data = labels.load_template("cryovial").model_dump()
    data.update(change)
    with pytest.raises(ConfigError, match=rf"^labels.template: site.toml: .*{key}"):
        labels.template_from(data, "site.toml")


def test_a_banner_its_box_holds_only_below_the_minimum_size_is_refused() -> None:
    data = labels.load_template("cryovial").model_dump()
    data["banner"].update(width_mm=25.0, x_mm=12.0)
    template = labels.Template.model_validate(data)
    with pytest.raises(ConfigError, match=r"banner \(25 x 1.85 mm\) holds 'QUARANTINE"):
        labels.layout(template, a_label(banner=BANNERS[LotState.QUARANTINE]))


# --- the QR code --------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet=scanner_check.TEST_TEXT, min_size=1, max_size=160))
def test_the_qr_code_is_the_one_qrcode_makes_itself(payload: str) -> None:
    """The mask lims scores on arrays is the one qrcode's own make(fit=True) chooses, so
    every module is as qrcode would draw it."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=labels.QR_QUIET_MODULES)
    code.add_data(payload)
    code.make(fit=True)
    assert labels.qr_matrix(payload) == [list(row) for row in code.get_matrix()]


# --- glyphs -----------------------------------------------------------------------------------


def test_every_character_a_label_can_print_has_a_glyph() -> None:
    reactive = screening.Statement(reactive=("hiv", "hbv"), not_performed=("cmv",))
    texts = [
        *BANNERS.values(),
        labels.PREVIEW,
        "REPRINT 12",
        NO_PRODUCT_CODE,
        screening.NOT_EVALUATED,
        reactive.label_text or "",
        SETTINGS.storage,
        SETTINGS.caution,
        SETTINGS.route,
        SETTINGS.product,
        "0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz -/*:.,+()[]'",
        "°C µL × ± ≤ ≥ – — é è à ü ö ß ñ ç ☣",
        scanner_check.TEST_TEXT,
        isbt128.SYMBOL_CHARACTERS,
    ]
    for text in texts:
        for bold in (False, True):
            assert labels.missing_glyphs(text, bold) == set(), (text, bold)


def test_a_character_outside_the_font_is_reported() -> None:
    assert labels.missing_glyphs("MSC \U0001f9ec") == {"\U0001f9ec"}


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40))
def test_zpl_text_is_printable_ascii_with_hex_escapes(text: str) -> None:
    escaped = labels.zpl_text(text)
    assert escaped.isascii()
    assert "^" not in escaped
    assert "~" not in escaped
    unescaped = re.sub(
        r"(?:_[0-9A-F]{2})+", lambda m: bytes.fromhex(m[0].replace("_", "")).decode(), escaped
    )
    assert unescaped == text


def test_zpl_replaces_what_a_zebra_font_lacks() -> None:
    assert labels.zpl_text("REJECTED — DO NOT USE") == "REJECTED - DO NOT USE"
    assert labels.zpl_text("☣ BIOHAZARD") == "BIOHAZARD"


# --- sheets -----------------------------------------------------------------------------------


def test_a_pdf_sheet_takes_the_stocks_grid_and_pages() -> None:
    import pypdf

    template = labels.load_template("cryovial")
    stock = LabelStock(columns=2, rows=3, page_width_mm=100, page_height_mm=60)
    sheet = labels.render_pdf(template, stock, [a_label()] * 7, "test")
    reader = pypdf.PdfReader(__import__("io").BytesIO(sheet))
    assert len(reader.pages) == 2
    width, height = (float(v) * 25.4 / 72 for v in reader.pages[0].mediabox[2:])
    assert (round(width), round(height)) == (100, 60)
    assert [len(found) for found in symbols.decode_pdf(sheet)] == [6, 1]


def test_a_template_of_another_size_than_the_stock_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"^labels.stock holds 38 x 13 mm labels; template bag is 70 x 50 mm: "
    ):
        labels.render_pdf(labels.load_template("vial-70x50"), LabelStock(), [a_label()], "test")


def test_a_stock_larger_than_its_page_is_refused() -> None:
    with pytest.raises(ValueError, match="more than the 210 x 297 mm page"):
        LabelStock(rows=30)
