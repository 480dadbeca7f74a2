"""Vials and the chain of identity: list, show, verify, issue, administer, destroy; scan."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lims.cli.common import (
    JsonOption,
    alarm,
    late_entry_note,
    new_area,
    print_record,
    print_view,
)
from lims.cli.options import AtOption, LateReasonOption, ReasonOption
from lims.cli.service import read, run
from lims.cli.tables import LATE_COLUMN, Columns, Moment, print_list
from lims.domain.states import VIAL

if TYPE_CHECKING:
    from datetime import tzinfo

    from lims.views.vials import Verification, VialView

app = new_area("Vials and the chain of identity: list, show, verify, issue, administer, destroy.")


VialArgument = Annotated[str, typer.Argument(help="The vial id, e.g. A999926000001-L1-V01.")]
PatientOption = Annotated[
    str, typer.Option("--patient", metavar="CODE", help="The patient the vial is for.")
]
ScanOption = Annotated[
    str, typer.Option("--scan", metavar="PAYLOAD", help="The vial label's QR code, as scanned.")
]


def _print_vial(view: VialView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        title,
        {
            "vial": view.vial_id,
            "lot": view.lot_id,
            "status": view.status,
            "division": view.division,
            "patient": view.patient,
            "cells": f"{view.cells:,}",
            "volume": f"{view.volume_ml:g} mL",
            "expires": show_time(view.expires_at, zone),
            "labels printed": view.labels_printed,
            **({"shipment": view.shipment} if view.shipment is not None else {}),
            **(
                {"issued with pending": ", ".join(view.acknowledged_pending) + " acknowledged"}
                if view.acknowledged_pending
                else {}
            ),
            **(
                {
                    "administered": f"{show_time(view.administered_at, zone)} "
                    f"by {view.administered_by}",
                    "route": view.route,
                    "physician": view.physician,
                }
                if view.administered_at is not None
                else {}
            ),
            **{
                f"{mark.action} at {show_time(mark.at, zone)}": late_entry_note(
                    mark.entered_at, mark.entered_by, mark.reason, zone
                )
                for mark in view.late_entries
            },
        },
    )


def say_verdict(result: Verification) -> None:
    """MATCH quietly, MISMATCH loudly; the line a person at the bedside reads."""
    from lims.cli.common import print_alarms

    if result.match:
        typer.echo(f"MATCH     {result.vial_id} -> {result.patient}: {result.reason}")
    else:
        print_alarms([f"MISMATCH  {result.vial_id} -> {result.patient}: {result.reason}"])


LIST_COLUMNS: Columns = [
    ("vial", "vial_id"),
    ("status", lambda view: alarm(view.status) if VIAL.alarming(view.status) else view.status),
    "patient",
    ("cells", lambda view: f"{view.cells:,}"),
    ("volume mL", lambda view: f"{view.volume_ml:g}"),
    ("expires", Moment("expires_at")),
    ("labels printed", "labels_printed"),
    "shipment",
    LATE_COLUMN,
]


@app.command("list")
def list_(
    lot: Annotated[str, typer.Argument(help="The lot id.")], as_json: JsonOption = False
) -> None:
    """List a lot's vials with their state, patient, dose and expiry.

    \b
    Example:
      lims vial list A999926000001-L1 --json
    """
    from lims.services import vials

    print_list(vials.list_vials, as_json, f"Vials of {lot.upper()}", LIST_COLUMNS, lot=lot)


@app.command("show")
def show(vial: VialArgument, as_json: JsonOption = False) -> None:
    """Show one vial.

    \b
    Example:
      lims vial show A999926000001-L1-V01
    """
    from lims.services import vials

    view, zone = read(vials.show_vial, vial=vial)
    print_view(view, as_json, _print_vial, f"Vial {view.vial_id}", zone)


@app.command("verify")
def verify(scan: ScanOption, patient: PatientOption, as_json: JsonOption = False) -> None:
    """Check a scanned vial against a patient: MATCH (exit 0) or MISMATCH (exit 1).

    MATCH needs the vial to be the patient's, released, not expired and not issued.

    \b
    Example:
      lims vial verify --patient PT-0001 --scan "LIMS1/A999926000001-L1-V01/..."
    """
    from lims.services import vials

    result, _ = run(vials.verify, scan=scan, patient=patient)
    print_view(result, as_json, say_verdict)
    if not result.match:
        raise typer.Exit(1)


@app.command("issue")
def issue(
    vial: VialArgument,
    patient: PatientOption,
    scan: ScanOption,
    acknowledge_pending: Annotated[
        bool,
        typer.Option(
            "--acknowledge-pending",
            help="Issue it although final results of its lot are pending (a release on "
            "interim results); the tests acknowledged are kept with the vial.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Issue a released vial for its patient; its label must be scanned and MATCH.

    While final results of its lot are pending, only with --acknowledge-pending.

    \b
    Example:
      lims vial issue A999926000001-L1-V01 --patient PT-0001 --scan "LIMS1/..."
      lims vial issue A999926000001-L1-V01 --patient PT-0001 --scan "LIMS1/..." \\
        --acknowledge-pending
    """
    from lims.services import vials

    view, zone = run(
        vials.issue,
        vial=vial,
        scan=scan,
        patient=patient,
        acknowledge_pending=acknowledge_pending,
    )
    print_view(view, as_json, _print_vial, f"Vial {view.vial_id} issued to {view.patient}", zone)


@app.command("administer")
def administer(
    vial: VialArgument,
    patient: PatientOption,
    scan: ScanOption,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    route: Annotated[
        str | None,
        typer.Option(
            "--route",
            metavar="ROUTE",
            help="How it was given, one of the site's administration.routes (e.g. intraspinal, "
            "intrathecal, intravenous); required where administration.route_required.",
        ),
    ] = None,
    physician: Annotated[
        str | None,
        typer.Option(
            "--physician",
            metavar="TEXT",
            help="The treating physician who ordered it; required where "
            "administration.physician_required.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record that an issued vial was given to its patient; the bedside scan must MATCH.

    The route and the physician are printed in the batch record and on the notice the
    physician gets if the lot is recalled or put on hold.

    \b
    Example:
      lims vial administer A999926000001-L1-V01 --patient PT-0001 --scan "LIMS1/..." \\
        --route intraspinal --physician "Dr A. Rossi"
    """
    from lims.services import vials

    view, zone = run(
        vials.administer,
        vial=vial,
        scan=scan,
        patient=patient,
        at=at,
        late_reason=late_reason,
        route=route,
        physician=physician,
    )
    title = f"Vial {view.vial_id} administered to {view.patient}"
    print_view(view, as_json, _print_vial, title, zone)


@app.command("destroy")
def destroy(
    vial: VialArgument,
    reason: ReasonOption,
    at: AtOption = None,
    late_reason: LateReasonOption = None,
    as_json: JsonOption = False,
) -> None:
    """Destroy a vial that was not administered.

    \b
    Example:
      lims vial destroy A999926000001-L1-V04 --reason "cracked during thaw"
    """
    from lims.services import vials

    view, zone = run(vials.destroy, vial=vial, reason=reason, at=at, late_reason=late_reason)
    print_view(view, as_json, _print_vial, f"Vial {view.vial_id} destroyed", zone)


SCAN_PROMPT = "scan a vial's 2-D code (Ctrl-D ends)> "


def scan(
    patient: Annotated[
        str | None,
        typer.Option(
            "--patient", metavar="CODE", help="The patient the vials are for (the loop needs it)."
        ),
    ] = None,
    selftest: Annotated[
        bool,
        typer.Option(
            "--selftest",
            help="Check this station's scanner: show a test symbol, read what the scanner "
            "types, name each character that arrives wrong.",
        ),
    ] = False,
    png: Annotated[
        Path | None,
        typer.Option(
            "--png",
            metavar="FILE",
            help="With --selftest: write the test symbol to this new PNG file instead.",
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Scanner loop: each scanned line prints MATCH or MISMATCH at once; exit 1 if any missed.

    A handheld scanner types the vial's 2-D code (QR or ISBT 128 Data Matrix) and Enter;
    on a terminal a prompt asks for each. The loop ends at end of input (Ctrl-D) with a
    summary. Every line is verified and audited, an unreadable one too.

    --selftest checks the station, not a patient's vials (so not with --patient), and needs
    no login: it shows a test symbol holding every character a label's code uses (on the
    terminal, or in a new PNG file with --png), reads one scan of it, and names each
    character that arrived wrong (exit 1: set the scanner to this station's keyboard
    layout) or says the station is fit (exit 0).

    \b
    Example:
      lims scan --patient PT-0001
      lims scan --selftest
    """
    if selftest:
        if patient is not None:
            raise typer.BadParameter(
                "not with --selftest: it checks the station's scanner, not a patient's vials",
                param_hint="--patient",
            )
        _selftest(png, as_json)
        return
    if png is not None:
        raise typer.BadParameter("only with --selftest", param_hint="--png")
    if patient is None:
        raise typer.BadParameter("give the patient the vials are for", param_hint="--patient")
    from lims import db
    from lims.errors import BadInput
    from lims.services import vials

    # Junk here would make every line UNREADABLE (and no input, exit 0): refuse it at once,
    # and a station without a session or the role, before the first vial is scanned.
    read(vials.start_scanning, patient=patient)
    matched = mismatched = 0
    prompt = sys.stdin.isatty()
    while True:
        if prompt:
            typer.echo(SCAN_PROMPT, nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            break
        payload = line.strip()
        if not payload:
            continue
        try:
            result, _ = run(vials.verify, scan=payload, patient=patient)
        except BadInput as error:
            mismatched += 1
            from lims.cli.common import print_alarms

            run(vials.record_unreadable, patient=patient, scan=payload, reason=error.message)
            print_alarms([f"UNREADABLE {error.message}"])
            continue
        matched += result.match
        mismatched += not result.match
        print_view(result, as_json, say_verdict)
        sys.stdout.flush()
    db.dispose_engines()
    if prompt:
        typer.echo(err=True)
    typer.echo(
        f"{matched + mismatched} scanned: {matched} MATCH, {mismatched} MISMATCH", err=as_json
    )
    if mismatched:
        raise typer.Exit(1)


def _selftest(png: Path | None, as_json: bool) -> None:
    """Show the test symbol, read one scan of it, and say whether it arrived unchanged."""
    from lims.cli.common import print_alarms
    from lims.domain import scanner_check
    from lims.errors import BadInput
    from lims.views.vials import ScannerCheck

    text = scanner_check.TEST_TEXT
    code = _test_symbol(text)
    if png is None:
        out = sys.stderr if as_json else sys.stdout
        # Light modules as filled blocks, dark ones as the background: on a terminal its
        # colours are fixed (white on black), as a scanner needs whatever the theme.
        code.print_ascii(out=out, tty=out.isatty(), invert=True)
    else:
        image = code.make_image()
        try:
            with png.open("xb") as file:  # never in place of a file lims did not write
                image.save(file, format="PNG")
        except FileExistsError:
            raise BadInput("png", f"{png} exists: name a new file") from None
        typer.echo(f"test symbol written to {png}: show it to the scanner", err=as_json)
    if sys.stdin.isatty():
        typer.echo("scan the test symbol> ", nl=False, err=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise BadInput("scan", "no scan arrived: scan the test symbol (a line ending in Enter)")
    typed = line.rstrip("\r\n")
    wrong = scanner_check.compare(typed)
    check = ScannerCheck(fit=not wrong, expected=text, typed=typed, wrong=[str(w) for w in wrong])
    if as_json:
        from lims.cli.common import print_json
        from lims.views import to_json

        print_json(to_json(check))
    elif wrong:
        print_alarms([f"NOT FIT: {problem}" for problem in check.wrong])
        typer.echo(scanner_check.advice(wrong))
    else:
        typer.echo(f"station fit: the scanner typed all {len(text)} characters unchanged")
    if wrong:
        raise typer.Exit(1)


def _test_symbol(text: str) -> Any:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    return code
