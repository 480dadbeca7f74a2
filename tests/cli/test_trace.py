"""`lims trace` through the CLI: the tree drawn and as JSON, and its exit codes.

The lab is tests.support.quality.Quality (lot L1 of four vials for PT-0001, tom logged in).
Exit codes: 0 ok, 2 a malformed id or one of a kind a trace does not hold, 3 not found,
4 not logged in.
"""

from __future__ import annotations

import pytest

from lims.scenario import PATIENT_CODE
from tests.support.cli import invoke, ok, plain, refused
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.vials import vial_ids


@pytest.fixture
def quality(lab: Lab) -> Quality:
    return lab.built("quality", lambda: Quality(lab))


def test_json_is_the_tree_rooted_at_the_patient_whatever_id_is_traced(quality: Quality) -> None:
    from_patient = ok("trace", PATIENT_CODE)
    from_vial = ok("trace", vial_ids(quality.lot_id)[-1])
    assert from_patient == from_vial
    assert list(from_patient) == ["id", "kind", "state", "at", "by", "detail", "children"]
    assert (from_patient["id"], from_patient["kind"]) == (PATIENT_CODE, "patient")


def test_the_tree_is_drawn_with_the_traced_record_marked(quality: Quality) -> None:
    vial = vial_ids(quality.lot_id)[1]
    drawn = invoke("trace", vial)
    assert drawn.exit_code == 0, drawn.stderr
    lines = drawn.stdout.splitlines()
    assert plain(lines[0]).startswith(f"{PATIENT_CODE} patient active")
    marked = [line for line in lines if "◀ traced" in line]
    assert len(marked) == 1
    words = plain(marked[0]).split()
    assert words[words.index(vial) :][:3] == [vial, "vial", "quarantine"]
    assert any(quality.lot_id in line and "└──" in line for line in lines)


@pytest.mark.parametrize(
    ("item", "code", "words"),
    [
        ("A999926999999", 3, ("no aspirate",)),
        ("PT-9999", 3, ("no patient",)),
        ("SHP-000009", 3, ("no shipment SHP-000009",)),
        ("lot one", 2, ("id",)),
        ("CNT-000001", 2, ("id", "a count has no place in a trace")),
    ],
)
def test_exit_codes(quality: Quality, item: str, code: int, words: tuple[str, ...]) -> None:
    refused(invoke("trace", "--", item), code, *words)


def test_logged_out_is_not_permitted(quality: Quality) -> None:
    assert invoke("logout").exit_code == 0
    refused(invoke("trace", PATIENT_CODE), 4)
