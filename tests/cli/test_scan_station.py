"""Issue 17: the scanner loop at a station (`lims scan`) and its self-test.

The loop shows a prompt on a terminal and none when input is piped, and puts every
unreadable line on record; `--selftest` tells whether the station's scanner types every
character a label's code uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lims.cli import vials as vials_cli
from lims.domain import scanner_check
from tests.support.cli import invoke, ok, refused
from tests.support.lab import Lab
from tests.support.quality import Quality, released_lot
from tests.support.symbols import decode_png
from tests.support.vials import scan_of, vial_ids

PATIENT = "PT-0001"


@pytest.fixture
def released(lab: Lab) -> Quality:
    return lab.built("labels-released", lambda: released_lot(Quality(lab)))


class _Terminal:
    """Standard input as a terminal: what is typed, read line by line."""

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return sys.stdin.readline()


@pytest.fixture
def at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SimpleNamespace(stdin=_Terminal(), stdout=sys.stdout, stderr=sys.stderr)
    monkeypatch.setattr(vials_cli, "sys", fake)


def unreadable_entries() -> list[dict[str, Any]]:
    return [
        entry["new"]
        for entry in ok("audit", "log", "--entity", f"patient:{PATIENT}")
        if entry["action"] == "vial.scan_unreadable"
    ]


# --- the loop ---------------------------------------------------------------------------------


def test_piped_input_gets_no_prompt(released: Quality) -> None:
    scan = scan_of(released, vial_ids(released.lot_id)[0])
    result = invoke("scan", "--patient", PATIENT, input=f"{scan}\n")
    assert result.exit_code == 0, result.stderr
    assert vials_cli.SCAN_PROMPT not in result.stdout + result.stderr
    assert "MATCH" in result.stdout


def test_a_terminal_gets_a_prompt_for_each_scan(released: Quality, at_a_terminal: None) -> None:
    scan = scan_of(released, vial_ids(released.lot_id)[0])
    result = invoke("scan", "--patient", PATIENT, input=f"{scan}\n{scan}\n")
    assert result.stderr.count(vials_cli.SCAN_PROMPT) == 3  # two scans, then the end of input
    assert [line[:5] for line in result.stdout.splitlines()[:2]] == ["MATCH", "MATCH"]


def test_an_unreadable_line_is_audited_and_counted(released: Quality) -> None:
    din_symbol = "=A99992600000100"
    result = invoke("scan", "--patient", PATIENT, input=f"garbage\x1b[2J\n{din_symbol}\n")
    assert result.exit_code == 1
    assert result.stdout.count("UNREADABLE") == 2
    assert "donation's DIN" in result.stdout
    entries = unreadable_entries()
    assert [entry["scan"] for entry in entries] == ["'garbage\\x1b[2J'", f"'{din_symbol}'"]
    assert all(entry["reason"].startswith("scan: ") for entry in entries)
    assert "2 scanned: 0 MATCH, 2 MISMATCH" in result.stdout


def test_the_loop_needs_a_patient_and_png_only_goes_with_selftest(released: Quality) -> None:
    refused(invoke("scan", input=""), 2, "--patient")
    refused(invoke("scan", "--patient", PATIENT, "--png", "x.png", input=""), 2, "--png")


# --- the self-test ----------------------------------------------------------------------------


def test_a_scanner_that_types_every_character_unchanged_is_fit(tmp_path: Path) -> None:
    result = invoke("scan", "--selftest", "--json", input=scanner_check.TEST_TEXT + "\r\n")
    assert result.exit_code == 0, result.stderr
    assert '"fit": true' in result.stdout


def test_a_scanner_under_another_keyboard_layout_is_named_unfit() -> None:
    italian = scanner_check.TEST_TEXT.replace("-", "'")
    result = invoke("scan", "--selftest", input=italian + "\n")
    assert result.exit_code == 1
    assert "NOT FIT: '-' arrived as \"'\"" in result.stdout
    assert "keyboard layout" in result.stdout


def test_no_scan_at_all_is_bad_input() -> None:
    refused(invoke("scan", "--selftest", input=""), 2, "scan", "no scan arrived")


def test_the_test_symbol_as_a_png_holds_every_payload_character(tmp_path: Path) -> None:
    png = tmp_path / "selftest.png"
    result = invoke("scan", "--selftest", "--png", str(png), input=scanner_check.TEST_TEXT + "\n")
    assert result.exit_code == 0, result.stderr
    assert decode_png(png.read_bytes()) == [("QRCode", scanner_check.TEST_TEXT)]
    refused(invoke("scan", "--selftest", "--png", str(png), input="x\n"), 2, "png", "exists")


# The half blocks print_ascii draws with (invert=True): each is two modules, light where filled.
HALVES = {
    "\u2588": (True, True),
    "\u2584": (False, True),
    "\u2580": (True, False),
    "\xa0": (False, False),
}


def test_the_symbol_on_the_terminal_scans_as_the_test_text() -> None:
    from PIL import Image

    from tests.support.symbols import decode_image

    result = invoke("scan", "--selftest", input=scanner_check.TEST_TEXT + "\n")
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line and set(line) <= set(HALVES)]
    modules = [[HALVES[char][half] for char in row] for row in rows for half in (0, 1)]
    scale = 6
    image = Image.new("L", (len(modules[0]) * scale, len(modules) * scale))
    for y, line in enumerate(modules):
        for x, light in enumerate(line):
            image.paste(
                255 if light else 0, (x * scale, y * scale, (x + 1) * scale, (y + 1) * scale)
            )
    assert decode_image(image) == [("QRCode", scanner_check.TEST_TEXT)]


def test_the_selftest_on_a_terminal_asks_for_the_scan(at_a_terminal: None) -> None:
    result = invoke("scan", "--selftest", input=scanner_check.TEST_TEXT + "\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith("scan the test symbol> ")


def test_caps_lock_is_named_as_such() -> None:
    result = invoke("scan", "--selftest", input=scanner_check.TEST_TEXT.lower() + "\n")
    assert result.exit_code == 1
    assert "Caps Lock" in result.stdout


def test_the_selftest_checks_a_station_not_a_patient() -> None:
    refused(
        invoke("scan", "--selftest", "--patient", PATIENT, input=scanner_check.TEST_TEXT + "\n"),
        2,
        "--patient",
        "not with --selftest",
    )


def test_the_selftest_loads_no_store() -> None:
    probe = (
        "import sys\nsys.argv = ['lims', 'scan', '--selftest']\nfrom lims.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    print('exit', exit.code)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        input=scanner_check.TEST_TEXT + "\n",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LIMS_HOME": "/nonexistent/lims-home"},
    )
    assert result.stdout.splitlines()[-2:] == ["exit 0", "[]"], result.stderr
