"""Junk in the bedside's commands: vial issue, administer and destroy, and the scanner loop.

On the QA floor (tests.support.floor): junk in any option of a vial command is
refused in one line and writes nothing, bar the audit entry of a scan that does
not match; `lims scan` answers every junk line (UNREADABLE or MISMATCH, never a
raw control character) and carries on; a forged label with a valid check value
is unreadable, not stored.
"""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain.payload import check_value
from tests.support.floor import (
    PATIENT,
    Floor,
    _appended_refusals,
    junk_in_one_option_test,
    scans,
)
from tests.support.junk import _one_line_error, _run, fuzz, snapshot

test_junk_in_any_option_of_a_writing_command_is_refused_and_writes_nothing = (
    junk_in_one_option_test("vials")
)


# --- the scanner loop: each junk line is answered, none stops it ---------------------------


def _typeable(line: str) -> str:
    """What a scanner can type into UTF-8 standard input: no NUL, no lone surrogate."""
    return re.sub("[\x00\ud800-\udfff]", "", line)


def _scan_lines(text_in: str) -> list[str]:
    """The lines `lims scan` reads (universal newlines), as it strips them; blanks skipped."""
    return [line.strip() for line in io.StringIO(text_in, newline=None) if line.strip()]


@fuzz(15)
@given(data=st.data())
def test_scan_answers_every_junk_line_and_carries_on(floor: Floor, data: st.DataObject) -> None:
    settings = floor.settings
    junk = data.draw(
        st.lists(scans(floor).map(_typeable), min_size=1, max_size=4),
        label="lines",
    )
    good = floor.scan(floor.vial(1))
    lines = [line for line in junk if line.strip() != good]
    typed = "\n".join([*lines, good]) + "\n"
    expected = _scan_lines(typed)
    before = snapshot(settings)
    ran = _run("scan", "--patient", PATIENT, stdin=typed)
    assert "Traceback" not in ran.stdout + ran.stderr
    assert ran.exit_code == (1 if len(expected) > 1 else 0), (ran.stdout, ran.stderr)
    answers = [
        line
        for line in ran.stdout.splitlines()
        if line.startswith(("MATCH", "MISMATCH", "UNREADABLE"))
    ]
    assert len(answers) == len(expected), (expected, ran.stdout)
    assert answers[-1].startswith("MATCH "), answers[-1]
    assert all(not answer.startswith("MATCH ") for answer in answers[:-1]), answers
    assert f"{len(expected)} scanned: 1 MATCH, {len(expected) - 1} MISMATCH" in ran.stdout
    for line in ran.stdout.splitlines():
        assert not [c for c in line if unicodedata.category(c) == "Cc"], repr(line)
    appended = _appended_refusals(
        settings, before, snapshot(settings), ("vial.verify", "vial.scan_unreadable")
    )
    assert len(appended) <= len(expected)


@pytest.mark.parametrize(
    "payload",
    [
        "LIMS1/\x1b[2J\x1b[H/A9999260000018/PT-0001/203001010000/{check}",
        "LIMS1/{long}/A9999260000018/PT-0001/203001010000/{check}",
        "LIMS1/A999926000001-L1-V01/A9999260000018/PT\x07-0001/203001010000/{check}",
    ],
)
def test_a_crafted_scan_with_a_valid_check_value_is_unreadable_not_stored(
    floor: Floor, payload: str
) -> None:
    """A forged label's junk id must not reach the terminal raw or an audit entity id (64)."""
    body = payload.rsplit("/", 1)[0].replace("{long}", "V" * 100)
    scanned = f"{body}/{check_value(body)}"
    before = snapshot(floor.settings)
    ran = _run("scan", "--patient", PATIENT, stdin=scanned + "\n")
    assert ran.exit_code == 1, (ran.stdout, ran.stderr)
    assert "UNREADABLE scan: " in ran.stdout, ran.stdout
    assert "\x1b" not in ran.stdout, repr(ran.stdout)
    assert "\x07" not in ran.stdout, repr(ran.stdout)
    # The line is on the patient's record, escaped; no vial took it.
    after = snapshot(floor.settings)
    assert len(_appended_refusals(floor.settings, before, after, ("vial.scan_unreadable",))) == 1
    before = after
    issued = _run("vial", "issue", floor.vial(1), "--patient", PATIENT, "--scan", scanned)
    line = _one_line_error(issued)
    assert line.startswith("error: scan: "), line
    assert snapshot(floor.settings) == before


@pytest.mark.parametrize("patient", ["", "pt-0001", "PT 0001", "\x1b[2J", "x" * 40, "--json"])
def test_scan_refuses_a_junk_patient_before_reading_a_line(floor: Floor, patient: str) -> None:
    before = snapshot(floor.settings)
    for stdin in ("", floor.scan(floor.vial(1)) + "\n"):
        ran = _run("scan", f"--patient={patient}", stdin=stdin)
        line = _one_line_error(ran)
        assert line.startswith("error: patient: must be"), line
    assert snapshot(floor.settings) == before
