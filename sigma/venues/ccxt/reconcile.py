"""The venue's side of reconciliation (see :mod:`sigma.execution.reconcile`): ccxt balances,
open orders and traded orders into the values the worker compares with its bookings.

What differs between venues is where an order's recent trades come from
(:meth:`VenueProfile.traded_orders`): Binance lists the account's trades since a time
(``myTrades``); Upbit lists no trades at all, only orders, each with its trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sigma.domain import Instrument, Side
from sigma.execution.reconcile import VenueAsset, VenueOrder
from sigma.venues.ccxt.instruments import decimal
from sigma.venues.ccxt.profile import RawOrder
from sigma.venues.ccxt.reports import to_report


def venue_assets(
    balance: Mapping[str, Any], instruments: Mapping[str, Instrument]
) -> list[VenueAsset]:
    """The configured instruments' assets with their totals (free and locked) in ccxt's
    ``fetch_balance`` answer ``balance``; an asset the venue does not list holds 0."""
    totals: Mapping[str, Any] = balance.get("total") or {}
    base_of: dict[str, list[str]] = {}
    quote_of: dict[str, list[str]] = {}
    for symbol, inst in instruments.items():
        base_of.setdefault(inst.base, []).append(symbol)
        quote_of.setdefault(inst.quote, []).append(symbol)
    return [
        VenueAsset(
            asset,
            decimal(totals.get(asset)),
            tuple(base_of.get(asset, ())),
            tuple(quote_of.get(asset, ())),
        )
        for asset in sorted(base_of.keys() | quote_of.keys())
    ]


def venue_order(inst: Instrument, raw: RawOrder) -> VenueOrder:
    """A ccxt order (with the trades it lists) as reconciliation sees it; its fill ids are
    the ones its placement was booked under."""
    report = to_report(str(raw.get("clientOrderId") or ""), raw, fill_prefix=f"{inst.venue_id}-")
    price = raw.get("price")
    return VenueOrder(
        inst.symbol,
        Side(str(raw.get("side"))),
        decimal(raw.get("amount")),
        None if price is None else decimal(price),
        report,
    )
