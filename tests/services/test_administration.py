"""How a vial was given (issue 13): the route, one of the site's administration.routes, and
the treating physician, each optional unless the site requires it; stored on the vial,
stated in its vial.administered entry, shown with the vial and in its lot's record.

The lab is tests.support.quality.Quality: lot L1 of four vials for PT-0001, released by rita;
tom issues V01 and gives it.
"""

from __future__ import annotations

from typing import Any

import pytest

from lims.errors import BadInput
from lims.scenario import PATIENT_CODE
from lims.services import vials
from tests.support.lab import Lab
from tests.support.quality import Quality, released_lot
from tests.support.vials import give, scan_of

PHYSICIAN = "Dr A. Rossi, neurology"


@pytest.fixture
def released(lab: Lab) -> Quality:
    """L1 released by rita; tom logged in."""
    return lab.built("administration-released", lambda: released_lot(Quality(lab)))


def _vial(quality: Quality, number: int = 1) -> str:
    return f"{quality.lot_id}-V{number:02d}"


def _entries(quality: Quality, action: str) -> list[dict[str, Any]]:
    return [e.new or {} for e in quality.scenario.audit_trail() if e.action == action]


def _issue(quality: Quality, vial: str) -> None:
    quality.run(vials.issue, vial=vial, scan=scan_of(quality, vial), patient=PATIENT_CODE)


def _administer(quality: Quality, vial: str, **details: Any) -> Any:
    scan = scan_of(quality, vial)
    return quality.run(vials.administer, vial=vial, scan=scan, patient=PATIENT_CODE, **details)


def test_the_route_and_physician_are_kept_stated_and_shown(released: Quality) -> None:
    given = give(released, _vial(released), route="intraspinal", physician=PHYSICIAN)
    assert (given.route, given.physician) == ("intraspinal", PHYSICIAN)
    assert given.administered_by == "tom"
    assert given.administered_at is not None
    shown = released.read(vials.show_vial, vial=_vial(released))
    assert (shown.route, shown.physician, shown.administered_at) == (
        "intraspinal",
        PHYSICIAN,
        given.administered_at,
    )
    [entry] = _entries(released, "vial.administered")
    assert (entry["route"], entry["physician"]) == ("intraspinal", PHYSICIAN)
    [row] = [v for v in released.show().vials if v.vial_id == _vial(released)]
    assert (row.route, row.physician, row.administered_by) == ("intraspinal", PHYSICIAN, "tom")
    assert row.administered_at == given.administered_at


def test_both_are_optional_by_default_and_stated_as_none(released: Quality) -> None:
    given = give(released, _vial(released))
    assert (given.route, given.physician) == (None, None)
    [entry] = _entries(released, "vial.administered")
    assert (entry["route"], entry["physician"]) == (None, None)
    untouched = released.read(vials.show_vial, vial=_vial(released, 2))
    assert (untouched.administered_at, untouched.administered_by, untouched.route) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("route", ["oral", "Intraspinal", " intraspinal", "intraspinal\n", ""])
def test_a_route_not_in_the_sites_list_is_bad_input_naming_the_routes(
    released: Quality, route: str
) -> None:
    vial = _vial(released)
    _issue(released, vial)
    with pytest.raises(BadInput, match="route: must be one of intraspinal, intrathecal, intra"):
        _administer(released, vial, route=route)
    assert released.read(vials.show_vial, vial=vial).status == "issued"
    assert _entries(released, "vial.administered") == []


def test_the_routes_are_the_sites_own(released: Quality, lab: Lab) -> None:
    lab.set_site(administration={"routes": ["intraspinal", "intracisternal"]})
    released.lab.login("tom")
    first, second = _vial(released), _vial(released, 2)
    for vial in (first, second):
        _issue(released, vial)
    with pytest.raises(BadInput, match="must be one of intraspinal, intracisternal "):
        _administer(released, first, route="intravenous")
    assert _administer(released, second, route="intracisternal").route == "intracisternal"


@pytest.mark.parametrize(
    ("physician", "refusal"),
    [
        ("", "physician: must not be empty"),
        ("Dr Rossi\nward 3", "physician: must not contain control characters"),
        ("x" * 101, "physician: must be at most 100 characters"),
    ],
)
def test_the_physician_is_one_line_of_free_text(
    released: Quality, physician: str, refusal: str
) -> None:
    vial = _vial(released)
    _issue(released, vial)
    with pytest.raises(BadInput, match=refusal):
        _administer(released, vial, physician=physician)
    assert _entries(released, "vial.administered") == []


@pytest.mark.parametrize(
    ("setting", "missing", "message"),
    [
        ("route_required", "route", "route: must be given at this site .* one of intraspinal"),
        ("physician_required", "physician", "physician: must be given at this site"),
    ],
)
def test_a_site_may_require_either(
    released: Quality, lab: Lab, setting: str, missing: str, message: str
) -> None:
    lab.set_site(administration={setting: True})
    released.lab.login("tom")
    vial = _vial(released)
    _issue(released, vial)
    details = {"route": "intrathecal", "physician": PHYSICIAN}
    with pytest.raises(BadInput, match=message):
        _administer(released, vial, **{k: v for k, v in details.items() if k != missing})
    assert _entries(released, "vial.administered") == []
    given = _administer(released, vial, **details)
    assert (given.route, given.physician) == ("intrathecal", PHYSICIAN)
