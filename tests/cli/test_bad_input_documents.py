"""Junk in the commands that write documents: label print and report batch.

On the QA floor (tests.support.floor): junk in any option is refused in one
line, writing neither a file nor a row; a printer name that is not a CUPS queue
is refused before any label is written; a junk path is quoted in the refusal,
so no newline or escape sequence reaches the terminal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.floor import (
    Floor,
    _files,
    _names,
    junk_in_one_option_test,
)
from tests.support.junk import _one_line_error, _run, snapshot

test_junk_in_any_option_of_a_writing_command_is_refused_and_writes_nothing = (
    junk_in_one_option_test("documents")
)


@pytest.mark.parametrize("printer", ["zébra", "١٢", "x" * 128])
def test_a_printer_name_that_is_not_a_cups_queue_is_refused_before_printing(
    floor: Floor, labels_dir: Path, printer: str
) -> None:
    """`isalnum` let non-ASCII and over-long names through: labels were written and audited,
    then lp failed with exit 1."""
    args = (
        "label",
        "print",
        floor.released,
        "--format=zpl",
        "--out=labels",
        f"--printer={printer}",
    )
    before = snapshot(floor.settings)
    line = _one_line_error(_run(*args))
    assert line.startswith("error: printer: must be"), line
    assert snapshot(floor.settings) == before
    assert _files(labels_dir) == []


@pytest.mark.parametrize(
    ("words", "out"),
    [
        (("label", "print", "{lot}", "--format=zpl"), "nowhere\x1b[2J\n"),
        (("report", "batch", "{lot}"), "\x07dir\x1b[31m/x.pdf"),
        (("report", "batch", "{lot}"), "labels"),
        (("label", "print", "{lot}", "--format=zpl"), "x" * 300),  # OSError: name too long
        (("report", "batch", "{lot}"), "x" * 300 + "/x.pdf"),
        (("label", "print", "{lot}", "--format=zpl"), "~no-such-user-here"),  # RuntimeError
        (("report", "batch", "{lot}"), "~no-such-user-here/x.pdf"),
    ],
)
def test_a_junk_path_is_quoted_in_the_refusal(
    floor: Floor, labels_dir: Path, words: tuple[str, ...], out: str
) -> None:
    """The path typed is shown escaped: no newline or escape sequence reaches the terminal."""
    args = tuple(word.replace("{lot}", floor.released) for word in words)
    before = snapshot(floor.settings)
    line = _one_line_error(_run(*args, f"--out={out}"))
    assert _names(line, "out", out), line
    assert snapshot(floor.settings) == before
