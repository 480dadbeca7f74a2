"""Issue 17: donor screening (`lims patient screen`) and what it makes labels say.

The lab is tests.support.quality.Quality: lot L1 of four vials for PT-0001.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.domain import screening
from lims.domain.ids import LotId
from tests.support.cli import invoke, ok, refused
from tests.support.junk import fuzz
from tests.support.lab import Lab
from tests.support.quality import Quality, released_lot
from tests.support.symbols import decode_png
from tests.support.vials import datamatrix_of, vial_ids

PATIENT = "PT-0001"
TESTS = ("hiv", "hbv", "hcv", "syphilis", "htlv", "cmv")


@pytest.fixture
def quality(lab: Lab) -> Quality:
    return lab.built("quality", lambda: Quality(lab))


def screen(test: str, result: str, *extra: str) -> dict:
    return ok("patient", "screen", PATIENT, "--test", test, "--result", result, *extra)


def test_a_result_is_recorded_audited_and_shown_with_what_labels_will_say(
    quality: Quality,
) -> None:
    view = screen("HIV", "Negative", "--at", "2026-11-02 09:00")
    assert (view["patient"], view["test"], view["result"]) == (PATIENT, "hiv", "negative")
    assert view["statement"]["label_text"] == screening.NOT_EVALUATED
    assert view["statement"]["not_performed"] == list(TESTS[1:])
    [entry] = [
        entry
        for entry in ok("audit", "log", "--entity", f"patient:{PATIENT}")
        if entry["action"] == "patient.screen"
    ]
    assert (entry["user"], entry["new"]["test"], entry["new"]["result"]) == (
        "tom",
        "hiv",
        "negative",
    )
    shown = ok("patient", "show", PATIENT)
    assert [row["test"] for row in shown["screening"]] == ["hiv"]
    assert shown["screening_statement"]["collection_type"] == "1"


def test_every_test_negative_leaves_no_statement_and_a_reactive_one_marks_the_donor(
    quality: Quality,
) -> None:
    for test in TESTS:
        view = screen(test, "negative")
    assert view["statement"]["label_text"] is None
    view = screen("hbv", "reactive")
    assert view["statement"]["collection_type"] == "X"
    assert view["statement"]["label_text"] == (
        "☣ BIOHAZARD  WARNING: Reactive test results for hbv"
    )
    # A later negative retest does not unmark the donor.
    view = screen("hbv", "negative")
    assert view["statement"]["reactive"] == ["hbv"]


def test_a_reactive_donors_labels_carry_the_legend_and_collection_type_x(
    lab: Lab, tmp_path: Path
) -> None:
    from lims.domain import isbt128

    quality = lab.built("labels-released", lambda: released_lot(Quality(lab)))
    lab.set_site(labels={"product_code": "S1234", "symbology": "datamatrix"})
    lab.login("tom")
    screen("hiv", "reactive")
    lot = quality.lot_id
    out = tmp_path / "labels"
    ok("label", "print", lot, "--format", "png", "--out", str(out), "--template", "bag",
       "--vial", vial_ids(lot)[0])  # fmt: skip
    [(_, text)] = [
        found for found in decode_png((out / f"{vial_ids(lot)[0]}.png").read_bytes())
        if found[0] == "DataMatrix"
    ]  # fmt: skip
    scanned = isbt128.read_compound_message(text)
    assert scanned.product.collection_type == "X"
    assert scanned.din == LotId.parse(lot).din.code
    # The label agrees with the record: the vial verifies with its Data Matrix.
    result = ok("vial", "verify", "--scan", text, "--patient", PATIENT)
    assert result["result"] == "MATCH"
    svg = tmp_path / "svg"
    ok("label", "print", lot, "--format", "svg", "--out", str(svg), "--template", "bag",
       "--vial", vial_ids(lot)[0])  # fmt: skip
    assert "WARNING: Reactive test results for hiv" in (svg / f"{vial_ids(lot)[0]}.svg").read_text()


def test_a_label_printed_before_a_reactive_result_no_longer_matches(lab: Lab) -> None:
    quality = lab.built("labels-released", lambda: released_lot(Quality(lab)))
    lab.set_site(labels={"product_code": "S1234"})
    lab.login("tom")
    scan = datamatrix_of(quality, vial_ids(quality.lot_id)[0])  # collection type 1
    screen("cmv", "reactive")
    result = invoke("vial", "verify", "--scan", scan, "--patient", PATIENT)
    assert result.exit_code == 1
    assert "collection type X" in result.stdout


def test_screening_in_the_future_is_refused(quality: Quality) -> None:
    refused(
        invoke("patient", "screen", PATIENT, "--test", "hiv", "--result", "negative", "--at",
               "2099-01-01"),
        2,
        "at",
        "future",
    )  # fmt: skip


def test_an_unknown_patient_is_not_found(quality: Quality) -> None:
    refused(invoke("patient", "screen", "PT-0999", "--test", "hiv", "--result", "negative"), 3)


@fuzz(25)
@given(
    field=st.sampled_from(["test", "result"]),
    junk=st.one_of(
        st.sampled_from(["", " ", "HIV-1", "positive", "ｈｉｖ", "hiv\n", "notdone", "\x1b[2J"]),
        st.text(max_size=12),
    ),
)
def test_a_test_or_result_outside_the_vocabulary_is_bad_input(
    quality: Quality, field: str, junk: str
) -> None:
    allowed = {"test": TESTS, "result": screening.RESULTS}[field]
    if junk.isascii() and junk.strip().lower() in allowed:
        return
    values = {"test": "hiv", "result": "negative", field: junk}
    result = invoke(
        "patient", "screen", f"--test={values['test']}", f"--result={values['result']}", "--",
        PATIENT,
    )  # fmt: skip
    refused(result, 2, field)
    assert ok("patient", "show", PATIENT)["screening"] == []


def test_people_read_each_tests_latest_result_and_what_labels_say(quality: Quality) -> None:
    result = invoke("patient", "screen", PATIENT, "--test", "hbv", "--result", "reactive")
    assert result.exit_code == 0, result.stderr
    retest = invoke("patient", "screen", PATIENT, "--test", "hbv", "--result", "negative")
    lines = retest.stdout.splitlines()
    assert lines[0] == f"Patient {PATIENT}: hbv negative"
    [hbv] = [line for line in lines if line.startswith("│ hbv ")]
    assert "negative, reactive before" in hbv  # the latest; each result is in --json
    assert sum(" no result " in line for line in lines) == len(TESTS) - 1
    assert "Reactive: hbv" in lines
    assert "Labels: ☣ BIOHAZARD  WARNING: Reactive test results for hbv; NOT EVALUATED" in (
        retest.stdout
    )


def test_patient_show_says_what_labels_will_say(quality: Quality) -> None:
    shown = invoke("patient", "show", PATIENT)
    assert f"Labels: {screening.NOT_EVALUATED}" in shown.stdout
    for test in TESTS:
        screen(test, "negative")
    shown = invoke("patient", "show", PATIENT)
    assert "Labels: screened negative on every test" in shown.stdout
    assert "no result" not in shown.stdout


def test_a_time_that_is_not_one_is_bad_input(quality: Quality) -> None:
    refused(
        invoke("patient", "screen", PATIENT, "--test", "hiv", "--result", "negative", "--at",
               "last tuesday"),
        2,
        "at",
    )  # fmt: skip
