"""ccxt markets into :class:`~sigma.domain.Instrument` values.

ccxt reports numbers as floats; each goes through ``str`` into a Decimal, so ``1e-05`` becomes
exactly ``0.00001``. What a venue's markets do not carry (Upbit's KRW tick ladder and minimum
order total) its profile adds afterwards (:meth:`VenueProfile.refine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sigma.domain import Instrument

#: ccxt's precision modes (``ccxt.base.decimal_to_precision``)
DECIMAL_PLACES, TICK_SIZE = 2, 4


def decimal(value: object, default: Decimal = Decimal(0)) -> Decimal:
    """A ccxt number (float, int or numeric string) as an exact Decimal; ``default`` for
    None."""
    if value is None:
        return default
    return Decimal(str(value))


def _step(precision: object, mode: int, what: str, market: str) -> Decimal:
    if precision is None:
        raise ValueError(f"{market}: the venue reports no {what} precision")
    if mode == TICK_SIZE:
        return decimal(precision).normalize()
    if mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(str(precision)))
    raise ValueError(f"{market}: ccxt precision mode {mode} is not supported")


def instrument_from_market(
    symbol: str, market: Mapping[str, Any], precision_mode: int = TICK_SIZE
) -> Instrument:
    """The instrument SIGMA trades as ``symbol`` on ccxt market ``market``."""
    name = str(market["symbol"])
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    lot_step = _step(precision.get("amount"), precision_mode, "amount", name)
    return Instrument(
        symbol=symbol,
        venue_symbol=name,
        base=str(market["base"]),
        quote=str(market["quote"]),
        tick_size=_step(precision.get("price"), precision_mode, "price", name),
        lot_step=lot_step,
        min_qty=decimal((limits.get("amount") or {}).get("min"), lot_step).normalize(),
        min_notional=decimal((limits.get("cost") or {}).get("min")).normalize(),
        maker_fee=decimal(market.get("maker")),
        taker_fee=decimal(market.get("taker")),
        venue_id=str(market["id"]),
    )


def instruments_from_markets(
    markets: Mapping[str, Mapping[str, Any]],
    symbols: Mapping[str, str],
    precision_mode: int = TICK_SIZE,
) -> dict[str, Instrument]:
    """One instrument per SIGMA symbol of ``symbols`` (SIGMA symbol -> ccxt symbol); a ccxt
    symbol the venue does not list is a ValueError naming it."""
    out = {}
    for symbol, venue_symbol in symbols.items():
        market = markets.get(venue_symbol)
        if market is None:
            raise ValueError(
                f"market {venue_symbol!r} (for {symbol}) is not listed by the venue; "
                f"it lists {', '.join(sorted(markets)[:20]) or 'nothing'}"
            )
        out[symbol] = instrument_from_market(symbol, market, precision_mode)
    return out
