"""What commands show: every output shape is one frozen dataclass, turned into JSON here.

A view's JSON is its fields, in order, under their own names; nested views,
lists and mappings follow the same rule, times are UTC ISO 8601 and dates ISO
8601. A field's metadata can say otherwise, through the helpers below:
`hidden()` serves tables and documents only, `inline()` merges a part's keys
into its whole (a lot's summary into the lot), `renamed()` gives the key a
name of its own, and `shown_as()` converts the value first (a DIN into its
three keys, merged). Read-only properties named in a view's `json_properties` come
last. Nothing else builds a command's JSON, and the audit trail never reuses
it: what an entry records is built by the service that writes it, so `--json`
and the trail can change independently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, field, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from typing import Any, TypeVar

from lims.timeutil import json_time

_IN_JSON, _INLINE, _KEY, _CONVERT = "in_json", "inline", "key", "convert"

View = TypeVar("View")


def hidden(**options: Any) -> Any:
    """A field that tables and documents read but `--json` leaves out."""
    return field(metadata={_IN_JSON: False}, **options)


def inline(**options: Any) -> Any:
    """A part whose keys stand in its whole's JSON object, not under a key of their own."""
    return field(metadata={_INLINE: True}, **options)


def renamed(key: str, **options: Any) -> Any:
    """A field shown under another JSON key than its attribute's name."""
    return field(metadata={_KEY: key}, **options)


def shown_as(
    convert: Callable[[Any], Any], *, merged: bool = False, key: str | None = None, **options: Any
) -> Any:
    """A value whose JSON is what `convert` gives: under its key (or `key`), or merged into
    the object."""
    renaming = {} if key is None else {_KEY: key}
    return field(metadata={_CONVERT: convert, _INLINE: merged, **renaming}, **options)


@cache
def _json_fields(kind: type) -> tuple[Field[Any], ...]:
    return tuple(f for f in fields(kind) if f.metadata.get(_IN_JSON, True))


def to_json(value: Any) -> Any:
    """The JSON form of a view, or of anything a view holds."""
    if is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        for item in _json_fields(type(value)):
            content = getattr(value, item.name)
            convert = item.metadata.get(_CONVERT)
            shown = convert(content) if convert is not None else to_json(content)
            if item.metadata.get(_INLINE):
                data.update(shown)
            else:
                data[item.metadata.get(_KEY, item.name)] = shown
        for name in getattr(value, "json_properties", ()):
            data[name] = to_json(getattr(value, name))
        return data
    if isinstance(value, datetime):
        return json_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_record(view: type[View], record: object, **given: Any) -> View:
    """A view of a stored record: every field the record has under the same name, and the rest."""
    names = {item.name for item in fields(view)}  # type: ignore[arg-type]
    copied = {name: getattr(record, name) for name in names - set(given) if hasattr(record, name)}
    return view(**copied, **given)
