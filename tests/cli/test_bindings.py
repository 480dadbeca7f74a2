"""Records bound to the trail (issue 11, item 6): a row edited behind the trail's back is caught.

The attacker writes SQL to the tables and leaves the trail alone. `lims audit verify` then
exits 1 naming the first row that disagrees (table, id, column, never its values), and the
commands that rely on the row refuse with exit 1, saving nothing; each refusal is shown to
be the binding's by the same command succeeding once the row is put back.

The lab is tests.support.quality.Quality: tom formulates L1 (four vials for PT-0001); a
deviation on it is opened and closed by quinn; `released` has rita release it and tom issue
V02. PT-0002 is another registered patient.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lims.services import deviations, vials
from tests.support.cli import Invocation, invoke, ok, refused
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import Quality
from tests.support.vials import scan_of

PATIENT = "PT-0001"
OTHER = "PT-0002"
DISAGREES = "record disagrees with the audit trail"


def _with_closed_deviation(lab: Lab) -> Quality:
    quality = Quality(lab)
    quality.patient(OTHER)
    quality.record_passing()
    opened = quality.run(
        deviations.open_deviation, lot=quality.lot_id, description="label smudged on V04"
    )
    lab.login("quinn")
    quality.run(
        deviations.close_deviation,
        deviation_id=opened.deviation_id,
        resolution="relabelled",
        password=PASSWORD,
    )
    lab.login("tom")
    return quality


@pytest.fixture
def quarantined(lab: Lab) -> Quality:
    """L1 in quarantine with passing results and a closed deviation: rita may release it."""
    return lab.built("bindings-quarantined", lambda: _with_closed_deviation(lab))


@pytest.fixture
def released(lab: Lab) -> Quality:
    """L1 released by rita, V02 issued to PT-0001 by tom, who is logged in."""

    def build() -> Quality:
        quality = _with_closed_deviation(lab)
        quality.release()
        lab.login("tom")
        vial = f"{quality.lot_id}-V02"
        quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT)
        return quality

    return lab.built("bindings-released", build)


def _verified() -> Invocation:
    return invoke("audit", "verify", "--json")


def _one_id(quality: Quality, query: str) -> str:
    [(found,)] = quality.sql(query).all()
    return str(found)


@dataclass(frozen=True)
class Tamper:
    statement: str
    table: str
    id: Callable[[Quality], str | None]
    column: str | None


OTHER_PATIENT_ID = "(SELECT id FROM patients WHERE code = 'PT-0002')"
TAMPERS = {
    "lot status": Tamper(
        "UPDATE lots SET status = 'rejected'", "lots", lambda q: q.lot_id, "status"
    ),
    "lot patient": Tamper(
        f"UPDATE lots SET patient_id = {OTHER_PATIENT_ID}", "lots", lambda q: q.lot_id, "patient_id"
    ),
    "vial status": Tamper(
        "UPDATE vials SET status = 'issued' WHERE code LIKE '%-V03'",
        "vials",
        lambda q: f"{q.lot_id}-V03",
        "status",
    ),
    "vial added": Tamper(
        "INSERT INTO vials (code, lot_id, number, din, division, status, cells, volume_ml, "
        "labels_printed) SELECT code || '-V05', id, 5, substr(code, 1, 13), 5, 'released', "
        "40000000, 2, 0 FROM lots",
        "vials",
        lambda q: f"{q.lot_id}-V05",
        None,
    ),
    "culture status": Tamper(
        "UPDATE cultures SET status = 'discarded'", "cultures", lambda q: q.culture_id, "status"
    ),
    "deviation reopened": Tamper(
        "UPDATE deviations SET status = 'open'",
        "deviations",
        lambda q: _one_id(q, "SELECT id FROM deviations"),
        "status",
    ),
    "deviation waived": Tamper(
        "UPDATE deviations SET waived = TRUE",
        "deviations",
        lambda q: _one_id(q, "SELECT id FROM deviations"),
        "waived",
    ),
    "deviation deleted": Tamper(
        "DELETE FROM signatures WHERE deviation_id IS NOT NULL; DELETE FROM deviations",
        "deviations",
        lambda q: _one_id(q, "SELECT '1'"),
        None,
    ),
    "qc value": Tamper(
        "UPDATE qc_results SET value = 'positive' WHERE test = 'sterility'",
        "qc_results",
        lambda q: _one_id(q, "SELECT id FROM qc_results WHERE test = 'sterility'"),
        "value",
    ),
    "qc qualifier": Tamper(
        "UPDATE qc_results SET qualifier = '<' WHERE test = 'endotoxin'",
        "qc_results",
        lambda q: _one_id(q, "SELECT id FROM qc_results WHERE test = 'endotoxin'"),
        "qualifier",
    ),
    "patient weight": Tamper(
        f"UPDATE patients SET weight_kg = 70 WHERE code = '{PATIENT}'",
        "patients",
        lambda _: PATIENT,
        "weight_kg",
    ),
    "lot signature hash": Tamper(
        f"UPDATE signatures SET record_hash = '{'0' * 64}' WHERE lot_id IS NOT NULL",
        "signatures",
        lambda q: _one_id(q, "SELECT id FROM signatures WHERE lot_id IS NOT NULL"),
        "record_hash",
    ),
    "lot signer": Tamper(
        "UPDATE signatures SET username = 'quinn' WHERE lot_id IS NOT NULL",
        "signatures",
        lambda q: _one_id(q, "SELECT id FROM signatures WHERE lot_id IS NOT NULL"),
        "username, full_name, signed_at",
    ),
    "deviation signature": Tamper(
        "UPDATE signatures SET meaning = 'deviation closed, failure waived' "
        "WHERE deviation_id IS NOT NULL",
        "signatures",
        lambda q: _one_id(q, "SELECT id FROM signatures WHERE deviation_id IS NOT NULL"),
        "meaning",
    ),
    "user role": Tamper(
        "UPDATE users SET role = 'qa' WHERE username = 'tom'", "users", lambda _: "tom", "role"
    ),
    "user active": Tamper(
        "UPDATE users SET active = FALSE WHERE username = 'quinn'",
        "users",
        lambda _: "quinn",
        "active",
    ),
}


def _tamper(quality: Quality, statement: str) -> None:
    for part in statement.split("; "):
        quality.sql(part)


def test_an_honest_history_verifies_with_no_disagreement(released: Quality) -> None:
    report = ok("audit", "verify")
    assert report["intact"] is True
    assert report["disagreement"] is None


@pytest.mark.parametrize("name", TAMPERS)
def test_audit_verify_names_the_first_row_edited_behind_the_trail(
    released: Quality, name: str
) -> None:
    tamper = TAMPERS[name]
    expected_id = tamper.id(released)
    _tamper(released, tamper.statement)
    result = _verified()
    assert result.exit_code == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["intact"] is False
    assert report["first_bad_seq"] is None  # the chain itself is intact
    assert report["disagreement"] == {
        "table": tamper.table,
        "id": expected_id,
        "column": tamper.column,
    }
    line = refused(invoke("audit", "verify"), 1, DISAGREES, f"{tamper.table} {expected_id}")
    if tamper.column is not None:
        # No login: the table, id and column are named, never the values.
        assert line.endswith(f"{tamper.table} {expected_id} {tamper.column}"), line


def _issue(quality: Quality, vial: str) -> Invocation:
    return invoke("vial", "issue", vial, "--patient", PATIENT, "--scan", scan_of(quality, vial))


def _actions(quality: Quality) -> list[str]:
    return quality.audit_actions()


def _not_logins(actions: list[str]) -> list[str]:
    return [action for action in actions if not action.startswith("auth.")]


def test_a_lot_set_released_by_sql_issues_no_vial(quarantined: Quality) -> None:
    """The issue's first attack: an unsigned lot shown RELEASED whose vials would issue."""
    lot, vial = quarantined.lot_id, f"{quarantined.lot_id}-V01"
    quarantined.sql("UPDATE lots SET status = 'released'")
    quarantined.sql("UPDATE vials SET status = 'released'")
    before = _actions(quarantined)
    line = refused(_issue(quarantined, vial), 1, DISAGREES, f"lots {lot} status")
    assert "the row says released, the trail says quarantine" in line
    assert _actions(quarantined) == before  # nothing written, not even a refusal
    assert ok("vial", "show", vial)["status"] == "released"  # as tampered, not issued
    line = refused(
        invoke("vial", "verify", "--scan", scan_of(quarantined, vial), "--patient", PATIENT),
        1,
        DISAGREES,
    )
    assert "MATCH" not in line
    assert _actions(quarantined) == before
    # Put back as the trail says, the vial is refused by its lifecycle instead.
    quarantined.sql("UPDATE lots SET status = 'quarantine'")
    quarantined.sql("UPDATE vials SET status = 'quarantine'")
    assert DISAGREES not in refused(_issue(quarantined, vial), 1)


def test_a_lot_moved_to_another_patient_by_sql_is_caught(released: Quality) -> None:
    """The issue's second attack: its vials would then verify against the other patient."""
    lot, vial = released.lot_id, f"{released.lot_id}-V01"
    released.sql(f"UPDATE lots SET patient_id = {OTHER_PATIENT_ID}")
    assert json.loads(_verified().stdout)["disagreement"]["column"] == "patient_id"
    scan = scan_of(released, vial)  # the label as the record now says: PT-0002's
    line = refused(invoke("vial", "verify", "--scan", scan, "--patient", OTHER), 1, DISAGREES, lot)
    assert "patient_id" in line


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE qc_results SET value = 'positive' WHERE test = 'mycoplasma'",
        "UPDATE cultures SET status = 'discarded'",
        f"UPDATE signatures SET record_hash = '{'0' * 64}'",
        "UPDATE vials SET status = 'destroyed' WHERE code LIKE '%-V04'",
    ],
    ids=["qc result", "culture", "signature", "another vial of the lot"],
)
def test_administering_checks_the_vial_its_lot_signatures_and_results(
    released: Quality, statement: str
) -> None:
    vial = f"{released.lot_id}-V02"
    released.sql(statement)
    before = _actions(released)
    administered = invoke(
        "vial", "administer", vial, "--patient", PATIENT, "--scan", scan_of(released, vial)
    )
    refused(administered, 1, DISAGREES)
    assert _actions(released) == before
    assert ok("vial", "show", vial)["status"] == "issued"


def test_release_checks_its_lot_vials_results_deviations_and_culture(
    quarantined: Quality, lab: Lab
) -> None:
    """An open deviation closed by SQL would let the lot release past it."""
    opened = quarantined.run(
        deviations.open_deviation, lot=quarantined.lot_id, description="seal checked again"
    )
    quarantined.sql(
        "UPDATE deviations SET status = 'closed' WHERE id = :id", id=opened.deviation_id
    )
    before = _actions(quarantined)
    lab.login("rita")
    line = refused(
        invoke("lot", "release", quarantined.lot_id, "--password-stdin", input=PASSWORD + "\n"),
        1,
        DISAGREES,
        f"deviations {opened.deviation_id} status",
    )
    assert "the row says closed, the trail says open" in line
    lab.login("tom")
    assert ok("lot", "show", quarantined.lot_id)["status"] == "quarantine"
    assert _not_logins(_actions(quarantined)) == _not_logins(before)
    assert quarantined.sql("SELECT count(*) FROM signatures WHERE lot_id IS NOT NULL").scalar() == 0
