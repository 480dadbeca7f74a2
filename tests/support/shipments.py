"""A lab whose lot ships: lot L1 of PT-0001 released, and a site setting naming two sites."""

from __future__ import annotations

import json

from lims.services import site
from tests.support.lab import Lab
from tests.support.quality import Quality

SITES = [
    {"code": "OR-1", "name": "Operating theatre 1", "address": "Neurosurgery, 1 Example St"},
    {"code": "HOSP-2", "name": "Example General", "address": "2 Example Road"},
]


def set_sites(lab: Lab, sites: list[dict[str, str]]) -> None:
    """The site setting `sites`, set whole by the admin (no station session left behind)."""
    with lab.acting_as("admin") as uow:
        site.set_site(uow, key="sites", value=json.dumps(sites), reason="shipping sites")


def shipping(lab: Lab) -> Quality:
    """Lot L1 (four vials of PT-0001) released by rita; sites OR-1 and HOSP-2; tom logged in.
    Built once per test process and restored for each test that asks for it."""

    def build() -> Quality:
        quality = Quality(lab)
        quality.record_passing()
        quality.release()
        set_sites(lab, SITES)
        lab.login("tom")
        return quality

    return lab.built("shipping", build)
