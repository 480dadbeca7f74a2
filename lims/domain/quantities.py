"""Numbers typed at the bench: counts, percentages, volumes, areas.

Each check takes the value as typed (text) or as a number from code, and
returns it or raises BadInput naming the field and what is allowed. `3.2e7`
and `32000000` are both a count. Services run every value through these, so
a rule holds whether the value came from the command line or from code.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from lims.errors import BadInput, shown

Typed = str | int | float

# Larger than any culture: 10^15 cells is several kilograms of them.
COUNT_MAX = 10**15
COUNT_FORMS = "a positive whole number of cells up to 1e15, such as 32000000 or 3.2e7"


def _decimal(field: str, value: Typed, allowed: str) -> Decimal:
    if isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
        # Decimal reads other scripts' digits ('١٠٠' is 100): not what anyone at the bench types.
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    try:
        number = (
            Decimal(value.strip().replace("_", ""))
            if isinstance(value, str)
            else Decimal(repr(value) if isinstance(value, float) else value)
        )
    except (InvalidOperation, ValueError, TypeError):
        raise BadInput(field, f"must be {allowed} (got {shown(value)})") from None
    if not number.is_finite():
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    return number


def cell_count(field: str, value: Typed) -> int:
    """A positive whole number of cells."""
    number = _decimal(field, value, COUNT_FORMS)
    if number <= 0 or number > COUNT_MAX or number != number.to_integral_value():
        raise BadInput(field, f"must be {COUNT_FORMS} (got {shown(value)})")
    return int(number)


def whole_number(field: str, value: Typed, *, low: int, high: int) -> int:
    allowed = f"a whole number from {low} to {high}"
    number = _decimal(field, value, allowed)
    if number != number.to_integral_value() or not low <= number <= high:
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    return int(number)


def percentage(field: str, value: Typed) -> float:
    allowed = "a percentage from 0 to 100"
    text = value.strip().removesuffix("%") if isinstance(value, str) else value
    number = _decimal(field, text, allowed)
    if not 0 <= number <= 100:
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    return float(number) + 0.0  # -0 is 0


def positive(field: str, value: Typed, *, unit: str, smallest: float, high: float) -> float:
    """A measured amount: at least the smallest that can be measured, at most what is plausible.

    A floor above zero, not zero itself: 1e-320 cm² is positive, yet no vessel,
    and dividing a count by it overflows.
    """
    return within(field, value, unit=unit, low=smallest, high=high)


def within(field: str, value: Typed, *, unit: str, low: float, high: float) -> float:
    allowed = f"a number of {unit} from {low:g} to {high:g}"
    number = _decimal(field, value, allowed)
    if not Decimal(repr(float(low))) <= number <= Decimal(repr(float(high))):
        raise BadInput(field, f"must be {allowed} (got {shown(value)})")
    return float(number) + 0.0  # -0 is 0
