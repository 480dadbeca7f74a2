"""Reagent lots through the service: registered once, usable through expiry, kept per step."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from lims.errors import BadInput, NotFound, RuleViolation
from lims.services import cultures, reagents
from tests.support.bench import Bench, day


def test_reagent_lots_are_registered_once_and_listed(bench: Bench) -> None:
    bench.run(
        reagents.add_reagent, name="MEM alpha", lot="2411A", expires="2027-03-31", supplier="Gibco"
    )
    with pytest.raises(RuleViolation, match="already registered"):
        bench.run(reagents.add_reagent, name="MEM alpha", lot="2411A", expires="2027-03-31")
    [listed] = bench.read(reagents.list_reagents)
    assert (listed.label, listed.supplier, str(listed.expires_on)) == (
        "MEM alpha:2411A",
        "Gibco",
        "2027-03-31",
    )
    assert bench.audit_actions()[-1] == "reagent.add"


def test_a_reagent_name_cannot_hold_the_separator(bench: Bench) -> None:
    with pytest.raises(BadInput) as refused:
        bench.run(reagents.add_reagent, name="MEM:alpha", lot="1", expires="2027-01-01")
    assert refused.value.field == "name"


def test_a_lot_is_usable_through_its_expiry_date_and_not_after(bench: Bench, growing: str) -> None:
    zone = bench.settings.tz
    last_day = day(10).astimezone(zone).date()
    bench.run(reagents.add_reagent, name="TrypLE", lot="B1", expires=last_day)
    late_that_day = datetime.combine(last_day, datetime.min.time(), tzinfo=zone) + timedelta(
        hours=23
    )
    bench.passage(growing, late_that_day, reagents=["TrypLE:B1"])
    with pytest.raises(RuleViolation, match="expired"):
        bench.passage(growing, late_that_day + timedelta(hours=2), reagents=["TrypLE:B1"])


def test_an_unknown_or_malformed_reagent_is_refused(bench: Bench, growing: str) -> None:
    with pytest.raises(NotFound, match="no reagent lot"):
        bench.passage(growing, day(14), reagents=["TrypLE:none"])
    with pytest.raises(BadInput) as refused:
        bench.passage(growing, day(14), reagents=["TrypLE"])
    assert refused.value.field == "reagent"


def test_which_lots_went_into_which_step_is_kept(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din.code
    bench.run(reagents.add_reagent, name="Percoll", lot="P1", expires="2099-12-31")
    bench.run(reagents.add_reagent, name="TrypLE", lot="T1", expires="2099-12-31")
    code = bench.culture(din, reagents=["Percoll:P1"]).summary.culture_id
    bench.passage(code, day(14), reagents=["TrypLE:T1"])
    detail = bench.read(cultures.show_culture, culture=code)
    assert detail.reagents == ["Percoll:P1"]
    assert detail.passages[0].reagents == ["TrypLE:T1"]
