"""The one JSON serialisation of every view: fields by name, with the few declared exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import ClassVar

import pytest

from lims.views import from_record, hidden, inline, renamed, shown_as, to_json


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True, kw_only=True)
class Part:
    code: str
    count: int = renamed("item_count")


@dataclass(frozen=True, kw_only=True)
class Whole:
    json_properties: ClassVar[tuple[str, ...]] = ("label",)

    part: Part = inline()
    at: datetime
    on: date
    colour: Colour
    parts: list[Part]
    extra: dict[str, Part]
    secret: str = hidden()
    pair: tuple[str, str] = shown_as(lambda pair: {"left": pair[0], "right": pair[1]}, merged=True)
    size: int = shown_as(lambda size: f"{size} mm")

    @property
    def label(self) -> str:
        return f"{self.part.code} ({self.colour})"


def test_a_view_is_its_fields_with_the_declared_exceptions() -> None:
    whole = Whole(
        part=Part(code="A", count=2),
        at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        on=date(2026, 11, 30),
        colour=Colour.RED,
        parts=[Part(code="B", count=3)],
        extra={"c": Part(code="C", count=4)},
        secret="not for scripts",
        pair=("l", "r"),
        size=3,
    )
    assert to_json(whole) == {
        "code": "A",
        "item_count": 2,
        "at": "2026-11-30T08:00:00+00:00",
        "on": "2026-11-30",
        "colour": "red",
        "parts": [{"code": "B", "item_count": 3}],
        "extra": {"c": {"code": "C", "item_count": 4}},
        "left": "l",
        "right": "r",
        "size": "3 mm",
        "label": "A (red)",
    }


@pytest.mark.parametrize("value", [None, 1, 1.5, "text", True])
def test_plain_values_are_themselves(value: object) -> None:
    assert to_json(value) == value


def test_a_view_of_a_record_copies_the_fields_of_the_same_name() -> None:
    record = SimpleNamespace(code="A", count=7, unrelated="ignored")
    assert from_record(Part, record) == Part(code="A", count=7)
    assert from_record(Part, record, count=1) == Part(code="A", count=1)
