"""Lots through the service: formulation, release and rejection signatures, separation of
duties, corrections.

The CLI wiring of the same rules is in tests/cli/test_lots.py; the verdicts are
in test_qc.py, deviations and waivers in test_deviations.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from lims.errors import AuditedRefusal, BadInput, NotPermitted, RuleViolation
from lims.services import cultures, lookup, lots, verdicts
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.lab import PASSWORD
from tests.support.quality import Quality

# --- formulation ------------------------------------------------------------------------------


def test_a_lot_starts_in_quarantine_for_the_aspirates_patient(quality: Quality) -> None:
    lot = quality.show()
    assert lot.summary.status == "quarantine"
    assert lot.summary.patient == "PT-0001"
    assert [v.vial_id for v in lot.vials] == [f"{quality.lot_id}-V0{n}" for n in range(1, 5)]
    assert lot.summary.final_passage == 2
    assert lot.summary.expires_at == day(26) + timedelta(days=30)
    assert lot.culture.summary.status == "formulated"


def test_a_culture_is_formulated_once(quality: Quality) -> None:
    with pytest.raises(RuleViolation, match="already formulated"):
        quality.formulate(at=day(27))


def test_vials_cannot_hold_more_cells_than_were_harvested(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    with pytest.raises(BadInput) as refused:
        bench.run(
            lots.formulate,
            culture=growing,
            harvested=1e8,
            viability=90,
            vials=3,
            cells_per_vial=4e7,
            volume_ml=2,
            at=day(20),
        )
    assert refused.value.field == "cells-per-vial"


def test_open_deviations_of_the_configured_kinds_block_formulation(
    bench: Bench, growing: str
) -> None:
    bench.passage(growing, day(14))
    bench.passage(
        growing, day(18), harvested=3_000_000, seeded=3_000_000, area_cm2=600
    )  # no growth
    formulation = {
        "culture": growing,
        "harvested": 3e6,
        "viability": 90,
        "vials": 1,
        "cells_per_vial": 2e6,
        "volume_ml": 2,
        "at": day(20),
        "shelf_life_hours": 24 * 30,
        **bench.vehicle(day(20)),
    }
    with pytest.raises(RuleViolation, match="block formulation"):
        bench.run(lots.formulate, **formulation)
    bench.lab.set_site(lot={"formulation_blocked_by": ["passage_limit"]})
    bench.lab.login("tom")
    assert bench.run(lots.formulate, **formulation).summary.status == "quarantine"


# --- release ----------------------------------------------------------------------------------


def test_only_qa_signs(quality: Quality) -> None:
    quality.record_passing()
    with pytest.raises(NotPermitted, match="only qa may sign"):
        quality.release(as_user="tom")


def test_a_wrong_password_refuses_the_signature_and_is_audited(quality: Quality) -> None:
    quality.record_passing()
    with pytest.raises(AuditedRefusal, match="wrong password"):
        quality.release(password="not the password at all")
    assert "signature.failed" in quality.audit_actions()
    assert quality.show().summary.status == "quarantine"


def test_wrong_signature_passwords_lock_the_account(quality: Quality) -> None:
    quality.record_passing()
    quality.lab.login("rita")
    for _ in range(quality.settings.security.lockout_threshold):
        with pytest.raises(AuditedRefusal):
            quality.run(lots.release, lot=quality.lot_id, password="not the password at all")
    assert "auth.lockout" in quality.audit_actions()
    with pytest.raises(NotPermitted):
        quality.release()


def test_a_qa_user_who_did_a_step_may_not_release(quality: Quality) -> None:
    quality.lab.login("quinn")
    quality.record_passing()
    with pytest.raises(RuleViolation, match="quinn recorded steps"):
        quality.release(as_user="quinn")


def test_a_qa_user_who_corrected_a_passage_may_not_release(quality: Quality) -> None:
    quality.record_passing()
    quality.lab.login("quinn")
    quality.run(
        cultures.correct_passage, passage=f"{quality.culture_id}-P2", reason="typo", viability=94
    )
    with pytest.raises(RuleViolation, match="corrected"):
        quality.release(as_user="quinn")


def test_release_lists_every_blocking_reason(quality: Quality) -> None:
    quality.record("cd105", "80")
    with pytest.raises(RuleViolation) as refused:
        quality.release()
    message = refused.value.message
    assert "cd105 failed: 80 %" in message
    assert "sterility missing" in message
    assert "hla_dr missing" in message


def test_a_release_signature_is_manifested_and_locks_the_lot(quality: Quality) -> None:
    quality.record_passing()
    released = quality.release()
    assert released.summary.status == "released"
    [signature] = released.signatures
    assert signature.manifestation.startswith("Signed by Rita Tester (rita) ")
    assert signature.manifestation.endswith("UTC — approved for release")
    assert signature.linked
    assert signature.record_unchanged
    assert {v.status for v in released.vials} == {"released"}
    quality.lab.login("tom")
    assert quality.record("karyotype", "normal").verdict == "pass"  # a late result is welcome
    with pytest.raises(RuleViolation, match="locked"):
        quality.run(
            cultures.correct_passage, passage=f"{quality.culture_id}-P2", reason="x", viability=90
        )
    with pytest.raises(RuleViolation, match="released"):
        quality.release()


def test_a_signature_moved_to_another_lot_no_longer_verifies(quality: Quality) -> None:
    quality.record_passing()
    quality.release()
    quality.sql("UPDATE qc_results SET value = '93' WHERE test = 'viability'")
    [signature] = quality.show().signatures
    assert signature.linked
    assert not signature.record_unchanged
    quality.sql("UPDATE signatures SET meaning = 'approved' ")
    [signature] = quality.show().signatures
    assert not signature.linked


def test_rejection_needs_a_reason_and_is_final(quality: Quality) -> None:
    quality.lab.login("rita")
    with pytest.raises(BadInput):
        quality.run(lots.reject, lot=quality.lot_id, password=PASSWORD, reason=" ")
    rejected = quality.run(
        lots.reject, lot=quality.lot_id, password=PASSWORD, reason="sterility positive"
    )
    assert rejected.summary.status == "rejected"
    assert rejected.signatures[0].meaning == "rejected: sterility positive"
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="rejected: no QC result can be recorded"):
        quality.record("viability", "92")


def test_an_expired_lot_is_shown_expired_and_cannot_be_released(quality: Quality) -> None:
    quality.record_passing()
    with unit_of_work(quality.settings, write=False) as uow:
        lot = lookup.lot(uow.session, quality.lot_id)
        later = lot.expires_at + timedelta(seconds=1)
        assert lots.effective_status(lot, later) == "expired"
        evaluation = verdicts.evaluate(uow.session, uow.settings, lot, now=later)
    assert any("expired" in reason for reason in evaluation.blocking)


# --- formulation corrections ----------------------------------------------------------------


def test_a_formulation_correction_keeps_the_old_values_and_follows_to_the_vials(
    quality: Quality,
) -> None:
    corrected = quality.run(
        lots.correct_lot, lot=quality.lot_id, reason="recount", cells_per_vial="3e7"
    )
    assert corrected.summary.cells_per_vial == 30_000_000
    assert {vial.cells for vial in corrected.vials} == {30_000_000}
    with unit_of_work(quality.settings, write=False) as uow:
        from lims import audit

        [entry] = audit.entries(uow.session, entity_type="lot", entity_id=quality.lot_id)[-1:]
    assert (entry.action, entry.reason) == ("lot.correct", "recount")
    assert (entry.old, entry.new) == (
        {"cells_per_vial": 40_000_000},
        {"cells_per_vial": 30_000_000},
    )


def test_a_formulation_correction_cannot_overfill_the_vials(quality: Quality) -> None:
    with pytest.raises(BadInput) as refused:
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="recount", harvested="1e8")
    assert refused.value.field == "cells-per-vial"


def test_whoever_corrected_the_formulation_may_not_release(quality: Quality) -> None:
    quality.record_passing()
    quality.lab.login("quinn")
    quality.run(lots.correct_lot, lot=quality.lot_id, reason="typo", viability=94)
    with pytest.raises(RuleViolation, match="corrected"):
        quality.release(as_user="quinn")


def test_a_released_lot_takes_no_formulation_correction(quality: Quality) -> None:
    quality.record_passing()
    quality.release()
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="locked"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="late", viability=94)
