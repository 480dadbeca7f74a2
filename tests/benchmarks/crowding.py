"""Eight stations at once: every passage lands, and what the queueing costs.

The stations are tests/support/stations.py's (the suite's concurrency test runs the
same with smaller numbers). The floor is the same passages and aspirates
logged by one station alone, so the ratio is what eight stations queueing
for the write lock cost over one station doing all the work.
"""

from __future__ import annotations

from common import Bench, Row, show, timed

from tests.support import stations

STATIONS = 8


def crowding_rows(bench: Bench) -> list[Row]:
    cultures, passages = (1, 3) if bench.quick else (10, 5)
    with timed(bench, f"{STATIONS} stations at once"):
        crowded = stations.run(
            bench.database("crowded").url,
            bench.scratch / "crowded",
            STATIONS,
            cultures,
            passages,
        )
    with timed(bench, "one station alone"):
        alone = stations.run(
            bench.database("alone").url,
            bench.scratch / "alone",
            1,
            cultures * STATIONS,
            passages,
        )
    for outcome in (crowded, alone):
        bench.notes += outcome.failures
        if not outcome.audit_intact:
            bench.notes.append(f"audit chain broken: {outcome.audit_problem}")
    landed = (
        f"{crowded.passages}/{crowded.passages_expected} passages, "
        f"{crowded.aspirates}/{crowded.aspirates_expected} aspirates, "
        f"DINs {'gap-free' if crowded.dins_gap_free else 'NOT gap-free'}, "
        f"chain {'verifies' if crowded.audit_intact else 'BROKEN'}, "
        f"{len(crowded.failures)} errors seen"
    )
    return [
        Row(
            f"{STATIONS} stations × {cultures * passages} passages at once "
            f"({crowded.passages_expected} in all)",
            "one station logging them all",
            "all land",
            show(crowded.seconds, "s"),
            show(alone.seconds, "s"),
            f"{crowded.seconds / alone.seconds:.2f}×",
            "ok" if crowded.ok and alone.ok else "FAILED",
        ),
        Row(f"  {landed}", "—", "—", "—", "—", "—", "—"),
    ]
