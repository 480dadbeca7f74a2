"""Records bound to the trail (lims.services.bindings): honest histories agree, edits do not.

A false alarm on honest data is as bad a bug as a miss: every kind of honest change a
bound row goes through is made here and must verify clean. The rest checks the mechanism:
a key the trail never stated is not compared (entries of earlier versions), a check of one
lot reads only that lot's records, and the whole database is checked in one walk.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from lims import db
from lims.errors import NotPermitted, RuleViolation
from lims.services import bindings, cultures, deviations, events, lots, patients, qc, users, vials
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import PASSING, RESULTS_AT, Quality, released_lot
from tests.support.vials import add_lot, give, scan_of

PATIENT = "PT-0001"


def _disagreement(quality: Bench) -> Any:
    verification = quality.scenario.verify_trail()
    assert verification.first_bad_seq is None
    return verification.disagreement


def _require(quality: Bench, *subjects: tuple[str, str]) -> None:
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        bindings.require_agreement(uow.session, subjects)


def test_a_lots_whole_life_agrees_with_the_trail(quality: Quality, lab: Lab) -> None:
    """Correction, a retest, a waived failure, release, issue, administration, destruction."""
    quality.run(lots.correct_lot, lot=quality.lot_id, reason="recount", viability=94)
    quality.record_passing()
    quality.record("viability", "70", reason="second count", at=day(27.5))
    quality.record("viability", "93", reason="third count", at=day(27.6))
    opened = quality.run(
        deviations.open_deviation,
        lot=quality.lot_id,
        criterion="karyotype",
        description="karyotype read late",
    )
    lab.login("quinn")
    quality.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="read on time after all",
        password=PASSWORD,
    )
    assert _disagreement(quality) is None
    quality.release()
    lab.login("tom")
    first, second, third = (f"{quality.lot_id}-V0{n}" for n in (1, 2, 3))
    for vial in (first, second):
        quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)
    quality.run(vials.administer, vial=first, scan=scan_of(quality, first), patient=PATIENT)
    quality.run(vials.destroy, vial=third, reason="cracked during thaw")
    with pytest.raises(vials.VialMismatch):
        quality.run(vials.issue, vial=third, scan=scan_of(quality, first), patient=PATIENT)
    assert _disagreement(quality) is None
    _require(quality, ("vial", second), ("lot", quality.lot_id))


def test_a_rejected_lot_a_waiver_and_a_culture_flag_agree(quality: Quality, lab: Lab) -> None:
    quality.record("sterility", "positive")
    lab.login("rita")
    quality.run(lots.reject, lot=quality.lot_id, password=PASSWORD, reason="sterility positive")
    lab.login("tom")
    other = add_lot(quality, "PT-0002")
    for test, value in PASSING.items():
        outcome = "90" if test == "cd73" else value
        quality.run(qc.record_result, lot=other, test=test, value=outcome, at=RESULTS_AT)
    [opened] = [d for d in quality.read(lots.show_lot, lot=other).deviations if d.kind == "oos"]
    lab.login("quinn")
    quality.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="accepted by the physician",
        password=PASSWORD,
        confirm=True,
        waive=True,
        physician_request="Dr Rossi, 1 December",
    )
    assert _disagreement(quality) is None


def test_holds_investigations_and_a_recall_agree_and_a_lifted_hold_row_is_caught(
    quality: Quality, lab: Lab
) -> None:
    quality.record_passing()
    lab.login("tom")
    quality.record("cd105", "90", reason="second stain")
    [opened] = [d for d in quality.show().deviations if d.kind == "oos"]
    quality.record("cd105", "97", investigation=opened.deviation_id)
    lab.login("quinn")
    quality.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="tube mislabelled",
        password=PASSWORD,
        invalidate=True,
    )
    quality.release("rita")
    quality.run(lots.hold, lot=quality.lot_id, password=PASSWORD, reason="alarm")
    assert _disagreement(quality) is None
    quality.sql("UPDATE lot_holds SET lifted_at = placed_at, lifted_by = 'quinn'")
    assert (_disagreement(quality).table, _disagreement(quality).column) == (
        "lot_holds",
        "lifted_at",
    )
    quality.sql("UPDATE lot_holds SET lifted_at = NULL, lifted_by = NULL")
    quality.run(lots.recall, lot=quality.lot_id, password=PASSWORD, reason="late failure")
    assert _disagreement(quality) is None
    quality.sql("UPDATE deviations SET outcome = 'confirmed'")
    assert (_disagreement(quality).table, _disagreement(quality).column) == (
        "deviations",
        "outcome",
    )
    quality.sql("UPDATE deviations SET outcome = 'invalidated'")
    quality.sql("UPDATE qc_results SET investigation_id = NULL")
    assert (_disagreement(quality).table, _disagreement(quality).column) == (
        "qc_results",
        "investigation_id",
    )


def test_corrected_passages_and_their_flags_agree(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14), viability=70)  # flags low viability: a deviation opened
    bench.passage(growing, day(20))
    bench.run(cultures.correct_passage, passage=f"{growing}-P1", reason="recount", viability=90)
    assert _disagreement(bench) is None


def test_users_added_moved_and_deactivated_agree(bench: Bench, lab: Lab) -> None:
    lab.add_user("ann", "technician")
    lab.login("admin")
    bench.run(users.set_role, username="ann", role="qa", reason="joined QA")
    bench.run(users.deactivate_user, username="tom", reason="left the lab")
    with pytest.raises(NotPermitted):  # counted towards ann's lockout, on the record
        lab.login("ann", password="not the password")
    assert _disagreement(bench) is None
    bench.sql("UPDATE users SET active = TRUE WHERE username = 'tom'")
    assert (_disagreement(bench).table, _disagreement(bench).column) == ("users", "active")


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        ("UPDATE users SET full_name = 'Quinn QA' WHERE username = 'tom'", "full_name"),
        (
            "UPDATE users SET password_set_by_admin = TRUE WHERE username = 'tom'",
            "password_set_by_admin",
        ),
    ],
)
def test_a_users_printed_name_and_pending_change_are_bound(
    bench: Bench, lab: Lab, statement: str, column: str
) -> None:
    lab.add_user("ann", "technician")
    assert _disagreement(bench) is None
    bench.sql(statement)
    assert (_disagreement(bench).table, _disagreement(bench).column) == ("users", column)


def test_a_check_of_one_lot_reads_only_its_own_records(quality: Quality) -> None:
    other = add_lot(quality, "PT-0002")
    quality.sql("UPDATE lots SET status = 'released' WHERE code = :code", code=quality.lot_id)
    _require(quality, ("lot", other))
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}lots {quality.lot_id} status"):
        _require(quality, ("lot", quality.lot_id))
    with pytest.raises(RuleViolation, match="the row says released, the trail says quarantine"):
        _require(quality, ("vial", f"{quality.lot_id}-V01"))  # a vial brings its lot


def test_the_whole_check_reads_each_table_once_and_the_trail_once(quality: Quality) -> None:
    def statements_of_one_check() -> int:
        engine = db.engine_for(quality.settings)
        seen: list[str] = []

        def count(*args: Any) -> None:
            if args[2].lstrip().upper().startswith("SELECT"):
                seen.append(args[2])

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert bindings.first_disagreement(engine) is None
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    once = statements_of_one_check()
    assert once == len(bindings.BINDINGS) + 2  # and the trail, and the kept count files
    add_lot(quality, "PT-0002")
    quality.record_passing()
    assert statements_of_one_check() == once


# --- the fold, on entries and rows made up here ----------------------------------------------


LOT = next(b for b in bindings.BINDINGS if b.table == "lots")
VIAL = next(b for b in bindings.BINDINGS if b.table == "vials")


def _rows(**by_table: list[dict[str, Any]]) -> list[list[Any]]:
    """Made-up rows of each table for its first declaration, whose shape they have (vials are
    declared again for when each was given, signatures for lots and for deviations)."""
    first: dict[str, Any] = {}
    return [
        by_table.get(binding.table, [])
        if first.setdefault(binding.table, binding) is binding
        else []
        for binding in bindings.BINDINGS
    ]


def _lot_row(patient: int, status: str = "quarantine") -> dict[str, Any]:
    return {
        "id": "L1",
        "parent_type": "culture",
        "parent": "C1",
        "status": status,
        "patient_id": patient,
        "spec_version": 1,
        # Compared even where never stated: none of them until a release on interim results,
        # and no CSF drawn for a lot formulated before lots named it.
        "pending_at_release": None,
        "release_completed_at": None,
        "release_completed_by": None,
        "vehicle_din": None,
        "vehicle_ml": None,
    }


_UNSPLIT = {"parent_culture": None, "source_passage": None}


def _fold(*entries: tuple[str, str, str, str | None]) -> Any:
    trail = bindings._Trail(bindings.BINDINGS)
    trail.add(1, "culture", "C1", "culture.start", '{"kind":"primary"}')
    for seq, entry in enumerate(entries, start=2):
        trail.add(seq, *entry)
    return trail


def test_a_key_an_earlier_lims_never_stated_is_not_compared() -> None:
    culture = {"id": "C1", "status": "formulated", **_UNSPLIT}
    legacy = _fold(
        ("lot", "L1", "lot.formulate", '{"culture":"C1","status":"quarantine"}'),
        ("culture", "C1", "culture.formulate", '{"status":"formulated"}'),
    )
    rows = _rows(cultures=[culture], lots=[_lot_row(patient=7)])
    assert bindings._first_disagreement(bindings.BINDINGS, legacy, rows) is None
    stated = _fold(
        ("lot", "L1", "lot.formulate", '{"culture":"C1","patient_id":3,"status":"quarantine"}'),
        ("culture", "C1", "culture.formulate", '{"status":"formulated"}'),
    )
    found = bindings._first_disagreement(bindings.BINDINGS, stated, rows)
    assert (found.table, found.id, found.column) == ("lots", "L1", "patient_id")
    assert (found.row_value, found.trail_value) == (7, 3)


def test_vials_of_a_lot_whose_entry_lists_none_are_not_called_unrecorded() -> None:
    vial = {
        "id": "L1-V01",
        "parent_type": "lot",
        "parent": "L1",
        "status": "quarantine",
        "acknowledged_pending": None,
        "route": None,
        "physician": None,
    }
    culture = {"id": "C1", "status": "active", **_UNSPLIT}
    rows = _rows(cultures=[culture], lots=[_lot_row(patient=3)], vials=[vial])
    unlisted = _fold(("lot", "L1", "lot.formulate", '{"status":"quarantine"}'))
    assert bindings._first_disagreement(bindings.BINDINGS, unlisted, rows) is None
    listed = _fold(("lot", "L1", "lot.formulate", '{"status":"quarantine","vials":[]}'))
    found = bindings._first_disagreement(bindings.BINDINGS, listed, rows)
    assert (found.table, found.id, found.column) == ("vials", "L1-V01", None)


def test_rows_their_entries_name_are_matched_by_id_and_their_latest_entry() -> None:
    """As lot holds will be: made by one entry naming the row, changed by a later one."""
    holds = bindings.Sequenced(
        table="lot_holds",
        parent_type="lot",
        actions=frozenset({"lot.hold", "lot.unhold"}),
        marker="hold_id",
        named_by="hold_id",
        rows=next(b for b in bindings.BINDINGS if b.table == "qc_results").rows,
        columns=(bindings.Bound("reason", "reason"),),
    )
    trail = bindings._Trail((holds,))
    trail.add(1, "lot", "L1", "lot.hold", '{"hold_id":8,"reason":"seal"}')
    trail.add(2, "lot", "L1", "lot.hold", '{"hold_id":9,"reason":"label"}')
    trail.add(3, "lot", "L1", "lot.unhold", '{"hold_id":8,"reason":"resealed"}')

    def first(*rows: tuple[int, str]) -> Any:
        found = [{"id": i, "parent_type": "lot", "parent": "L1", "reason": r} for i, r in rows]
        return bindings._first_disagreement((holds,), trail, [found])

    assert first((9, "label"), (8, "resealed")) is None
    found = first((8, "seal"), (9, "label"))
    assert (found.table, found.id, found.column, found.trail_value) == (
        "lot_holds",
        "8",
        "reason",
        "resealed",
    )
    assert first((9, "label")).id == "8"  # the trail records hold 8; the table lost it
    assert first((8, "resealed"), (9, "label"), (10, "x")).id == "10"  # never recorded


def test_a_culture_given_a_parent_it_was_not_split_from_disagrees_with_the_trail() -> None:
    """A primary culture's row pointed at another culture, as if split from it: the trail
    never stated a parent, so its lot would inherit passages that never happened."""
    rows = _rows(cultures=[{"id": "C1", "status": "active", **_UNSPLIT, "parent_culture": "C0"}])
    found = bindings._first_disagreement(bindings.BINDINGS, _fold(), rows)
    assert (found.table, found.id, found.column) == ("cultures", "C1", "parent_id")
    assert (found.row_value, found.trail_value) == ("C0", None)


def test_a_withdrawal_erased_from_its_row_is_caught_before_a_vial_is_given(
    quality: Quality,
) -> None:
    """Consent withdrawn on record, the row set back: lot release and the bedside scan
    refuse rather than read the row, and `audit verify` names it."""
    quality.run(patients.withdraw_patient, code=PATIENT, reason="the patient withdrew consent")
    quality.sql("UPDATE patients SET withdrawn_at = NULL WHERE code = :code", code=PATIENT)
    found = _disagreement(quality)
    assert (found.table, found.id, found.column) == ("patients", PATIENT, "withdrawn_at")
    quality.lab.login("rita")
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}patients {PATIENT}"):
        quality.run(lots.release, lot=quality.lot_id, password=PASSWORD)
    [payload, *_] = quality.scenario.label_payloads(quality.lot_id, PATIENT)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}patients {PATIENT}"):
        quality.run(vials.verify, scan=payload, patient=PATIENT)


def test_a_nonconforming_aspirate_and_a_corrected_consent_agree(bench: Bench) -> None:
    bench.patient()
    collected = bench.scenario.clock.collected
    bench.aspirate(
        received_at=collected + timedelta(hours=60),
        nonconforming=True,
        reason="the only aspirate; the physician accepts the delay",
    )
    bench.run(
        patients.correct_patient,
        code=PATIENT,
        consent_date=(collected - timedelta(days=3)).date(),
        reason="consent form re-read",
    )
    assert _disagreement(bench) is None
    bench.sql("UPDATE patients SET consent_date = '2001-01-01' WHERE code = :code", code=PATIENT)
    assert (_disagreement(bench).table, _disagreement(bench).column) == (
        "patients",
        "consent_date",
    )


@pytest.mark.parametrize(
    ("table", "column", "statement"),
    [
        ("late_entries", None, "DELETE FROM late_entries WHERE entity_type = 'passage'"),
        ("aspirates", "nonconforming", "UPDATE aspirates SET nonconforming = TRUE"),
        ("aspirates", "collected_at", "UPDATE aspirates SET collected_at = '2000-01-01 00:00:00'"),
        ("cultures", "cells_plated", "UPDATE cultures SET cells_plated = 1 WHERE kind = 'split'"),
    ],
)
def test_late_entries_receipts_and_splits_are_bound(
    bench: Bench, table: str, column: str | None, statement: str
) -> None:
    """A late entry's mark deleted, an aspirate's receipt or conformity rewritten, a split's
    draw on its parent's harvest lowered: each disagrees with the trail."""
    bench.lab.set_site(records={"late_entry_hours": 24})
    bench.patient()
    din = bench.aspirate(late_reason="typed from the receipt form").din.code
    culture = bench.culture(din, late_reason="typed from the sheet").summary.culture_id
    bench.passage(culture, day(14), late_reason="typed from the sheet", seeded=3_000_000)
    bench.run(
        cultures.split_culture,
        culture=culture,
        seeded=1_000_000,
        vessels=1,
        area_cm2=175,
        at=day(14) + timedelta(hours=2),
        late_reason="typed from the sheet",
    )
    assert _disagreement(bench) is None
    bench.sql(statement)
    found = _disagreement(bench)
    assert (found.table, found.column) == (table, column)


def test_a_deviations_severity_lowered_by_hand_disagrees_with_the_trail(quality: Quality) -> None:
    opened = quality.run(
        deviations.open_deviation,
        lot=quality.lot_id,
        description="incubator alarm overnight",
        severity="critical",
    )
    assert _disagreement(quality) is None
    with db.engine_for(quality.settings).begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE deviations SET severity = 'minor' WHERE id = {opened.deviation_id}"
        )
    disagreement = _disagreement(quality)
    assert disagreement is not None
    assert "severity" in str(disagreement)


def test_a_release_on_interim_results_and_its_completion_are_bound(
    quality: Quality, lab: Lab
) -> None:
    """A test started, the release naming it, a vial issued acknowledging it, the final
    result and QA's completion agree; each of their rows edited by hand disagrees."""
    for test, value in PASSING.items():
        if test != "sterility":
            quality.record(test, value)
    for test in ("gram_stain", "sterility_interim"):
        quality.record(test, "negative")
    quality.record(
        "sterility",
        "pending",
        method="BacT/ALERT, 14 d",
        expected_final=RESULTS_AT + timedelta(days=14),
    )
    quality.release()
    lab.login("tom")
    vial = f"{quality.lot_id}-V01"
    quality.run(
        vials.issue,
        vial=vial,
        scan=scan_of(quality, vial),
        patient=PATIENT,
        acknowledge_pending=True,
    )
    quality.record("sterility", "negative", at=day(29))
    lab.login("quinn")
    quality.run(lots.complete, lot=quality.lot_id, password=PASSWORD)
    assert _disagreement(quality) is None
    edits = [
        ("qc_results", "pending", "UPDATE qc_results SET pending = FALSE WHERE pending = TRUE"),
        ("qc_results", "pending", "UPDATE qc_results SET pending = TRUE WHERE test = 'viability'"),
        (
            "qc_results",
            "expected_final_at",
            "UPDATE qc_results SET expected_final_at = NULL WHERE pending = TRUE",
        ),
        ("lots", "pending_at_release", "UPDATE lots SET pending_at_release = NULL"),
        ("lots", "pending_at_release", "UPDATE lots SET pending_at_release = 'junk'"),
        ("lots", "release_completed_at", "UPDATE lots SET release_completed_at = NULL"),
        ("lots", "release_completed_by", "UPDATE lots SET release_completed_by = 'rita'"),
        (
            "vials",
            "acknowledged_pending",
            "UPDATE vials SET acknowledged_pending = NULL WHERE acknowledged_pending IS NOT NULL",
        ),
        (
            "vials",
            "acknowledged_pending",
            """UPDATE vials SET acknowledged_pending = '["sterility"]' """
            "WHERE acknowledged_pending IS NULL",
        ),
    ]
    for table, column, statement in edits:
        kept = quality.sql(f"SELECT id, {column} FROM {table}").all()
        quality.sql(statement)
        found = _disagreement(quality)
        assert (found.table, found.column) == (table, column), statement
        if table == "lots":
            with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}lots"):
                quality.run(lots.complete, lot=quality.lot_id, password=PASSWORD)
        for row_id, value in kept:
            quality.sql(
                f"UPDATE {table} SET {column} = :value WHERE id = :id",
                value=value,
                id=row_id,
            )
        assert _disagreement(quality) is None, statement
    quality.sql("DELETE FROM signatures WHERE meaning = 'final results reviewed'")
    assert (_disagreement(quality).table, _disagreement(quality).column) == ("signatures", None)


# --- issue 13: how a vial was given, and what followed ------------------------------------------


_CAUSES = "SELECT event_id FROM deviations WHERE event_id IS NOT NULL"


@pytest.fixture
def followed(lab: Lab) -> Quality:
    """L1 released; V01 given by tom by the intraspinal route on Dr Rossi's order; then a
    serious adverse event probably related to V01, which opened a deviation on L1."""
    return lab.built("bindings-followed", lambda: _followed(released_lot(Quality(lab))))


def _followed(quality: Quality) -> Quality:
    vial = f"{quality.lot_id}-V01"
    give(quality, vial, route="intraspinal", physician="Dr Rossi")
    quality.run(
        events.record_event,
        patient=PATIENT,
        vial=vial,
        at=utcnow(),
        kind="adverse_event",
        severity="severe",
        serious=True,
        related="probable",
        description="fever and neck stiffness",
    )
    return quality


def test_an_administration_and_its_follow_up_agree_with_the_trail(followed: Quality) -> None:
    followed.run(
        events.record_event,
        patient=PATIENT,
        at=utcnow(),
        kind="observation",
        description="walks unaided",
    )
    assert _disagreement(followed) is None
    _require(followed, ("patient", PATIENT), ("vial", f"{followed.lot_id}-V01"))


@pytest.mark.parametrize(
    ("table", "column", "statement"),
    [
        ("vials", "route", "UPDATE vials SET route = 'intravenous' WHERE route IS NOT NULL"),
        ("vials", "physician", "UPDATE vials SET physician = NULL"),
        ("vials", "route", "UPDATE vials SET route = 'intrathecal' WHERE route IS NULL"),
        ("follow_up_events", "serious", "UPDATE follow_up_events SET serious = FALSE"),
        ("follow_up_events", "related", "UPDATE follow_up_events SET related = 'unlikely'"),
        ("follow_up_events", "severity", "UPDATE follow_up_events SET severity = 'mild'"),
        ("follow_up_events", "vial_id", "UPDATE follow_up_events SET vial_id = NULL"),
        (
            "follow_up_events",
            "occurred_at",
            "UPDATE follow_up_events SET occurred_at = recorded_at",
        ),
        ("follow_up_events", None, f"DELETE FROM follow_up_events WHERE id NOT IN ({_CAUSES})"),
        ("deviations", "event_id", "UPDATE deviations SET event_id = NULL"),
        # When a vial was given decides which lots a suspected reaction holds.
        (
            "vials",
            "administered_at",
            "UPDATE vials SET administered_at = issued_at WHERE administered_at IS NOT NULL",
        ),
        ("vials", None, "UPDATE vials SET administered_at = NULL"),
        (
            "vials",
            None,
            "UPDATE vials SET administered_at = (SELECT MAX(occurred_at) FROM follow_up_events) "
            "WHERE administered_at IS NULL",
        ),
    ],
)
def test_a_route_a_physician_or_an_events_grading_changed_by_hand_disagrees(
    followed: Quality, table: str, column: str | None, statement: str
) -> None:
    followed.run(
        events.record_event,
        patient=PATIENT,
        at=utcnow(),
        kind="observation",
        description="walks unaided",
    )
    followed.sql(statement)
    found = _disagreement(followed)
    assert (found.table, found.column) == (table, column)


def test_an_event_made_less_serious_by_hand_stops_the_next_follow_up_and_administration(
    followed: Quality,
) -> None:
    followed.sql("UPDATE follow_up_events SET serious = :no", no=False)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}follow_up_events "):
        followed.run(
            events.record_event,
            patient=PATIENT,
            at=utcnow(),
            kind="observation",
            description="walks unaided",
        )
    followed.sql("UPDATE follow_up_events SET serious = :yes", yes=True)
    followed.sql("UPDATE vials SET route = 'intravenous' WHERE route IS NOT NULL")
    second = f"{followed.lot_id}-V02"
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}vials {followed.lot_id}-V01"):
        followed.run(vials.issue, vial=second, scan=scan_of(followed, second), patient=PATIENT)
