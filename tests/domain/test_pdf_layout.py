"""The reports' page layout (lims.documents.pdf): a section heading is never left alone at
the foot of a page, away from what it heads (issue 18)."""

from __future__ import annotations

import io

import pytest

from lims.documents.pdf import Layout, build


@pytest.mark.parametrize("lines", range(40, 60))
def test_a_heading_is_on_the_page_of_the_table_it_heads(lines: int) -> None:
    """Text fills the first page to a varying depth, so that for some of these the heading
    would fall in the last lines of the page and its table would not fit below it."""
    from pypdf import PdfReader

    layout = Layout()
    story = [layout.text(f"line {n}") for n in range(lines)]
    story += layout.section("Follow-up")
    story.append(layout.table(["#", "event"], [(n, f"event {n}") for n in range(12)], widths=None))
    rendered = build(story, title="t", author="a", footer="footer")
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(rendered.data)).pages]
    [holding] = [text for text in pages if "1. Follow-up" in text]
    assert "event 0" in holding, f"the heading stands alone on its page ({lines} lines above)"
