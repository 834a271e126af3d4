"""Upbit's instruments: ccxt's upbit markets give every price and amount a precision of 1e-8
and no minimums, so the KRW market's price ladder and its 5,000 KRW minimum order total are
added here (Upbit's documentation: "원화 마켓 주문 가격 단위", "최소 주문 금액").

The ladder is the KRW market's since 2025-07-31 at and above 1,000 KRW. Upbit lists exceptions
per asset (USDT and a few coins trade at finer ticks); they are not modelled. BTC and USDT
quoted markets keep ccxt's precision.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sigma.domain import Instrument, TickLadder

KRW_LADDER: TickLadder = tuple(
    (Decimal(start), Decimal(tick))
    for start, tick in (
        ("0", "0.00000001"),
        ("0.00001", "0.0000001"),
        ("0.0001", "0.000001"),
        ("0.001", "0.00001"),
        ("0.01", "0.0001"),
        ("0.1", "0.001"),
        ("1", "0.01"),
        ("10", "0.1"),
        ("100", "1"),
        ("5000", "5"),
        ("10000", "10"),
        ("50000", "50"),
        ("100000", "100"),
        ("500000", "500"),
        ("1000000", "1000"),
    )
)
KRW_MIN_TOTAL = Decimal(5000)


def refine(instrument: Instrument) -> Instrument:
    """A KRW market gets the ladder and the minimum order total."""
    if instrument.quote != "KRW":
        return instrument
    return dataclasses.replace(
        instrument,
        tick_size=KRW_LADDER[0][1],
        tick_ladder=KRW_LADDER,
        min_notional=max(instrument.min_notional, KRW_MIN_TOTAL),
    )
