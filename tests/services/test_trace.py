"""`lims trace` through the service: from any id the same tree of the patient's materials,
each node with its state, time and who; a node reached twice stands in full once.

The lab is tests.support.quality.Quality (lot L1 of four vials for PT-0001 from culture
C1), with two bank vials frozen from C1's second passage into a box, one of them thawed
into a child culture.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lims.errors import BadInput, NotFound, NotPermitted
from lims.scenario import PATIENT_CODE
from lims.services import bank, cultures, reports, shipments, trace, vials
from lims.timeutil import json_time
from lims.views import to_json
from tests.support.bench import day
from tests.support.lab import PASSWORD, Lab
from tests.support.quality import LOT, RESULTS_AT, Quality
from tests.support.shipments import shipping
from tests.support.storage import BOX, add_box
from tests.support.vials import add_lot, give, scan_of, vial_ids

FROZEN_AT = day(20) + timedelta(hours=2)


@pytest.fixture
def traced(lab: Lab) -> Quality:
    """L1 released and its first vial given; C1 split on day 21; two bank vials, B01 thawed."""

    def build() -> Quality:
        quality = Quality(lab)
        add_box(lab)
        culture = quality.culture_id
        quality.run(
            cultures.split_culture,
            culture=culture,
            seeded=2_000_000,
            vessels=1,
            area_cm2=175,
            at=day(21),
        )
        quality.run(
            bank.freeze,
            culture=culture,
            cells_per_vial=4_000_000,
            vials=2,
            into=f"{BOX}:A1",
            at=FROZEN_AT,
        )
        quality.run(
            bank.thaw,
            bank_vial=f"{culture}-B01",
            viability=92,
            seeded=4_000_000,
            vessels=1,
            area_cm2=175,
            at=day(27),
        )
        quality.record_passing()
        quality.release()
        lab.login("tom")
        give(quality, vial_ids(quality.lot_id)[0], route="intraspinal")
        return quality

    return lab.built("traced", build)


def _trace(quality: Quality, item: str) -> dict[str, Any]:
    return to_json(quality.read(trace.trace, item=item))  # type: ignore[no-any-return]


def _nodes(tree: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every node standing in full, by id; a node found twice in full fails the test."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "ref" in node:
            return
        assert node["id"] not in found, f"{node['id']} stands in full twice"
        found[node["id"]] = node
        for child in node["children"]:
            walk(child)

    walk(tree)
    return found


def _children(node: dict[str, Any]) -> list[str]:
    return [child.get("id") or f"ref {child['ref']}" for child in node["children"]]


def test_every_id_of_the_chain_traces_the_same_tree(traced: Quality) -> None:
    lot = traced.lot_id
    din = lot.split("-")[0]
    culture = traced.culture_id
    ids = [
        PATIENT_CODE,
        din,
        f"{din[:5]} {din[5:7]} {din[7:]}",  # a DIN as a label prints it
        culture,
        f"{culture}-P2",
        f"{culture}-B02",
        f"{culture[:-1]}{int(culture[-1]) + 2}",  # the culture thawed from B01
        lot,
        vial_ids(lot)[-1],
        f"{lot}-V01".lower(),
    ]
    trees = {item: _trace(traced, item) for item in ids}
    first = trees[PATIENT_CODE]
    for item, tree in trees.items():
        assert tree == first, f"the tree from {item} differs from the patient's"


def test_the_tree_holds_each_record_with_its_state_time_and_who(traced: Quality) -> None:
    tree = _trace(traced, PATIENT_CODE)
    assert set(tree) == {"id", "kind", "state", "at", "by", "detail", "children"}
    nodes = _nodes(tree)
    lot, culture = traced.lot_id, traced.culture_id
    din = lot.split("-")[0]
    split, thawed = f"{culture[:-1]}2", f"{culture[:-1]}3"
    assert (tree["id"], tree["kind"], tree["state"]) == (PATIENT_CODE, "patient", "active")
    # The marrow, and the CSF received to suspend lot L1 in, which refers to the lot.
    marrow, csf = _children(tree)
    assert marrow == din
    assert (nodes[din]["kind"], nodes[csf]["kind"]) == ("donation", "donation")
    assert nodes[din]["detail"].startswith("bone marrow")
    assert nodes[csf]["detail"].startswith("CSF")
    assert _children(nodes[din]) == [culture]
    assert _children(nodes[csf]) == [f"ref {lot}"]
    # The split child under its parent, the bank vials (the thawed culture under B01), the lot.
    assert _children(nodes[culture]) == [split, f"{culture}-B01", f"{culture}-B02", lot]
    assert _children(nodes[f"{culture}-B01"]) == [thawed]
    assert (nodes[f"{culture}-B01"]["state"], nodes[f"{culture}-B02"]["state"]) == (
        "thawed",
        "stored",
    )
    assert nodes[thawed]["detail"] == "thawed"
    assert _children(nodes[lot]) == vial_ids(lot)
    assert (nodes[lot]["kind"], nodes[lot]["state"], nodes[lot]["by"]) == (
        "lot",
        "released",
        "rita",
    )
    given, kept = nodes[vial_ids(lot)[0]], nodes[vial_ids(lot)[1]]
    assert (given["state"], given["by"], given["detail"]) == ("administered", "tom", "intraspinal")
    assert (kept["state"], kept["by"]) == ("released", "rita")


def test_each_node_is_dated_by_the_time_its_record_states_for_its_state(
    traced: Quality,
) -> None:
    """A formulated culture by its lot's formulation, a thawed bank vial by its thaw, an
    administered vial by its administration: the times typed at the bench, not the trail's."""
    nodes = _nodes(_trace(traced, PATIENT_CODE))
    culture = traced.culture_id
    assert nodes[culture]["at"] == json_time(LOT["at"])
    assert nodes[f"{culture}-B01"]["at"] == json_time(day(27))
    assert nodes[f"{culture}-B02"]["at"] == json_time(FROZEN_AT)
    given = traced.read(vials.show_vial, vial=vial_ids(traced.lot_id)[0])
    assert nodes[given.vial_id]["at"] == json_time(given.administered_at)


def test_an_id_that_names_nothing_is_not_found_and_a_malformed_one_is_bad_input(
    traced: Quality,
) -> None:
    lot = traced.lot_id
    for unknown in (f"{lot}-V09", "A999926999999", "PT-9999", "SHP-000042", f"{lot[:-1]}7"):
        with pytest.raises(NotFound):
            traced.read(trace.trace, item=unknown)
    for malformed in ("", "  ", "lot one", "P1", "pt-0001"):
        with pytest.raises(BadInput) as refused:
            traced.read(trace.trace, item=malformed)
        assert refused.value.field == "id"


def test_a_count_has_no_place_in_a_trace(traced: Quality) -> None:
    with pytest.raises(BadInput, match="a count has no place in a trace"):
        traced.read(trace.trace, item="CNT-000001")


def test_every_role_may_trace_and_nobody_logged_out(traced: Quality) -> None:
    traced.lab.add_user("ada2", "admin")
    for user in ("tom", "quinn", "ada2"):
        traced.lab.login(user)
        assert _trace(traced, PATIENT_CODE)["id"] == PATIENT_CODE
    traced.scenario.logout()
    with pytest.raises(NotPermitted):
        traced.read(trace.trace, item=PATIENT_CODE)


# --- shipments: a node with several parents ------------------------------------------------------


@pytest.fixture
def shipped(lab: Lab) -> Quality:
    """L1 released, its vials V01-V03 dispatched to OR-1 in one shipment and received."""
    quality = shipping(lab)
    packed = vial_ids(quality.lot_id)[:3]
    made = quality.run(shipments.create_shipment, to="OR-1", courier="porter")
    for vial in packed:
        quality.run(
            shipments.add_vial,
            shipment=made.shipment_id,
            vial=vial,
            scan=scan_of(quality, vial),
        )
    quality.run(shipments.dispatch, shipment=made.shipment_id)
    quality.run(
        shipments.receive,
        shipment=made.shipment_id,
        scans=[scan_of(quality, vial) for vial in packed],
        temperature_ok="yes",
    )
    return quality


def test_a_shipment_stands_in_full_under_its_first_vial_and_by_reference_under_the_rest(
    shipped: Quality,
) -> None:
    tree = _trace(shipped, "SHP-000001")
    assert tree == _trace(shipped, PATIENT_CODE) == _trace(shipped, vial_ids(shipped.lot_id)[-1])
    nodes = _nodes(tree)
    first, second, third, home = (nodes[vial] for vial in vial_ids(shipped.lot_id))
    assert _children(first) == ["SHP-000001"]
    assert _children(second) == _children(third) == ["ref SHP-000001"]
    assert _children(home) == []
    shipment = nodes["SHP-000001"]
    assert (shipment["kind"], shipment["state"], shipment["by"]) == ("shipment", "received", "tom")
    assert shipment["detail"] == "to OR-1 (Operating theatre 1) by porter"
    assert (first["state"], first["at"]) == ("received", shipment["at"])
    assert home["state"] == "released"


def test_a_shipment_of_several_patients_vials_is_the_root_above_their_trees(
    shipped: Quality,
) -> None:
    other = add_lot(shipped, "PT-0002")
    shipped.scenario.record_qc(other, at=RESULTS_AT)
    shipped.scenario.release(other, signer="rita", password=PASSWORD)
    shipped.lab.login("tom")
    made = shipped.run(shipments.create_shipment, to="HOSP-2", courier="courier")
    mine, theirs = vial_ids(shipped.lot_id)[-1], vial_ids(other)[0]
    for vial in (mine, theirs):
        shipped.run(
            shipments.add_vial, shipment=made.shipment_id, vial=vial, scan=scan_of(shipped, vial)
        )
    tree = _trace(shipped, made.shipment_id)
    assert (tree["id"], tree["kind"], tree["state"]) == (made.shipment_id, "shipment", "open")
    assert _children(tree) == [PATIENT_CODE, "PT-0002"]
    nodes = _nodes(tree)
    assert _children(nodes[mine]) == _children(nodes[theirs]) == [f"ref {made.shipment_id}"]
    # From either patient, the shipment is theirs and stands in full under their vial.
    assert _children(_nodes(_trace(shipped, "PT-0002"))[theirs]) == [made.shipment_id]


def test_the_batch_record_draws_the_same_tree_as_its_chain_of_identity_and_custody(
    shipped: Quality, tmp_path: Path
) -> None:
    from pypdf import PdfReader

    out = tmp_path / "batch.pdf"
    shipped.run(reports.write_batch_record, lot=shipped.lot_id, out=out).files.publish()
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(out).pages).split())
    section = text[text.index("Chain of identity and custody") :]
    section = section[: section.index("Equipment")]
    nodes = _nodes(_trace(shipped, PATIENT_CODE))
    for node in nodes.values():
        assert f"{node['id']} {node['kind'].replace('_', ' ')}" in section, node["id"]
    assert section.count("SHP-000001") == 3  # in full under V01, by reference under V02, V03
    # and lot L1 by reference under the CSF it is suspended in
    assert section.count("see above") == 3


def test_a_cancelled_shipment_carried_nothing_and_dates_nothing(shipped: Quality) -> None:
    """V04, packed in a shipment then cancelled, is packed in another and dispatched: its
    node shows that one, dated by its dispatch."""
    last = vial_ids(shipped.lot_id)[-1]
    for shipment in ("SHP-000002", "SHP-000003"):
        made = shipped.run(shipments.create_shipment, to="OR-1", courier="porter")
        assert made.shipment_id == shipment
    shipped.run(shipments.add_vial, shipment="SHP-000003", vial=last, scan=scan_of(shipped, last))
    shipped.run(shipments.cancel, shipment="SHP-000003", reason="surgery moved")
    shipped.run(shipments.add_vial, shipment="SHP-000002", vial=last, scan=scan_of(shipped, last))
    dispatched = shipped.run(shipments.dispatch, shipment="SHP-000002")
    nodes = _nodes(_trace(shipped, last))
    assert _children(nodes[last]) == ["SHP-000002"]
    assert "SHP-000003" not in nodes
    assert nodes[last]["state"] == "shipped"
    assert nodes[last]["at"] == json_time(dispatched.dispatched_at)
    # Traced itself, the cancelled shipment stands above the tree of the patient it named.
    cancelled = _trace(shipped, "SHP-000003")
    assert (cancelled["id"], cancelled["state"]) == ("SHP-000003", "cancelled")
    assert _children(cancelled) == [PATIENT_CODE]
