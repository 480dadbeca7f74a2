"""Censored results and the dose per kilogram from the shell (issue 13, items 4 and 5).

    lims qc record LOT endotoxin "<0.5"         stored and shown as typed, judged conservatively
    lims patient add|correct --weight-kg KG     within the site's range (default 2-250)
    lims spec set FILE                          [release.cell_dose_per_kg] min/max enables it
    lims lot formulate --vials 1 --cells-per-vial 1.2e8   the reference process's syringe

The lab is tests.support.quality.Quality: tom formulated L1 (four vials of 4x10^7 cells for
PT-0001, who has no weight on record); quinn and rita are QA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lims.timeutil import utcnow
from tests.support.bench import NO_REAGENTS, day
from tests.support.cli import Invocation, csf_vehicle, invoke, ok, refused
from tests.support.junk import JUNK, fuzz, snapshot
from tests.support.lab import PASSWORD, Lab
from tests.support.oracles import _number
from tests.support.quality import LOT_PASSAGES, PASSING, Quality

PATIENT = "PT-0001"
PER_KG = "[release.cell_dose_per_kg]\nmin = 1e6\nmax = 2e6\n"


@pytest.fixture
def quality(lab: Lab) -> Quality:
    return lab.built("quality", lambda: Quality(lab))


def _signed(lab: Lab, user: str, *args: str) -> Invocation:
    lab.login(user)
    return invoke(*args, "--password-stdin", input=PASSWORD + "\n")


def _release(quality: Quality, lot: str) -> Invocation:
    return _signed(quality.lab, "rita", "lot", "release", lot)


def _set_spec(quality: Quality, text: str, tmp_path: Path) -> None:
    path = tmp_path / f"spec-{utcnow().timestamp()}.toml"
    path.write_text(text, encoding="utf-8")
    approved = _signed(quality.lab, "quinn", "spec", "set", str(path), "--reason", "SOP-QC-12")
    assert approved.exit_code == 0, approved.stderr
    quality.lab.login("tom")


def _record_passing(quality: Quality, lot: str, skip: str = "", **values: str) -> None:
    quality.lab.login("tom")
    for test, value in {**PASSING, **values}.items():
        if test != skip:
            ok("qc", "record", lot, test, value)


def _criterion(lot: str, test: str) -> dict[str, Any]:
    [found] = [c for c in ok("qc", "show", lot)["criteria"] if c["test"] == test]
    return dict(found)


# --- censored results ------------------------------------------------------------------------


def test_a_censored_result_is_recorded_shown_as_typed_and_released(quality: Quality) -> None:
    recorded = ok("qc", "record", quality.lot_id, "endotoxin", "< 0.50", "--unit", "EU/mL")
    assert (recorded["result"], recorded["verdict"]) == ("<0.5", "pass")
    assert [r["value"] for r in recorded["results"]] == ["<0.5"]
    _record_passing(quality, quality.lot_id, skip="endotoxin", viability=">99.5")
    table = invoke("qc", "show", quality.lot_id)
    assert table.exit_code == 0
    assert "<0.5" in table.stdout
    assert ">99.5" in table.stdout
    assert _release(quality, quality.lot_id).exit_code == 0
    quality.lab.login("tom")
    shown = ok("lot", "show", quality.lot_id)
    [endotoxin] = [c for c in shown["qc"]["criteria"] if c["test"] == "endotoxin"]
    assert endotoxin["result"] == "<0.5"
    assert shown["signatures"][0]["record_unchanged"] is True
    assert ok("audit", "verify")["disagreement"] is None


def test_a_censored_result_that_may_fail_blocks_release_saying_why(quality: Quality) -> None:
    _record_passing(quality, quality.lot_id, endotoxin="<10")
    assert _criterion(quality.lot_id, "endotoxin")["verdict"] == "fail"
    refused(
        _release(quality, quality.lot_id),
        1,
        "endotoxin failed: <10 EU/mL (spec ≤ 7 EU/mL): below 10 may still be above 7",
    )
    quality.lab.login("tom")
    [oos] = [d for d in ok("deviation", "list") if d["kind"] == "oos"]
    assert oos["description"].endswith(": below 10 may still be above 7")


def test_a_censored_value_on_a_categorical_test_is_exit_2_naming_the_test(
    quality: Quality,
) -> None:
    refused(
        invoke("qc", "record", quality.lot_id, "sterility", "<0.5"),
        2,
        "value: <X is for numeric tests; sterility must be one of negative, positive",
    )
    assert _criterion(quality.lot_id, "sterility")["results"] == []
    assert ok("qc", "record", quality.lot_id, "sterility", "negative")["verdict"] == "pass"


# Operators and what may be taken for one, before bounds no censored value may have.
_NOT_OPERATORS = ("", "<<", "<>", "><", "<=", ">=", "≤", "≥", "‹", "›", "＜", "＞", "﹤", "﹥")
_NO_BOUNDS = ("", " ", "abc", "-1", "-0.5", "0", "inf", "-inf", "nan", "1e13", "1e400", "<1", "½")


@fuzz(40)
@given(
    operator=st.sampled_from(_NOT_OPERATORS) | st.sampled_from(["<", ">"]),
    bound=st.sampled_from(_NO_BOUNDS) | JUNK.filter(lambda text: "\x00" not in text),
)
def test_a_malformed_censored_value_is_exit_2_one_line_nothing_written(
    quality: Quality, operator: str, bound: str
) -> None:
    """Whatever follows a real or look-alike operator, unless it is a bound lims reads."""
    typed = operator + bound
    text = typed.strip()
    number = _number(text[1:] if text.startswith(("<", ">")) else text)
    if number is not None and 0 <= number <= 1e12:
        return  # a value lims may read, plain or censored: not junk
    before = snapshot(quality.settings)
    refused(invoke("qc", "record", quality.lot_id, "endotoxin", "--", typed), 2, "value: ")
    assert snapshot(quality.settings) == before


# --- the weight --------------------------------------------------------------------------------


def test_a_weight_outside_the_sites_range_is_exit_2_naming_the_range(quality: Quality) -> None:
    for kg in ("1.9", "250.5"):
        refused(
            invoke("patient", "correct", PATIENT, "--weight-kg", kg, "--reason", "weighed"),
            2,
            "weight-kg",
            "from 2 to 250",
        )
        refused(
            invoke(
                *("patient", "add", "PT-0009", "--initials", "AB", "--birth-year", "1970"),
                *("--consent-date", "2026-01-15", "--weight-kg", kg),
            ),
            2,
            "weight-kg",
            "from 2 to 250",
        )
    assert ok("patient", "show", PATIENT)["weight_kg"] is None
    corrected = ok("patient", "correct", PATIENT, "--weight-kg", "250", "--reason", "weighed")
    assert corrected["weight_kg"] == 250


# --- the dose per kilogram and the single syringe ----------------------------------------------


def _formulate(quality: Quality, patient: str, *options: str) -> str:
    """A lot from a fresh culture of PATIENT, formulated from the shell with OPTIONS."""
    quality.lab.login("tom")
    culture = quality.scenario.primary_culture(patient, **NO_REAGENTS).summary.culture_id
    for values in LOT_PASSAGES:
        quality.passage(culture, **values)
    return str(
        ok(
            *("lot", "formulate", culture, "--harvested", "1.6e8", "--viability", "93"),
            *("--volume-ml", "2", "--shelf-life-hours", "720", "--at", day(26).isoformat()),
            *csf_vehicle(patient, day(26)),
            *options,
        )["lot_id"]
    )


def test_the_single_syringe_is_formulated_and_released_under_a_spec_allowing_it(
    quality: Quality, tmp_path: Path
) -> None:
    syringe = ("--vials", "1", "--cells-per-vial", "1.2e8")
    under_default = _formulate(quality, "PT-0002", *syringe)
    _record_passing(quality, under_default)
    assert _criterion(under_default, "cell_dose")["verdict"] == "fail"
    refused(_release(quality, under_default), 1, "cell_dose failed: 1.2e8 cells/vial")
    _set_spec(quality, "[release.cell_dose]\nmax = 2e8\n", tmp_path)
    allowed = _formulate(quality, "PT-0003", *syringe)
    _record_passing(quality, allowed)
    assert _criterion(allowed, "cell_dose")["verdict"] == "pass"
    assert _release(quality, allowed).exit_code == 0


def test_a_dose_per_kg_enabled_by_spec_set_needs_the_patients_weight(
    quality: Quality, tmp_path: Path
) -> None:
    _set_spec(quality, PER_KG, tmp_path)
    spec = ok("spec", "show")["criteria"]["cell_dose_per_kg"]
    assert (spec["kind"], spec["unit"], spec["min"], spec["max"]) == (
        "derived",
        "cells/kg",
        1e6,
        2e6,
    )
    lot = _formulate(quality, PATIENT, "--vials", "4", "--cells-per-vial", "4e7")
    _record_passing(quality, lot)
    refused(_release(quality, lot), 1, "cell_dose_per_kg failed: the patient's weight is missing")
    quality.lab.login("tom")
    ok("patient", "correct", PATIENT, "--weight-kg", "80", "--reason", "weighed at admission")
    assert (_criterion(lot, "cell_dose_per_kg")["result"]) == "2e6"
    assert _release(quality, lot).exit_code == 0
    quality.lab.login("tom")
    assert ok("lot", "show", lot)["signatures"][0]["record_unchanged"] is True
    ok("patient", "correct", PATIENT, "--weight-kg", "82", "--reason", "re-weighed")
    assert ok("lot", "show", lot)["signatures"][0]["record_unchanged"] is False
