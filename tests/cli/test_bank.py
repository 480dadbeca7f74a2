"""The cell bank from the shell: culture freeze, bank list/show/thaw/discard; their keys,
tables and exit codes.

The lab is tests.support.quality.Quality's (culture C1, P2 harvested 3.2x10^7 on day 20
and reseeded 2x10^7) with box LN2-1/rack-3/box-07 (9 x 9), built through the services.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.bench import day
from tests.support.cli import invoke, ok, plain, refused
from tests.support.lab import Lab
from tests.support.quality import Quality
from tests.support.storage import BOX, add_box, add_location

FROZEN_AT = (day(20) + timedelta(hours=2)).isoformat()
THAWED_AT = day(27).isoformat()


@pytest.fixture
def banked(lab: Lab) -> Quality:
    def build() -> Quality:
        quality = Quality(lab)
        add_box(lab)
        return quality

    return lab.built("banked", build)


def _freeze(culture: str, *options: str) -> list[str]:
    return [
        "culture",
        "freeze",
        culture,
        "--cells-per-vial",
        "5e6",
        "--vials",
        "2",
        "--into",
        f"{BOX}:A1",
        "--at",
        FROZEN_AT,
        *options,
    ]


def _thaw(vial: str, *options: str) -> list[str]:
    return [
        "bank",
        "thaw",
        vial,
        "--viability",
        "92",
        "--seeded",
        "4e6",
        "--vessels",
        "1",
        "--area-cm2",
        "175",
        "--at",
        THAWED_AT,
        *options,
    ]


def test_a_freeze_prints_its_vials_where_they_are_and_what_is_left(banked: Quality) -> None:
    culture = banked.culture_id
    frozen = ok(*_freeze(culture, "--medium", "CryoStor CS10"))
    assert (frozen["culture_id"], frozen["passage_id"], frozen["into"]) == (
        culture,
        f"{culture}-P2",
        BOX,
    )
    assert (frozen["cells_per_vial"], frozen["cells"], frozen["left_in_harvest"]) == (
        5_000_000,
        10_000_000,
        2_000_000,
    )
    first = frozen["bank_vials"][0]
    assert first["bank_vial_id"] == f"{culture}-B01"
    assert (first["position"], first["status"], first["frozen_by"]) == (
        f"{BOX}:A1",
        "stored",
        "tom",
    )
    assert (first["passage_number"], first["medium"]) == (2, "CryoStor CS10")

    table = invoke("culture", "freeze", culture, "--cells-per-vial", "1e6", "--vials", "1",
                   "--into", BOX, "--at", FROZEN_AT)  # fmt: skip
    assert table.exit_code == 0, table.stderr
    printed = plain(table.stdout)
    assert f"{culture}-B03" in printed
    assert f"{BOX}:A3" in printed
    assert "1,000,000 cells of the harvest are left" in printed


@pytest.mark.parametrize(
    ("options", "code", "words"),
    [
        (("--into", "LN2-9/box-1"), 3, ("no storage location", "LN2-9/box-1")),
        (("--into", f"{BOX}:Z1"), 2, ("into", "A1-I9")),
        (("--into", f"{BOX}:first"), 2, ("into", "such as A1")),
        (("--into", f"{BOX}:"), 2, ("into", "position after ':'")),
        (("--into", "LN2-1/rack-3"), 2, ("into", "must be a box")),
        (("--into", f"{BOX}:I9"), 1, ("I9", "2 are needed")),
        (("--vials", "3"), 1, ("15,000,000", "12,000,000 of its cells are left")),
        (("--vials", "0"), 2, ("vials",)),
        (("--cells-per-vial", "many"), 2, ("cells-per-vial",)),
    ],
)
def test_a_freeze_refused(
    banked: Quality, options: tuple[str, ...], code: int, words: tuple[str, ...]
) -> None:
    args = _freeze(banked.culture_id)
    for name, value in zip(options[::2], options[1::2], strict=True):
        args[args.index(name) + 1] = value
    before = banked.audit_actions()
    refused(invoke(*args), code, *words)
    assert banked.audit_actions() == before


def test_an_occupied_position_a_culture_and_a_role_refused(banked: Quality) -> None:
    ok(*_freeze(banked.culture_id, "--vials", "1"))
    refused(invoke(*_freeze(banked.culture_id, "--vials", "1")), 1, f"{BOX}: position A1 already")
    refused(invoke(*_freeze(f"{banked.culture_id[:-1]}7")), 3, "culture")
    banked.lab.login("admin")
    refused(invoke(*_freeze(banked.culture_id)), 4, "record bench work")


def test_bank_list_show_thaw_and_discard(banked: Quality) -> None:
    culture = banked.culture_id
    ok(*_freeze(culture))
    first, second = f"{culture}-B01", f"{culture}-B02"
    listed = ok("bank", "list", "--culture", culture)
    assert [(v["bank_vial_id"], v["position"]) for v in listed] == [
        (first, f"{BOX}:A1"),
        (second, f"{BOX}:A2"),
    ]
    shown = invoke("bank", "show", first)
    assert shown.exit_code == 0, shown.stderr
    for expected in (f"{BOX}:A1", f"the harvest of {culture}-P2", "5,000,000", "stored"):
        assert expected in plain(shown.stdout), expected

    child = ok(*_thaw(first))
    assert (child["kind"], child["parent"], child["source_passage"]) == (
        "thawed",
        culture,
        f"{culture}-P2",
    )
    assert (child["passage_count"], child["cumulative_population_doublings"]) == (2, 3.0)
    assert child["thawed_from"]["bank_vial_id"] == first
    assert child["thawed_from"]["thaw_viability"] == 92
    assert child["lineage"][0]["bank_vial"] == first
    printed = plain(invoke("culture", "show", child["culture_id"]).stdout)
    assert f"thawed from bank vial {first}, 92 % viable" in printed
    assert f"frozen at {culture}-P2 in bank vial {first}" in printed

    discarded = ok("bank", "discard", second, "--reason", "cracked in the tank")
    assert (discarded["status"], discarded["position"]) == ("discarded", None)
    assert ok("bank", "list") == []
    every = ok("bank", "list", "--all")
    assert [(v["bank_vial_id"], v["status"], v["thawed_into"]) for v in every] == [
        (first, "thawed", child["culture_id"]),
        (second, "discarded", None),
    ]
    table = plain(invoke("bank", "list", "--all").stdout)
    assert f"thawed into {child['culture_id']}" in table
    refused(invoke("bank", "discard", first, "--reason", "x"), 1, "thawed")
    refused(invoke(*_thaw(second)), 1, "discarded")
    refused(invoke("bank", "show", f"{culture}-B09"), 3, "B09")
    refused(invoke("bank", "show", "B01"), 2, "bank_vial")


def test_a_thaw_beyond_the_vial_is_refused_and_a_low_one_flagged(banked: Quality) -> None:
    culture = banked.culture_id
    ok(*_freeze(culture))
    args = _thaw(f"{culture}-B01")
    args[args.index("--seeded") + 1] = "5000001"
    refused(invoke(*args), 1, "holds 5,000,000 cells")
    args = _thaw(f"{culture}-B01")
    args[args.index("--viability") + 1] = "70"
    shown = invoke(*args)
    assert shown.exit_code == 0, shown.stderr
    assert "low_viability" in plain(shown.stdout)


def test_a_box_that_is_a_shelf_is_refused(banked: Quality) -> None:
    add_location(banked.lab, "LN2-1/shelf-1", "shelf")
    args = _freeze(banked.culture_id)
    args[args.index("--into") + 1] = "LN2-1/shelf-1:A1"
    refused(invoke(*args), 2, "into", "shelf")


def test_the_bank_is_an_area_of_lims() -> None:
    listed = invoke("--help")
    assert "bank" in listed.stdout
    assert "freeze" in invoke("culture", "--help").stdout
