"""Exact money and time helpers: Decimal at every boundary, UTC-aware timestamps."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

Number = Decimal | int | float | str


def to_decimal(value: Number, *, name: str = "value") -> Decimal:
    """Convert to a finite Decimal; floats go through `repr` so 0.1 stays 0.1.

    Raises ValueError naming `name` for NaN, infinities and unparsable input.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got a bool")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} is not a number: {value!r}") from None
    else:
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def utc(ts: datetime) -> datetime:
    """Return `ts` as an aware UTC datetime; a naive value is taken to be UTC already."""
    zone = ts.tzinfo
    if zone is UTC:  # the common case (every engine fill): no new object
        return ts
    if zone is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
