"""The release specification: what a lot must show before QA may release it.

One entry per test in `[release.<test>]` of lims.toml. A site changes the
values it needs; entries it leaves out keep their packaged defaults, so a
partial table never drops a criterion silently. Defaults follow the ISCT
minimal criteria for MSC (Dominici et al. 2006) and the DESIGN conventions.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Recorded by `lims qc record`; their results come from the QC lab.
RECORDED_TESTS = (
    "viability",
    "sterility",
    "mycoplasma",
    "endotoxin",
    "cd73",
    "cd90",
    "cd105",
    "cd45",
    "cd34",
    "cd14",
    "cd19",
    "hla_dr",
    "karyotype",
)
# Read off the lot itself rather than recorded.
DERIVED_TESTS = ("cell_dose", "final_passage")
# Safety tests: a failure here can never be waived (the rule, not a setting).
NEVER_WAIVABLE = frozenset({"sterility", "mycoplasma", "endotoxin"})
TEST_NAME = r"[a-z][a-z0-9_]{1,31}"
PERCENT = "%"


def _negative(description: str) -> dict[str, Any]:
    return {
        "kind": "categorical",
        "description": description,
        "values": ["negative", "positive"],
        "passing": ["negative"],
        "waivable": False,
    }


def _marker(description: str, *, positive: bool) -> dict[str, Any]:
    bound = {"min": 95.0} if positive else {"max": 2.0}
    return {"kind": "numeric", "description": description, "unit": PERCENT, **bound}


DEFAULT_SPEC: dict[str, dict[str, Any]] = {
    "viability": {
        "kind": "numeric",
        "description": "viability of the final product (trypan blue)",
        "unit": PERCENT,
        "min": 70.0,
    },
    "sterility": _negative("sterility (Ph. Eur. 2.6.27 / USP <71>)"),
    "mycoplasma": _negative("mycoplasma (Ph. Eur. 2.6.7, NAT)"),
    "endotoxin": {
        "kind": "numeric",
        "description": "bacterial endotoxin (LAL)",
        "unit": "EU/mL",
        "max": 7.0,
        "waivable": False,
    },
    "cd73": _marker("CD73 positive", positive=True),
    "cd90": _marker("CD90 positive", positive=True),
    "cd105": _marker("CD105 positive", positive=True),
    "cd45": _marker("CD45 positive", positive=False),
    "cd34": _marker("CD34 positive", positive=False),
    "cd14": _marker("CD14 positive", positive=False),
    "cd19": _marker("CD19 positive", positive=False),
    "hla_dr": _marker("HLA-DR positive", positive=False),
    "karyotype": {
        "kind": "categorical",
        "description": "karyotype (G-banding)",
        "values": ["normal", "abnormal"],
        "passing": ["normal"],
        "required": False,
    },
    "cell_dose": {
        "kind": "derived",
        "description": "viable cells per vial",
        "unit": "cells/vial",
        "min": 1e6,
        "max": 1e8,
    },
    "final_passage": {
        "kind": "derived",
        "description": "passage of the cells formulated",
        "unit": "passages",
        "max": 5.0,
        "waivable": False,
    },
}


class Criterion(BaseModel):
    """One release criterion: a numeric range, a set of passing values, or a lot property."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["numeric", "categorical", "derived"]
    description: Annotated[str, Field(min_length=1, max_length=200)]
    unit: Annotated[str, Field(max_length=20)] | None = None
    min: float | None = None
    max: float | None = None
    values: list[Annotated[str, Field(pattern=r"[a-z][a-z0-9_-]{0,31}")]] | None = None
    passing: list[str] | None = None
    required: bool = True
    waivable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Criterion:
        if self.kind == "categorical":
            if self.min is not None or self.max is not None or self.unit is not None:
                raise ValueError("a categorical criterion has values and passing, not min/max/unit")
            if not self.values or not self.passing:
                raise ValueError("a categorical criterion needs values and passing")
            if len(set(self.values)) != len(self.values):
                raise ValueError("values must not repeat")
            if not set(self.passing) <= set(self.values):
                raise ValueError("passing must be a subset of values")
            return self
        if self.values is not None or self.passing is not None:
            raise ValueError(f"a {self.kind} criterion has min/max, not values/passing")
        if self.min is None and self.max is None:
            raise ValueError(f"a {self.kind} criterion needs min, max or both")
        if any(bound is not None and not math.isfinite(bound) for bound in (self.min, self.max)):
            raise ValueError("min and max must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be above max")
        if not self.unit:
            raise ValueError(f"a {self.kind} criterion needs a unit")
        if self.unit == PERCENT and any(
            bound is not None and not 0 <= bound <= 100 for bound in (self.min, self.max)
        ):
            raise ValueError("a percentage bound must lie within 0-100")
        return self

    def describe(self) -> str:
        """The criterion as QA reads it: '≥ 70 %', '≤ 7 EU/mL', 'negative'."""
        if self.kind == "categorical":
            assert self.passing is not None
            return " or ".join(self.passing)
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f"{compact(self.min)}-{compact(self.max)}{unit}"
        if self.min is not None:
            return f"≥ {compact(self.min)}{unit}"
        assert self.max is not None
        return f"≤ {compact(self.max)}{unit}"

    def passes(self, value: float | str) -> bool:
        if self.kind == "categorical":
            assert self.passing is not None
            return value in self.passing
        assert isinstance(value, float | int)
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


def compact(number: float) -> str:
    """A number as typed at the bench: 70, 0.5, 1e6."""
    return f"{number:.6g}".replace("e+0", "e").replace("e+", "e")


def _merged_with_defaults(value: Any) -> Any:
    """A site's [release] tables laid over the packaged defaults, key by key."""
    if not isinstance(value, dict):
        return value
    merged = {test: dict(entry) for test, entry in DEFAULT_SPEC.items()}
    for test, entry in value.items():
        if isinstance(entry, Criterion):
            entry = entry.model_dump()
        if isinstance(entry, dict):
            merged[test] = {**merged.get(test, {}), **entry}
        else:
            merged[test] = entry
    return merged


def _valid_tests(spec: dict[str, Criterion]) -> dict[str, Criterion]:
    for test, criterion in spec.items():
        if not re.fullmatch(TEST_NAME, test):
            raise ValueError(f"{test!r} is not a test name (lower-case letters, digits, _)")
        if test in NEVER_WAIVABLE and criterion.waivable:
            raise ValueError(f"{test} can never be waivable: it is a safety test")
        if (criterion.kind == "derived") != (test in DERIVED_TESTS):
            raise ValueError(
                f"{test}: kind 'derived' belongs to {', '.join(DERIVED_TESTS)} only"
                if criterion.kind == "derived"
                else f"{test} is read off the lot: its kind must be 'derived'"
            )
    return spec


ReleaseSpec = Annotated[
    dict[str, Criterion],
    BeforeValidator(_merged_with_defaults),
    AfterValidator(_valid_tests),
]
