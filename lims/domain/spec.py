"""The release specification, and the verdict it gives on a lot.

One entry per test in `[release.<test>]` of lims.toml. A site changes the
values it needs; entries it leaves out keep their packaged defaults, so a
partial table never drops a criterion silently. Defaults follow the ISCT
minimal criteria for MSC (Dominici et al. 2006) and the DESIGN conventions.

A criterion is one of three kinds, told apart by `kind`: a range on a
recorded number (numeric), the passing words of a recorded result
(categorical), or a range on a number read off the lot itself (derived).
A recorded number may be censored, `<0.5` or `>99.5`: beyond the method's range,
it passes only if every value it may stand for does.
`evaluate` decides release from plain data, so the most safety-critical rule
of lims is tested without a database; the QC service only loads that data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, PydanticKnownError

from lims.domain.states import DEVIATION, LOT, LotState, OOSOutcome, expired
from lims.timeutil import show_time

# Safety tests: a failure here can never be waived (the rule, not a setting), and no
# specification version may leave one out, make it optional, or relax what follows.
NEVER_WAIVABLE = frozenset({"sterility", "mycoplasma", "endotoxin"})
# A contamination test: a `positive` result of it never passes.
NEVER_PASSES_POSITIVE = ("sterility", "mycoplasma")
ALWAYS_BOUNDED_ABOVE = "endotoxin"
TEST_NAME = r"[a-z][a-z0-9_]{1,31}"
PERCENT = "%"
KINDS = ("numeric", "categorical", "derived")
# Every key of a [release.<test>] table, in the order lims has always written them.
TABLE_KEYS = (
    "kind",
    "description",
    "unit",
    "min",
    "max",
    "values",
    "passing",
    "required",
    "waivable",
)
# Keys that may be None to mean "not given": in code, and in a criterion's own table.
_OPTIONAL_KEYS = frozenset({"unit", "min", "max", "values", "passing"})
# Keys of a release while a final result is pending (issue 13), with their defaults. A table
# holds them only where they differ: a criterion without them is the table it always was,
# so lots signed and specification versions stored before keep their hashes and text.
PENDING_KEYS: Mapping[str, Any] = {"release_while_pending": False, "interim_tests": []}
# The value a test started but not yet read is recorded as (lims qc record LOT TEST pending).
PENDING = "pending"


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


def _interim(description: str) -> dict[str, Any]:
    """A test that stands in for a final result still to come: required only then."""
    return {**_negative(description), "required": False}


DEFAULT_SPEC: dict[str, dict[str, Any]] = {
    "viability": {
        "kind": "numeric",
        "description": "viability of the final product (trypan blue)",
        "unit": PERCENT,
        "min": 70.0,
    },
    # A fresh product outlives no 7-14 day culture: it may be released on interim results.
    "sterility": {
        **_negative("sterility (Ph. Eur. 2.6.27 / USP <71>)"),
        "release_while_pending": True,
        "interim_tests": ["gram_stain", "sterility_interim"],
    },
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
    "gram_stain": _interim("Gram stain of the final product"),
    "sterility_interim": _interim(
        "rapid or automated culture (Ph. Eur. 2.6.27): no growth to date"
    ),
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

# Tests lims can judge that no specification has unless a site enables one (`spec set`, or
# lims.toml at `lims init`) with its min and max: these tables are laid under the site's.
OPTIONAL_SPEC: dict[str, dict[str, Any]] = {
    "cell_dose_per_kg": {
        "kind": "derived",
        "description": "viable cells in all the lot's vials per kg of the patient's weight",
        "unit": "cells/kg",
    },
}


# --- what a lot shows -------------------------------------------------------------------------

# A numeric result beyond the method's range: below (`<0.5`) or above (`>99.5`) its number.
Qualifier = Literal["<", ">"]
QUALIFIERS: tuple[Qualifier, ...] = ("<", ">")


def split_qualifier(text: str) -> tuple[Qualifier | None, str]:
    """A censored value's operator and the rest of its text: '<0.5' is ('<', '0.5');
    text that starts with no operator is (None, text)."""
    for qualifier in QUALIFIERS:
        if text.startswith(qualifier):
            return qualifier, text[1:]
    return None, text


@dataclass(frozen=True)
class RecordedResult:
    """One QC result as recorded; `number` is the value of a numeric test as a number, and
    `qualifier` says it is a bound the true value lies below or above (`number` the bound)."""

    id: int
    test: str
    value: str
    number: float | None
    unit: str | None
    method: str | None
    tested_at: datetime
    reason: str | None
    recorded_by: str
    investigation_id: int | None = None  # the OOS deviation it was recorded in the study of
    qualifier: Qualifier | None = None
    # A test started whose final result is to come (value "pending", tested_at its start).
    pending: bool = False
    expected_final_at: datetime | None = None


@dataclass(frozen=True)
class DeviationFacts:
    """A deviation on the lot or on the culture it came from, as release sees it."""

    id: int
    description: str
    status: str  # open or closed
    on_lot: bool  # only a deviation on the lot itself can waive one of its results
    waived: bool
    criterion: str | None
    waived_result_id: int | None  # the result the waiver was signed for; None if none was
    kind: str = "manual"
    result_id: int | None = None  # an OOS deviation's failing result
    outcome: str | None = None  # an OOS deviation's, once closed: invalidated or confirmed


@dataclass(frozen=True)
class LotFacts:
    """Everything besides the QC results that decides whether a lot may be released."""

    code: str
    status: str  # as stored: quarantine, released or rejected
    spec_version: int  # the specification version in force when the lot was formulated
    expires_at: datetime
    now: datetime
    zone: tzinfo  # the station's, for the expiry time in the blocking reason
    cells_per_vial: float
    final_passage: int
    deviations: Sequence[DeviationFacts]  # on the lot and on its culture, oldest first
    holds: Sequence[str] = ()  # QA's holds standing on the lot, each as its reason reads
    vials: int = 1  # formulated, whatever became of them since
    patient_weight_kg: float | None = None  # None: no weight on record


def _cells_per_kg(lot: LotFacts) -> float | None:
    """The cells of every vial of the lot (a lot is one patient's dose) per kg they weigh."""
    if lot.patient_weight_kg is None:
        return None
    return lot.vials * lot.cells_per_vial / lot.patient_weight_kg


# Derived tests are read off the lot, each from its own fact: a test missing here has
# no value to read, rather than silently reading another test's. None is a fact the lot
# lacks, which fails the criterion for the reason NO_VALUE gives.
DERIVED_TESTS: Mapping[str, Callable[[LotFacts], float | None]] = {
    "cell_dose": lambda lot: lot.cells_per_vial,
    "final_passage": lambda lot: lot.final_passage,
    "cell_dose_per_kg": _cells_per_kg,
}
# Derived tests read off what may still be corrected once the lot is released (the patient's
# weight): a released lot failing one is held, as by a result failing after release. The
# others read the lot's own formulation, fixed when it was signed.
READ_OFF_THE_PATIENT = frozenset({"cell_dose_per_kg"})
NO_VALUE: Mapping[str, str] = {
    "cell_dose_per_kg": (
        "the patient's weight is missing (record it with `lims patient correct --weight-kg`)"
    ),
}


# --- the criteria -----------------------------------------------------------------------------

Description = Annotated[str, Field(min_length=1, max_length=200)]
Unit = Annotated[str, Field(max_length=20)]
Word = Annotated[str, Field(pattern=r"[a-z][a-z0-9_-]{0,31}")]


def compact(number: float) -> str:
    """A number as typed at the bench: 70, 0.5, 1e6."""
    return f"{number:.6g}".replace("e+0", "e").replace("e+", "e")


def exact(number: float) -> str:
    """A number as compact as it reads and never rounded: a result of 7.000001 EU/mL is no 7,
    which would pass a limit of 7, and it is recorded and judged as it reads."""
    for digits in range(6, 17):
        if float(text := f"{number:.{digits}g}") == number:
            break
    else:
        text = f"{number:.17g}"  # 17 significant digits tell every float apart
    return text.replace("e+0", "e").replace("e+", "e")


class _Criterion(BaseModel):
    """What every kind of criterion shares: immutable, no unknown keys, one persisted shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_serializer(mode="plain")
    def as_table(self) -> dict[str, Any]:
        """The criterion as a [release.<test>] table, every key of every kind present.

        A QA release signature hashes the lot's record with this shape in it and
        `lot show` recomputes it, and `lims config show` prints it: a key another
        kind uses is None, as when all kinds were one class, so a lot signed then
        still shows an unchanged record. The keys of a release while pending follow,
        each only where it differs from its default (PENDING_KEYS).
        """
        table = {key: getattr(self, key, None) for key in TABLE_KEYS}
        for key, default in PENDING_KEYS.items():
            value = getattr(self, key, default)
            if value != default:
                table[key] = list(value) if isinstance(value, list) else value
        return table


class _PendingKeys(_Criterion):
    """Whether the lot may be released while the test's final result is pending, on the
    interim tests that must then pass. Validated against the whole specification, as they
    name other tests (_pending_sound), which refuses them on a derived criterion."""

    release_while_pending: bool = False
    interim_tests: list[str] = Field(default_factory=list)


class _Bounded(_PendingKeys):
    """A range on a number: min, max or both, in a unit."""

    kind: Literal["numeric", "derived"]
    description: Description
    unit: Unit | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True
    waivable: bool = True

    @model_validator(mode="after")
    def _sensible(self) -> Self:
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
        """The criterion as QA reads it: '≥ 70 %', '≤ 7 EU/mL', '1e6-1e8 cells/vial'."""
        if self.min is not None and self.max is not None:
            return f"{compact(self.min)}-{compact(self.max)} {self.unit}"
        if self.min is not None:
            return f"≥ {compact(self.min)} {self.unit}"
        assert self.max is not None  # the validator asks for min, max or both
        return f"≤ {compact(self.max)} {self.unit}"

    def passes(self, value: float | str, qualifier: Qualifier | None = None) -> bool:
        """Within the range; a word (recorded while the test was categorical) never is.

        A censored value passes only if all it may stand for lies within the range: a
        recorded number is never negative, so `<X` is [0, X) and `>X` is (X, ∞).
        """
        if isinstance(value, str) or math.isnan(value):  # text that reads as no number
            return False
        if qualifier == "<":
            return (self.min is None or self.min <= 0) and (self.max is None or value <= self.max)
        if qualifier == ">":
            return self.max is None and (self.min is None or value >= self.min)
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def doubts(self, value: float, qualifier: Qualifier) -> list[str]:
        """Why a censored value does not pass, as QA reads it: 'below 10 may still be above 7'."""
        bound = exact(value)
        doubts = []
        if qualifier == "<":
            if self.max is not None and value > self.max:
                doubts.append(f"below {bound} may still be above {compact(self.max)}")
            if self.min is not None and self.min > 0:
                certain = "is" if value <= self.min else "may still be"
                doubts.append(f"below {bound} {certain} below {compact(self.min)}")
        else:
            if self.max is not None:
                certain = "is" if value >= self.max else "may still be"
                doubts.append(f"above {bound} {certain} above {compact(self.max)}")
            if self.min is not None and value < self.min:
                doubts.append(f"above {bound} may still be below {compact(self.min)}")
        return doubts


class NumericCriterion(_Bounded):
    """A range on a recorded result, such as viability ≥ 70 %."""

    kind: Literal["numeric"] = "numeric"


class DerivedCriterion(_Bounded):
    """A range on a number read off the lot (see DERIVED_TESTS), such as the cell dose."""

    kind: Literal["derived"] = "derived"


class CategoricalCriterion(_PendingKeys):
    """The words a result may be recorded as, and those of them that pass."""

    kind: Literal["categorical"] = "categorical"
    description: Description
    values: list[Word] = Field(default_factory=list)
    passing: list[str] = Field(default_factory=list)
    required: bool = True
    waivable: bool = True

    @model_validator(mode="after")
    def _sensible(self) -> Self:
        if not self.values or not self.passing:
            raise ValueError("a categorical criterion needs values and passing")
        if len(set(self.values)) != len(self.values):
            raise ValueError("values must not repeat")
        if not set(self.passing) <= set(self.values):
            raise ValueError("passing must be a subset of values")
        return self

    @property
    def unit(self) -> None:
        """A word has no unit; shown and serialised as such."""
        return None

    def describe(self) -> str:
        """The criterion as QA reads it: 'negative', 'normal'."""
        return " or ".join(self.passing)

    def passes(self, value: float | str) -> bool:
        """One of the passing words; a number (recorded while the test was numeric) never is."""
        return value in self.passing


def _from_table(value: Any, handler: pydantic.ValidatorFunctionWrapHandler) -> Any:
    """A [release.<test>] table read as the criterion its kind names.

    lims.toml has one flat table shape for every kind. Sites see the same
    messages as when it was one class: a key the kind has no use for is named
    as such rather than as an unknown key, and every error is located at the
    table's own keys (release.viability.min), not at the union member tried.
    """
    if isinstance(value, _Criterion):
        return handler(value)
    if not isinstance(value, dict):
        raise PydanticKnownError("model_type", {"class_name": "Criterion"})
    if "kind" not in value:
        raise _error_at_kind("missing", value)
    kind = value["kind"]
    if kind not in KINDS:
        raise _error_at_kind(
            "literal_error", kind, expected="'numeric', 'categorical' or 'derived'"
        )
    given = {key: v for key, v in value.items() if not (v is None and key in _OPTIONAL_KEYS)}
    if kind == "categorical":
        if given.keys() & {"unit", "min", "max"}:
            raise ValueError("a categorical criterion has values and passing, not min/max/unit")
    elif given.keys() & {"values", "passing"}:
        raise ValueError(f"a {kind} criterion has min/max, not values/passing")
    try:
        return handler(given)
    except ValidationError as error:
        raise _at_table_keys(error) from None


def _error_at_kind(error_type: str, given: Any, **context: str) -> ValidationError:
    detail = InitErrorDetails(type=error_type, loc=("kind",), input=given)
    if context:
        detail["ctx"] = context
    return ValidationError.from_exception_data("Criterion", [detail])


def _at_table_keys(error: ValidationError) -> ValidationError:
    """The errors of one union member, with the member's tag taken out of their location."""
    details = []
    for found in error.errors(include_url=False):
        detail = InitErrorDetails(type=found["type"], loc=found["loc"][1:], input=found["input"])
        if "ctx" in found:
            detail["ctx"] = found["ctx"]
        details.append(detail)
    return ValidationError.from_exception_data(error.title, details)


Criterion = Annotated[
    NumericCriterion | CategoricalCriterion | DerivedCriterion,
    Field(discriminator="kind"),
    pydantic.WrapValidator(_from_table),
]
Spec = Mapping[str, Criterion]


def _merged_with_defaults(value: Any) -> Any:
    """A site's [release] tables laid over the packaged defaults, key by key."""
    if not isinstance(value, dict):
        return value
    merged = {test: dict(entry) for test, entry in DEFAULT_SPEC.items()}
    for test, entry in value.items():
        if isinstance(entry, _Criterion):
            entry = entry.as_table()
        if isinstance(entry, dict):
            merged[test] = {**merged.get(test, OPTIONAL_SPEC.get(test, {})), **entry}
        else:
            merged[test] = entry
    return merged


def _valid_tests(spec: dict[str, Criterion]) -> dict[str, Criterion]:
    _unrelaxed(spec)
    for test, criterion in spec.items():
        if not re.fullmatch(TEST_NAME, test):
            raise ValueError(f"{test!r} is not a test name (lower-case letters, digits, _)")
        if (criterion.kind == "derived") != (test in DERIVED_TESTS):
            raise ValueError(
                f"{test}: kind 'derived' belongs to {', '.join(DERIVED_TESTS)} only"
                if criterion.kind == "derived"
                else f"{test} is read off the lot: its kind must be 'derived'"
            )
    _pending_sound(spec)
    return spec


def _pending_sound(spec: Mapping[str, Criterion]) -> None:
    """A test released while pending names interim tests, each a recorded test of the
    specification that is final at release; nothing else names any."""
    for test, criterion in spec.items():
        where = (test, "interim_tests")
        interim = criterion.interim_tests
        if criterion.kind == "derived":
            if criterion.release_while_pending or interim:
                key = "release_while_pending" if criterion.release_while_pending else where[1]
                raise _refused(
                    (test, key),
                    "a derived criterion is read off the lot: it is never pending",
                    getattr(criterion, key),
                )
            continue
        if criterion.release_while_pending and not interim:
            raise _refused(
                where,
                "must name the tests that must pass instead while the final result is pending",
                interim,
            )
        if interim and not criterion.release_while_pending:
            raise _refused(where, "only with release_while_pending = true", interim)
        if len(set(interim)) != len(interim):
            raise _refused(where, "must not repeat", interim)
        for name in interim:
            other = spec.get(name)
            if name == test:
                raise _refused(where, f"{test} cannot stand in for itself", interim)
            if other is None:
                raise _refused(where, f"{name} is not a test of the specification", interim)
            if other.kind == "derived":
                raise _refused(
                    where, f"{name} is read off the lot: an interim test is recorded", interim
                )
            if other.release_while_pending:
                raise _refused(
                    where,
                    f"{name} may itself be pending: an interim test is final at release",
                    interim,
                )
        words = criterion.values if isinstance(criterion, CategoricalCriterion) else []
        if criterion.release_while_pending and PENDING in words:
            raise _refused(
                (test, "values"),
                f"{PENDING!r} is what a test started but not yet read is recorded as",
                words,
            )


def _unrelaxed(spec: Mapping[str, Criterion]) -> None:
    """The rules no specification version can relax, whoever approved it.

    Each refusal is located at the key that breaks it (sterility.required).
    """
    for test in sorted(NEVER_WAIVABLE):
        criterion = spec.get(test)
        if criterion is None:
            raise _refused((test,), "a safety test: no specification may leave it out", None)
        if not criterion.required:
            raise _refused((test, "required"), "must be true: a safety test", False)
        if criterion.waivable:
            raise _refused((test, "waivable"), "can never be waivable: a safety test", True)
    for test in NEVER_PASSES_POSITIVE:
        criterion = spec[test]
        if not isinstance(criterion, CategoricalCriterion) or "positive" not in criterion.values:
            raise _refused(
                (test, "values"), "must be categorical with positive among its values", None
            )
        if "positive" in criterion.passing:
            raise _refused((test, "passing"), "a positive result never passes", criterion.passing)
        if list(criterion.passing) != ["negative"]:  # any other passing word lets a growth pass
            raise _refused(
                (test, "passing"), 'must be ["negative"]: only no growth passes', criterion.passing
            )
    for test in sorted(NEVER_WAIVABLE):
        # What stands in for a safety test's final result is no more waivable than it, and is
        # itself a safety test or, like the Gram stain, a test for contamination that only
        # `negative` passes: no other test lets a lot go before its final result.
        for name in spec[test].interim_tests:
            interim = spec.get(name)
            # A test that is none, _pending_sound names as such; a safety test is held above.
            if interim is None or interim.kind == "derived" or name in NEVER_WAIVABLE:
                continue
            if interim.waivable:
                raise _refused(
                    (name, "waivable"),
                    f"must be false: an interim test of {test}, a safety test",
                    True,
                )
            if not isinstance(interim, CategoricalCriterion) or "positive" not in interim.values:
                raise _refused(
                    (test, "interim_tests"),
                    f"{name} cannot stand in for {test}, a safety test: an interim test of one "
                    "is another safety test or a test for contamination, with positive among "
                    "its values",
                    list(spec[test].interim_tests),
                )
            if list(interim.passing) != ["negative"]:
                raise _refused(
                    (name, "passing"),
                    f'must be ["negative"]: an interim test of {test}, a safety test, passes '
                    "only negative",
                    interim.passing,
                )
    endotoxin = spec[ALWAYS_BOUNDED_ABOVE]
    if endotoxin.kind != "numeric" or endotoxin.max is None:
        raise _refused((ALWAYS_BOUNDED_ABOVE, "max"), "endotoxin must have a maximum", None)


def _refused(where: tuple[str, ...], message: str, given: Any) -> ValidationError:
    detail = InitErrorDetails(
        type=PydanticCustomError("unrelaxable", message), loc=where, input=given
    )
    return ValidationError.from_exception_data("ReleaseSpec", [detail])


# The specification `lims init` starts a site with: its files' tables over the packaged defaults.
ReleaseSpec = Annotated[
    dict[str, Criterion],
    pydantic.BeforeValidator(_merged_with_defaults),
    pydantic.AfterValidator(_valid_tests),
]
# A specification version as stored: complete in itself. Never merged with the packaged
# defaults, so a default test added by a later lims reaches a site only through `spec set`.
StoredSpec = Annotated[dict[str, Criterion], pydantic.AfterValidator(_valid_tests)]


def laid_over(current: Spec, tables: Mapping[str, Any]) -> dict[str, Any]:
    """A `spec set` file's [release.<test>] tables laid over the current version key by key.

    A test the current version lacks is taken as the file defines it, so a site adds its
    own test by defining it completely, and enables one of lims's optional tests
    (OPTIONAL_SPEC) by giving what it leaves out, its min and max; the result is validated
    as a StoredSpec.
    """
    merged: dict[str, Any] = {test: criterion.as_table() for test, criterion in current.items()}
    for test, table in tables.items():
        if isinstance(table, dict) and test in merged:
            merged[test] = {**merged[test], **table}
        elif isinstance(table, dict) and test in OPTIONAL_SPEC:
            merged[test] = {**OPTIONAL_SPEC[test], **table}
        else:
            merged[test] = table
    return merged


# --- the standing of each result ---------------------------------------------------------------

ResultStatus = Literal[
    "valid", "investigation", "invalidated", "superseded", "pending", "completed"
]
VALID: ResultStatus = "valid"  # the one result of its test that counts now
# A test started whose final result has not been recorded yet, and one whose final result
# has been since: neither is ever a result that counts.
STARTED: ResultStatus = "pending"
COMPLETED: ResultStatus = "completed"
# The results that count, or counted until a later one came: never taken out by an OOS.
COUNTED: frozenset[ResultStatus] = frozenset({VALID, "superseded"})
OOS = "oos"


@dataclass(frozen=True)
class StandingResult:
    """A result and whether it counts: `valid` (the one that counts), `superseded` by a later
    valid one, `investigation` (recorded while its OOS deviation is open, or kept when it
    confirmed the original) or `invalidated` by its OOS deviation; deviation_id names that.
    A test started is `pending` until a final result of it is recorded, then `completed`."""

    result: RecordedResult
    status: ResultStatus
    deviation_id: int | None
    confirmed: bool = False  # its own OOS deviation was closed with the result confirmed

    @property
    def counts(self) -> bool:
        return self.status in COUNTED


def standings(
    results: Sequence[RecordedResult], deviations: Sequence[DeviationFacts]
) -> list[StandingResult]:
    """Every result, oldest first, with its standing.

    An out-of-specification result stands until its deviation is closed with it invalidated;
    the results of that investigation count only then. Of the results that count, the latest
    of each test is valid and the earlier are superseded.
    """
    opened_by = {d.result_id: d for d in deviations if d.kind == OOS and d.result_id is not None}
    by_id = {d.id: d for d in deviations}
    last_final = {result.test: result.id for result in results if not result.pending}
    judged: list[StandingResult] = []
    for result in results:
        if result.pending:
            completed = last_final.get(result.test, result.id) > result.id
            judged.append(StandingResult(result, COMPLETED if completed else STARTED, None))
            continue
        oos = opened_by.get(result.id)
        investigated = by_id.get(result.investigation_id) if result.investigation_id else None
        confirmed = oos is not None and oos.outcome == OOSOutcome.CONFIRMED
        if oos is not None and oos.outcome == OOSOutcome.INVALIDATED:
            judged.append(StandingResult(result, "invalidated", oos.id))
        elif oos is None and investigated is not None:
            if investigated.outcome == OOSOutcome.INVALIDATED:
                judged.append(StandingResult(result, VALID, investigated.id))
            else:
                judged.append(StandingResult(result, "investigation", investigated.id))
        else:
            deviation = oos or investigated
            judged.append(
                StandingResult(result, VALID, deviation.id if deviation else None, confirmed)
            )
    latest = {e.result.test: e.result.id for e in judged if e.status == VALID}
    return [
        replace(entry, status="superseded")
        if entry.status == VALID and latest[entry.result.test] != entry.result.id
        else entry
        for entry in judged
    ]


# --- the verdict ------------------------------------------------------------------------------

Verdict = Literal["pass", "fail", "missing", "pending"]


@dataclass(frozen=True)
class PendingTest:
    """A test started whose final result is still to come."""

    test: str
    method: str | None
    started_at: datetime
    expected_final_at: datetime | None
    started_by: str


@dataclass(frozen=True)
class CriterionVerdict:
    test: str
    criterion: Criterion
    result: str | None  # the value that counts, as recorded or read off the lot
    verdict: Verdict
    history: list[StandingResult]  # every result of this test, oldest first
    waived_by: int | None  # the closed deviation whose waiver covers this failure
    blocking: str | None  # why this criterion stops release, if it does


@dataclass(frozen=True)
class Evaluation:
    lot_id: str
    lot_status: str  # as stored: quarantine, released, rejected or recalled
    spec_version: int  # the version of the specification judged by
    criteria: list[CriterionVerdict]
    blocking: list[str]
    results: list[StandingResult]  # every result of every test, oldest first
    hold_reasons: list[str]  # what keeps the lot's vials from patients, beside its status
    pending: list[PendingTest] = field(default_factory=list)  # started, final result to come

    @property
    def releasable(self) -> bool:
        return not self.blocking

    @property
    def pending_tests(self) -> list[str]:
        return [started.test for started in self.pending]

    @property
    def on_hold(self) -> bool:
        return bool(self.hold_reasons)


def evaluate(spec: Spec, results: Sequence[RecordedResult], facts: LotFacts) -> Evaluation:
    """Each criterion's verdict on the result that counts, and every reason release is blocked.

    spec is the version the lot was formulated under (facts.spec_version), not the current one.

    results are the lot's QC results, oldest first. The reasons come in the
    order QA works through them: criteria in specification order, then open
    deviations oldest first, then holds, then the lot's own state. A released lot is held
    by what would block its release now: an open deviation or a failure not waived (of a
    derived test, one read off the patient, whose weight may be corrected after release).
    """
    standing = standings(results, facts.deviations)
    histories: dict[str, list[StandingResult]] = {}
    for entry in standing:
        histories.setdefault(entry.result.test, []).append(entry)
    waivers = {
        (deviation.criterion, deviation.waived_result_id): deviation.id
        for deviation in facts.deviations
        if not DEVIATION.pending(deviation.status) and deviation.waived and deviation.on_lot
    }
    judged = [
        _judged(test, criterion, histories.get(test, []), facts, waivers)
        for test, criterion in spec.items()
    ]
    verdicts = [_while_pending(verdict, judged) for verdict in judged]
    failures = [verdict.blocking for verdict in verdicts if verdict.blocking]
    open_deviations = [
        f"deviation {deviation.id} open: {deviation.description}"
        for deviation in facts.deviations
        if DEVIATION.pending(deviation.status)
    ]
    blocking = [*failures, *open_deviations, *facts.holds]
    if not LOT.allows("release", facts.status):
        blocking.append(f"lot {facts.code} is {facts.status}")
    elif expired(facts.expires_at, facts.now):
        blocking.append(f"lot {facts.code} expired at {show_time(facts.expires_at, facts.zone)}")
    holds = list(facts.holds)
    if facts.status == LotState.RELEASED:
        since = [
            v.blocking
            for v in verdicts
            if v.blocking and (v.criterion.kind != "derived" or v.test in READ_OFF_THE_PATIENT)
        ]
        holds += since + open_deviations
    started = [
        PendingTest(
            entry.result.test,
            entry.result.method,
            entry.result.tested_at,
            entry.result.expected_final_at,
            entry.result.recorded_by,
        )
        for entry in standing
        if entry.status == STARTED and entry.result.test in spec
    ]
    return Evaluation(
        facts.code, facts.status, facts.spec_version, verdicts, blocking, standing, holds, started
    )


def _while_pending(
    verdict: CriterionVerdict, judged: Sequence[CriterionVerdict]
) -> CriterionVerdict:
    """A pending test stops release unless its criterion allows release while pending and
    every interim test passes: they are then required, a waiver standing in for none."""
    if verdict.verdict != "pending":
        return verdict
    criterion = verdict.criterion
    if not criterion.release_while_pending:
        reason = (
            f"{verdict.test} pending: its final result is needed for release"
            if criterion.required
            else None
        )
        return replace(verdict, blocking=reason)
    by_test = {other.test: other for other in judged}
    unmet = [
        f"{name} {_interim_state(by_test.get(name))}"
        for name in criterion.interim_tests
        if name not in by_test or by_test[name].verdict != "pass"
    ]
    if not unmet:
        return replace(verdict, blocking=None)
    return replace(
        verdict,
        blocking=f"{verdict.test} pending: its interim tests must pass to release before its "
        f"final result ({'; '.join(unmet)})",
    )


def _interim_state(verdict: CriterionVerdict | None) -> str:
    if verdict is None:
        return "not in the specification"
    if verdict.verdict == "fail":
        return f"failed: {verdict.result}"
    return verdict.verdict


def _judged(
    test: str,
    criterion: Criterion,
    history: list[StandingResult],
    facts: LotFacts,
    waivers: Mapping[tuple[str | None, int | None], int],
) -> CriterionVerdict:
    """One criterion against the result of its test that counts, or against the lot.

    A waiver covers a failure only of the recorded result it was signed for, never a
    missing result, and never a safety test's, even in a specification that did not come
    through ReleaseSpec.
    """
    latest = next((entry.result for entry in reversed(history) if entry.status == VALID), None)
    # A failure QA confirmed stands even once a later result passes: it is waived or the
    # lot is not released. Only an invalidation takes a failure out of the verdict.
    standing_failure = next(
        (
            entry.result
            for entry in history
            if entry.confirmed
            and entry.counts
            and not passes(criterion, entry.result)
            and (test, entry.result.id) not in waivers
        ),
        None,
    )
    if standing_failure is not None and criterion.kind != "derived":
        latest = standing_failure
    value: str | None
    verdict: Verdict
    if criterion.kind == "derived":
        read = DERIVED_TESTS[test](facts)
        value = None if read is None else compact(float(read))
        verdict = "pass" if read is not None and criterion.passes(float(read)) else "fail"
    elif latest is None:
        pending = any(entry.status == STARTED for entry in history)
        value, verdict = None, ("pending" if pending else "missing")
    else:
        value = latest.value
        verdict = "pass" if passes(criterion, latest) else "fail"
    waived_by = None
    if verdict == "fail" and latest is not None and _waivable(test, criterion):
        waived_by = waivers.get((test, latest.id))
    reason = None
    if waived_by is None:
        unit = f" {criterion.unit}" if criterion.unit else ""
        if verdict == "fail" and value is None:
            reason = f"{test} failed: {NO_VALUE[test]} (spec {criterion.describe()})"
        elif verdict == "fail":
            reason = f"{test} failed: {value}{unit} (spec {criterion.describe()})"
            doubted = doubt(criterion, latest) if latest is not None else None
            if doubted and criterion.kind != "derived":
                reason += f": {doubted}"
        elif verdict == "missing" and criterion.required:
            reason = f"{test} missing (spec {criterion.describe()})"
    return CriterionVerdict(test, criterion, value, verdict, history, waived_by, reason)


def _waivable(test: str, criterion: Criterion) -> bool:
    return criterion.waivable and criterion.kind != "derived" and test not in NEVER_WAIVABLE


def passes(criterion: Criterion, result: RecordedResult) -> bool:
    """Whether a recorded result meets its criterion: as a number, or as the word recorded."""
    if result.number is None:
        return criterion.passes(result.value)
    if isinstance(criterion, CategoricalCriterion):
        return criterion.passes(result.number)
    return criterion.passes(result.number, result.qualifier)


def doubt(criterion: Criterion, result: RecordedResult) -> str | None:
    """Why a censored result fails its range, said beside its value; None for any other."""
    if result.qualifier is None or result.number is None or not isinstance(criterion, _Bounded):
        return None
    if criterion.passes(result.number, result.qualifier):
        return None
    return "; ".join(criterion.doubts(result.number, result.qualifier))
