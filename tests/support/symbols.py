"""What a scanner would read on a label, in every format lims writes: each file drawn to
pixels by something other than lims (pypdfium2 for PDF, resvg for SVG, zpl-core for ZPL)
and decoded by zxing-cpp.

zpl-core draws a ZPL QR code (through segno) and Code 128 (through python-barcode) from
the field data, as a printer would; it has no Data Matrix, so a ZPL Data Matrix is read
from its ^BX field instead (`zpl_datamatrix`).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

Found = list[tuple[str, str]]  # (symbology, text) in reading order

RASTER_DPI = 600


def decode_image(image: Any) -> Found:
    import zxingcpp

    found = []
    for symbol in zxingcpp.read_barcodes(image):
        assert symbol.valid, symbol.error
        found.append((symbol.format.name, symbol.text))
    return found


def decode_png(data: bytes) -> Found:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return decode_image(image.convert("L"))


def decode_svg(data: bytes) -> Found:
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=data.decode(), dpi=RASTER_DPI, background="#ffffff")
    return decode_png(bytes(png))


def pdf_pages(data: bytes, dpi: int = RASTER_DPI) -> list[Any]:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    return [page.render(scale=dpi / 72).to_pil().convert("L") for page in document]


def decode_pdf(data: bytes) -> list[Found]:
    """Each page's symbols."""
    return [decode_image(page) for page in pdf_pages(data)]


def zpl_labels(text: str) -> list[str]:
    blocks = re.findall(r"\^XA.*?\^XZ", text, flags=re.DOTALL)
    assert text.count("^XA") == text.count("^XZ") == len(blocks)
    return blocks


def decode_zpl(block: str, tmp: Path, dpi: int = 300) -> Found:
    """One ^XA...^XZ label drawn by zpl-core and decoded."""
    from PIL import Image
    from zpl_core.render import render

    out = tmp / "zpl-render.png"
    render(block, dpi=dpi, scale=2, out=out)
    with Image.open(out) as image:
        return decode_image(image.convert("L"))


def zpl_datamatrix(block: str) -> list[str]:
    """The data of each ^BX (Data Matrix) field of a ZPL label."""
    return re.findall(r"\^BX[^\^]*\^FD(.*?)\^FS", block, flags=re.DOTALL)


def decode_file(path: Path, tmp: Path) -> list[Found]:
    """Every label in a file lims wrote: one Found a label (a PDF page a sheet)."""
    data = path.read_bytes()
    if path.suffix == ".png":
        return [decode_png(data)]
    if path.suffix == ".svg":
        return [decode_svg(data)]
    if path.suffix == ".pdf":
        return decode_pdf(data)
    return [decode_zpl(block, tmp) for block in zpl_labels(data.decode())]
