"""QA's rules through the services: specification, verdicts, signatures, separation of duties.

The CLI wiring of the same rules is in test_cli_release.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lims.config import load_settings
from lims.errors import AuditedRefusal, BadInput, ConfigError, NotPermitted, RuleViolation
from lims.services import cultures, deviations, lookup, lots, qc
from lims.timeutil import utcnow
from lims.uow import unit_of_work
from tests.support import PASSWORD
from tests.test_bench import Bench, day

PASSING = {
    "viability": "92",
    "sterility": "negative",
    "mycoplasma": "negative",
    "endotoxin": "0.5",
    "cd73": "99",
    "cd90": "98",
    "cd105": "97",
    "cd45": "0.5",
    "cd34": "0.3",
    "cd14": "0.2",
    "cd19": "0.1",
    "hla_dr": "0.4",
}


class Quality(Bench):
    """A bench with QA users quinn and rita, and a lot formulated by the technician."""

    def __init__(self, lab: Any) -> None:
        super().__init__(lab)
        lab.add_user("quinn", "qa")
        lab.add_user("rita", "qa")
        lab.login("tom")
        self.patient()
        din = self.aspirate().din.code
        self.culture_id = self.culture(din).summary.culture_id
        self.passage(self.culture_id, day(14))
        self.passage(
            self.culture_id, day(20), harvested=32_000_000, seeded=20_000_000, area_cm2=4000
        )
        self.lot_id = self.formulate().summary.lot_id

    def formulate(self, **values: Any) -> lots.LotDetail:
        values = {
            "culture": self.culture_id,
            "harvested": 160_000_000,
            "viability": 93,
            "vials": 4,
            "cells_per_vial": 40_000_000,
            "volume_ml": 2,
            "at": day(26),
            "shelf_life_hours": 24 * 30,
            **values,
        }
        return self.run(lots.formulate, **values)

    def record(self, test: str, value: str, **values: Any) -> qc.CriterionView:
        with unit_of_work(self.settings) as uow:
            return qc.record_result(
                uow,
                lot=self.lot_id,
                test=test,
                value=value,
                at=values.pop("at", day(27)),
                **values,
            )

    def record_passing(self) -> None:
        for test, value in PASSING.items():
            self.record(test, value)

    def evaluation(self) -> qc.Evaluation:
        with unit_of_work(self.settings, write=False) as uow:
            return qc.show_evaluation(uow, lot=self.lot_id)

    def release(self, as_user: str = "rita", password: str = PASSWORD) -> lots.LotDetail:
        self.lab.login(as_user)
        return self.run(lots.release, lot=self.lot_id, password=password)

    def show(self) -> lots.LotDetail:
        with unit_of_work(self.settings, write=False) as uow:
            return lots.show_lot(uow, lot=self.lot_id)


@pytest.fixture
def quality(lab: Any) -> Quality:
    return Quality(lab)


@pytest.fixture
def bench(lab: Any) -> Bench:
    return Bench(lab)


@pytest.fixture
def growing(bench: Bench) -> str:
    """A primary culture on a fresh aspirate, with no lot yet."""
    bench.patient()
    return bench.culture(bench.aspirate().din.code).summary.culture_id


# --- the specification ------------------------------------------------------------------------


def test_the_default_specification_is_the_issues() -> None:
    spec = load_settings().release
    assert list(spec)[:13] == [
        "viability",
        "sterility",
        "mycoplasma",
        "endotoxin",
        "cd73",
        "cd90",
        "cd105",
        "cd45",
        "cd34",
        "cd14",
        "cd19",
        "hla_dr",
        "karyotype",
    ]
    assert spec["viability"].describe() == "≥ 70 %"
    assert spec["endotoxin"].describe() == "≤ 7 EU/mL"
    assert spec["cd105"].min == 95
    assert spec["hla_dr"].max == 2
    assert not spec["karyotype"].required
    assert {test for test, c in spec.items() if not c.waivable} >= {
        "sterility",
        "mycoplasma",
        "endotoxin",
    }


def test_a_site_changes_one_key_and_keeps_the_rest() -> None:
    spec = load_settings(release={"endotoxin": {"max": 5}}).release
    assert spec["endotoxin"].max == 5
    assert spec["endotoxin"].unit == "EU/mL"
    assert not spec["endotoxin"].waivable
    assert "viability" in spec


@pytest.mark.parametrize(
    ("release", "key"),
    [
        ({"endotoxin": {"waivable": True}}, "release"),
        ({"cd73": {"min": 120}}, "release.cd73"),
        ({"sterility": {"passing": ["sterile"]}}, "release.sterility"),
        ({"viability": {"kind": "categorical"}}, "release.viability"),
        ({"viability": {"min": "lots"}}, "release.viability.min"),
        ({"cell_dose": {"kind": "numeric"}}, "release"),
        ({"cd11b": {"kind": "numeric", "description": "CD11b", "unit": "%"}}, "release.cd11b"),
    ],
)
def test_a_malformed_specification_stops_lims_naming_the_key(
    release: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(release=release)
    assert refused.value.message.startswith(f"{key}: ")


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
    }
    with pytest.raises(RuleViolation, match="block formulation"):
        bench.run(lots.formulate, **formulation)
    lenient = load_settings(lot={"formulation_blocked_by": ["passage_limit"]})
    assert bench.run(lots.formulate, lenient, **formulation).summary.status == "quarantine"


# --- verdicts ---------------------------------------------------------------------------------


def test_each_missing_required_criterion_blocks_release_by_name(quality: Quality) -> None:
    evaluation = quality.evaluation()
    assert not evaluation.releasable
    missing = {v.test for v in evaluation.criteria if v.verdict == "missing"}
    assert missing == set(PASSING) | {"karyotype"}
    assert len([b for b in evaluation.blocking if "missing" in b]) == len(
        PASSING
    )  # karyotype optional


def test_every_criterion_passing_makes_the_lot_releasable(quality: Quality) -> None:
    quality.record_passing()
    evaluation = quality.evaluation()
    assert evaluation.blocking == []
    assert {v.verdict for v in evaluation.criteria} == {"pass", "missing"}


@pytest.mark.parametrize(
    ("test", "value", "verdict"),
    [
        ("viability", "70", "pass"),
        ("viability", "69.9", "fail"),
        ("endotoxin", "7", "pass"),
        ("endotoxin", "7.01", "fail"),
        ("cd105", "94.9", "fail"),
        ("hla_dr", "2.1", "fail"),
        ("sterility", "positive", "fail"),
        ("sterility", "Negative", "pass"),
        ("karyotype", "abnormal", "fail"),
    ],
)
def test_results_are_judged_against_the_specification(
    quality: Quality, test: str, value: str, verdict: str
) -> None:
    assert quality.record(test, value).verdict == verdict


def test_derived_criteria_read_the_lot(bench: Bench, growing: str) -> None:
    bench.passage(growing, day(14))
    tight = load_settings(release={"cell_dose": {"max": 1e7}})
    bench.run(
        lots.formulate,
        tight,
        culture=growing,
        harvested=1e8,
        viability=90,
        vials=2,
        cells_per_vial=4e7,
        volume_ml=2,
        at=day(20),
    )
    with unit_of_work(tight, write=False) as uow:
        lot = lookup.lot(uow.session, f"{growing[:-3]}-L1")
        evaluation = qc.evaluate(uow.session, tight, lot, now=utcnow())
    verdicts = {v.test: (v.verdict, v.result) for v in evaluation.criteria}
    assert verdicts["cell_dose"] == ("fail", "4e7")
    assert verdicts["final_passage"] == ("pass", "1")


def test_a_retest_needs_a_reason_and_the_latest_result_counts(quality: Quality) -> None:
    quality.record("cd105", "90")
    with pytest.raises(BadInput) as refused:
        quality.record("cd105", "97")
    assert refused.value.field == "reason"
    retested = quality.record("cd105", "97", reason="re-stained with a fresh antibody lot")
    assert retested.verdict == "pass"
    assert [r.value for r in retested.history] == ["90", "97"]


@pytest.mark.parametrize(
    ("test", "value", "field"),
    [
        ("cd999", "1", "test"),
        ("cell_dose", "1e7", "test"),
        ("viability", "101", "value"),
        ("endotoxin", "-1", "value"),
        ("sterility", "maybe", "value"),
    ],
)
def test_impossible_results_are_bad_input(
    quality: Quality, test: str, value: str, field: str
) -> None:
    with pytest.raises(BadInput) as refused:
        quality.record(test, value)
    assert refused.value.field == field


def test_a_unit_other_than_the_specifications_is_refused(quality: Quality) -> None:
    assert quality.record("endotoxin", "0.5", unit="eu/ml").verdict == "pass"
    with pytest.raises(BadInput) as refused:
        quality.record("viability", "90", unit="EU/mL")
    assert refused.value.field == "unit"


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
    with pytest.raises(RuleViolation, match="locked"):
        quality.record("karyotype", "normal")
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
    with pytest.raises(RuleViolation, match="locked"):
        quality.record("viability", "92")


def test_an_expired_lot_is_shown_expired_and_cannot_be_released(quality: Quality) -> None:
    quality.record_passing()
    with unit_of_work(quality.settings, write=False) as uow:
        lot = lookup.lot(uow.session, quality.lot_id)
        later = lot.expires_at + timedelta(seconds=1)
        assert lots.effective_status(lot, later) == "expired"
        evaluation = qc.evaluate(uow.session, uow.settings, lot, now=later)
    assert any("expired" in reason for reason in evaluation.blocking)


# --- deviations and waivers -------------------------------------------------------------------


def _open(quality: Quality, criterion: str | None, **values: Any) -> int:
    opened = quality.run(
        deviations.open_deviation,
        lot=quality.lot_id,
        description="out of spec",
        criterion=criterion,
        **values,
    )
    return opened.deviation_id


def _close(quality: Quality, deviation_id: int, *, waive: bool) -> deviations.DeviationView:
    quality.lab.login("rita")
    return quality.run(
        deviations.close_deviation,
        deviation_id=deviation_id,
        resolution="assessed",
        password=PASSWORD,
        waive=waive,
    )


def test_an_open_deviation_blocks_release(quality: Quality) -> None:
    quality.record_passing()
    number = _open(quality, None)
    assert f"deviation {number} open" in " ".join(quality.evaluation().blocking)
    closed = _close(quality, number, waive=False)
    assert closed.status == "closed"
    assert quality.evaluation().releasable


def test_closing_a_deviation_is_a_qa_signature(quality: Quality) -> None:
    number = _open(quality, None)
    with pytest.raises(NotPermitted):
        quality.run(
            deviations.close_deviation, deviation_id=number, resolution="x", password=PASSWORD
        )
    quality.lab.login("rita")
    with pytest.raises(AuditedRefusal):
        quality.run(
            deviations.close_deviation,
            deviation_id=number,
            resolution="x",
            password="wrong password!!",
        )


def test_a_waiver_lets_release_proceed_past_that_result_only(quality: Quality) -> None:
    quality.record_passing()
    quality.record("cd105", "90", reason="repeat")
    quality.lab.login("tom")
    number = _open(quality, "cd105")
    _close(quality, number, waive=True)
    verdict = next(v for v in quality.evaluation().criteria if v.test == "cd105")
    assert (verdict.verdict, verdict.waived_by) == ("fail", number)
    assert quality.evaluation().releasable
    quality.lab.login("tom")
    quality.record("cd105", "85", reason="third stain")
    assert any(reason.startswith("cd105 failed: 85 %") for reason in quality.evaluation().blocking)


@pytest.mark.parametrize(("test", "value"), [("sterility", "positive"), ("endotoxin", "10")])
def test_safety_tests_can_never_be_waived(quality: Quality, test: str, value: str) -> None:
    quality.record(test, value)
    number = _open(quality, test)
    with pytest.raises(RuleViolation, match="never be waived"):
        _close(quality, number, waive=True)


def test_only_a_deviation_naming_a_failed_criterion_waives(quality: Quality) -> None:
    quality.record("cd105", "97")
    with pytest.raises(RuleViolation, match="names no release criterion"):
        _close(quality, _open(quality, None), waive=True)
    quality.lab.login("tom")
    with pytest.raises(RuleViolation, match="nothing to waive"):
        _close(quality, _open(quality, "cd105"), waive=True)


def test_a_criterion_belongs_to_a_lot_and_must_exist(quality: Quality) -> None:
    with pytest.raises(BadInput) as refused:
        quality.run(
            deviations.open_deviation,
            culture=quality.culture_id,
            description="x",
            criterion="cd105",
        )
    assert refused.value.field == "criterion"
    with pytest.raises(BadInput):
        _open(quality, "cd999")


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
