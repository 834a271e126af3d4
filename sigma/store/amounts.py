"""Amounts as stored, NUMERIC(28, 10) (`quantize`), and as the exact decimal text the API
answers with: no storage padding, never in exponent notation (`Decimal('1.5000000000')` ->
`"1.5"`)."""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation

from sigma.domain.money import Number, to_decimal

PRECISION = 28
SCALE = 10
_QUANTUM = Decimal(1).scaleb(-SCALE)
_CONTEXT = Context(prec=PRECISION)


def quantize(value: Number) -> Decimal:
    """`value` as a Decimal with exactly SCALE decimals, as NUMERIC(28, 10) would store it.

    Raises ValueError when the value is not finite or needs more than 28 significant digits.
    """
    number = to_decimal(value)
    try:
        return number.quantize(_QUANTUM, context=_CONTEXT)
    except InvalidOperation:
        raise ValueError(f"{value!r} does not fit NUMERIC({PRECISION}, {SCALE})") from None


def dec(value: Decimal) -> str:
    """An exact decimal string without the storage padding (`1.5000000000` -> `1.5`), never
    in exponent notation, "0" for any zero. Works on the text (about 0.3 µs), not through
    `normalize()`, which also rounds to the context's 28 digits."""
    text = str(value)
    if "E" in text:  # exponent notation: zero with a scale (0E-10), tiny or huge values
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def opt_dec(value: Decimal | None) -> str | None:
    """`dec` that passes None through."""
    return None if value is None else dec(value)


def dec_text(text: str | None) -> str | None:
    """`dec` of a decimal the database already wrote as plain fixed-point text (an amount
    column read with `CAST(... AS VARCHAR)`: `0.5000000000`), without making a Decimal of it;
    None passes through."""
    if text is None or "." not in text:
        return text
    text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
