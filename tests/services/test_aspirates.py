"""Aspirates through the service: the next DIN of the facility and year, plausible receipts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lims.domain.ids import check_character
from lims.errors import BadInput, NotFound
from lims.services import aspirates
from lims.timeutil import utcnow
from lims.views import to_json
from tests.support.bench import COLLECTED, NOW, Bench


def test_an_aspirate_gets_the_next_din_of_the_facility_and_collection_year(bench: Bench) -> None:
    bench.patient()
    first = bench.aspirate()
    second = bench.aspirate()
    year = COLLECTED.astimezone(bench.settings.tz).year % 100
    assert first.din.code == f"A9999{year:02d}000001"
    assert second.din.code == f"A9999{year:02d}000002"
    data = to_json(first)
    assert len(data["din"]) == 13
    assert data["din_check"] == check_character(data["din"])
    assert data["din_display"] == f"A9999 {year:02d} 000001 {data['din_check']}"
    assert [a for a in bench.audit_actions() if a == "aspirate.receive"] == [
        "aspirate.receive",
        "aspirate.receive",
    ]


def test_din_sequences_restart_each_year_and_belong_to_their_facility(bench: Bench) -> None:
    bench.scenario.patient(consent_date=f"{NOW.year - 1}-01-01")
    bench.aspirate()
    last_year = datetime(NOW.year - 1, 6, 1, 8, tzinfo=UTC)
    earlier = bench.aspirate(collected_at=last_year, received_at=last_year + timedelta(hours=1))
    assert earlier.din.code == f"A9999{(NOW.year - 1) % 100:02d}000001"
    bench.lab.set_site(facility={"fin": "B1234"})
    bench.lab.login("tom")
    elsewhere = bench.aspirate(volume_ml=20)
    assert elsewhere.din.code.startswith("B1234")
    assert elsewhere.din.sequence == 1


def test_a_refused_receipt_leaves_no_gap_in_the_sequence(bench: Bench) -> None:
    bench.patient()
    bench.aspirate()
    with pytest.raises(NotFound):
        bench.aspirate(patient="PT-9999")
    with pytest.raises(BadInput):
        bench.aspirate(volume_ml=0)
    assert bench.aspirate().din.sequence == 2


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("volume-ml", {"volume_ml": 0}),
        ("volume-ml", {"volume_ml": -5}),
        ("volume-ml", {"volume_ml": 100.5}),
        (
            "collected-at",
            {"collected_at": NOW + timedelta(hours=1), "received_at": NOW + timedelta(hours=2)},
        ),
        ("received-at", {"received_at": COLLECTED - timedelta(minutes=1)}),
        ("received-at", {"received_at": COLLECTED}),
        ("received-at", {"received_at": NOW + timedelta(hours=1)}),
        ("temperature-c", {"temperature_c": 1.9}),
        ("temperature-c", {"temperature_c": 30.1}),
        ("tnc", {"tnc": "lots"}),
        ("site", {"site": " "}),
    ],
)
def test_implausible_aspirates_are_refused(
    bench: Bench, field: str, values: dict[str, Any]
) -> None:
    bench.patient()
    with pytest.raises(BadInput) as refused:
        bench.aspirate(**values)
    assert refused.value.field == field
    assert "aspirate.receive" not in bench.audit_actions()


def test_the_aspirate_limits_are_configurable(bench: Bench) -> None:
    bench.patient()
    bench.lab.set_site(
        aspirate={"max_volume_ml": 250, "min_temperature_c": 15, "max_temperature_c": 25}
    )
    bench.lab.login("tom")
    just_collected = NOW - timedelta(hours=3)
    bench.run(aspirates.receive, patient="PT-0001", collected_at=just_collected, volume_ml=200)
    with pytest.raises(BadInput, match="from 15 to 25"):
        bench.run(
            aspirates.receive,
            patient="PT-0001",
            collected_at=just_collected,
            volume_ml=20,
            temperature_c=10,
        )


def test_receipt_defaults_to_now_and_the_posterior_iliac_crest(bench: Bench) -> None:
    bench.patient()
    received = bench.run(
        aspirates.receive,
        patient="PT-0001",
        collected_at=NOW - timedelta(hours=3),
        volume_ml=30,
    )
    assert received.site == "posterior iliac crest"
    assert abs((received.received_at - utcnow()).total_seconds()) < 60


def test_an_unknown_patient_is_not_found(bench: Bench) -> None:
    with pytest.raises(NotFound, match="PT-0404"):
        bench.aspirate(patient="PT-0404")


def test_a_din_is_found_however_it_is_typed(bench: Bench) -> None:
    bench.patient()
    din = bench.aspirate().din
    for typed in (
        din.code,
        din.code + din.check,
        din.display,
        din.display.lower(),
        f" {din.code} ",
    ):
        assert bench.read(aspirates.show_aspirate, din=typed).din == din
    wrong = "0" if din.check != "0" else "1"
    with pytest.raises(BadInput, match="check character"):
        bench.read(aspirates.show_aspirate, din=din.code + wrong)


@pytest.mark.parametrize("typed", ["١٠٠", "１００", "1e-400"])
def test_numbers_are_ascii_and_measurable(bench: Bench, typed: str) -> None:
    bench.patient()
    with pytest.raises(BadInput):
        bench.aspirate(volume_ml=typed)
