"""The lifecycles of cultures, lots, vials and deviations, as tables of actions with guards.

As senaite.core keeps its workflows as data, each kind of record here has its
states and, for each action, the states it may be taken from, the state it
leads to (or none, for work done on the record without moving it) and the
guards that must hold. Services ask these tables before they act and never
compare a status themselves; the one function that changes a status and
audits it is lims.services.transitions.change_status. Adding a state (hold,
recall, shipped, frozen) is a row here, a guard, and a migration for the
column's CHECK constraint.

A guard is named in the table and defined once below: a function of the facts
the service gathered (an evaluation, who performed which step) that returns
why the action is refused, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lims.errors import RuleViolation


class CultureState(StrEnum):
    ACTIVE = "active"
    FORMULATED = "formulated"
    DISCARDED = "discarded"


class LotState(StrEnum):
    QUARANTINE = "quarantine"
    RELEASED = "released"
    REJECTED = "rejected"
    RECALLED = "recalled"


class VialState(StrEnum):
    QUARANTINE = "quarantine"
    RELEASED = "released"
    ISSUED = "issued"
    ADMINISTERED = "administered"
    DESTROYED = "destroyed"
    RECALLED = "recalled"
    SHIPPED = "shipped"  # on its way in a dispatched shipment
    RECEIVED = "received"  # at the site its shipment went to
    LOST = "lost"  # with a shipment reported lost
    REJECTED = "rejected"  # with its lot: it may never be given


class ShipmentState(StrEnum):
    """Released vials on their way to another site: packed, sent, and received or lost."""

    OPEN = "open"  # vials are being added
    DISPATCHED = "dispatched"
    RECEIVED = "received"
    LOST = "lost"
    CANCELLED = "cancelled"  # never sent: its vials stay in the lab


class EquipmentState(StrEnum):
    ACTIVE = "active"
    OUT_OF_SERVICE = "out_of_service"
    RETIRED = "retired"


class BankVialState(StrEnum):
    """Cryopreserved cells of a culture: in a storage position until thawed or discarded."""

    STORED = "stored"
    THAWED = "thawed"  # into a child culture
    DISCARDED = "discarded"


class RetainedSampleState(StrEnum):
    """A lot's retained sample: in a storage position until taken out (tested or disposed of)."""

    STORED = "stored"
    REMOVED = "removed"


class DeviationState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class DeviationSeverity(StrEnum):
    """How much a deviation matters, lowest first (EU GMP Part I 1.4(xiv))."""

    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class OOSOutcome(StrEnum):
    """How QA closes an out-of-specification deviation."""

    INVALIDATED = "invalidated"  # a lab error is proven: the original result no longer counts
    CONFIRMED = "confirmed"  # the result stands


EXPIRED = "expired"  # shown, never stored: a lot or vial past its expiry while still usable


def expired(expires_at: datetime, now: datetime) -> bool:
    """A product is expired from its expiry instant on."""
    return expires_at <= now


Guard = Callable[[Mapping[str, Any]], str | None]


def _every_criterion_passes(facts: Mapping[str, Any]) -> str | None:
    blocking: list[str] = facts["blocking"]
    if not blocking:
        return None
    return f"{facts['kind']} {facts['code']} cannot be released: " + "; ".join(blocking)


def _signer_did_no_step(facts: Mapping[str, Any]) -> str | None:
    steps: list[str] = facts["signer_steps"]
    if not steps:
        return None
    return (
        f"{facts['signer']} recorded steps of {facts['code']} ({', '.join(sorted(set(steps)))}); "
        "another QA reviewer must sign"
    )


def _signer_waived_nothing(facts: Mapping[str, Any]) -> str | None:
    waivers: list[int] = facts["signer_waivers"]
    if not waivers:
        return None
    return (
        f"{facts['signer']} waived a failure of {facts['code']} (deviation "
        f"{', '.join(str(number) for number in waivers)}); another QA reviewer must sign"
    )


def _release_awaits_completion(facts: Mapping[str, Any]) -> str | None:
    if facts["completed"] is not None:
        return f"the release of {facts['kind']} {facts['code']} was completed {facts['completed']}"
    if not facts["pending_at_release"]:
        return (
            f"{facts['kind']} {facts['code']} was not released on interim results: "
            "there is no release to complete"
        )
    return None


def _final_results_in(facts: Mapping[str, Any]) -> str | None:
    """Every final result in, and the lot as releasable as at its release: nothing failing,
    no deviation open, no hold."""
    pending: list[str] = facts["pending_tests"]
    if pending:
        return (
            f"the release of {facts['kind']} {facts['code']} cannot be completed: final results "
            f"of {', '.join(pending)} are still pending"
        )
    unmet: list[str] = facts["hold_reasons"]
    if unmet:
        return f"the release of {facts['kind']} {facts['code']} cannot be completed: " + "; ".join(
            unmet
        )
    return None


GUARDS: dict[str, Guard] = {
    "signer did no step": _signer_did_no_step,
    "signer waived nothing": _signer_waived_nothing,
    "every criterion passes": _every_criterion_passes,
    "release awaits completion": _release_awaits_completion,
    "final results in": _final_results_in,
}


@dataclass(frozen=True)
class State:
    name: str
    locked: bool = False  # the record can no longer be corrected or added to
    can_expire: bool = False  # shown as expired once past its expiry
    pending: bool = False  # awaits a decision, and holds up what depends on it
    alarm: bool = False  # shown in red: not (or no longer) fit for use, or awaiting a decision
    with_patients: bool = False  # released: its product may already be with patients


@dataclass(frozen=True)
class Action:
    """One row of a lifecycle: from which states, to which state, under which guards.

    `refusal` is the message for a record in any other state; `refusals` words it
    for a particular state. Both are formatted with the record's kind, code and
    status and any detail the service passes.
    """

    name: str
    sources: frozenset[str]
    target: str | None = None
    guards: tuple[str, ...] = ()
    audit_action: str | None = None  # the trail's name for it, when it is not kind.name
    refusal: str = "{kind} {code} is {status}; it cannot be {name}"
    refusals: Mapping[str, str] = field(default_factory=dict)

    def allows(self, status: str) -> bool:
        return status in self.sources


@dataclass(frozen=True)
class Lifecycle:
    kind: str
    states: Mapping[str, State]
    actions: Mapping[str, Action]

    def action(self, name: str) -> Action:
        return self.actions[name]

    def allows(self, action: str, status: str) -> bool:
        return self.actions[action].allows(status)

    def refusal(
        self,
        action: str,
        *,
        code: str,
        status: str,
        facts: Mapping[str, Any] | None = None,
        **detail: object,
    ) -> str | None:
        """Why the action is refused on this record, or None when it may go ahead.

        Guards come first: who acts and what the record shows are checked before
        its state, so a refusal names the deeper reason (a release's blocking
        reasons already include a lot's state).
        """
        row = self.actions[action]
        for guard in row.guards:
            refused = GUARDS[guard]({"kind": self.kind, "code": code, **(facts or {})})
            if refused is not None:
                return refused
        if row.allows(status):
            return None
        message = row.refusals.get(status, row.refusal)
        return message.format(kind=self.kind, code=code, status=status, name=action, **detail)

    def check(
        self,
        action: str,
        *,
        code: str,
        status: str,
        facts: Mapping[str, Any] | None = None,
        **detail: object,
    ) -> Action:
        """The action's row, if the record's state allows it and every guard holds."""
        refused = self.refusal(action, code=code, status=status, facts=facts, **detail)
        if refused is not None:
            raise RuleViolation(refused)
        return self.actions[action]

    @property
    def entity_type(self) -> str:
        """What the trail calls records of this kind: the kind, words joined by '_'."""
        return self.kind.replace(" ", "_")

    def audit_action(self, action: str) -> str:
        return self.actions[action].audit_action or f"{self.entity_type}.{action}"

    def locked(self, status: str) -> bool:
        return self.states[status].locked

    def check_unlocked(self, *, code: str, status: str) -> None:
        if self.locked(status):
            raise RuleViolation(f"{self.kind} {code} is {status}: its record is locked")

    def pending(self, status: str) -> bool:
        return self.states[status].pending

    def with_patients(self, status: str) -> bool:
        return self.states[status].with_patients

    def pending_states(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.states.items() if state.pending)

    def alarming(self, shown: str) -> bool:
        """Whether a status as shown (expired included) is drawn as an alarm."""
        return shown == EXPIRED or self.states[shown].alarm

    def shown(self, status: str, *, expired: bool) -> str:
        """The status as people see it: expired once past expiry while still usable."""
        return EXPIRED if expired and self.states[status].can_expire else status

    def shown_states(self) -> tuple[str, ...]:
        """Every status a list can be filtered on, expired included where it applies."""
        names = tuple(self.states)
        can_expire = any(state.can_expire for state in self.states.values())
        return (*names, EXPIRED) if can_expire else names


def _lifecycle(kind: str, states: list[State], actions: list[Action]) -> Lifecycle:
    table = Lifecycle(kind, {s.name: s for s in states}, {a.name: a for a in actions})
    for row in actions:
        unknown = (row.sources | {row.target or next(iter(row.sources))}) - set(table.states)
        assert not unknown, f"{kind}.{row.name} names unknown states {sorted(unknown)}"
        assert all(guard in GUARDS for guard in row.guards), f"{kind}.{row.name}: unknown guard"
    return table


def _from(*states: StrEnum) -> frozenset[str]:
    return frozenset(state.value for state in states)


C, L, V, D = CultureState, LotState, VialState, DeviationState
E, B, R = EquipmentState, BankVialState, RetainedSampleState

CULTURE = _lifecycle(
    "culture",
    [State(C.ACTIVE), State(C.FORMULATED, locked=True), State(C.DISCARDED, locked=True)],
    [
        Action(
            "log_passage",
            _from(C.ACTIVE),
            refusal="{kind} {code} is {status}; cannot log a passage",
        ),
        # Cells harvested at the latest passage may seed a child even once the parent has
        # gone on to formulation: they were harvested before it.
        Action(
            "split",
            _from(C.ACTIVE, C.FORMULATED),
            refusal="{kind} {code} is {status}; no culture can be split from it",
        ),
        # As a split: the cells frozen were harvested at the latest passage.
        Action(
            "freeze",
            _from(C.ACTIVE, C.FORMULATED),
            refusal="{kind} {code} is {status}; no cells of it can be frozen",
        ),
        Action(
            "project",
            _from(C.ACTIVE),
            refusal="{kind} {code} is {status}; cannot project its growth",
        ),
        Action(
            "formulate",
            _from(C.ACTIVE),
            target=C.FORMULATED,
            refusal="{kind} {code} is {status}; it cannot be formulated",
            refusals={C.FORMULATED: "{kind} {code} is already formulated as lot {lot}"},
        ),
    ],
)

LOT = _lifecycle(
    "lot",
    [
        State(L.QUARANTINE, can_expire=True, alarm=True),
        State(L.RELEASED, locked=True, can_expire=True, with_patients=True),
        State(L.REJECTED, locked=True, alarm=True),
        State(L.RECALLED, locked=True, alarm=True, with_patients=True),
    ],
    [
        Action(
            "release",
            _from(L.QUARANTINE),
            target=L.RELEASED,
            guards=("signer did no step", "signer waived nothing", "every criterion passes"),
            refusal="{kind} {code} cannot be released: {kind} {code} is {status}",
        ),
        # A release on interim results (a test pending whose criterion allows it) is a
        # release; QA completes it with a signature once every final result is in and passes.
        Action(
            "complete",
            _from(L.RELEASED),
            guards=(
                "release awaits completion",
                "final results in",
                "signer did no step",
                "signer waived nothing",
            ),
            refusal="{kind} {code} is {status}; only a released lot's release can be completed",
        ),
        Action(
            "reject",
            _from(L.QUARANTINE),
            target=L.REJECTED,
            guards=("signer did no step",),
            refusal="{kind} {code} is {status}; only a lot in quarantine can be rejected",
        ),
        # A late result may come in after release; a failing one holds the lot.
        Action(
            "record_qc",
            _from(L.QUARANTINE, L.RELEASED),
            refusal="{kind} {code} is {status}: no QC result can be recorded on it",
        ),
        # A test started whose final result is to come: before release only, as the
        # release is what it lets go ahead.
        Action(
            "start_qc",
            _from(L.QUARANTINE),
            refusal="{kind} {code} is {status}: a test is started pending only before release",
        ),
        # A hold is a condition beside the status, not a status: placed and lifted on a lot
        # that may still be released or used.
        Action(
            "hold",
            _from(L.QUARANTINE, L.RELEASED),
            refusal="{kind} {code} is {status}; it cannot be put on hold",
        ),
        Action(
            "waive",
            _from(L.QUARANTINE, L.RELEASED),
            refusal="{kind} {code} is {status}: a failure of it can no longer be waived",
        ),
        Action(
            "unhold",
            _from(L.QUARANTINE, L.RELEASED),
            refusal="{kind} {code} is {status}; a hold on it can no longer be lifted",
        ),
        Action(
            "recall",
            _from(L.RELEASED),
            target=L.RECALLED,
            refusal="{kind} {code} is {status}; only a released lot can be recalled",
            refusals={L.QUARANTINE: "{kind} {code} is in quarantine: reject it rather than recall"},
        ),
        # Samples of a lot are kept for testing it later (21 CFR 1271.260): of a lot in
        # quarantine, released or recalled (an investigation tests them); a rejected lot is
        # not kept.
        Action(
            "retain_samples",
            _from(L.QUARANTINE, L.RELEASED, L.RECALLED),
            refusal="{kind} {code} is {status}: no samples of it are retained",
        ),
        # Its vials may be handed out (after their own checks) unless QA rejected or recalled it.
        Action(
            "hand_out_vials",
            _from(L.QUARANTINE, L.RELEASED),
            refusal="vial {vial} is of lot {code}, which QA {status}",
        ),
    ],
)


def _next_step_to_the_patient(name: str, source: VialState, target: VialState) -> Action:
    """A vial's move along its way to the bedside: only from the step before, in the past tense."""
    return Action(
        name,
        _from(source),
        target=target,
        audit_action=f"vial.{target.value}",
        refusal=f"{{kind}} {{code}} is {{status}}, not {source.value}",
    )


VIAL = _lifecycle(
    "vial",
    [
        State(V.QUARANTINE, can_expire=True, alarm=True),
        State(V.RELEASED, can_expire=True),
        # In transit it is shown as shipped even past its expiry: it must be received or lost.
        State(V.SHIPPED),
        State(V.RECEIVED, can_expire=True),
        State(V.ISSUED),
        State(V.ADMINISTERED, locked=True),
        State(V.DESTROYED, locked=True, alarm=True),
        State(V.RECALLED, alarm=True),
        State(V.LOST, locked=True, alarm=True),
        State(V.REJECTED, alarm=True),
    ],
    [
        Action("release", _from(V.QUARANTINE), target=V.RELEASED),
        # In transit a vial can only arrive or be lost: nothing else may happen to it.
        _next_step_to_the_patient("ship", V.RELEASED, V.SHIPPED),
        _next_step_to_the_patient("receive", V.SHIPPED, V.RECEIVED),
        _next_step_to_the_patient("lose", V.SHIPPED, V.LOST),
        Action(
            "issue",
            _from(V.RELEASED, V.RECEIVED),
            target=V.ISSUED,
            audit_action="vial.issued",
            refusal="{kind} {code} is {status}, not released or received",
        ),
        _next_step_to_the_patient("administer", V.ISSUED, V.ADMINISTERED),
        # With its lot: every vial not yet given to a patient and not in transit (one in
        # transit is recalled on receipt); it can then only be destroyed.
        Action("recall", _from(V.QUARANTINE, V.RELEASED, V.RECEIVED, V.ISSUED), target=V.RECALLED),
        # With its lot, which QA rejected: it can then only be destroyed.
        Action("reject", _from(V.QUARANTINE), target=V.REJECTED),
        Action(
            "destroy",
            _from(V.QUARANTINE, V.RELEASED, V.RECEIVED, V.ISSUED, V.RECALLED, V.REJECTED),
            target=V.DESTROYED,
            refusal="{kind} {code} is {status}; it can no longer be destroyed",
        ),
        # A label goes on a vial still in the lab's hands; a recalled or rejected one's says so.
        Action(
            "label",
            _from(V.QUARANTINE, V.RELEASED, V.RECEIVED, V.ISSUED, V.RECALLED, V.REJECTED),
            refusal="{kind} {code} is {status}: it gets no label",
        ),
    ],
)

DEVIATION = _lifecycle(
    "deviation",
    [State(D.OPEN, pending=True, alarm=True), State(D.CLOSED, locked=True)],
    [
        Action(
            "close",
            _from(D.OPEN),
            target=D.CLOSED,
            refusal="{kind} {code} is already {status}",
        ),
    ],
)

EQUIPMENT = _lifecycle(
    "equipment",
    [State(E.ACTIVE), State(E.OUT_OF_SERVICE, alarm=True), State(E.RETIRED, locked=True)],
    [
        # Whoever finds a failed incubator takes it out of service; QA or admin returns it.
        Action(
            "take_out_of_service",
            _from(E.ACTIVE),
            target=E.OUT_OF_SERVICE,
            audit_action="equipment.out_of_service",
            refusal="{kind} {code} is {status}; only equipment in service can be taken out of it",
        ),
        Action(
            "return",
            _from(E.OUT_OF_SERVICE),
            target=E.ACTIVE,
            refusal="{kind} {code} is {status}; only equipment out of service can be returned",
        ),
        Action(
            "retire",
            _from(E.ACTIVE, E.OUT_OF_SERVICE),
            target=E.RETIRED,
            refusal="{kind} {code} is already {status}",
        ),
        Action(
            "calibrate",
            _from(E.ACTIVE, E.OUT_OF_SERVICE),
            refusal="{kind} {code} is {status}; it is no longer calibrated",
        ),
        # Named by a step: its calibration on the step's day is checked besides.
        Action(
            "use",
            _from(E.ACTIVE),
            refusal="{kind} {code} is {status}; it cannot be used",
            refusals={
                E.OUT_OF_SERVICE: "{kind} {code} is out of service; no step may use it until "
                "QA or admin returns it (`lims equipment return {code} --reason TEXT`)",
                E.RETIRED: "{kind} {code} is retired; no step may use it",
            },
        ),
    ],
)

BANK_VIAL = _lifecycle(
    "bank vial",
    [State(B.STORED), State(B.THAWED, locked=True), State(B.DISCARDED, locked=True)],
    [
        Action(
            "thaw",
            _from(B.STORED),
            target=B.THAWED,
            refusal="{kind} {code} is {status}; only a stored vial can be thawed",
        ),
        Action(
            "discard",
            _from(B.STORED),
            target=B.DISCARDED,
            refusal="{kind} {code} is {status}; it is no longer in storage",
        ),
        Action(
            "move",
            _from(B.STORED),
            refusal="{kind} {code} is {status}; it is no longer in storage",
        ),
    ],
)

RETAINED_SAMPLE = _lifecycle(
    "retained sample",
    [State(R.STORED), State(R.REMOVED, locked=True)],
    [
        Action(
            "remove",
            _from(R.STORED),
            target=R.REMOVED,
            audit_action="sample.remove",
            refusal="{kind} {code} is {status}; it is no longer in storage",
        ),
        Action(
            "move",
            _from(R.STORED),
            refusal="{kind} {code} is {status}; it is no longer in storage",
        ),
    ],
)

S = ShipmentState

SHIPMENT = _lifecycle(
    "shipment",
    [
        State(S.OPEN, pending=True),
        State(S.DISPATCHED, pending=True),
        State(S.RECEIVED, locked=True),
        State(S.LOST, locked=True, alarm=True),
        State(S.CANCELLED, locked=True),
    ],
    [
        Action(
            "add",
            _from(S.OPEN),
            refusal="{kind} {code} is {status}; vials are added only before it is dispatched",
        ),
        Action(
            "remove",
            _from(S.OPEN),
            refusal="{kind} {code} is {status}; vials are taken out only before it is dispatched",
        ),
        Action(
            "dispatch",
            _from(S.OPEN),
            target=S.DISPATCHED,
            refusal="{kind} {code} is {status}; only an open shipment can be dispatched",
        ),
        Action(
            "receive",
            _from(S.DISPATCHED),
            target=S.RECEIVED,
            refusal="{kind} {code} is {status}; only a dispatched shipment can be received",
        ),
        Action(
            "lose",
            _from(S.DISPATCHED),
            target=S.LOST,
            audit_action="shipment.lost",
            refusal="{kind} {code} is {status}; only a dispatched shipment can be lost",
        ),
        Action(
            "cancel",
            _from(S.OPEN),
            target=S.CANCELLED,
            refusal="{kind} {code} is {status}; only a shipment not yet dispatched can be "
            "cancelled",
        ),
    ],
)

LIFECYCLES = {
    table.kind: table
    for table in (CULTURE, LOT, VIAL, DEVIATION, EQUIPMENT, BANK_VIAL, RETAINED_SAMPLE, SHIPMENT)
}
