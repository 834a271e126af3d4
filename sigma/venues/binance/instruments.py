"""Binance's instruments: its exchangeInfo carries every filter SIGMA needs (PRICE_FILTER's
tick, LOT_SIZE's step and minimum, NOTIONAL's minimum), and ccxt maps them into the market's
``precision`` and ``limits``; nothing is added here."""

from __future__ import annotations

from sigma.domain import Instrument


def refine(instrument: Instrument) -> Instrument:
    """The instrument as ccxt's markets give it."""
    return instrument
