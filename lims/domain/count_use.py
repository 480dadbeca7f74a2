"""A step's numbers taken from an imported count: the cells in the counted suspension, and
how far apart in time a count and the step that uses it may be.

A cell counter reports densities (cells/mL); the bench knows the volume the counted cells
were suspended in. Their product is the step's number of cells, computed in decimal from
the printed form (repr) of both stored floats and rounded half to even to a whole cell: in
binary floating point 0.75e6 cells/mL × 4.1 mL is 3074999.9999999995, which truncation would
make one cell short of the 3,075,000 anyone multiplying by hand gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal

from lims.domain import quantities
from lims.domain.cell_counting import STATUS_OK
from lims.domain.ids import CountId
from lims.errors import BadInput, RuleViolation
from lims.timeutil import as_utc, local_day_end, show_time

# The volume a counted suspension may be: from a hundredth of a millilitre (a few drops
# resuspended in a tube) to five litres (a bioreactor's harvest).
SUSPENSION_MIN_ML = 0.01
SUSPENSION_MAX_ML = 5000.0
SUSPENSION_FIELD = "suspension-ml"
COUNT_FIELD = "count"
USE = "a count is taken with --count CNT-… --suspension-ml V (the mL the counted cells are in)"


# The steps that take a count, as a count's used_by names them: "passage A999926000001-C1-P2".
STEP_KINDS = ("passage", "culture", "lot", "aspirate")


def taken_by(kind: str, code: str) -> str:
    """What a count records of the step that took it (used_by): its kind and its id (an
    aspirate's DIN as stored, 13 characters)."""
    assert kind in STEP_KINDS, kind
    return f"{kind} {code}"


@dataclass(frozen=True)
class CountRequest:
    """A count named for a step, and the volume its densities are multiplied by."""

    code: str  # CNT-000123
    suspension_ml: float


def requested(count: str | None, suspension_ml: str | float | None) -> CountRequest | None:
    """The count a step is asked to take its numbers from, checked as typed; None when the
    step's numbers are typed. Each option needs the other."""
    if count is None and suspension_ml is None:
        return None
    if suspension_ml is None:
        raise BadInput(
            SUSPENSION_FIELD,
            "required with --count: the volume in mL the counted cells are suspended in",
        )
    if count is None:
        raise BadInput(SUSPENSION_FIELD, f"only with --count: {USE}")
    code = CountId.read(count, COUNT_FIELD).code
    volume = quantities.positive(
        SUSPENSION_FIELD,
        suspension_ml,
        unit="mL",
        smallest=SUSPENSION_MIN_ML,
        high=SUSPENSION_MAX_ML,
    )
    return CountRequest(code, volume)


def not_typed(request: CountRequest | None, **typed: object | None) -> None:
    """What a count gives a step is not typed as well: one source for each number."""
    if request is None:
        return
    for name, value in typed.items():
        if value is not None:
            raise BadInput(
                name,
                f"not with --count: the count {request.code} gives it; type it without "
                "--count and --suspension-ml, or leave it to the count",
            )


def typed_unless_counted(request: CountRequest | None, typed_form: str, **typed: object) -> None:
    """Numbers a step needs, typed (typed_form says how) when no count gives them."""
    missing = [name for name, value in typed.items() if value is None]
    if request is None and missing:
        raise BadInput(
            "/".join(missing),
            f"required: type {typed_form}, or take them from an imported count with "
            "--count CNT-… --suspension-ml V",
        )


def cells_in(per_ml: float, suspension_ml: float) -> int:
    """The cells in suspension_ml of a suspension of per_ml cells/mL, to the whole cell."""
    product = Decimal(repr(per_ml)) * Decimal(repr(suspension_ml))
    return int(product.to_integral_value(rounding=ROUND_HALF_EVEN))


def require_cells(code: str, what: str, per_ml: float, suspension_ml: float) -> int:
    """The cells a count gives a step: a positive whole number lims can record."""
    cells = cells_in(per_ml, suspension_ml)
    if not 0 < cells <= quantities.COUNT_MAX:
        raise RuleViolation(
            f"count {code} gives {cells:,} {what} ({per_ml:g} /mL × {suspension_ml:g} mL): a "
            f"step records 1 to {quantities.COUNT_MAX:.0e} cells"
        )
    return cells


def require_ok(code: str, status: str) -> None:
    """Only a count its instrument reported without a warning is used."""
    if status != STATUS_OK:
        raise RuleViolation(
            f"count {code} is not usable: its instrument reported {status!r}, not {STATUS_OK!r}"
        )


@dataclass(frozen=True)
class Window:
    """When a step using a count may be dated: from earliest to latest, both included."""

    earliest: datetime
    latest: datetime


def window(analysed_at: datetime, *, date_only: bool, max_age_hours: float, zone: tzinfo) -> Window:
    """The times a step may be dated to use a count analysed at analysed_at: within the
    limit before or after it, or, when the file gives only the day, within the limit before
    that day begins or after it ends in the station's zone."""
    limit = timedelta(hours=max_age_hours)
    if not date_only:
        return Window(analysed_at - limit, analysed_at + limit)
    day = as_utc(analysed_at).astimezone(zone).date()
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    return Window(start - limit, local_day_end(day, zone) + limit)


def require_within(
    code: str,
    step_at: datetime,
    analysed_at: datetime,
    *,
    date_only: bool,
    max_age_hours: float,
    zone: tzinfo,
) -> None:
    """A count belongs to cells counted just before or after the step that uses them."""
    allowed = window(analysed_at, date_only=date_only, max_age_hours=max_age_hours, zone=zone)
    if allowed.earliest <= step_at <= allowed.latest:
        return
    analysed = (
        f"on {as_utc(analysed_at).astimezone(zone).date().isoformat()} (its file gives the "
        "day only)"
        if date_only
        else f"at {show_time(analysed_at, zone)}"
    )
    side = "before" if step_at < allowed.earliest else "after"
    raise RuleViolation(
        f"count {code} was analysed {analysed}; the step at {show_time(step_at, zone)} is "
        f"more than {max_age_hours:g} h {side} it (site setting counts.max_age_hours): a step "
        f"uses a count of its own cells, dated from {show_time(allowed.earliest, zone)} to "
        f"{show_time(allowed.latest, zone)}"
    )
