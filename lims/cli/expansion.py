"""How cultures and passages are drawn: tables, flags in red, the growth curve."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import typer

from lims.cli.common import alarm, late_entry_note, print_alarms, print_record, print_table
from lims.cli.tables import cells, fixed
from lims.domain.states import DEVIATION
from lims.views.counts import SHA256_IN_TABLES

if TYPE_CHECKING:
    from lims.views.bench import AncestorView, CultureDetail, PassageView

PASSAGE_COLUMNS = [
    "passage",
    "harvested at",
    "harvested",
    "viability %",
    "counted",
    "reseeded",
    "density /cm²",
    "PD",
    "cum. PD",
    "doubling time h",
    "flags",
]


def value(recorded: Any) -> Any:
    """A recorded value as people read it: counts grouped, measures to 2 decimals."""
    if isinstance(recorded, bool) or recorded is None:
        return recorded
    if isinstance(recorded, int):
        return f"{recorded:,}"
    if isinstance(recorded, float):
        return f"{recorded:,.2f}"
    return recorded


def passage_row(view: PassageView, zone: tzinfo) -> list[Any]:
    from lims.timeutil import show_time
    from lims.views.records import LATE_ENTRY

    open_flags = [flag.kind for flag in view.flags if DEVIATION.pending(flag.status)]
    marks = [LATE_ENTRY] if view.late_entry else []
    return [
        f"P{view.passage_number}"
        + (f" (corrected ×{view.corrections})" if view.corrections else ""),
        show_time(view.harvested_at, zone),
        cells(view.harvested),
        f"{view.viability:g}",
        view.count.label,
        cells(view.seeded),
        fixed(view.seeding_density_per_cm2, 0),
        fixed(view.population_doublings),
        fixed(view.cumulative_population_doublings),
        fixed(view.doubling_time_hours, 1),
        alarm(", ".join([*open_flags, *marks])) if open_flags or marks else None,
    ]


def show_passage(view: PassageView, title: str, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    print_record(
        title,
        {
            "passage": view.passage_id,
            "passage number": view.passage_number,
            "harvested at": show_time(view.harvested_at, zone),
            "harvested (viable)": cells(view.harvested),
            "viability": f"{view.viability:g} %",
            "harvest from": view.count.described(zone, sha256_digits=SHA256_IN_TABLES),
            "confluence": None if view.confluence is None else f"{view.confluence:g} %",
            "reseeded": f"{cells(view.seeded)} in {view.vessels} vessels, {view.area_cm2:,g} cm²",
            "seeding density": f"{fixed(view.seeding_density_per_cm2, 0)} cells/cm²",
            "population doublings": (
                fixed(view.population_doublings) or "— (first harvest of a primary culture)"
            ),
            "cumulative PD": fixed(view.cumulative_population_doublings),
            "doubling time": (
                None if view.doubling_time_hours is None else f"{view.doubling_time_hours:.1f} h"
            ),
            "fold expansion": (
                None if view.fold_expansion is None else f"{view.fold_expansion:.2f}×"
            ),
            "reagents": ", ".join(view.reagents) or None,
            **_late(view.entered_at, view.recorded_by, view.late_reason, zone),
        },
    )
    print_alarms(
        f"FLAGGED: {flag.description} — deviation {flag.deviation_id} opened on the culture"
        for flag in view.flags
    )


def show_culture(detail: CultureDetail, zone: tzinfo) -> None:
    from lims.timeutil import show_time

    summary = detail.summary
    print_record(
        f"Culture {summary.culture_id}",
        {
            "DIN": summary.din.display,
            "patient": summary.patient,
            "kind": summary.kind,
            "status": summary.status,
            "started": show_time(summary.started_at, zone),
            "plated": (
                f"{cells(summary.cells_plated)} in {summary.vessels} vessels, "
                f"{summary.area_cm2:,g} cm²"
            ),
            "plated cells from": summary.count.described(zone, sha256_digits=SHA256_IN_TABLES),
            "method": summary.method,
            "reagents at start": ", ".join(detail.reagents) or None,
            "passages": summary.passages,
            "cumulative PD": fixed(summary.cumulative_population_doublings),
            "open deviations": (
                alarm(str(summary.open_deviations)) if summary.open_deviations else 0
            ),
            **_origin(detail, zone),
            "split into": ", ".join(detail.children) or None,
            **_late(summary.entered_at, summary.recorded_by, summary.late_reason, zone),
        },
    )
    if detail.passages:
        print_table("Passages", PASSAGE_COLUMNS, [passage_row(p, zone) for p in detail.passages])
        print_counts(detail.passages, zone)
        used = [(p.passage_id, ", ".join(p.reagents)) for p in detail.passages if p.reagents]
        if used:
            print_table("Reagents by passage", ["passage", "reagent lots"], used)
    if detail.deviations:
        print_table(
            "Deviations",
            ["id", "status", "kind", "description", "opened"],
            [
                (
                    d.deviation_id,
                    alarm(d.status) if DEVIATION.alarming(d.status) else d.status,
                    d.kind,
                    d.description,
                    f"{show_time(d.opened_at, zone)} by {d.opened_by}",
                )
                for d in detail.deviations
            ],
        )
    show_lineage(detail, zone)
    curve = detail.growth_curve()
    if len(curve) >= 2:
        typer.echo(growth_plot(curve))


def print_counts(passages: Sequence[PassageView], zone: tzinfo) -> None:
    """Where the passages' counts came from, for those taken from an imported count."""
    counted = [p for p in passages if not p.count.typed]
    if counted:
        print_table(
            "Counts by passage (the others typed)",
            ["passage", "harvested and viability from"],
            [
                (p.passage_id, p.count.described(zone, sha256_digits=SHA256_IN_TABLES))
                for p in counted
            ],
        )


def _origin(detail: CultureDetail, zone: tzinfo) -> dict[str, Any]:
    """Where a culture's cells came from, when another culture's harvest gave them."""
    from lims.timeutil import show_time

    thawed = detail.thawed_from
    if thawed is not None:
        viability = "" if thawed.thaw_viability is None else f", {thawed.thaw_viability:g} % viable"
        return {
            "thawed from": f"bank vial {thawed.bank_vial_id}{viability}, frozen "
            f"{show_time(thawed.frozen_at, zone)} by {thawed.frozen_by} from the harvest of "
            f"{thawed.passage_id} of {detail.parent}"
        }
    return {
        "split from": (
            f"{detail.parent}, harvest of {detail.source_passage}" if detail.parent else None
        )
    }


def _late(entered_at: Any, entered_by: str, reason: str | None, zone: tzinfo) -> dict[str, Any]:
    """The late-entry line of a record, when it was entered late."""
    if reason is None:
        return {}
    return {"entry": late_entry_note(entered_at, entered_by, reason, zone)}


def show_lineage(detail: CultureDetail, zone: tzinfo) -> None:
    """The cultures a culture was split from, their passages and deviations, and the lots
    of the other cultures of its lineage."""
    for ancestor in detail.lineage:
        print_table(
            f"Lineage: {ancestor.culture_id} ({ancestor.kind}, {ancestor.status}), "
            + handed_on(ancestor),
            PASSAGE_COLUMNS,
            [passage_row(p, zone) for p in ancestor.passages],
        )
        if ancestor.deviations:
            print_table(
                f"Deviations on {ancestor.culture_id}",
                ["id", "status", "kind", "description"],
                [
                    (
                        d.deviation_id,
                        alarm(d.status) if DEVIATION.alarming(d.status) else d.status,
                        d.kind,
                        d.description,
                    )
                    for d in ancestor.deviations
                ],
            )
    if detail.sister_lots:
        print_table(
            "Sister lots (other cultures of the lineage)",
            ["lot", "culture", "status"],
            [(lot.lot_id, lot.culture_id, lot.status) for lot in detail.sister_lots],
        )


def handed_on(ancestor: AncestorView) -> str:
    """How an ancestor's harvest seeded the next culture down: split, or frozen and thawed."""
    if ancestor.bank_vial is not None:
        return f"frozen at {ancestor.split_at} in bank vial {ancestor.bank_vial}"
    return f"split at {ancestor.split_at}"


def growth_plot(points: Sequence[tuple[float, float]]) -> str:
    """Cumulative population doublings over days since the start, drawn in the terminal."""
    import plotext

    plotext.clear_figure()
    plotext.plot([day for day, _ in points], [pd for _, pd in points], marker="dot")
    plotext.scatter([day for day, _ in points], [pd for _, pd in points], marker="●")
    plotext.plotsize(72, 16)
    plotext.theme("clear")
    plotext.title("Growth: cumulative population doublings")
    plotext.xlabel("days since the culture started")
    drawn = plotext.build()
    return drawn if sys.stdout.isatty() else plotext.uncolorize(drawn)
