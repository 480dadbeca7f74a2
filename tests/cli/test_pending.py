"""A release before sterility is final, from the shell: `qc record LOT TEST pending`, `qc
show`, `lot release`, `vial issue --acknowledge-pending`, `lot show`, `lot complete`, and
what a failing final result tells the user. Wiring, exit codes and messages; the rules
themselves are tests/services/test_pending.py's.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.bench import NOW, day
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.floor import Floor, _refused_writing_nothing
from tests.support.junk import JUNK, fuzz
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, RESULTS_AT, Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
METHOD = "BacT/ALERT, 14 d"
AT = RESULTS_AT.isoformat()
EXPECTED = (RESULTS_AT + timedelta(days=14)).isoformat()
FINAL_AT = day(29).isoformat()


@pytest.fixture
def pending(lab: Lab) -> Quality:
    """L1 with every result in but sterility's, started pending; both interim tests negative."""
    quality = lab.built("quality", lambda: Quality(lab))
    lot = quality.lot_id
    for test, value in PASSING.items():
        if test != "sterility":
            ok("qc", "record", lot, test, value, "--at", AT)
    for test in ("gram_stain", "sterility_interim"):
        ok("qc", "record", lot, test, "negative", "--at", AT)
    started = ok(
        "qc",
        "record",
        lot,
        "sterility",
        "pending",
        "--method",
        METHOD,
        "--at",
        AT,
        "--expected-final",
        EXPECTED,
    )
    assert (started["verdict"], started["result"], started["notice"]) == ("pending", None, None)
    return quality


def _signed(lab: Lab, user: str, *args: str) -> dict:
    lab.login(user)
    return dict(ok(*args, "--password-stdin", input=PASSWORD + "\n"))


def _issue(quality: Quality, vial: str, *options: str) -> Invocation:
    quality.lab.login("tom")
    return invoke(
        "vial", "issue", vial, "--patient", PATIENT, "--scan", scan_of(quality, vial), *options
    )


def test_qc_show_lists_the_tests_pending_with_their_expected_final_result(
    pending: Quality,
) -> None:
    shown = ok("qc", "show", pending.lot_id)
    [started] = shown["pending_tests"]
    assert started == {
        "test": "sterility",
        "method": METHOD,
        "started_at": RESULTS_AT.isoformat(),
        "expected_final_at": EXPECTED,
        "started_by": "tom",
    }
    [sterility] = [c for c in shown["criteria"] if c["test"] == "sterility"]
    assert (sterility["verdict"], sterility["results"][0]["status"]) == ("pending", "pending")
    assert shown["releasable"] is True
    human = invoke("qc", "show", pending.lot_id)
    assert human.exit_code == 0, human.stderr
    assert "Final results pending" in human.stdout
    assert "Releasable on interim results" in human.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("mycoplasma", "pending", "--method", METHOD), ("value", "mycoplasma")),
        (("sterility", "pending"), ("method", "required to start a test pending")),
        (("sterility", "pending", "--method", METHOD, "--investigation", "1"), ("investigation",)),
        (("sterility", "negative", "--expected-final", EXPECTED), ("expected-final",)),
    ],
)
def test_a_test_not_to_be_started_so_is_exit_2(
    lab: Lab, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    quality = lab.built("quality", lambda: Quality(lab))
    refused(invoke("qc", "record", quality.lot_id, *args), 2, *words)


@pytest.mark.parametrize(
    ("tables", "words"),
    [
        (
            '[release.gram_stain]\npassing = ["negative", "positive"]\n',
            ("release.gram_stain.passing", "an interim test of sterility"),
        ),
        (
            "[release.karyotype]\nwaivable = false\n"
            '[release.sterility]\ninterim_tests = ["karyotype"]\n',
            ("release.sterility.interim_tests", "karyotype cannot stand in for sterility"),
        ),
    ],
)
def test_a_specification_relaxing_what_stands_in_for_sterility_is_exit_2(
    lab: Lab, tmp_path: Path, tables: str, words: tuple[str, ...]
) -> None:
    """With it, a lot with a positive Gram stain, or no test for contamination at all, was
    released before its final sterility result."""
    Quality(lab)
    spec = tmp_path / "spec.toml"
    spec.write_text(tables, encoding="utf-8")
    lab.login("quinn")
    count = lab.audit_count()
    args = ("spec", "set", str(spec), "--reason", "SOP-QC-12", "--password-stdin")
    refused(invoke(*args, input=PASSWORD + "\n"), 2, *words)
    assert lab.audit_count() == count


def test_a_final_result_before_the_start_is_exit_1(pending: Quality) -> None:
    refused(
        invoke("qc", "record", pending.lot_id, "sterility", "negative", "--at", AT),
        1,
        "must be dated after the test was started at",
    )
    refused(
        invoke("qc", "record", pending.lot_id, "sterility", "pending", "--method", METHOD),
        1,
        "already pending",
    )


def test_the_release_on_interim_results_and_its_completion(pending: Quality, lab: Lab) -> None:
    lot = pending.lot_id
    released = _signed(lab, "rita", "lot", "release", lot)
    assert released["status"] == "released"
    assert released["pending_tests"] == ["sterility"]
    assert (released["pending_at_release"], released["release_complete"]) == (["sterility"], False)
    assert released["signatures"][-1]["meaning"] == "released — final results pending: sterility"
    human = invoke("lot", "show", lot)
    assert "final results pending: sterility" in human.stdout

    vial = f"{lot}-V01"
    line = refused(_issue(pending, vial), 1, "sterility", "--acknowledge-pending")
    assert vial in line
    issued = _issue(pending, vial, "--acknowledge-pending", "--json")
    assert issued.exit_code == 0, issued.stderr
    assert ok("vial", "show", vial)["acknowledged_pending"] == ["sterility"]
    assert ok("lot", "show", lot)["vial_states"][0]["acknowledged_pending"] == ["sterility"]

    lab.login("tom")
    final = ok("qc", "record", lot, "sterility", "negative", "--at", FINAL_AT)
    assert (final["verdict"], final["notice"]) == ("pass", None)
    assert ok("lot", "show", lot)["pending_tests"] == []
    completed = _signed(lab, "quinn", "lot", "complete", lot)
    assert completed["release_complete"] is True
    assert [s["meaning"] for s in completed["signatures"]][-1] == "final results reviewed"
    assert "final results reviewed" in invoke("lot", "show", lot).stdout
    lab.login("quinn")
    refused(
        invoke("lot", "complete", lot, "--password-stdin", input=PASSWORD + "\n"),
        1,
        "was completed by quinn",
    )


def test_a_failing_final_result_tells_the_user_to_notify_the_physicians(
    pending: Quality, lab: Lab
) -> None:
    lot = pending.lot_id
    _signed(lab, "rita", "lot", "release", lot)
    lab.login("tom")
    failed = invoke("qc", "record", lot, "sterility", "positive", "--at", FINAL_AT, "--json")
    assert failed.exit_code == 0, failed.stderr
    notice = json.loads(failed.stdout)["notice"]
    assert f"lims report recall {lot} --out FILE.pdf" in notice
    assert failed.stderr == f"ACTION REQUIRED: {notice}\n"
    shown = ok("lot", "show", lot)
    assert shown["on_hold"] is True
    assert [(d["kind"], d["severity"]) for d in shown["deviations"]] == [("oos", "critical")]
    human = invoke("qc", "record", lot, "karyotype", "abnormal", "--at", FINAL_AT)
    assert human.exit_code == 0, human.stderr
    assert "fail" in human.stdout
    assert human.stderr.startswith("ACTION REQUIRED: ")
    assert "notify the treating physicians" in human.stderr
    # lot show never tells QA to complete a release it may not complete.
    held = _release_line(lot)
    assert held.endswith("final results in; not completed while the lot is on hold")
    recalled = _signed(lab, "rita", "lot", "recall", lot, "--reason", "final sterility positive")
    assert recalled["status"] == "recalled"
    assert _release_line(lot).endswith("never completed: the lot is recalled")


def _release_line(lot: str) -> str:
    """What `lot show` says of the lot's release, its table's borders and wrapping undone."""
    shown = invoke("lot", "show", lot)
    assert shown.exit_code == 0, shown.stderr
    text = re.sub(r"[\s\u2500-\u257f]+", " ", shown.stdout)  # box drawing
    return text.split(" release ", 1)[1].split(" Culture ", 1)[0].strip()


def test_lot_show_says_what_a_release_on_interim_results_awaits(pending: Quality, lab: Lab) -> None:
    lot = pending.lot_id
    _signed(lab, "rita", "lot", "release", lot)
    assert _release_line(lot) == "final results pending: sterility"
    lab.login("rita")
    ok("lot", "recall", lot, "--reason", "label mix-up", "--password-stdin", input=PASSWORD + "\n")
    assert _release_line(lot) == (
        "released on interim results (sterility pending at release), never completed: the "
        "lot is recalled, final results of sterility pending"
    )


def test_lot_complete_refuses_what_is_not_a_release_on_interim_results(lab: Lab) -> None:
    quality = lab.built("quality", lambda: Quality(lab))
    lab.login("rita")
    refused(
        invoke("lot", "complete", quality.lot_id, "--password-stdin", input=PASSWORD + "\n"),
        1,
        "was not released on interim results",
    )
    lab.login("tom")
    refused(
        invoke("lot", "complete", quality.lot_id, "--password-stdin", input=PASSWORD + "\n"),
        4,
    )


ZONE = ZoneInfo("Europe/Rome")


def _accepted_as_expected_final(text: str) -> bool:
    """Generous: anything lims might read as a time after now is left out of the junk."""
    if not text.isprintable():
        return False
    try:
        when = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        return False
    try:
        aware = when if when.tzinfo is not None else when.replace(tzinfo=ZONE)
        return aware > NOW - timedelta(minutes=5)
    except OverflowError:
        return True


EXPECTED_JUNK = st.one_of(
    JUNK,
    st.integers(0, 10 * 365 * 86_400).map(
        lambda seconds: (NOW - timedelta(seconds=seconds)).isoformat()
    ),
    st.sampled_from(["tomorrow", "2026-13-01", "2026-02-30T09:00", "in 14 days", "14"]),
).filter(lambda text: not _accepted_as_expected_final(text))


@fuzz(15)
@given(junk=EXPECTED_JUNK)
def test_junk_as_the_expected_final_result_is_exit_2_and_writes_nothing(
    floor: Floor, labels_dir: Path, junk: str
) -> None:
    """On a lot of the floor with no sterility result yet, started now."""
    floor.as_user("tom")
    args = (
        "qc",
        "record",
        "--method",
        METHOD,
        f"--expected-final={junk}",
        "--",
        floor.deviating,
        "sterility",
        "pending",
    )
    _refused_writing_nothing(floor, args, "expected-final", junk)
