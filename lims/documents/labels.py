"""Vial labels: what they say (ICCBBA ST-001 small-container minimum, 21 CFR 1271.90 and
1271.370), and drawing them as PNG, SVG, a PDF sheet or ZPL for Zebra printers.

Layouts are templates in labels/ (see its README). The QR code holds the
payload of lims.domain.payload; the ISBT 128 symbol holds the DIN as data
structure 001 in Code 128. qrcode, python-barcode, Pillow and reportlab are
imported here only, when labels are printed.
"""

from __future__ import annotations

import io
import textwrap
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lims import resources
from lims.errors import ConfigError

MM_PER_INCH = 25.4
POINTS_PER_MM = 72 / MM_PER_INCH
QUIET_ZONE_MODULES = 4


class _Box(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x_mm: float = Field(ge=0)
    y_mm: float = Field(ge=0)


class _Square(_Box):
    size_mm: float = Field(gt=0)


class _Area(_Box):
    width_mm: float = Field(gt=0)
    height_mm: float = Field(gt=0)


class _TextBlock(_Box):
    width_mm: float = Field(gt=0)
    line_mm: float = Field(gt=0)


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    width_mm: float = Field(gt=0, le=300)
    height_mm: float = Field(gt=0, le=300)
    dpi: int = Field(ge=150, le=1200)
    text_pt: float = Field(gt=2, le=30)
    qr: _Square
    marks: _Box
    text: _TextBlock
    banner: _Area
    barcode: _Area

    def px(self, mm: float) -> int:
        return round(mm / MM_PER_INCH * self.dpi)


def load_template(name: str) -> Template:
    """A template by name from labels/, or from a path a site gives."""
    path = Path(name).expanduser()
    if path.suffix != ".toml":
        path = resources.labels_dir() / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Template.model_validate(data)
    except FileNotFoundError:
        available = sorted(p.stem for p in resources.labels_dir().glob("*.toml"))
        raise ConfigError(
            f"labels.template: no template {name!r} (shipped: {', '.join(available)}; "
            "or give the path of a .toml file)"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"labels.template: {path} cannot be read: {error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"labels.template: {path}: {key}: {first['msg']}") from None


@dataclass(frozen=True)
class Label:
    """Everything printed on one vial's label."""

    vial_id: str
    payload: str  # the QR code's text
    isbt128: str | None  # the Code 128 data: '=' + DIN + flags
    lines: list[tuple[str, bool]]  # (text, bold), top to bottom
    banner: str | None
    reprint: int  # 0 for the first print

    @property
    def mark(self) -> str | None:
        return f"REPRINT {self.reprint}" if self.reprint else None


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR modules, error correction M, quiet zone of 4 modules included."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE_MODULES)
    code.add_data(payload)
    code.make(fit=True)
    return code.get_matrix()


def code128_modules(data: str) -> str:
    """The Code 128 bars as '1' (bar) and '0' (space) modules, with a quiet zone of 10."""
    import barcode

    return "0" * 10 + barcode.get("code128", data).build()[0] + "0" * 10


def wrapped(template: Template, lines: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Lines wrapped to the text block's width (about 0.55 em per character)."""
    em_mm = template.text_pt / POINTS_PER_MM
    per_line = max(10, int(template.text.width_mm / (em_mm * 0.55)))
    out: list[tuple[str, bool]] = []
    for text, bold in lines:
        out += [(part, bold) for part in textwrap.wrap(text, per_line) or [""]]
    return out


# --- PNG --------------------------------------------------------------------------------------


def render_png(template: Template, label: Label) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    width, height = template.px(template.width_mm), template.px(template.height_mm)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    size_px = template.px(template.text_pt / POINTS_PER_MM)
    font = ImageFont.load_default(size_px)

    matrix = qr_matrix(label.payload)
    module = template.px(template.qr.size_mm) // len(matrix)
    if module < 2:
        raise ConfigError(
            f"labels.template: qr.size_mm {template.qr.size_mm:g} at {template.dpi} dpi leaves "
            f"{module} px per module for a {len(matrix)}-module code; make it larger"
        )
    x0, y0 = template.px(template.qr.x_mm), template.px(template.qr.y_mm)
    for row, cells in enumerate(matrix):
        for column, dark in enumerate(cells):
            if dark:
                left, top = x0 + column * module, y0 + row * module
                draw.rectangle((left, top, left + module - 1, top + module - 1), fill=0)

    x, y = template.px(template.text.x_mm), template.px(template.text.y_mm)
    for number, (text, bold) in enumerate(wrapped(template, label.lines)):
        top = y + template.px(number * template.text.line_mm)
        draw.text((x, top), text, font=font, fill=0, stroke_width=1 if bold else 0, stroke_fill=0)
    if label.mark:
        mark = (template.px(template.marks.x_mm), template.px(template.marks.y_mm))
        draw.text(mark, label.mark, font=font, fill=0, stroke_width=1, stroke_fill=0)
    if label.banner:
        box = template.banner
        left, top = template.px(box.x_mm), template.px(box.y_mm)
        right, bottom = left + template.px(box.width_mm), top + template.px(box.height_mm)
        draw.rectangle((left, top, right, bottom), fill=0)
        draw.text(
            ((left + right) // 2, (top + bottom) // 2),
            label.banner,
            font=font,
            fill=255,
            anchor="mm",
            stroke_width=1,
            stroke_fill=255,
        )
    if label.isbt128:
        modules = code128_modules(label.isbt128)
        box = template.barcode
        module_px = max(1, template.px(box.width_mm) // len(modules))
        left, top = template.px(box.x_mm), template.px(box.y_mm)
        bottom = top + template.px(box.height_mm)
        for index, bar in enumerate(modules):
            if bar == "1":
                draw.rectangle(
                    (left + index * module_px, top, left + (index + 1) * module_px - 1, bottom),
                    fill=0,
                )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(template.dpi, template.dpi))
    return buffer.getvalue()


# --- SVG --------------------------------------------------------------------------------------


def render_svg(template: Template, label: Label) -> bytes:
    matrix = qr_matrix(label.payload)
    module = template.qr.size_mm / len(matrix)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{template.width_mm}mm" '
        f'height="{template.height_mm}mm" viewBox="0 0 {template.width_mm} {template.height_mm}">',
        f'<rect width="{template.width_mm}" height="{template.height_mm}" fill="#fff"/>',
    ]
    path = "".join(
        f"M{template.qr.x_mm + c * module:.3f},{template.qr.y_mm + r * module:.3f}"
        f"h{module:.3f}v{module:.3f}h-{module:.3f}z"
        for r, row in enumerate(matrix)
        for c, dark in enumerate(row)
        if dark
    )
    parts.append(f'<path d="{path}" fill="#000"/>')
    size = template.text_pt / POINTS_PER_MM
    font = f'font-family="Helvetica, Arial, sans-serif" font-size="{size:.3f}"'
    for number, (text, bold) in enumerate(wrapped(template, label.lines)):
        y = template.text.y_mm + number * template.text.line_mm + size
        weight = ' font-weight="bold"' if bold else ""
        parts.append(
            f'<text x="{template.text.x_mm}" y="{y:.3f}" {font}{weight}>{escape(text)}</text>'
        )
    if label.mark:
        parts.append(
            f'<text x="{template.marks.x_mm}" y="{template.marks.y_mm + size:.3f}" {font} '
            f'font-weight="bold">{escape(label.mark)}</text>'
        )
    if label.banner:
        box = template.banner
        parts.append(
            f'<rect x="{box.x_mm}" y="{box.y_mm}" width="{box.width_mm}" '
            f'height="{box.height_mm}" fill="#000"/>'
        )
        parts.append(
            f'<text x="{box.x_mm + box.width_mm / 2}" y="{box.y_mm + box.height_mm / 2}" {font} '
            f'font-weight="bold" fill="#fff" text-anchor="middle" dominant-baseline="middle">'
            f"{escape(label.banner)}</text>"
        )
    if label.isbt128:
        modules = code128_modules(label.isbt128)
        box = template.barcode
        width = box.width_mm / len(modules)
        bars = "".join(
            f"M{box.x_mm + i * width:.3f},{box.y_mm}h{width:.3f}v{box.height_mm}h-{width:.3f}z"
            for i, bar in enumerate(modules)
            if bar == "1"
        )
        parts.append(f'<path d="{bars}" fill="#000"/>')
    parts.append("</svg>")
    return "\n".join(parts).encode()


# --- PDF sheet --------------------------------------------------------------------------------


def render_pdf(template: Template, labels: Sequence[Label], title: str) -> bytes:
    """One sheet (A4 pages) of labels in a grid, cut marks drawn around each label."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as pdf_canvas

    buffer = io.BytesIO()
    sheet = pdf_canvas.Canvas(buffer, pagesize=A4)
    sheet.setTitle(title)
    margin = 10 * mm
    gap = 3 * mm
    w, h = template.width_mm * mm, template.height_mm * mm
    columns = max(1, int((A4[0] - 2 * margin + gap) // (w + gap)))
    rows = max(1, int((A4[1] - 2 * margin + gap) // (h + gap)))
    for index, label in enumerate(labels):
        slot = index % (columns * rows)
        if index and slot == 0:
            sheet.showPage()
        left = margin + (slot % columns) * (w + gap)
        top = A4[1] - margin - (slot // columns) * (h + gap)
        _draw_label(sheet, template, label, left, top)
    sheet.save()
    return buffer.getvalue()


def _draw_label(sheet: Any, template: Template, label: Label, left: float, top: float) -> None:
    from reportlab.lib.units import mm

    def at(x_mm: float, y_mm: float) -> tuple[float, float]:
        return left + x_mm * mm, top - y_mm * mm

    sheet.setLineWidth(0.2)
    sheet.setStrokeGray(0.6)
    sheet.rect(left, top - template.height_mm * mm, template.width_mm * mm, template.height_mm * mm)
    sheet.setFillGray(0)
    matrix = qr_matrix(label.payload)
    module = template.qr.size_mm / len(matrix)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                x, y = at(template.qr.x_mm + c * module, template.qr.y_mm + (r + 1) * module)
                sheet.rect(x, y, module * mm, module * mm, stroke=0, fill=1)
    size = template.text_pt
    for number, (text, bold) in enumerate(wrapped(template, label.lines)):
        sheet.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        x, y = at(template.text.x_mm, template.text.y_mm + number * template.text.line_mm)
        sheet.drawString(x, y - size, text)
    if label.mark:
        sheet.setFont("Helvetica-Bold", size)
        x, y = at(template.marks.x_mm, template.marks.y_mm)
        sheet.drawString(x, y - size, label.mark)
    if label.banner:
        box = template.banner
        x, y = at(box.x_mm, box.y_mm + box.height_mm)
        sheet.rect(x, y, box.width_mm * mm, box.height_mm * mm, stroke=0, fill=1)
        sheet.setFillGray(1)
        sheet.setFont("Helvetica-Bold", size)
        sheet.drawCentredString(
            x + box.width_mm * mm / 2, y + box.height_mm * mm / 2 - size / 3, label.banner
        )
        sheet.setFillGray(0)
    if label.isbt128:
        modules = code128_modules(label.isbt128)
        box = template.barcode
        width = box.width_mm / len(modules)
        for i, bar in enumerate(modules):
            if bar == "1":
                x, y = at(box.x_mm + i * width, box.y_mm + box.height_mm)
                sheet.rect(x, y, width * mm, box.height_mm * mm, stroke=0, fill=1)


# --- ZPL --------------------------------------------------------------------------------------


def render_zpl(template: Template, label: Label) -> str:
    """One ^XA...^XZ block: text fields, the QR as ^BQ, the ISBT 128 symbol as ^BC."""

    def dots(mm: float) -> int:
        return template.px(mm)

    def field(text: str) -> str:
        # With ^FH, '_' starts a hex escape: characters outside printable ASCII and the
        # ZPL command characters travel as their UTF-8 bytes (^CI28).
        return "".join(
            char
            if char.isascii() and char.isprintable() and char not in "^~_"
            else "".join(f"_{byte:02X}" for byte in char.encode())
            for char in text
        )

    height = dots(template.text_pt / POINTS_PER_MM)
    magnification = max(1, min(10, dots(template.qr.size_mm) // len(qr_matrix(label.payload))))
    lines = [
        "^XA",
        "^CI28",
        f"^PW{dots(template.width_mm)}",
        f"^LL{dots(template.height_mm)}",
        # ^BQ draws its own quiet zone, so the symbol starts one quiet zone in.
        f"^FO{dots(template.qr.x_mm)},{dots(template.qr.y_mm)}"
        f"^BQN,2,{magnification}^FDMA,{label.payload}^FS",
    ]
    for number, (text, bold) in enumerate(wrapped(template, label.lines)):
        y = dots(template.text.y_mm + number * template.text.line_mm)
        font = f"^A0N,{height},{height + (2 if bold else 0)}"
        lines.append(f"^FO{dots(template.text.x_mm)},{y}{font}^FH^FD{field(text)}^FS")
    if label.mark:
        lines.append(
            f"^FO{dots(template.marks.x_mm)},{dots(template.marks.y_mm)}^A0N,{height},{height}"
            f"^FD{label.mark}^FS"
        )
    if label.banner:
        box = template.banner
        lines.append(
            f"^FO{dots(box.x_mm)},{dots(box.y_mm)}^GB{dots(box.width_mm)},{dots(box.height_mm)},"
            f"{dots(box.height_mm)}^FS"
        )
        lines.append(
            f"^FO{dots(box.x_mm)},{dots(box.y_mm) + dots(box.height_mm) // 4}^A0N,{height},{height}"
            f"^FB{dots(box.width_mm)},1,0,C^FR^FH^FD{field(label.banner)}^FS"
        )
    if label.isbt128:
        box = template.barcode
        module = max(1, dots(box.width_mm) // len(code128_modules(label.isbt128)))
        lines.append(
            f"^FO{dots(box.x_mm)},{dots(box.y_mm)}^BY{module}"
            f"^BCN,{dots(box.height_mm)},N,N,N^FD{label.isbt128}^FS"
        )
    lines.append("^XZ")
    return "\n".join(lines)
