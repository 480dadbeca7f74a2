"""What the printed reports share: A4 pages numbered under a footer, and tables of text.

reportlab is imported inside these functions only, so that no command but the
one printing a report pays for loading it.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


class Layout:
    """The styles of a report and the pieces it is laid out from; made while rendering."""

    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import getSampleStyleSheet

        self.styles = getSampleStyleSheet()
        self.small = self.styles["BodyText"].clone("small", fontSize=7.5, leading=9)
        # What must not be missed on the page: a recall.
        self.alarm = self.styles["Heading2"].clone("alarm", textColor=colors.HexColor("#b00020"))
        self._sections = 0
        # A heading goes to the next page with what it heads, never alone at a page's foot.
        self.heading_style = self.styles["Heading2"].clone("heading", keepWithNext=1)

    def text(self, value: Any) -> Any:
        """A table cell or a line: the value as typed (escaped), or — for none."""
        from reportlab.platypus import Paragraph

        return Paragraph(escape("—" if value is None else str(value)), self.small)

    def markup(self, markup: str, style: Any = None) -> Any:
        """A paragraph of reportlab markup (<b>, <br/>); whatever was typed in it is escaped."""
        from reportlab.platypus import Paragraph

        return Paragraph(markup, style or self.small)

    def table(
        self,
        header: Sequence[str] | None,
        rows: Sequence[Sequence[Any]],
        widths: Sequence[float] | None = None,
        *,
        marked: Collection[int] = (),
        split_rows: bool = False,
    ) -> Any:
        """A gridded table; the rows numbered in `marked` (from 0, after the header) shaded.
        With `split_rows`, a row too tall for the rest of a page (long free text) is carried
        over onto the next one rather than failing the document."""
        from reportlab.lib import colors
        from reportlab.platypus import Table, TableStyle

        data = ([[self.text(h) for h in header]] if header else []) + [
            [self.text(c) for c in row] for row in rows
        ]
        built = Table(
            data,
            colWidths=widths,
            repeatRows=1 if header else 0,
            hAlign="LEFT",
            splitInRow=1 if split_rows else 0,
        )
        style: list[tuple[Any, ...]] = [
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6f0")))
        first = 1 if header else 0
        style += [
            ("BACKGROUND", (0, first + row), (-1, first + row), colors.HexColor("#fbe3c8"))
            for row in marked
        ]
        built.setStyle(TableStyle(style))
        return built

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> Any:
        from reportlab.lib.units import mm

        return self.table(None, pairs, widths=[45 * mm, 130 * mm])

    def heading(self, title: str) -> list[Any]:
        from reportlab.lib.units import mm
        from reportlab.platypus import Paragraph, Spacer

        return [Spacer(1, 4 * mm), Paragraph(escape(title), self.heading_style)]

    def section(self, title: str) -> list[Any]:
        """A heading numbered after the sections before it in this document, so a section
        left out (a growth chart with one passage) leaves no gap in the numbers."""
        self._sections += 1
        return self.heading(f"{self._sections}. {title}")


def build(story: list[Any], *, title: str, author: str, footer: str) -> RenderedPdf:
    """The story on A4 pages, each with the footer and 'page N of M'."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas as pdf_canvas
    from reportlab.platypus import SimpleDocTemplate

    pages = [0]  # filled in by the canvas when it saves

    class NumberedCanvas(pdf_canvas.Canvas):
        """Writes 'page N of M' once the number of pages is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            pages[0] = len(self._pages)
            for page in self._pages:
                self.__dict__.update(page)
                self.setFont("Helvetica", 7)
                self.drawString(15 * mm, 10 * mm, footer)
                self.drawRightString(
                    A4[0] - 15 * mm, 10 * mm, f"page {self._pageNumber} of {len(self._pages)}"
                )
                super().showPage()
            super().save()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=author,
    )
    document.build(story, canvasmaker=NumberedCanvas)
    return RenderedPdf(buffer.getvalue(), pages[0])
