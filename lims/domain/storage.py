"""Storage: location paths, the kinds of location, and positions in a box's grid.

A location is named by its path from the top (LN2-1/rack-3/box-07); a box has a grid of
positions, rows lettered from A and columns numbered from 1 (A1, A2, ... B1), filled in
row-major order. A place to put something is PATH:POSITION, or PATH alone for the next
free positions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from lims.errors import BadInput, RuleViolation, shown

STORAGE_KINDS = ("tank", "freezer", "rack", "box", "shelf")
BOX = "box"  # the one kind with positions, and inside which nothing else goes
BOX_ROWS_MAX = 26  # rows are lettered A-Z
BOX_COLUMNS_MAX = 99
PATH_MAX = 200
# A new location's path is the trail's id for it: an audit entity id holds 64 characters.
NEW_PATH_MAX = 64
# Colder than liquid nitrogen (-196 °C) or warmer than an incubator is a typing error.
TEMPERATURE_MIN_C = -200.0
TEMPERATURE_MAX_C = 60.0
PATH_DEPTH_MAX = 8
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
SEGMENT_FORMS = "1-40 letters, digits, '.', '_' or '-', starting with a letter or digit"
_POSITION = re.compile(r"([A-Za-z])([0-9]{1,2})")


@dataclass(frozen=True, order=True)
class Position:
    """A position in a box: row 1 is A, column 1 is 1."""

    row: int
    column: int

    @property
    def label(self) -> str:
        return f"{chr(ord('A') + self.row - 1)}{self.column}"


def storage_path(text: str, field: str = "path") -> str:
    """A location's path as typed: segments joined by '/', no blanks, no empty segment."""
    if not isinstance(text, str) or not text.strip():
        raise BadInput(field, "must be a storage path such as LN2-1/rack-3/box-07 (got nothing)")
    path = text.strip()
    segments = path.split("/")
    if len(path) > PATH_MAX or len(segments) > PATH_DEPTH_MAX:
        raise BadInput(
            field,
            f"must be at most {PATH_MAX} characters in at most {PATH_DEPTH_MAX} levels "
            f"(got {len(path)} characters in {len(segments)})",
        )
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise BadInput(
                field,
                f"must be a storage path such as LN2-1/rack-3/box-07, each level "
                f"{SEGMENT_FORMS} (got {shown(text)})",
            )
    return path


def parent_path(path: str) -> str | None:
    """The path of the location holding this one; None for a top-level location."""
    return path.rsplit("/", 1)[0] if "/" in path else None


def child_path(parent: str | None, name: str) -> str:
    """The path of a location called `name` inside `parent` (None: at the top)."""
    return name if parent is None else f"{parent}/{name}"


def path_name(path: str) -> str:
    """The last level of a path: the location's own name."""
    return path.rsplit("/", 1)[-1]


def path_key(path: str) -> str:
    """What two paths are compared by: letter case is not a difference a reader sees (paths
    are ASCII, so SQL's lower() gives the same)."""
    return path.lower()


def split_place(text: str, field: str) -> tuple[str, str | None]:
    """PATH[:POSITION] as typed: the path and the position's text, if one is given."""
    if not isinstance(text, str):
        raise BadInput(field, "must be PATH or PATH:POSITION, e.g. LN2-1/rack-3/box-07:A1")
    path, separator, position = text.strip().partition(":")
    if separator and not position.strip():
        raise BadInput(field, f"must give a position after ':', e.g. {path}:A1 (got {shown(text)})")
    return storage_path(path, field), position.strip() if separator else None


def position(text: str, rows: int, columns: int, field: str) -> Position:
    """A position such as A1 or h12 in a grid of rows x columns."""
    match = _POSITION.fullmatch(text.strip())
    if match is None:
        raise BadInput(
            field, f"must be a position such as A1 (row letter, column number; got {shown(text)})"
        )
    at = Position(ord(match[1].upper()) - ord("A") + 1, int(match[2]))
    if not (1 <= at.row <= rows and 1 <= at.column <= columns):
        raise BadInput(field, f"must be a position within {grid_span(rows, columns)} (got {text})")
    return at


def place_label(path: str, at: Position) -> str:
    """PATH:POSITION as people write it and the trail states it: LN2-1/rack-3/box-07:A1."""
    return f"{path}:{at.label}"


def grid_span(rows: int, columns: int) -> str:
    """The box's positions as people say them: A1-H12."""
    return f"A1-{Position(rows, columns).label}"


def row_major(rows: int, columns: int, start: Position | None = None) -> Iterator[Position]:
    """Every position from start (the first, A1, by default) on, row by row."""
    first = start or Position(1, 1)
    for row in range(first.row, rows + 1):
        for column in range(first.column if row == first.row else 1, columns + 1):
            yield Position(row, column)


def positions_for(
    count: int,
    rows: int,
    columns: int,
    occupied: Collection[Position],
    *,
    start: Position | None,
    box: str,
) -> list[Position]:
    """Where `count` items go: from start on in row-major order, every one free (refused if
    one is taken), or, with no start, the first free ones."""
    if start is not None:
        wanted = list(row_major(rows, columns, start))[:count]
        if len(wanted) < count:
            raise RuleViolation(
                f"box {box} has {len(wanted)} position(s) from {start.label} on "
                f"({grid_span(rows, columns)}); {count} are needed"
            )
        taken = [at.label for at in wanted if at in occupied]
        if taken:
            raise RuleViolation(f"box {box}: position {', '.join(taken)} already holds an item")
        return wanted
    free = [at for at in row_major(rows, columns) if at not in occupied]
    if len(free) < count:
        raise RuleViolation(f"box {box} has {len(free)} free position(s); {count} are needed")
    return free[:count]
