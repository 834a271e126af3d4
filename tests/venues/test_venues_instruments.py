"""Instruments: exact rounding and refusals, and ccxt markets into instruments (pure)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from sigma.domain import Instrument, Side
from sigma.venues.binance.execution import BinanceProfile
from sigma.venues.ccxt.instruments import (
    DECIMAL_PLACES,
    instrument_from_market,
    instruments_from_markets,
)
from sigma.venues.upbit.execution import UpbitProfile
from sigma.venues.upbit.instruments import KRW_LADDER

BTC_USDT = Instrument(
    "BTC",
    "BTC/USDT",
    "BTC",
    "USDT",
    D("0.01"),
    D("0.00001"),
    D("0.00001"),
    D(5),
    venue_id="BTCUSDT",
)
BTC_KRW = UpbitProfile().refine(
    Instrument("BTC", "BTC/KRW", "BTC", "KRW", D("1e-8"), D("1e-8"), D("1e-8"))
)

BINANCE_MARKET = {
    "id": "BTCUSDT",
    "symbol": "BTC/USDT",
    "base": "BTC",
    "quote": "USDT",
    "precision": {"price": 0.01, "amount": 1e-05},
    "limits": {"amount": {"min": 1e-05}, "cost": {"min": 5.0}},
    "maker": 0.001,
    "taker": 0.001,
}


def test_round_price_never_gives_a_worse_price_than_asked() -> None:
    assert BTC_USDT.round_price(D("92000.019"), Side.BUY) == D("92000.01")
    assert BTC_USDT.round_price(D("92000.011"), Side.SELL) == D("92000.02")
    assert BTC_USDT.round_price(D("92000.015")) == D("92000.02")
    assert BTC_USDT.round_qty(D("0.123456789")) == D("0.12345")


def test_upbit_krw_ladder() -> None:
    assert BTC_KRW.tick_at(D(130_000_000)) == 1000 and BTC_KRW.tick_at(D(4_999)) == 1
    assert BTC_KRW.tick_at(D(7_000)) == 5 and BTC_KRW.tick_at(D("0.5")) == D("0.001")
    assert BTC_KRW.round_price(D(130_000_400), Side.BUY) == D(130_000_000)
    assert BTC_KRW.round_price(D(130_000_400), Side.SELL) == D(130_001_000)
    # Rounding up from a fine band lands on the coarser band's tick.
    assert BTC_KRW.round_price(D(999_999), Side.SELL) == D(1_000_000)
    assert BTC_KRW.round_price(D(5_003), Side.BUY) == D(5_000)
    assert BTC_KRW.min_notional == 5000 and BTC_KRW.tick_ladder == KRW_LADDER
    usdt_quoted = Instrument("X", "X/USDT", "X", "USDT", D("1e-8"), D("1e-8"))
    assert UpbitProfile().refine(usdt_quoted) is usdt_quoted


@pytest.mark.parametrize(
    ("inst", "qty", "price", "reason"),
    [
        (BTC_USDT, "0.000015", "92000", "quantity 0.000015 is not a multiple of the lot step"),
        (BTC_USDT, "0", "92000", "quantity 0 must be positive"),
        (BTC_USDT, "0.00001", "92000", "order total 0.92 USDT is under the minimum 5 USDT"),
        (BTC_USDT, "0.001", "92000.005", "price 92000.005 is not a multiple of the tick 0.01"),
        (BTC_USDT, "0.001", "-1", "price -1 must be positive"),
        (BTC_KRW, "0.00003", "130000000", "order total 3900 KRW is under the minimum 5000 KRW"),
        (BTC_KRW, "0.001", "130000500", "price 130000500 is not a multiple of the tick 1000"),
    ],
)
def test_refusals_name_the_rule(inst: Instrument, qty: str, price: str, reason: str) -> None:
    assert reason in (inst.refusal(D(qty), D(price)) or "")


def test_what_passes() -> None:
    assert BTC_USDT.refusal(D("0.001"), D("92000.01")) is None
    assert BTC_USDT.refusal(D("0.001"), None) is None
    assert BTC_KRW.refusal(D("0.0001"), D(130_000_000)) is None
    below_min_qty = Instrument("X", "X/Y", "X", "Y", D(1), D("0.1"), min_qty=D(1))
    assert "under the minimum 1" in (below_min_qty.refusal(D("0.5"), None) or "")


def test_bad_instruments_are_refused() -> None:
    with pytest.raises(ValueError, match="tick size and lot step must be positive"):
        Instrument("X", "X/Y", "X", "Y", D(0), D(1))
    with pytest.raises(ValueError, match="ladder rows must ascend"):
        Instrument("X", "X/Y", "X", "Y", D(1), D(1), tick_ladder=((D(5), D(1)), (D(1), D(1))))


def test_ccxt_markets_into_instruments() -> None:
    inst = BinanceProfile().refine(instrument_from_market("BTC", BINANCE_MARKET))
    assert inst == BTC_USDT.__class__(
        "BTC",
        "BTC/USDT",
        "BTC",
        "USDT",
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
        D(5),
        D("0.001"),
        D("0.001"),
        venue_id="BTCUSDT",
    )
    places = {**BINANCE_MARKET, "precision": {"price": 2, "amount": 5}, "limits": {}}
    by_places = instrument_from_market("BTC", places, DECIMAL_PLACES)
    assert (by_places.tick_size, by_places.lot_step, by_places.min_qty) == (
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
    )
    with pytest.raises(ValueError, match="precision mode 3 is not supported"):
        instrument_from_market("BTC", BINANCE_MARKET, 3)
    with pytest.raises(ValueError, match="reports no price precision"):
        instrument_from_market("BTC", {**BINANCE_MARKET, "precision": {"amount": 1}})
    with pytest.raises(ValueError, match=r"market 'ETH/USDT' \(for ETH\) is not listed"):
        instruments_from_markets({"BTC/USDT": BINANCE_MARKET}, {"ETH": "ETH/USDT"})
