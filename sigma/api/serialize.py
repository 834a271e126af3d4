"""JSON shapes shared by the routers: money as exact strings, rows as plain dicts."""

from __future__ import annotations

from decimal import Decimal


def dec(value: Decimal) -> str:
    """An exact decimal string without the storage padding (`1.5000000000` -> `1.5`)."""
    if value == 0:
        return "0"  # normalize() keeps an exponent on zero (0E-10)
    return format(value.normalize(), "f")


def opt_dec(value: Decimal | None) -> str | None:
    """`dec` that passes None through."""
    return None if value is None else dec(value)
