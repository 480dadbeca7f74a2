"""Vial labels: laid out once from a template, then drawn as PNG, SVG, a PDF sheet or ZPL.

What a label says is lims.services.printing's (ICCBBA ST-001 §7.3.1 for a small
container, 21 CFR 1271.90 and 1271.370); this module places it. A template (labels/, see
its README) states the label's size, its resolution and where each part goes; `layout`
turns a label into marks in millimetres (boxes, module grids, bars, text), snapped to the
template's dots so every format draws the same symbol, and each format draws those marks.

Text is set in DejaVu Sans, which matplotlib ships (found without importing it), so every
character a label prints has a glyph in PNG and PDF, and SVG text is drawn as the font's
outlines rather than left to a viewer's fonts. A Zebra printer sets ZPL text in its own
font: characters outside Latin-1 are replaced there (see ZPL_REPLACEMENTS).

qrcode, ppf-datamatrix, python-barcode, Pillow, fontTools and reportlab are imported only
when labels are drawn.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from lims import resources
from lims.errors import ConfigError

if TYPE_CHECKING:
    from lims.config import LabelStock

MM_PER_INCH = 25.4
POINTS_PER_MM = 72 / MM_PER_INCH
QR_QUIET_MODULES = 4  # ISO/IEC 18004
DATAMATRIX_QUIET_MODULES = 1  # ISO/IEC 16022
LINEAR_QUIET_MODULES = 10  # each side of a Code 128 symbol (ISBT 128)
LINEAR_MODULE_TARGET_MM = 0.25
# ISBT 128's 0.17 mm minimum, less 1 % for the dot: 2 dots at 300 dpi print 0.169 mm.
LINEAR_MODULE_MIN_MM = 0.17 * 0.99
LINEAR_HEIGHT_MIN_MM = 5.0
LINEAR_HEIGHT_MIN_SHARE = 0.15  # of the symbol's length
MIN_SYMBOL_MODULE_DOTS = 2  # fewer dots a module and a printer's dot gain fills it in
LINE_SPACING = 1.2  # of the text size, where a template does not set its own
# Nothing on a label is set smaller: 4 pt DejaVu Sans is about 1 mm for a capital letter,
# at 300 dpi 12 dots, about what can still be read at arm's length.
LEGIBLE_PT = 4.0
PREVIEW = "PREVIEW — NOT A LABEL"
ALIASES = {"vial-70x50": "bag"}  # the bag template's name before cryovial labels
# Every field a label carries; a template prints those it names, in its order.
FIELDS = (
    "product",
    "vial",
    "product_code",
    "patient",
    "dose",
    "vehicle",
    "expiry",
    "storage",
    "route",
    "facility",
    "address",
    "autologous",
    "infectious",
    "caution",
)
# A Zebra printer's own font covers Latin-1; what a label may print beyond it.
ZPL_REPLACEMENTS = {"—": "-", "☣ ": "", "☣": ""}
_FONT_FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}


# --- templates --------------------------------------------------------------------------------


class _Box(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x_mm: float = Field(ge=0)
    y_mm: float = Field(ge=0)


class _Square(_Box):
    size_mm: float = Field(gt=0)


class _Area(_Box):
    width_mm: float = Field(gt=0)
    height_mm: float = Field(gt=0)


class _Line(_Box):
    text_pt: float = Field(gt=2, le=30)


class _TextBlock(_Area):
    fields: list[str] = Field(min_length=1)
    line_spacing: float = Field(default=LINE_SPACING, ge=1.0, le=2.0)  # of the text size


class Template(BaseModel):
    """A label layout: its size and resolution, and where each part goes (mm from the
    label's top-left corner)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    width_mm: float = Field(gt=0, le=300)
    height_mm: float = Field(gt=0, le=300)
    dpi: int = Field(ge=150, le=1200)
    text_pt: float = Field(gt=2, le=30)
    # Long text is set smaller, down to this, before the template is said not to hold it;
    # so is a banner too long for its box.
    min_text_pt: float = Field(default=LEGIBLE_PT, ge=LEGIBLE_PT, le=30)
    symbol: _Square  # the 2-D code, its quiet zone included
    din: _Line  # the DIN eye-readable, its check character boxed
    text: _TextBlock
    banner: _Area
    marks: _Line  # "REPRINT n"
    linear: _Area | None = None  # the DIN in Code 128, where it fits at this resolution
    _name: str = PrivateAttr(default="")  # as a site names it: shipped name or file path

    @property
    def name(self) -> str:
        return self._name

    @model_validator(mode="after")
    def _inside_the_label(self) -> Template:
        for key, size in (
            ("text_pt", self.text_pt),
            ("din.text_pt", self.din.text_pt),
            ("marks.text_pt", self.marks.text_pt),
        ):
            if size < self.min_text_pt:
                raise ValueError(f"{key} {size:g} is below min_text_pt {self.min_text_pt:g}")
        unknown = sorted(set(self.text.fields) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"text.fields: unknown {', '.join(unknown)} (known: {', '.join(FIELDS)})"
            )
        parts: list[tuple[str, _Box, float, float]] = [
            ("symbol", self.symbol, self.symbol.size_mm, self.symbol.size_mm),
            ("din", self.din, 0, _em_mm(self.din.text_pt)),
            ("text", self.text, self.text.width_mm, self.text.height_mm),
            ("banner", self.banner, self.banner.width_mm, self.banner.height_mm),
            ("marks", self.marks, 0, _em_mm(self.marks.text_pt)),
        ]
        if self.linear is not None:
            parts.append(("linear", self.linear, self.linear.width_mm, self.linear.height_mm))
        for name, box, width, height in parts:
            right, bottom = box.x_mm + width, box.y_mm + height
            if right > self.width_mm + 1e-6 or bottom > self.height_mm + 1e-6:
                raise ValueError(
                    f"{name} reaches {right:g} x {bottom:g} mm, outside the "
                    f"{self.width_mm:g} x {self.height_mm:g} mm label"
                )
        return self

    def dots(self, mm: float) -> int:
        return round(mm / MM_PER_INCH * self.dpi)

    def snapped(self, mm: float) -> float:
        """A length as the printer can draw it: a whole number of dots."""
        return self.dots(mm) * MM_PER_INCH / self.dpi


def load_template(name: str) -> Template:
    """A template by name from labels/ (or its older name), or from a path a site gives."""
    path = Path(name).expanduser()
    shipped = path.suffix != ".toml"
    if shipped:
        name = ALIASES.get(name, name)
        path = resources.labels_dir() / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        available = sorted([p.stem for p in resources.labels_dir().glob("*.toml")] + [*ALIASES])
        raise ConfigError(
            f"labels.template: no template {name!r} (shipped: {', '.join(available)}; "
            "or give the path of a .toml file)"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"labels.template: {path} cannot be read: {error}") from None
    template = template_from(data, str(path))
    template._name = name if shipped else str(path)
    return template


def template_from(data: dict[str, Any], source: str) -> Template:
    """A template from its TOML's values, or ConfigError naming the first key at fault."""
    try:
        return Template.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"labels.template: {source}: {key or 'template'}: {message}") from None


# --- what a label holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """Everything printed on one vial's label."""

    vial_id: str
    symbol: str  # the 2-D code's text: the lims payload, or an ISBT 128 compound message
    symbology: str  # "qr" or "datamatrix"
    din: str  # eye-readable, grouped: A9999 26 000001
    din_check: str  # its check character, printed in a box
    linear: str | None  # Code 128 data: ISBT 128 data structure 001, or None
    fields: tuple[tuple[str, str, bool], ...]  # (field, text, bold), in the label's order
    banner: str | None
    reprint: int  # 0 for the first print
    preview: bool = False

    @property
    def mark(self) -> str | None:
        return f"REPRINT {self.reprint}" if self.reprint else None


# --- fonts ----------------------------------------------------------------------------------------


def font_path(bold: bool = False) -> Path:
    """DejaVu Sans as matplotlib ships it, found without importing matplotlib."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("labels need matplotlib's DejaVu Sans font: reinstall lims")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "mpl-data" / "fonts" / "ttf" / _FONT_FILES[bold]


@dataclass(frozen=True)
class _Face:
    units_per_em: int
    ascent: float  # of the em
    advances: dict[str, int]  # character: advance in font units
    glyph_names: dict[str, str]


@functools.cache
def _face(bold: bool) -> _Face:
    from fontTools.ttLib import TTFont

    font = TTFont(font_path(bold), lazy=True)
    cmap = font.getBestCmap()
    metrics = font["hmtx"].metrics
    units = font["head"].unitsPerEm
    return _Face(
        units_per_em=units,
        ascent=font["hhea"].ascent / units,
        advances={chr(code): metrics[name][0] for code, name in cmap.items()},
        glyph_names={chr(code): name for code, name in cmap.items()},
    )


def missing_glyphs(text: str, bold: bool = False) -> set[str]:
    """The characters of text the label font has no glyph for."""
    return {char for char in text if char not in _face(bold).advances}


def text_width_mm(text: str, size_pt: float, bold: bool = False) -> float:
    face = _face(bold)
    units = sum(face.advances.get(char, face.units_per_em // 2) for char in text)
    return units / face.units_per_em * _em_mm(size_pt)


def _em_mm(size_pt: float) -> float:
    return size_pt / POINTS_PER_MM


# --- symbols ----------------------------------------------------------------------------------


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR modules, error correction M, quiet zone of 4 modules included.

    The mask is the one qrcode's own make(fit=True) chooses, by the penalty rules of
    ISO/IEC 18004 §7.8.3, but the data is placed once and the eight masks are scored
    together on arrays (`_qr_penalties`): placing and scoring each mask in Python was two
    thirds of a label's cost on a PDF sheet."""
    import numpy as np
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QR_QUIET_MODULES, mask_pattern=0)
    code.add_data(payload)
    code.make(fit=True)
    fixed, data_cells, masks = _qr_layout(code.version)
    placed = np.array(code.modules, dtype=bool)
    unmasked = placed ^ masks[0]
    best = int(np.argmin(_qr_penalties(fixed | (data_cells & (unmasked ^ masks)))))
    if best:
        code.modules = np.where(data_cells, unmasked ^ masks[best], placed).tolist()
        code.setup_type_info(False, best)
    return [list(row) for row in code.get_matrix()]


@functools.cache
def _qr_layout(version: int) -> tuple[Any, Any, Any]:
    """For a QR version: its fixed patterns as qrcode scores a mask (finders, alignment,
    timing; format and version information light), where the data modules go, and the
    eight data masks (ISO/IEC 18004 table 10) over those modules."""
    import numpy as np
    import qrcode

    code = qrcode.QRCode(version=version)
    size = code.modules_count = version * 4 + 17
    code.modules = [[None] * size for _ in range(size)]
    for row, column in ((0, 0), (size - 7, 0), (0, size - 7)):
        code.setup_position_probe_pattern(row, column)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(True, 0)
    if version >= 7:
        code.setup_type_number(True)
    data_cells = np.array([[cell is None for cell in row] for row in code.modules])
    fixed = np.array([[bool(cell) for cell in row] for row in code.modules])
    i, j = np.indices((size, size))
    masks = np.array(
        [
            (i + j) % 2 == 0,
            i % 2 == 0,
            j % 3 == 0,
            (i + j) % 3 == 0,
            (i // 2 + j // 3) % 2 == 0,
            (i * j) % 2 + (i * j) % 3 == 0,
            ((i * j) % 2 + (i * j) % 3) % 2 == 0,
            ((i * j) % 3 + (i + j) % 2) % 2 == 0,
        ]
    )
    return fixed, data_cells, masks & data_cells


_FINDER_LIKE = ((1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0), (0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1))


def _qr_penalties(symbols: Any) -> Any:
    """ISO/IEC 18004 §7.8.3's penalty of each of a stack of masked symbols, as
    qrcode.util.lost_point counts it: runs of five or more, 2 x 2 blocks, finder-like
    patterns, the dark share."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    count, size, _ = symbols.shape
    scores = np.zeros(count)
    for lines in (symbols, symbols.transpose(0, 2, 1)):
        # Each line ends in a value no module has, so that no run crosses lines.
        flat = np.full((count, size, size + 1), 2, dtype=np.int8)
        flat[:, :, :size] = lines
        flat = flat.ravel()
        ends = np.flatnonzero(flat[1:] != flat[:-1])
        runs = np.diff(ends, prepend=-1)
        long = runs >= 5
        owner = ends[long] // (size * (size + 1))
        scores += np.bincount(owner, weights=runs[long] - 2, minlength=count)
        windows = sliding_window_view(lines, 11, axis=2)
        for pattern in _FINDER_LIKE:
            scores += 40 * (windows == pattern).all(axis=-1).sum(axis=(1, 2))
    corner = symbols[:, :-1, :-1]
    blocks = (
        (corner == symbols[:, 1:, :-1])
        & (corner == symbols[:, :-1, 1:])
        & (corner == symbols[:, 1:, 1:])
    )
    scores += 3 * blocks.sum(axis=(1, 2))
    dark_percent = symbols.sum(axis=(1, 2)) / size**2 * 100
    return scores + (np.abs(dark_percent - 50) / 5).astype(int) * 10


def datamatrix_matrix(text: str) -> list[list[bool]]:
    """The Data Matrix (ECC 200) modules, quiet zone of 1 module included."""
    from ppf.datamatrix import DataMatrix

    rows = [[bool(cell) for cell in row] for row in DataMatrix(text).matrix]
    pad = DATAMATRIX_QUIET_MODULES
    width = len(rows[0]) + 2 * pad
    blank = [[False] * width for _ in range(pad)]
    return [*blank, *([False] * pad + row + [False] * pad for row in rows), *blank]


def code128_modules(data: str) -> str:
    """The Code 128 bars as '1' (bar) and '0' (space) modules, quiet zones included."""
    import barcode

    quiet = "0" * LINEAR_QUIET_MODULES
    return quiet + barcode.get("code128", data).build()[0] + quiet


def linear_module_mm(template: Template, modules: int) -> float | None:
    """The module width a Code 128 symbol of `modules` (quiet zones included) is drawn at in
    the template's linear box: the ISBT 128 target where it fits, else the widest whole
    number of dots that fits, never below the 0.17 mm minimum; None where none fits (the
    box too narrow at this resolution, or too low for the symbol's length)."""
    box = template.linear
    if box is None:
        return None
    dot = MM_PER_INCH / template.dpi
    target = max(1, round(LINEAR_MODULE_TARGET_MM / dot))
    widest = template.dots(box.width_mm) // modules
    dots = min(target, widest)
    module = dots * dot
    if dots < 1 or module < LINEAR_MODULE_MIN_MM:
        return None
    bar_height = box.height_mm - _em_mm(template.text_pt) * LINE_SPACING
    if bar_height < max(LINEAR_HEIGHT_MIN_MM, LINEAR_HEIGHT_MIN_SHARE * modules * module):
        return None
    return module


# --- layout: the marks a label is made of -----------------------------------------------------


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    white: bool = False
    outline: float | None = None  # a frame of this line width, not a filled box


@dataclass(frozen=True)
class Grid:
    """A 2-D code: its modules (quiet zone included), each `module` mm square."""

    x: float
    y: float
    module: float
    modules: list[list[bool]]
    symbology: str
    data: str


@dataclass(frozen=True)
class Bars:
    x: float
    y: float
    module: float
    height: float
    pattern: str
    data: str


@dataclass(frozen=True)
class Text:
    x: float
    baseline: float
    size_pt: float
    text: str
    bold: bool = False
    white: bool = False


Mark = Rect | Grid | Bars | Text


@dataclass
class _Marks:
    items: list[Mark] = field(default_factory=list)

    def text(self, x: float, top: float, size_pt: float, text: str, **style: Any) -> float:
        """Text with its top at `top`; its width."""
        bold = bool(style.get("bold", False))
        ascent = _face(bold).ascent * _em_mm(size_pt)
        self.items.append(Text(x, top + ascent, size_pt, text, **style))
        return text_width_mm(text, size_pt, bold)

    def din(self, template: Template, x: float, top: float, size_pt: float, label: Label) -> None:
        """The DIN and its check character in a box (ISBT 128 ST-001 §7.5.1.1)."""
        width = self.text(x, top, size_pt, label.din, bold=True)
        em = _em_mm(size_pt)
        left = x + width + em * 0.3
        check = text_width_mm(label.din_check, size_pt, bold=True)
        pad = em * 0.12
        self.text(left + pad, top, size_pt, label.din_check, bold=True)
        frame = max(template.snapped(0.1), MM_PER_INCH / template.dpi)
        self.items.append(Rect(left, top - pad, check + 2 * pad, em * 1.05 + pad, outline=frame))


def _symbol(template: Template, label: Label) -> Grid:
    modules = (
        datamatrix_matrix(label.symbol)
        if label.symbology == "datamatrix"
        else qr_matrix(label.symbol)
    )
    dots = template.dots(template.symbol.size_mm) // len(modules)
    if dots < MIN_SYMBOL_MODULE_DOTS:
        raise ConfigError(
            f"labels.template: symbol.size_mm {template.symbol.size_mm:g} at {template.dpi} dpi "
            f"leaves {dots} dots a module for a {len(modules)}-module code; make it larger"
        )
    module = dots * MM_PER_INCH / template.dpi
    return Grid(
        template.snapped(template.symbol.x_mm),
        template.snapped(template.symbol.y_mm),
        module,
        modules,
        label.symbology,
        label.symbol,
    )


def _wrapped(text: str, width: float, size_pt: float, bold: bool) -> list[str]:
    """Text in lines no wider than width, broken between words; a word wider than a line
    (a long code) is broken where the line is full rather than let run off the label."""

    def fits(line: str) -> bool:
        return text_width_mm(line, size_pt, bold) <= width

    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if fits(candidate):
            line = candidate
            continue
        if fits(word):
            lines.append(line)
            line = word
            continue
        rest = word
        while not fits(f"{line} {rest}" if line else rest):
            lead = f"{line} " if line else ""
            taken = next((n for n in range(len(rest) - 1, 0, -1) if fits(lead + rest[:n])), 0)
            if taken == 0 and not line:
                taken = 1  # not even a character fits: set it anyway, the block then overflows
            if taken:
                lines.append(lead + rest[:taken])
                rest = rest[taken:]
            else:
                lines.append(line)
            line = ""
        line = f"{line} {rest}" if line else rest
    return [*lines, line] if line else lines or [""]


def _text_block(template: Template, label: Label) -> tuple[float, list[tuple[str, bool]]]:
    """The size the template's fields are set at, the largest that fits its block, and
    the lines they make."""
    chosen = dict((name, (text, bold)) for name, text, bold in label.fields)
    texts = [chosen[name] for name in template.text.fields if name in chosen]
    size = template.text_pt
    while True:
        lines = [
            (line, bold)
            for text, bold in texts
            for line in _wrapped(text, template.text.width_mm, size, bold)
        ]
        height = len(lines) * _em_mm(size) * template.text.line_spacing
        if height <= template.text.height_mm + 1e-6:
            return size, lines
        if size - 0.25 < template.min_text_pt - 1e-9:
            raise ConfigError(
                f"labels.template: the text of {label.vial_id} does not fit the template's text "
                f"block ({template.text.width_mm:g} x {template.text.height_mm:g} mm) even at "
                f"{template.min_text_pt:g} pt: name fewer fields or use a larger label"
            )
        size -= 0.25


def _fitted_size(text: str, width: float, height: float, most_pt: float) -> float:
    """The largest size up to most_pt at which bold text fits width and height."""
    size = most_pt
    while size > 2 and (text_width_mm(text, size, bold=True) > width or _em_mm(size) > height):
        size -= 0.25
    return size


def layout(template: Template, label: Label) -> list[Mark]:
    """The label as marks in mm from its top-left corner, in drawing order."""
    marks = _Marks()
    marks.items.append(_symbol(template, label))
    marks.din(template, template.din.x_mm, template.din.y_mm, template.din.text_pt, label)
    size, lines = _text_block(template, label)
    step = _em_mm(size) * template.text.line_spacing
    for number, (line, bold) in enumerate(lines):
        marks.text(template.text.x_mm, template.text.y_mm + number * step, size, line, bold=bold)
    if label.linear is not None:
        modules = code128_modules(label.linear)
        module = linear_module_mm(template, len(modules))
        box = template.linear
        if module is not None and box is not None:
            length = module * len(modules)
            left = template.snapped(box.x_mm + (box.width_mm - length) / 2)
            readable = _em_mm(template.text_pt) * LINE_SPACING
            bars = box.height_mm - readable
            marks.items.append(
                Bars(left, template.snapped(box.y_mm), module, bars, modules, label.linear)
            )
            # Eye-readable under the symbol: the DIN, its check character boxed.
            din_width = text_width_mm(label.din, template.text_pt, bold=True)
            start = box.x_mm + (box.width_mm - din_width) / 2 - _em_mm(template.text_pt) * 0.6
            marks.din(template, start, box.y_mm + bars + 0.15, template.text_pt, label)
    if label.mark:
        marks.text(
            template.marks.x_mm, template.marks.y_mm, template.marks.text_pt, label.mark, bold=True
        )
    if label.banner:
        box = template.banner
        size = _band(
            marks, box.x_mm, box.y_mm, box.width_mm, box.height_mm, label.banner,
            template.text_pt, white=True,
        )  # fmt: skip
        if size < template.min_text_pt:
            raise ConfigError(
                f"labels.template: banner ({box.width_mm:g} x {box.height_mm:g} mm) holds "
                f"{label.banner!r} only at {size:g} pt, below min_text_pt "
                f"{template.min_text_pt:g}: make it wider"
            )
    if label.preview:
        # Across the label through the middle of the 2-D code: a preview cannot pass for one.
        height = max(2.5, template.symbol.size_mm * 0.4)
        middle = template.symbol.y_mm + template.symbol.size_mm / 2
        top = min(max(0.0, middle - height / 2), template.height_mm - height)
        _band(
            marks, 0, top, template.width_mm, height, PREVIEW, template.text_pt * 1.5, white=False
        )
    return marks.items


def _band(
    marks: _Marks,
    x: float,
    y: float,
    width: float,
    height: float,
    text: str,
    most_pt: float,
    *,
    white: bool,
) -> float:
    """A band across (black with white text, or white and framed) with text centred in it;
    the size the text is set at."""
    frame = None if white else 0.3
    marks.items.append(Rect(x, y, width, height, white=not white))
    if frame is not None:
        marks.items.append(Rect(x, y, width, height, outline=frame))
    pad = min(width, height) * 0.1
    size = _fitted_size(text, width - 2 * pad, height - 2 * pad, most_pt)
    text_width = text_width_mm(text, size, bold=True)
    top = y + (height - _em_mm(size) * 0.95) / 2
    marks.text(x + (width - text_width) / 2, top, size, text, bold=True, white=white)
    return size


# --- PNG --------------------------------------------------------------------------------------


def render_png(template: Template, label: Label) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new(
        "L", (template.dots(template.width_mm), template.dots(template.height_mm)), 255
    )
    draw = ImageDraw.Draw(image)

    def px(mm: float) -> int:
        return template.dots(mm)

    for mark in layout(template, label):
        if isinstance(mark, Rect):
            box = (
                px(mark.x),
                px(mark.y),
                px(mark.x + mark.width) - 1,
                px(mark.y + mark.height) - 1,
            )
            if mark.outline is None:
                draw.rectangle(box, fill=255 if mark.white else 0)
            else:
                draw.rectangle(box, outline=0, width=max(1, px(mark.outline)))
        elif isinstance(mark, Grid):
            step = px(mark.module)
            left, top = px(mark.x), px(mark.y)
            for row, start, length in _runs(mark.modules):
                x0, y0 = left + start * step, top + row * step
                draw.rectangle((x0, y0, x0 + length * step - 1, y0 + step - 1), fill=0)
        elif isinstance(mark, Bars):
            step = px(mark.module)
            left, top, bottom = px(mark.x), px(mark.y), px(mark.y + mark.height) - 1
            for _, start, length in _runs([[bar == "1" for bar in mark.pattern]]):
                draw.rectangle(
                    (left + start * step, top, left + (start + length) * step - 1, bottom), fill=0
                )
        else:
            font = _pil_font(mark.bold, px(_em_mm(mark.size_pt)))
            draw.text(
                (px(mark.x), px(mark.baseline)),
                mark.text,
                font=font,
                fill=255 if mark.white else 0,
                anchor="ls",
            )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(template.dpi, template.dpi))
    return buffer.getvalue()


@functools.cache
def _pil_font(bold: bool, size_px: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path(bold)), max(1, size_px))


def _runs(rows: Sequence[Sequence[bool]]) -> Iterator[tuple[int, int, int]]:
    """Each row's runs of dark modules: (row, first column, length). Fewer, larger marks
    draw faster and leave no hairline gaps between modules in a PDF viewer."""
    for number, row in enumerate(rows):
        start = None
        for column, dark in enumerate([*row, False]):
            if dark and start is None:
                start = column
            elif not dark and start is not None:
                yield number, start, column - start
                start = None


# --- SVG --------------------------------------------------------------------------------------


def render_svg(template: Template, label: Label) -> bytes:
    glyphs = _SvgGlyphs()
    body: list[str] = []
    for mark in layout(template, label):
        if isinstance(mark, Rect):
            if mark.outline is None:
                fill = "#fff" if mark.white else "#000"
                body.append(
                    f'<rect x="{mark.x:.3f}" y="{mark.y:.3f}" width="{mark.width:.3f}" '
                    f'height="{mark.height:.3f}" fill="{fill}"/>'
                )
            else:
                body.append(
                    f'<rect x="{mark.x:.3f}" y="{mark.y:.3f}" width="{mark.width:.3f}" '
                    f'height="{mark.height:.3f}" fill="none" stroke="#000" '
                    f'stroke-width="{mark.outline:.3f}"/>'
                )
        elif isinstance(mark, Grid):
            path = "".join(
                f"M{mark.x + start * mark.module:.3f},{mark.y + row * mark.module:.3f}"
                f"h{length * mark.module:.3f}v{mark.module:.3f}h{-length * mark.module:.3f}z"
                for row, start, length in _runs(mark.modules)
            )
            body.append(f'<path d="{path}" fill="#000"/>')
        elif isinstance(mark, Bars):
            path = "".join(
                f"M{mark.x + start * mark.module:.3f},{mark.y:.3f}h{length * mark.module:.3f}"
                f"v{mark.height:.3f}h{-length * mark.module:.3f}z"
                for _, start, length in _runs([[bar == "1" for bar in mark.pattern]])
            )
            body.append(f'<path d="{path}" fill="#000"/>')
        else:
            body.append(glyphs.text(mark))
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{template.width_mm}mm" height="{template.height_mm}mm" '
            f'viewBox="0 0 {template.width_mm} {template.height_mm}">',
            f"<title>{_escape(label.vial_id)}</title>",
            glyphs.definitions(),
            f'<rect width="{template.width_mm}" height="{template.height_mm}" fill="#fff"/>',
            *body,
            "</svg>",
        ]
    ).encode()


def _escape(text: str) -> str:
    from xml.sax.saxutils import escape

    return escape(text, {'"': "&quot;"})


class _SvgGlyphs:
    """Text as the font's outlines: each glyph defined once, placed where it is used; the
    text itself kept in an aria-label for search and accessibility."""

    def __init__(self) -> None:
        self.used: dict[tuple[bool, str], str] = {}

    def text(self, mark: Text) -> str:
        face = _face(mark.bold)
        scale = _em_mm(mark.size_pt) / face.units_per_em
        uses = []
        advance = 0
        for char in mark.text:
            if char != " ":
                uses.append(f'<use xlink:href="#{self._id(mark.bold, char)}" x="{advance}"/>')
            advance += face.advances.get(char, face.units_per_em // 2)
        fill = "#fff" if mark.white else "#000"
        return (
            f'<g aria-label="{_escape(mark.text)}" fill="{fill}" '
            f'transform="translate({mark.x:.3f},{mark.baseline:.3f}) scale({scale:.6f},'
            f'{-scale:.6f})">{"".join(uses)}</g>'
        )

    def _id(self, bold: bool, char: str) -> str:
        return self.used.setdefault((bold, char), f"g{'b' if bold else 'r'}{ord(char):x}")

    def definitions(self) -> str:
        paths = [
            f'<path id="{name}" d="{_glyph_path(bold, char)}"/>'
            for (bold, char), name in sorted(self.used.items(), key=lambda item: item[1])
        ]
        return f"<defs>{''.join(paths)}</defs>"


@functools.cache
def _glyph_path(bold: bool, char: str) -> str:
    from fontTools.pens.svgPathPen import SVGPathPen

    glyphs = _ttfont(bold).getGlyphSet()
    pen = SVGPathPen(glyphs)
    glyphs[_face(bold).glyph_names.get(char, ".notdef")].draw(pen)
    return str(pen.getCommands())


@functools.cache
def _ttfont(bold: bool) -> Any:
    from fontTools.ttLib import TTFont

    return TTFont(font_path(bold), lazy=True)


# --- PDF sheet --------------------------------------------------------------------------------


def render_pdf(template: Template, stock: LabelStock, labels: Sequence[Label], title: str) -> bytes:
    """The labels on sheets of the site's stock, one label to a position, row by row."""
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as pdf_canvas

    if (
        abs(stock.label_width_mm - template.width_mm) > 0.05
        or abs(stock.label_height_mm - template.height_mm) > 0.05
    ):
        raise ConfigError(
            f"labels.stock holds {stock.label_width_mm:g} x {stock.label_height_mm:g} mm labels; "
            f"template {template.name or 'given'} is {template.width_mm:g} x "
            f"{template.height_mm:g} mm: print these "
            "as png, svg or zpl, or set labels.stock to a sheet of this size"
        )
    _register_pdf_fonts()
    buffer = io.BytesIO()
    page = (stock.page_width_mm * mm, stock.page_height_mm * mm)
    sheet = pdf_canvas.Canvas(buffer, pagesize=page, pageCompression=1)
    sheet.setTitle(title)
    per_page = stock.columns * stock.rows
    for index, label in enumerate(labels):
        slot = index % per_page
        if index and slot == 0:
            sheet.showPage()
        column, row = slot % stock.columns, slot // stock.columns
        left = stock.margin_left_mm + column * (stock.label_width_mm + stock.gap_x_mm)
        top = stock.margin_top_mm + row * (stock.label_height_mm + stock.gap_y_mm)
        _draw_pdf_label(sheet, template, label, left * mm, page[1] - top * mm)
    sheet.save()
    return buffer.getvalue()


@functools.cache
def _register_pdf_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for bold, name in ((False, "DejaVuSans"), (True, "DejaVuSans-Bold")):
        pdfmetrics.registerFont(TTFont(name, str(font_path(bold))))


def _draw_pdf_label(sheet: Any, template: Template, label: Label, left: float, top: float) -> None:
    from reportlab.lib.units import mm

    def fill(white: bool) -> None:
        sheet.setFillGray(1 if white else 0)

    for mark in layout(template, label):
        if isinstance(mark, Rect):
            x, y = left + mark.x * mm, top - (mark.y + mark.height) * mm
            if mark.outline is None:
                fill(mark.white)
                sheet.rect(x, y, mark.width * mm, mark.height * mm, stroke=0, fill=1)
            else:
                sheet.setLineWidth(mark.outline * mm)
                sheet.setStrokeGray(0)
                sheet.rect(x, y, mark.width * mm, mark.height * mm, stroke=1, fill=0)
        elif isinstance(mark, Grid):
            # One image a module a pixel, drawn without smoothing: a PDF viewer scales it
            # to the symbol's size with sharp edges, and far faster than a rect a module.
            side = len(mark.modules) * mark.module * mm
            sheet.drawImage(
                _module_image(mark.modules),
                left + mark.x * mm,
                top - mark.y * mm - side,
                side,
                side,
            )
        elif isinstance(mark, Bars):
            fill(False)
            path = sheet.beginPath()
            for _, start, length in _runs([[bar == "1" for bar in mark.pattern]]):
                path.rect(
                    left + (mark.x + start * mark.module) * mm,
                    top - (mark.y + mark.height) * mm,
                    length * mark.module * mm,
                    mark.height * mm,
                )
            sheet.drawPath(path, stroke=0, fill=1)
        else:
            fill(mark.white)
            sheet.setFont("DejaVuSans-Bold" if mark.bold else "DejaVuSans", mark.size_pt)
            sheet.drawString(left + mark.x * mm, top - mark.baseline * mm, mark.text)
    fill(False)


def _module_image(modules: list[list[bool]]) -> Any:
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    image = Image.new("1", (len(modules[0]), len(modules)), 1)
    image.putdata([0 if dark else 1 for row in modules for dark in row])
    return ImageReader(image)


# --- ZPL --------------------------------------------------------------------------------------


def zpl_text(text: str) -> str:
    """Text as a Zebra printer's font can print it, then escaped for ^FH: characters outside
    printable ASCII and the ZPL command characters travel as their UTF-8 bytes (^CI28)."""
    for char, replacement in ZPL_REPLACEMENTS.items():
        text = text.replace(char, replacement)
    return "".join(
        char
        if char.isascii() and char.isprintable() and char not in "^~_"
        else "".join(f"_{byte:02X}" for byte in char.encode())
        for char in text
    )


def render_zpl(template: Template, label: Label) -> str:
    """One ^XA...^XZ block: text in the printer's font, the 2-D code as ^BQ (QR) or ^BX
    (Data Matrix), the ISBT 128 symbol as ^BC, boxes as ^GB."""

    def dots(mm: float) -> int:
        return template.dots(mm)

    lines = ["^XA", "^CI28", f"^PW{dots(template.width_mm)}", f"^LL{dots(template.height_mm)}"]
    for mark in layout(template, label):
        if isinstance(mark, Rect):
            width, height = max(1, dots(mark.width)), max(1, dots(mark.height))
            thickness = min(width, height) if mark.outline is None else max(1, dots(mark.outline))
            colour = "W" if mark.white else "B"
            lines.append(
                f"^FO{dots(mark.x)},{dots(mark.y)}^GB{width},{height},{thickness},{colour}^FS"
            )
        elif isinstance(mark, Grid):
            module = dots(mark.module)
            if mark.symbology == "datamatrix":
                quiet = DATAMATRIX_QUIET_MODULES * module
                lines.append(
                    f"^FO{dots(mark.x) + quiet},{dots(mark.y) + quiet}"
                    f"^BXN,{module},200^FD{mark.data}^FS"
                )
            else:
                # ^BQ draws its own quiet zone, and its data starts with the error correction.
                lines.append(f"^FO{dots(mark.x)},{dots(mark.y)}^BQN,2,{module}^FDMA,{mark.data}^FS")
        elif isinstance(mark, Bars):
            quiet = LINEAR_QUIET_MODULES * dots(mark.module)
            lines.append(
                f"^FO{dots(mark.x) + quiet},{dots(mark.y)}^BY{dots(mark.module)}"
                f"^BCN,{dots(mark.height)},N,N,N^FD{mark.data}^FS"
            )
        else:
            size = dots(_em_mm(mark.size_pt))
            top = dots(mark.baseline) - round(size * 0.8)
            reverse = "^FR" if mark.white else ""
            lines.append(
                f"^FO{dots(mark.x)},{max(0, top)}^A0N,{size},{size}{reverse}"
                f"^FH^FD{zpl_text(mark.text)}^FS"
            )
    lines.append("^XZ")
    return "\n".join(lines)
