"""The patient's own CSF as a lot's vehicle, through the services (issue 16, part 1).

CSF is received as a donation with a DIN of its own (aspirate receive --material csf) and
drawn into lots at formulation (--vehicle-din, --vehicle-ml): only the lot's patient's, only
CSF, only fresh, only while a deviation on it is not open, and only as much as is left, which
no hand-edited row and no second station at once can stretch. A typed vehicle only where the
site allows one. `lot correct` moves a draw from one donation to another.

The lab: tests.support.bench's, with a culture passaged on day 14 and formulated on day 20
unless told; the quality lab's lot L1 drew 8 mL of a 10 mL donation (lims.scenario).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, RuleViolation
from lims.services import aspirates, bindings, cultures, deviations, lookup, lots, vehicles
from lims.uow import unit_of_work
from tests.support.bench import Bench, day
from tests.support.lab import PASSWORD
from tests.support.quality import Quality

PATIENT, OTHER = "PT-0001", "PT-0002"
AT = day(20)  # when the bench's culture is formulated


def _csf(bench: Bench, patient: str = PATIENT, *, collected: datetime | None = None) -> str:
    """The patient's CSF, 10 mL collected (by default) three hours before AT; its DIN."""
    collected = collected or AT - timedelta(hours=3)
    received = collected + timedelta(minutes=40)
    return bench.scenario.csf(patient, collected_at=collected, received_at=received).din.code


def _formulate(bench: Bench, culture: str, **values: Any) -> Any:
    """Two vials of 4x10^7 cells in 2 mL, formulated at AT unless told."""
    return bench.run(
        lots.formulate,
        culture=culture,
        **{
            "harvested": 1e8,
            "viability": 90,
            "vials": 2,
            "cells_per_vial": 4e7,
            "volume_ml": 2,
            "at": AT,
            "shelf_life_hours": 24 * 30,
            **values,
        },
    )


def _ready(bench: Bench) -> str:
    """Another culture of PT-0001 from a fresh aspirate, passaged on day 14: ready to formulate."""
    culture = bench.culture(bench.aspirate().din.code).summary.culture_id
    bench.passage(culture, day(14))
    return str(culture)


@pytest.fixture
def ready(bench: Bench, growing: str) -> str:
    bench.passage(growing, day(14))
    return growing


def _shown(bench: Bench, din: str) -> Any:
    return bench.read(aspirates.show_aspirate, din=din)


# --- receipt ------------------------------------------------------------------------------------


def test_csf_gets_a_din_of_the_same_sequence_and_a_volume_range_of_its_own(bench: Bench) -> None:
    bench.patient()
    marrow = bench.aspirate()
    csf = bench.read(aspirates.show_aspirate, din=_csf(bench))
    assert csf.din.sequence == marrow.din.sequence + 1
    assert (marrow.material, csf.material) == ("bone_marrow", "csf")
    assert (csf.site, csf.tnc, csf.anticoagulant) == ("lumbar puncture", None, None)
    assert (csf.volume_left_ml, csf.drawn_by) == (10, [])
    assert (marrow.volume_left_ml, marrow.drawn_by) == (None, [])
    with pytest.raises(BadInput, match=r"^volume-ml: must be a number of mL from 0\.1 to 30 "):
        bench.aspirate(material="csf", volume_ml=31, anticoagulant=None, tnc=None)
    assert bench.aspirate(volume_ml=31).material == "bone_marrow"


def test_csf_is_neither_anticoagulated_nor_counted(bench: Bench) -> None:
    bench.patient()
    before = bench.audit_actions()
    typings: tuple[dict[str, Any], ...] = (
        {"anticoagulant": "sodium heparin", "tnc": None},
        {"tnc": 6.1e8},
    )
    for typed in typings:
        with pytest.raises(BadInput, match="not for CSF"):
            bench.aspirate(**{"material": "csf", "anticoagulant": None, **typed})
    with pytest.raises(BadInput, match=r"^material: must be one of bone_marrow, csf"):
        bench.aspirate(material="CSF")
    assert bench.audit_actions() == before


def test_a_csf_donation_starts_no_culture(bench: Bench) -> None:
    bench.patient()
    csf = _csf(bench)
    before = bench.audit_actions()
    with pytest.raises(RuleViolation, match=r"is CSF, not bone marrow: a culture starts from"):
        bench.culture(csf)
    assert bench.audit_actions() == before


# --- formulation ----------------------------------------------------------------------------------


def test_a_lot_is_suspended_in_its_patients_own_csf_and_draws_it_down(
    bench: Bench, ready: str
) -> None:
    csf = _csf(bench)
    lot = _formulate(bench, ready, vehicle_din=csf, vehicle_ml=8).summary
    assert (lot.vehicle_din.code, lot.vehicle_ml, lot.vehicle) == (csf, 8, "autologous CSF")
    assert lot.vehicle_source() == f"8 mL of CSF DIN {lot.vehicle_din.display}"
    shown = _shown(bench, csf)
    assert ([(d.lot_id, d.vehicle_ml) for d in shown.drawn_by], shown.volume_left_ml) == (
        [(lot.lot_id, 8)],
        2,
    )
    formulated, drawn = [
        e for e in bench.scenario.audit_trail() if e.action in ("lot.formulate", vehicles.DRAW)
    ]
    assert (formulated.new["vehicle_din"], formulated.new["vehicle_ml"]) == (csf, 8)
    assert (drawn.entity_id, drawn.new) == (
        csf,
        {"lot": lot.lot_id, "vehicle_ml": 8, "drawn_by": [lot.lot_id], "volume_left_ml": 2},
    )
    assert bench.scenario.verify_trail().disagreement is None


def test_another_patients_csf_is_refused(bench: Bench, ready: str) -> None:
    bench.patient(OTHER)
    strangers = _csf(bench, OTHER)
    before = bench.audit_actions()
    with pytest.raises(RuleViolation, match=f"is patient {OTHER}'s, not {PATIENT}'s"):
        _formulate(bench, ready, vehicle_din=strangers, vehicle_ml=8)
    assert bench.audit_actions() == before
    assert _formulate(bench, ready, vehicle_din=_csf(bench), vehicle_ml=8).summary.vehicle_ml == 8


def test_bone_marrow_is_no_vehicle(bench: Bench, ready: str) -> None:
    marrow = bench.aspirate().din.code
    with pytest.raises(RuleViolation, match="is bone marrow, not CSF"):
        _formulate(bench, ready, vehicle_din=marrow, vehicle_ml=8)


def test_an_unknown_or_malformed_din_is_not_found_or_bad_input(bench: Bench, ready: str) -> None:
    with pytest.raises(NotFound, match="no aspirate with DIN"):
        _formulate(bench, ready, vehicle_din="A999926999999", vehicle_ml=8)
    with pytest.raises(BadInput) as malformed:
        _formulate(bench, ready, vehicle_din="A9999-26", vehicle_ml=8)
    assert malformed.value.field == "vehicle-din"


def test_csf_older_than_the_sites_limit_is_refused(bench: Bench, ready: str) -> None:
    stale = _csf(bench, collected=AT - timedelta(hours=24, minutes=1))
    with pytest.raises(RuleViolation, match=r"24\.0 h before the formulation: more than 24 h"):
        _formulate(bench, ready, vehicle_din=stale, vehicle_ml=8)
    on_the_limit = _csf(bench, collected=AT - timedelta(hours=24))
    assert _formulate(bench, ready, vehicle_din=on_the_limit, vehicle_ml=8).summary.vehicle_ml
    bench.lab.set_site(vehicle={"max_age_hours": 36})
    bench.lab.login("tom")
    assert _formulate(bench, _ready(bench), vehicle_din=stale, vehicle_ml=2).summary.vehicle_ml


def test_a_formulation_before_the_csfs_receipt_is_bad_input(bench: Bench, ready: str) -> None:
    later = _csf(bench, collected=AT + timedelta(minutes=10))
    with pytest.raises(BadInput, match=r"^at: must be after receipt of CSF"):
        _formulate(bench, ready, vehicle_din=later, vehicle_ml=8)


def test_no_more_is_drawn_than_is_left(bench: Bench, ready: str) -> None:
    csf = _csf(bench)
    first = _formulate(bench, ready, vehicle_din=csf, vehicle_ml=7.7).summary.lot_id
    second = _ready(bench)
    refusal = rf"has 2\.3 mL left \(10 mL received, 7\.7 mL by {first}\), less than the 2\.4 mL"
    with pytest.raises(RuleViolation, match=refusal):
        _formulate(bench, second, vehicle_din=csf, vehicle_ml=2.4)
    _formulate(bench, second, vehicle_din=csf, vehicle_ml=2.3)
    assert _shown(bench, csf).volume_left_ml == 0
    with pytest.raises(RuleViolation, match=r"has 0 mL left"):
        _formulate(bench, _ready(bench), vehicle_din=csf, vehicle_ml=0.01)


def test_two_lots_drawing_the_last_ml_at_once_do_not_both_draw_it(
    bench: Bench, ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first formulation holds the write lock while it draws 6 of 10 mL; the second,
    started meanwhile for 6 mL too, is refused once the first has committed."""
    csf, other = _csf(bench), _ready(bench)
    drawing, started = threading.Event(), threading.Event()
    recorded = vehicles.record_draw

    def slow_draw(*args: Any, **kwargs: Any) -> None:
        if not drawing.is_set():
            drawing.set()
            assert started.wait(10)
            time.sleep(0.5)  # the second station is queued on the lock by now
        recorded(*args, **kwargs)

    monkeypatch.setattr(vehicles, "record_draw", slow_draw)
    outcomes: dict[str, BaseException | str] = {}

    def formulate(culture: str) -> None:
        try:
            outcomes[culture] = _formulate(
                bench, culture, vehicle_din=csf, vehicle_ml=6
            ).summary.lot_id
        except RuleViolation as refused:
            outcomes[culture] = refused

    first = threading.Thread(target=formulate, args=(ready,))
    first.start()
    assert drawing.wait(10)
    second = threading.Thread(target=formulate, args=(other,))
    second.start()
    started.set()
    first.join(30)
    second.join(30)
    assert isinstance(outcomes[ready], str)
    assert isinstance(outcomes[other], RuleViolation)
    assert "has 4 mL left" in str(outcomes[other])
    assert [draw.lot_id for draw in _shown(bench, csf).drawn_by] == [outcomes[ready]]


def test_an_open_deviation_on_the_csf_refuses_it_until_qa_closes_it(
    bench: Bench, ready: str
) -> None:
    bench.lab.add_user("quinn", "qa")
    bench.lab.set_site(vehicle={"max_age_hours": 72})
    bench.lab.login("tom")
    collected = AT - timedelta(hours=60)
    kept = bench.scenario.csf(
        PATIENT,
        collected_at=collected,
        received_at=collected + timedelta(hours=50),
        nonconforming=True,
        reason="lumbar puncture at the referring hospital",
    )
    with pytest.raises(RuleViolation, match=r"has deviation \d+ open \(CSF .* received 50\.0 h"):
        _formulate(bench, ready, vehicle_din=kept.din.code, vehicle_ml=8)
    [opened] = [d for d in bench.read(deviations.list_deviations) if d.subject == kept.din.code]
    bench.lab.login("quinn")
    bench.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="kept at 4 °C throughout: accepted",
        password=PASSWORD,
    )
    bench.lab.login("tom")
    assert _formulate(bench, ready, vehicle_din=kept.din.code, vehicle_ml=8).summary.vehicle_ml


# --- a typed vehicle --------------------------------------------------------------------------


def test_a_typed_vehicle_only_where_the_site_allows_one(bench: Bench, ready: str) -> None:
    csf = _csf(bench)
    for named, field, words in (
        ({"vehicle": "saline"}, "vehicle-din", "only where the site allows it"),
        ({}, "vehicle-din", "required"),
        ({"vehicle_din": csf}, "vehicle-ml", "required with --vehicle-din"),
        ({"vehicle_ml": 8}, "vehicle-ml", "only with --vehicle-din"),
        ({"vehicle": "saline", "vehicle_din": csf, "vehicle_ml": 8}, "vehicle", "not with"),
    ):
        with pytest.raises(BadInput, match=words) as refused:
            _formulate(bench, ready, **named)
        assert refused.value.field == field
    bench.lab.set_site(vehicle={"allow_non_autologous": True})
    bench.lab.login("tom")
    with pytest.raises(BadInput, match=r"or a typed --vehicle TEXT"):
        _formulate(bench, ready)
    lot = _formulate(bench, ready, vehicle="0.9 % saline").summary
    assert (lot.vehicle, lot.vehicle_din, lot.vehicle_ml) == ("0.9 % saline", None, None)
    assert lot.vehicle_source() is None
    assert _shown(bench, csf).volume_left_ml == 10


# --- corrections ----------------------------------------------------------------------------------


def test_lot_correct_moves_the_draw_from_one_donation_to_another(quality: Quality) -> None:
    [before] = [a.din.code for a in _patients_csf(quality)]
    after = _csf(quality, collected=day(26) - timedelta(hours=2))
    corrected = quality.run(
        lots.correct_lot, lot=quality.lot_id, reason="second tube used", vehicle_din=after
    ).summary
    assert (corrected.vehicle_din.code, corrected.vehicle_ml) == (after, 8)
    assert (_shown(quality, before).volume_left_ml, _shown(quality, before).drawn_by) == (10, [])
    assert _shown(quality, after).volume_left_ml == 2
    quality.run(lots.correct_lot, lot=quality.lot_id, reason="syringe read again", vehicle_ml=9)
    assert _shown(quality, after).volume_left_ml == 1
    trail = quality.scenario.audit_trail()
    [correction, _] = [e for e in trail if e.action == "lot.correct"]
    assert (correction.old["vehicle_din"], correction.new["vehicle_din"]) == (before, after)
    moved = [(e.entity_id, e.new["drawn_by"]) for e in trail if e.action == vehicles.DRAW_CORRECTED]
    assert moved == [(before, []), (after, [quality.lot_id]), (after, [quality.lot_id])]
    assert quality.scenario.verify_trail().disagreement is None
    with pytest.raises(BadInput, match="already what"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="again", vehicle_din=after)
    # What the lot drew before is given back: 10 mL are there for it, not 11.
    with pytest.raises(RuleViolation, match="has 10 mL left"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="more", vehicle_ml=11)


def test_lot_correct_checks_the_csf_as_at_formulation(quality: Quality) -> None:
    quality.patient(OTHER)
    strangers = _csf(quality, OTHER, collected=day(26) - timedelta(hours=2))
    with pytest.raises(RuleViolation, match=f"is patient {OTHER}'s"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="x", vehicle_din=strangers)
    late = _csf(quality, collected=day(26) + timedelta(hours=1))
    with pytest.raises(RuleViolation, match="not before the formulation"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="x", vehicle_din=late)
    with pytest.raises(BadInput, match=r"^vehicle: a typed vehicle only where the site allows"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="x", vehicle="saline")


def test_a_lot_corrected_to_a_typed_vehicle_gives_its_draw_back(quality: Quality) -> None:
    quality.lab.set_site(vehicle={"allow_non_autologous": True})
    quality.lab.login("tom")
    [csf] = [a.din.code for a in _patients_csf(quality)]
    lot = quality.run(
        lots.correct_lot, lot=quality.lot_id, reason="saline after all", vehicle="saline"
    ).summary
    assert (lot.vehicle, lot.vehicle_din, lot.vehicle_ml) == ("saline", None, None)
    assert _shown(quality, csf).volume_left_ml == 10
    with pytest.raises(BadInput, match=r"^vehicle-ml: required with --vehicle-din"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="CSF after all", vehicle_din=csf)
    back = quality.run(
        lots.correct_lot, lot=quality.lot_id, reason="CSF after all", vehicle_din=csf, vehicle_ml=8
    ).summary
    assert (back.vehicle, back.vehicle_ml) == ("autologous CSF", 8)
    assert quality.scenario.verify_trail().disagreement is None


def _patients_csf(quality: Quality) -> list[Any]:
    return [a for a in quality.read(aspirates.list_aspirates) if a.material == "csf"]


# --- the rows relied on agree with the trail ---------------------------------------------------


def test_a_lot_moved_onto_another_patients_csf_by_hand_is_caught(quality: Quality) -> None:
    quality.patient(OTHER)
    strangers = _csf(quality, OTHER, collected=day(26) - timedelta(hours=2))
    quality.record_passing()
    quality.sql(
        "UPDATE lots SET vehicle_aspirate_id = (SELECT id FROM aspirates WHERE din = :din)",
        din=strangers,
    )
    found = quality.scenario.verify_trail().disagreement
    assert found is not None
    assert (found.table, found.column) == ("aspirates", "vehicle_aspirate_id of lots")
    with pytest.raises(RuleViolation, match=rf"^{bindings.REFUSAL}lots {quality.lot_id} vehicle_"):
        quality.release()


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE lots SET vehicle_ml = 1",
        "UPDATE lots SET vehicle_aspirate_id = NULL, vehicle_ml = NULL",
        "UPDATE aspirates SET volume_ml = 30 WHERE material = 'csf'",
    ],
)
def test_a_hand_edited_row_frees_no_csf(quality: Quality, edit: str) -> None:
    """L1 drew 8 of 10 mL: an edit that would leave more for the next lot is refused."""
    [csf] = [a.din.code for a in _patients_csf(quality)]
    quality.sql(edit)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}"):
        quality.formulate(_ready(quality), vehicle_din=csf, vehicle_ml=5, at=day(26))
    assert quality.scenario.verify_trail().disagreement is not None


def test_a_signature_covers_the_vehicle(quality: Quality) -> None:
    with unit_of_work(quality.settings, write=False, authenticated=False) as uow:
        lot = lookup.lot(uow.session, quality.lot_id)
        fourth = lots._record(uow.session, lot, signed_at=lot.formulated_at, shape=4)
        fifth = lots._record(uow.session, lot, signed_at=lot.formulated_at, shape=5)
        csf = lots.vehicle_din(uow.session, lot)
    assert csf is not None
    assert fifth == {**fourth, "vehicle": [csf.code, 8]}
    quality.record_passing()
    quality.release()
    assert quality.show().signatures[0].record_unchanged
    quality.sql("UPDATE lots SET vehicle_ml = 7")
    assert not quality.show().signatures[0].record_unchanged


def test_culture_start_still_takes_bone_marrow(bench: Bench) -> None:
    """The refusal of CSF is about CSF: the same patient's marrow starts a culture."""
    bench.patient()
    _csf(bench)
    started = bench.run(
        cultures.start_culture, din=bench.aspirate().din.code, mnc=2.4e8, vessels=5, area_cm2=875
    )
    assert started.summary.kind == "primary"


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE lots SET vehicle_aspirate_id = NULL, vehicle_ml = NULL WHERE code = :second",
        "UPDATE lots SET vehicle_ml = 1 WHERE code = :first",
    ],
)
def test_a_correction_does_not_state_a_hand_edited_draw_as_the_truth(
    quality: Quality, edit: str
) -> None:
    """L1 drew 8 and a second lot 1 of 10 mL. Moved to another donation after a hand edit of
    a draw, L1's correction would state on the first donation what the edited rows hold (the
    second lot gone, or L1's own mL changed), and the next lot could draw what is not there:
    it is refused."""
    [csf] = [a.din.code for a in _patients_csf(quality)]
    second = quality.formulate(_ready(quality), vehicle_din=csf, vehicle_ml=1, at=day(26))
    other = _csf(quality, collected=day(26) - timedelta(hours=2))
    quality.sql(edit, first=quality.lot_id, second=second.summary.lot_id)
    with pytest.raises(RuleViolation, match=f"^{bindings.REFUSAL}"):
        quality.run(lots.correct_lot, lot=quality.lot_id, reason="other tube", vehicle_din=other)
    assert quality.scenario.verify_trail().disagreement is not None
