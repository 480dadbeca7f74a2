"""The lifecycles, one test per action and state: what each allows, what it refuses and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lims.domain import states
from lims.domain.states import CULTURE, DEVIATION, EQUIPMENT, LIFECYCLES, LOT, VIAL
from lims.errors import RuleViolation

# The documented lifecycles (DESIGN.md), written out independently of the tables under test.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("culture", "log_passage"): {"active"},
    ("culture", "split"): {"active", "formulated"},
    ("culture", "project"): {"active"},
    ("culture", "formulate"): {"active"},
    ("lot", "release"): {"quarantine"},
    ("lot", "reject"): {"quarantine"},
    ("lot", "hand_out_vials"): {"quarantine", "released"},
    ("lot", "record_qc"): {"quarantine", "released"},
    ("lot", "hold"): {"quarantine", "released"},
    ("lot", "unhold"): {"quarantine", "released"},
    ("lot", "waive"): {"quarantine", "released"},
    ("lot", "recall"): {"released"},
    ("lot", "start_qc"): {"quarantine"},
    ("lot", "complete"): {"released"},
    ("lot", "retain_samples"): {"quarantine", "released", "recalled"},
    ("vial", "release"): {"quarantine"},
    ("vial", "ship"): {"released"},
    ("vial", "receive"): {"shipped"},
    ("vial", "lose"): {"shipped"},
    ("vial", "issue"): {"released", "received"},
    ("vial", "administer"): {"issued"},
    ("vial", "recall"): {"quarantine", "released", "received", "issued"},
    ("vial", "reject"): {"quarantine"},
    ("vial", "destroy"): {
        "quarantine",
        "released",
        "received",
        "issued",
        "recalled",
        "rejected",
    },
    ("vial", "label"): {
        "quarantine",
        "released",
        "received",
        "issued",
        "recalled",
        "rejected",
    },
    ("deviation", "close"): {"open"},
    ("culture", "freeze"): {"active", "formulated"},
    ("equipment", "take_out_of_service"): {"active"},
    ("equipment", "return"): {"out_of_service"},
    ("equipment", "retire"): {"active", "out_of_service"},
    ("equipment", "calibrate"): {"active", "out_of_service"},
    ("equipment", "use"): {"active"},
    ("bank vial", "thaw"): {"stored"},
    ("bank vial", "discard"): {"stored"},
    ("bank vial", "move"): {"stored"},
    ("retained sample", "remove"): {"stored"},
    ("retained sample", "move"): {"stored"},
    ("shipment", "add"): {"open"},
    ("shipment", "remove"): {"open"},
    ("shipment", "dispatch"): {"open"},
    ("shipment", "cancel"): {"open"},
    ("shipment", "receive"): {"dispatched"},
    ("shipment", "lose"): {"dispatched"},
}
TARGETS = {
    ("culture", "formulate"): "formulated",
    ("lot", "release"): "released",
    ("lot", "reject"): "rejected",
    ("lot", "recall"): "recalled",
    ("vial", "release"): "released",
    ("vial", "recall"): "recalled",
    ("vial", "issue"): "issued",
    ("vial", "administer"): "administered",
    ("vial", "reject"): "rejected",
    ("vial", "destroy"): "destroyed",
    ("vial", "ship"): "shipped",
    ("vial", "receive"): "received",
    ("vial", "lose"): "lost",
    ("deviation", "close"): "closed",
    ("equipment", "take_out_of_service"): "out_of_service",
    ("equipment", "return"): "active",
    ("equipment", "retire"): "retired",
    ("bank vial", "thaw"): "thawed",
    ("bank vial", "discard"): "discarded",
    ("retained sample", "remove"): "removed",
    ("shipment", "dispatch"): "dispatched",
    ("shipment", "cancel"): "cancelled",
    ("shipment", "receive"): "received",
    ("shipment", "lose"): "lost",
}
LOCKED = {
    "culture": {"formulated", "discarded"},
    "lot": {"released", "rejected", "recalled"},
    "vial": {"administered", "destroyed", "lost"},
    "deviation": {"closed"},
    "equipment": {"retired"},
    "bank vial": {"thawed", "discarded"},
    "retained sample": {"removed"},
    "shipment": {"received", "lost", "cancelled"},
}
STATES = {
    "culture": ("active", "formulated", "discarded"),
    "lot": ("quarantine", "released", "rejected", "recalled"),
    "vial": (
        "quarantine",
        "released",
        "shipped",
        "received",
        "issued",
        "administered",
        "destroyed",
        "recalled",
        "lost",
        "rejected",
    ),
    "deviation": ("open", "closed"),
    "equipment": ("active", "out_of_service", "retired"),
    "bank vial": ("stored", "thawed", "discarded"),
    "retained sample": ("stored", "removed"),
    "shipment": ("open", "dispatched", "received", "lost", "cancelled"),
}
NO_OBJECTION = {
    "blocking": [],
    "signer_steps": [],
    "signer_waivers": [],
    "signer": "quinn",
    # a release on interim results, its final results in and passing, not yet completed
    "pending_at_release": ["sterility"],
    "completed": None,
    "pending_tests": [],
    "hold_reasons": [],
}
CASES = [(kind, action, status) for (kind, action) in ALLOWED for status in STATES[kind]]


def test_the_tables_hold_exactly_the_documented_actions_and_states() -> None:
    assert {
        (kind, action) for kind, table in LIFECYCLES.items() for action in table.actions
    } == set(ALLOWED)
    assert {kind: tuple(table.states) for kind, table in LIFECYCLES.items()} == STATES


@pytest.mark.parametrize(("kind", "action", "status"), CASES)
def test_an_action_is_taken_only_from_its_states(kind: str, action: str, status: str) -> None:
    table = LIFECYCLES[kind]
    allowed = status in ALLOWED[kind, action]
    assert table.allows(action, status) is allowed
    refusal = table.refusal(
        action, code="X-1", status=status, facts=NO_OBJECTION, vial="V", lot="L"
    )
    if allowed:
        assert refusal is None
        assert table.check(action, code="X-1", status=status, facts=NO_OBJECTION).target == (
            TARGETS.get((kind, action))
        )
    else:
        assert refusal is not None
        assert "X-1" in refusal
        with pytest.raises(RuleViolation, match="X-1"):
            table.check(action, code="X-1", status=status, facts=NO_OBJECTION, vial="V", lot="L")


@pytest.mark.parametrize("kind", sorted(LIFECYCLES))
def test_a_locked_record_refuses_corrections_in_one_sentence(kind: str) -> None:
    table = LIFECYCLES[kind]
    for status in STATES[kind]:
        assert table.locked(status) is (status in LOCKED[kind])
        if status in LOCKED[kind]:
            with pytest.raises(
                RuleViolation, match=f"^{kind} X-1 is {status}: its record is locked$"
            ):
                table.check_unlocked(code="X-1", status=status)
        else:
            table.check_unlocked(code="X-1", status=status)


@pytest.mark.parametrize(
    ("table", "action", "status", "message"),
    [
        (CULTURE, "log_passage", "formulated", "culture X-1 is formulated; cannot log a passage"),
        (CULTURE, "project", "discarded", "culture X-1 is discarded; cannot project its growth"),
        (CULTURE, "formulate", "formulated", "culture X-1 is already formulated as lot L"),
        (CULTURE, "formulate", "discarded", "culture X-1 is discarded; it cannot be formulated"),
        (
            LOT,
            "reject",
            "released",
            "lot X-1 is released; only a lot in quarantine can be rejected",
        ),
        (LOT, "hand_out_vials", "rejected", "vial V is of lot X-1, which QA rejected"),
        (LOT, "hand_out_vials", "recalled", "vial V is of lot X-1, which QA recalled"),
        (LOT, "recall", "quarantine", "lot X-1 is in quarantine: reject it rather than recall"),
        (LOT, "record_qc", "rejected", "lot X-1 is rejected: no QC result can be recorded on it"),
        (
            LOT,
            "start_qc",
            "released",
            "lot X-1 is released: a test is started pending only before release",
        ),
        (
            LOT,
            "complete",
            "recalled",
            "lot X-1 is recalled; only a released lot's release can be completed",
        ),
        (VIAL, "issue", "quarantine", "vial X-1 is quarantine, not released or received"),
        (VIAL, "administer", "released", "vial X-1 is released, not issued"),
        (
            VIAL,
            "destroy",
            "administered",
            "vial X-1 is administered; it can no longer be destroyed",
        ),
        (DEVIATION, "close", "closed", "deviation X-1 is already closed"),
        (
            EQUIPMENT,
            "use",
            "out_of_service",
            "equipment X-1 is out of service; no step may use it until QA or admin returns it "
            "(`lims equipment return X-1 --reason TEXT`)",
        ),
        (EQUIPMENT, "use", "retired", "equipment X-1 is retired; no step may use it"),
    ],
)
def test_each_refusal_says_what_state_stands_in_the_way(
    table: states.Lifecycle, action: str, status: str, message: str
) -> None:
    refusal = table.refusal(
        action, code="X-1", status=status, facts=NO_OBJECTION, lot="L", vial="V"
    )
    assert refusal == message


def test_release_is_guarded_by_the_signers_independence_before_the_criteria() -> None:
    both = {
        "blocking": ["sterility failed"],
        "signer_steps": ["logged P1"],
        "signer_waivers": [4],
        "signer": "tom",
    }
    assert LOT.refusal("release", code="L1", status="quarantine", facts=both) == (
        "tom recorded steps of L1 (logged P1); another QA reviewer must sign"
    )
    waiver = {**both, "signer_steps": []}
    assert LOT.refusal("release", code="L1", status="quarantine", facts=waiver) == (
        "tom waived a failure of L1 (deviation 4); another QA reviewer must sign"
    )
    criteria = {**waiver, "signer_waivers": []}
    assert LOT.refusal("release", code="L1", status="quarantine", facts=criteria) == (
        "lot L1 cannot be released: sterility failed"
    )


def test_a_lot_in_the_wrong_state_is_refused_release_with_every_blocking_reason() -> None:
    facts = {"blocking": ["cd73 missing", "lot L1 is released"], "signer_steps": [], "signer": "q"}
    facts["signer_waivers"] = []
    assert LOT.refusal("release", code="L1", status="released", facts=facts) == (
        "lot L1 cannot be released: cd73 missing; lot L1 is released"
    )


def test_rejection_is_guarded_by_independence_before_the_state() -> None:
    facts = {"signer_steps": ["recorded QC cd73", "recorded QC cd73"], "signer": "tom"}
    assert LOT.refusal("reject", code="L1", status="released", facts=facts) == (
        "tom recorded steps of L1 (recorded QC cd73); another QA reviewer must sign"
    )


@pytest.mark.parametrize(
    ("objection", "message"),
    [
        (
            {"pending_at_release": []},
            "lot L1 was not released on interim results: there is no release to complete",
        ),
        (
            {"completed": "by rita at 2026-12-01 10:00:00+01:00"},
            "the release of lot L1 was completed by rita at 2026-12-01 10:00:00+01:00",
        ),
        (
            {"pending_tests": ["sterility"]},
            "the release of lot L1 cannot be completed: final results of sterility are still "
            "pending",
        ),
        (
            {"hold_reasons": ["deviation 3 open: sterility out of specification"]},
            "the release of lot L1 cannot be completed: deviation 3 open: sterility out of "
            "specification",
        ),
        (
            {"signer_steps": ["recorded QC sterility"]},
            "quinn recorded steps of L1 (recorded QC sterility); another QA reviewer must sign",
        ),
        (
            {"signer_waivers": [5]},
            "quinn waived a failure of L1 (deviation 5); another QA reviewer must sign",
        ),
    ],
)
def test_completing_a_release_needs_each_of_its_guards(
    objection: dict[str, object], message: str
) -> None:
    facts = {**NO_OBJECTION, **objection}
    assert LOT.refusal("complete", code="L1", status="released", facts=facts) == message
    with pytest.raises(RuleViolation):
        LOT.check("complete", code="L1", status="released", facts=facts)


def test_a_release_is_completed_only_with_its_final_results_before_the_signer() -> None:
    """What the lot shows comes first: a pending test, then who signs."""
    facts = {**NO_OBJECTION, "pending_tests": ["sterility"], "signer_steps": ["logged P1"]}
    assert "still pending" in str(
        LOT.refusal("complete", code="L1", status="released", facts=facts)
    )


def test_a_lot_may_be_with_patients_once_released() -> None:
    assert [s for s in STATES["lot"] if LOT.with_patients(s)] == ["released", "recalled"]


def test_expiry_shows_only_on_records_still_in_use() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert states.expired(now, now)
    assert not states.expired(now + timedelta(seconds=1), now)
    assert LOT.shown("quarantine", expired=True) == "expired"
    assert LOT.shown("released", expired=True) == "expired"
    assert LOT.shown("rejected", expired=True) == "rejected"
    assert LOT.shown("released", expired=False) == "released"
    assert VIAL.shown("issued", expired=True) == "issued"
    assert VIAL.shown("released", expired=True) == "expired"
    assert LOT.shown("recalled", expired=True) == "recalled"
    assert VIAL.shown("recalled", expired=True) == "recalled"
    assert LOT.shown_states() == ("quarantine", "released", "rejected", "recalled", "expired")
    assert DEVIATION.shown_states() == ("open", "closed")


def test_the_trail_names_a_kind_of_several_words_with_underscores() -> None:
    """A bank vial's entries are about entity bank_vial and named bank_vial.thaw: ids and
    actions with no blank in them, as the trail's other entity types and actions are."""
    assert (states.BANK_VIAL.entity_type, states.BANK_VIAL.audit_action("thaw")) == (
        "bank_vial",
        "bank_vial.thaw",
    )
    assert (LOT.entity_type, LOT.audit_action("release")) == ("lot", "lot.release")
    assert states.EQUIPMENT.audit_action("take_out_of_service") == "equipment.out_of_service"


def test_a_table_naming_an_unknown_state_or_guard_does_not_load() -> None:
    with pytest.raises(AssertionError, match="unknown states"):
        states._lifecycle(
            "thing", [states.State("a")], [states.Action("go", frozenset({"a"}), target="b")]
        )
    with pytest.raises(AssertionError, match="unknown guard"):
        states._lifecycle(
            "thing", [states.State("a")], [states.Action("go", frozenset({"a"}), guards=("x",))]
        )


def test_only_an_open_deviation_is_pending() -> None:
    assert DEVIATION.pending("open")
    assert not DEVIATION.pending("closed")
    assert DEVIATION.pending_states() == ("open",)
    assert not any(LIFECYCLES[kind].pending_states() for kind in ("culture", "lot", "vial"))


@pytest.mark.parametrize(
    ("table", "shown", "alarming"),
    [
        (LOT, "quarantine", True),
        (LOT, "released", False),
        (LOT, "rejected", True),
        (LOT, "recalled", True),
        (LOT, "expired", True),
        (VIAL, "quarantine", True),
        (VIAL, "released", False),
        (VIAL, "issued", False),
        (VIAL, "administered", False),
        (VIAL, "destroyed", True),
        (VIAL, "recalled", True),
        (VIAL, "expired", True),
        (DEVIATION, "open", True),
        (DEVIATION, "closed", False),
    ],
)
def test_what_is_not_fit_for_use_is_drawn_as_an_alarm(
    table: states.Lifecycle, shown: str, alarming: bool
) -> None:
    assert table.alarming(shown) is alarming
