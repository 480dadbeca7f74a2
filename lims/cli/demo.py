"""`lims demo`: a fresh database and a guided tour, the quickest way to see lims work."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lims.cli.common import JsonOption, print_json, print_table, say

if TYPE_CHECKING:
    from lims.views.trail import AuditView


def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where to create the demo database (default: a new temporary directory).",
            file_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a demo database with users and walk through what lims records.

    \b
    Example:
      lims demo
      lims demo --dir ./lims-demo
      lims demo --json
    """
    import tempfile

    from lims.cli import expansion, quality, storage
    from lims.cli.trace import print_trace
    from lims.demo import run_demo

    directory = directory or Path(tempfile.mkdtemp(prefix="lims-demo-"))
    result = run_demo(directory)
    settings = result.settings
    if as_json:
        from lims.views import to_json

        print_json(to_json(result))
        if not result.verification.intact:
            raise typer.Exit(1)
        return
    zone = settings.tz
    say(f"lims demo in {settings.home}\n")
    say(f"1. Created the database {settings.sqlite_path} at the newest schema.")
    say(
        "2. Created the first administrator, who logged in and added a technician and QA with"
        " temporary passwords. At first login each was refused every command but"
        " `lims passwd` until they chose their own (an admin never knows a password that"
        " signs):\n"
    )
    print_table(
        "Demo users",
        ["user", "full name", "role", "password"],
        [(user.username, user.full_name, user.role, user.password) for user in result.users],
    )
    say("The passwords are shown only here: lims keeps nothing but their argon2id hashes.")
    spec = result.spec
    say(
        f"\n3. QA approved release specification version {spec.version} with a signature "
        f"({spec.reason}); the environment and lims.toml cannot change it."
    )
    split = result.split.summary
    say(
        f"\n4. The technician registered patient {result.patient.code}, received an aspirate"
        f" (DIN {result.aspirate.din.display}), started a primary culture and logged three"
        " passages; growth is derived from the counts. The second harvest was counted on a"
        f" Vi-CELL BLU: its export ({result.count.file_name}) was imported as"
        f" {result.count.count_id} (`lims count import`), and the passage took its cells and"
        f" viability from that count (`--count {result.count.count_id} --suspension-ml"
        f" {result.count.suspension_ml:g}`): the table says where each harvest came from."
        " Cells of the third harvest that the"
        f" flasks did not take started culture {split.culture_id} (`lims culture split`),"
        f" which carries on from {result.split.source_passage} with its passage count and"
        " cumulative doublings, under the same passage limit:\n"
    )
    expansion.show_culture(result.culture, zone)
    pieces = result.equipment
    backup = result.storage.frozen
    vials = ", ".join(vial.bank_vial_id for vial in backup.bank_vials)
    say(
        "\nQA keeps the equipment register: "
        + ", ".join(
            f"{piece.equipment_id} ({piece.kind.replace('_', ' ')}, due "
            f"{piece.due_on.isoformat() if piece.due_on else 'never'})"
            for piece in pieces
        )
        + ". Every bench step named the cabinet and incubator it used (`--equipment BSC-01"
        " --equipment INC-01`): once the register holds a piece of a kind the step needs"
        " (site setting equipment.required), a step that names none, or one out of service or"
        " past its calibration due date on the step's day, is refused. The"
        f" {backup.cells:,} cells of {backup.passage_id}'s harvest left after the split were"
        f" frozen as a backup in bank vials ({vials}, `lims culture freeze`), and two"
        " samples of the lot formulated below were retained beside them (`lims sample"
        " retain`); `lims storage show` draws the box:\n"
    )
    storage.print_location(result.storage.box, zone)
    say(
        "\nThese bench steps, and the formulation below, were kept on the paper bench record"
        f" and typed into lims days later: each of the {len(result.late_entries)} is a late"
        f" entry (typed more than {result.late_entry_hours:g} h after the time it states,"
        " `--late-reason`), marked"
        " so in every view, `--json` and the batch record: " + ", ".join(result.late_entries)
    )
    lot = result.lot
    investigation = result.investigation
    csf = result.vehicle
    collected = lot.summary.formulated_at - csf.collected_at
    say(
        f"\n5. On the morning of the final harvest the patient's own CSF was received (`lims"
        f" aspirate receive --material csf`, DIN {csf.din.display}, {csf.volume_ml:g} mL). The"
        f" technician formulated lot {lot.summary.lot_id} "
        f"({lot.summary.vials} vials for {lot.summary.patient}, judged by specification "
        f"version {lot.summary.spec_version}, in date for "
        f"{(lot.summary.expires_at - lot.summary.formulated_at).total_seconds() / 3600:g} h),"
        f" its cells suspended in {lot.summary.vehicle_ml:g} mL of that CSF (`--vehicle-din"
        f" {csf.din.code} --vehicle-ml {lot.summary.vehicle_ml:g}`), collected"
        f" {collected.total_seconds() / 3600:g} h before: lims refuses another patient's CSF,"
        " bone marrow, CSF older than vehicle.max_age_hours and more CSF than is left"
        f" ({csf.volume_left_ml:g} mL of this one now). It then recorded the lot's QC. A product"
        " that outlives no sterility culture is released on"
        " interim results: sterility was started (`qc record LOT sterility pending`), the Gram"
        " stain and the automated culture read negative to date, endotoxin below the method's"
        f" range (<0.5). CD105 came out of specification, which opened deviation"
        f" {investigation.opened.deviation_id}; the retest was recorded in its investigation,"
        f" and QA invalidated the first result ({investigation.closed.resolution}):\n"
    )
    quality.show_results(investigation.results, zone)
    say(
        "\nQA, who did no step of the lot, re-entered a password and released it against "
        "every result that counts, its final sterility result pending:\n"
    )
    quality.show_evaluation(lot.evaluation, zone)
    for signature in lot.signatures:
        say(signature.manifestation)
    say(f"Batch record: {result.batch_record} ({result.batch_record_pages} pages).")
    say(
        f"\nLabels ({len(result.labels)} files) in {result.labels[0].parent}: a PDF sheet "
        "previewed first (watermarked, counted as no label), then each vial's cryovial label:"
    )
    for path in result.labels:
        say(f"  {path.name}")
    say("The first vial's QR code, scanned against its patient:")
    say(("MATCH     " if result.scan.match else "MISMATCH  ") + result.scan.reason)
    recall = result.recall
    say(
        "\n6. QA put the lot on hold (a signature); the same scan was then refused:\n"
        + ("MATCH     " if recall.refused.match else "MISMATCH  ")
        + recall.refused.reason
    )
    fresh = result.fresh
    shipped = fresh.shipped
    say(
        f"QA lifted the hold. The first vial went to {shipped.site_name} ({shipped.site_code})"
        f" in shipment {shipped.shipment_id}, carried by the {shipped.courier} with logger"
        f" {shipped.logger} (`lims ship create`, `add` with its scan, `dispatch`), and was"
        f" received there with every vial scanned and the temperature in range (`lims ship"
        f" receive`)."
    )
    say(
        f"There it was issued, the technician acknowledging that "
        f"{', '.join(fresh.issued.acknowledged_pending)} was pending (`--acknowledge-pending`),"
        f" and given by the {fresh.given.route} route on the order of {fresh.given.physician}."
        " The final"
        f" sterility result came back {fresh.final.result} (the demo cannot wait"
        " seven days: it is entered now) and QA completed the release (`lims lot complete`):"
    )
    say(fresh.completed.signatures[-1].manifestation)
    say(
        "A late karyotype then came back abnormal, which opened a critical deviation and held"
        " the released lot at once:"
    )
    for reason in recall.late.hold_reasons:
        say(f"  - {reason}")
    recalled = recall.recalled
    say(
        f"QA confirmed the result and recalled lot {recalled.summary.lot_id}: "
        + ", ".join(f"{vial.vial_id[-3:]} {vial.status}" for vial in recalled.vials)
        + f". The recall notice for the treating physician (`lims report recall`): "
        f"{recall.notice}"
    )
    say(
        f"\n7. `lims trace {fresh.given.vial_id}`: from any id, the patient's whole tree, both"
        " ways (the lot stands once in full; under the CSF that suspends it, by reference):\n"
    )
    print_trace(result.trace, zone)
    say("\n8. Every step is in the audit trail, each entry chained to the one before:\n")
    print_table(
        "Audit trail",
        ["#", "time", "user", "action", "entity", "reason"],
        [_trail_row(entry, zone) for entry in result.trail],
    )
    verification = result.verification
    say(
        "\n9. `lims audit verify`: "
        + (
            f"intact, {verification.entries} entries, head #{verification.head_seq}."
            if verification.intact
            else f"BROKEN at entry {verification.first_bad_seq}: {verification.problem}"
        )
    )
    say("\nCarry on by hand in this demo database:")
    say(f"  export LIMS_HOME={settings.home} LIMS_DATABASE_URL={settings.database_url}")
    say("  lims login tech        # password from the table above")
    say("  lims whoami")
    say(f"  lims culture show {result.culture.summary.culture_id}")
    say(f"  lims aspirate show {csf.din.code}")
    say(f"  lims lot show {lot.summary.lot_id}")
    say(f"  lims storage find {result.patient.code}")
    say(f"  lims ship show {fresh.shipped.shipment_id}")
    say(f"  lims trace {result.aspirate.din.code}")
    say("  lims equipment show INC-01")
    say("  lims audit log")
    if not verification.intact:
        raise typer.Exit(1)


def _trail_row(entry: AuditView, zone: tzinfo) -> tuple[object, ...]:
    """An entry in brief: no old and new values, which `lims audit log` shows in full."""
    from lims.timeutil import show_time

    entity = f"{entry.entity_type}:{entry.entity_id}"
    when = show_time(entry.moment, zone)
    return (entry.seq, when, entry.who, entry.action, entity, entry.reason)
