"""How QA's records are drawn: lots, QC verdicts, deviations, signatures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import typer

from lims.cli.common import alarm, late_entry_note, print_alarms, print_record, print_table
from lims.cli.tables import cells
from lims.domain.spec import COUNTED
from lims.domain.states import DEVIATION, LOT, DeviationSeverity

if TYPE_CHECKING:
    from lims.views.deviations import DeviationView
    from lims.views.quality import LotDetail
    from lims.views.release import CriterionView, EvaluationView, PendingTestView, ResultView


def _verdict(verdict: CriterionView) -> Any:
    if verdict.waived_by is not None:
        return alarm(f"{verdict.verdict} (waived by deviation {verdict.waived_by})")
    if verdict.verdict == "pass":
        return "pass"
    if verdict.verdict == "missing" and not verdict.required:
        return "missing (not required)"
    if verdict.verdict == "pending":  # whether it blocks is said below the table
        return "pending"
    return alarm(verdict.verdict)


def _result(verdict: CriterionView) -> str | None:
    if verdict.result is None:
        return None
    unit = verdict.unit
    others = len(verdict.history) - 1
    shown = f"{verdict.result} {unit}" if unit else verdict.result
    return shown + (f" (of {others + 1} results)" if others > 0 else "")


def _standing(result: ResultView) -> Any:
    """A result's status as QA reads it: only the one that counts is plain."""
    status = (
        result.status
        if result.deviation_id is None
        else (f"{result.status} (deviation {result.deviation_id})")
    )
    return status if result.status in COUNTED else alarm(status)


def show_results(results: Sequence[ResultView], zone: tzinfo) -> None:
    """Every result ever recorded, oldest first, and whether it counts."""
    from lims.timeutil import show_time

    print_table(
        "Every QC result",
        ["test", "result", "status", "tested", "by", "reason"],
        [
            (
                r.test,
                f"{r.value} {r.unit}" if r.unit else r.value,
                _standing(r),
                show_time(r.tested_at, zone),
                r.recorded_by,
                r.reason,
            )
            for r in results
        ],
    )


def show_verdict(verdict: CriterionView) -> None:
    print_record(
        f"QC {verdict.test}",
        {
            "criterion": verdict.description,
            "spec": verdict.spec,
            "result": _result(verdict),
            "verdict": _verdict(verdict),
        },
    )


def show_evaluation(evaluation: EvaluationView, zone: tzinfo) -> None:
    print_table(
        f"QC of {evaluation.lot_id} against release specification "
        f"version {evaluation.spec_version}",
        ["test", "criterion", "spec", "result", "verdict"],
        [(v.test, v.description, v.spec, _result(v), _verdict(v)) for v in evaluation.criteria],
    )
    if any(len(v.history) > 1 for v in evaluation.criteria):
        show_results(evaluation.results, zone)
    if evaluation.pending:
        show_pending(evaluation.pending, zone)
    if LOT.locked(evaluation.lot_status):
        typer.echo(f"The lot is {evaluation.lot_status}: its record is locked.")
    elif evaluation.releasable and evaluation.pending:
        typer.echo(
            "Releasable on interim results: every other criterion passes or is waived, the "
            "interim tests pass and no deviation is open; the release names the tests pending."
        )
    elif evaluation.releasable:
        typer.echo("Releasable: every criterion passes or is waived, and no deviation is open.")
    else:
        print_alarms(["NOT RELEASABLE:", *(f"  - {reason}" for reason in evaluation.blocking)])


def show_pending(pending: Sequence[PendingTestView], zone: tzinfo) -> None:
    """The tests started whose final results are still to come."""
    from lims.timeutil import show_time

    print_table(
        "Final results pending",
        ["test", "method", "started", "expected final result"],
        [
            (
                p.test,
                p.method,
                f"{show_time(p.started_at, zone)} by {p.started_by}",
                show_time(p.expected_final_at, zone),
            )
            for p in pending
        ],
    )


def _release_state(detail: LotDetail) -> Any:
    """Whether a released lot's release is complete, or awaits final results or QA."""
    if not detail.pending_at_release:
        return "complete"
    interim = f"on interim results ({', '.join(detail.pending_at_release)} pending at release)"
    if detail.release_complete:
        return f"complete: released {interim}, final results reviewed"
    status = detail.summary.status
    if not LOT.allows("complete", status):  # recalled: it is never completed
        pending = ", ".join(detail.pending_tests)
        still = f", final results of {pending} pending" if pending else ""
        return alarm(f"released {interim}, never completed: the lot is {status}{still}")
    if detail.pending_tests:
        return alarm(f"final results pending: {', '.join(detail.pending_tests)}")
    if detail.on_hold:  # a final result failed, or the lot is held otherwise: see ON HOLD
        return alarm(
            f"released {interim}: final results in; not completed while the lot is on hold"
        )
    return alarm(
        f"released {interim}: final results in; QA completes it with "
        f"`lims lot complete {detail.summary.lot_id}`"
    )


def show_deviations(deviations: Sequence[DeviationView], title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_table(
        title,
        ["id", "on", "status", "kind", "criterion", "description", "opened", "resolution"],
        [
            (
                d.deviation_id,
                d.subject,
                alarm(d.status)
                if DEVIATION.alarming(d.status)
                else d.status
                + (f", result {d.outcome}" if d.outcome else "")
                + (" (waived)" if d.waived else ""),
                d.kind if d.severity == DeviationSeverity.MAJOR else f"{d.kind} ({d.severity})",
                d.criterion,
                d.description,
                f"{show_time(d.opened_at, zone)} by {d.opened_by}",
                None
                if d.resolution is None
                else f"{d.resolution} — {d.signed_by or d.closed_by}, "
                + show_time(d.closed_at, zone),
            )
            for d in deviations
        ],
    )


def show_lot(detail: LotDetail, zone: tzinfo) -> None:
    from lims.cli.expansion import PASSAGE_COLUMNS, passage_row, print_counts, show_lineage
    from lims.timeutil import show_time
    from lims.views.counts import SHA256_IN_TABLES

    lot = detail.summary
    status = lot.status.upper()
    print_record(
        f"Lot {lot.lot_id}",
        {
            "status": alarm(status) if LOT.alarming(lot.status) else status,
            "patient (recipient)": f"{lot.patient} ({lot.initials}, born {lot.birth_year})",
            "DIN": lot.din.display,
            "culture": lot.culture_id,
            "formulated": f"{show_time(lot.formulated_at, zone)} by {lot.recorded_by}",
            "expires": show_time(lot.expires_at, zone),
            "final harvest": f"{cells(lot.harvested)} viable cells, {lot.viability:g} % viable",
            "final harvest from": lot.count.described(zone, sha256_digits=SHA256_IN_TABLES),
            "vials": (
                f"{lot.vials} × {cells(lot.cells_per_vial)} cells in {lot.volume_ml:g} mL "
                f"{lot.vehicle}"
            ),
            "vehicle": lot.vehicle_source(),
            "final passage": f"P{lot.final_passage}",
            "reagents": ", ".join(detail.reagents) or None,
            **({"release": _release_state(detail)} if detail.release_complete is not None else {}),
            **(
                {
                    "formulation": late_entry_note(
                        lot.entered_at, lot.recorded_by, lot.late_reason, zone
                    )
                }
                if lot.late_reason is not None
                else {}
            ),
        },
    )
    culture = detail.culture
    if culture.passages:
        print_table(
            f"Culture {culture.summary.culture_id} ({culture.summary.kind}, started "
            f"{show_time(culture.summary.started_at, zone)})",
            PASSAGE_COLUMNS,
            [passage_row(p, zone) for p in culture.passages],
        )
        print_counts(culture.passages, zone)
    show_lineage(culture, zone)
    show_evaluation(detail.evaluation, zone)
    if detail.on_hold:
        print_alarms(
            ["ON HOLD: no vial goes to a patient", *(f"  - {r}" for r in detail.hold_reasons)]
        )
    if detail.holds:
        print_table(
            "Holds",
            ["hold", "reason", "placed", "lifted"],
            [
                (
                    h.hold_id,
                    h.reason,
                    f"{show_time(h.placed_at, zone)} by {h.placed_by}",
                    None
                    if h.lifted_at is None
                    else f"{show_time(h.lifted_at, zone)} by {h.lifted_by}: {h.lift_reason}",
                )
                for h in detail.holds
            ],
        )
    if detail.deviations:
        show_deviations(detail.deviations, "Deviations", zone)
    for signature in detail.signatures:
        line = signature.manifestation
        if not signature.linked:
            print_alarms([f"SIGNATURE NOT LINKED TO THIS LOT: {line}"])
        elif not signature.record_unchanged:
            print_alarms([f"RECORD CHANGED SINCE SIGNING: {line}"])
        else:
            typer.echo(line)
    print_table(
        "Vials",
        ["vial", "status", "cells", "volume mL", "issued with pending", "shipment"],
        [
            (
                v.vial_id,
                v.status,
                cells(v.cells),
                f"{v.volume_ml:g}",
                ", ".join(v.acknowledged_pending) or None,
                v.shipment,
            )
            for v in detail.vials
        ],
    )
    if detail.retained_samples:
        from lims.cli.storage import print_items

        print_items(detail.retained_samples, "Retained samples", zone)
