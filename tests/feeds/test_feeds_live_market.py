"""The built-in market in wall-clock time: history up to now, live ticks from now on, and a
restart that goes on from the last stored price."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from sigma.domain import Tick
from sigma.feeds.live_market import MINUTE, LastPrice, LiveMarket

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def first(market: LiveMarket, n: int) -> list[Tick]:
    return list(itertools.islice(market.ticks(), n))


def test_a_fresh_market_has_history_up_to_the_current_minute_then_ticks_from_now() -> None:
    market = LiveMarket(["BTC", "ETH"], seed=7, history_bars=300, now=T0 + timedelta(seconds=32))
    history = market.history()
    assert market.live_from == T0
    for symbol, start_price in (("BTC", 100.0), ("ETH", 200.0)):
        bars = history[symbol]
        assert len(bars) == 300
        assert bars.index[0] == pd.Timestamp(T0 - 300 * MINUTE)
        assert bars.index[-1] == pd.Timestamp(T0 - MINUTE)
        assert bars["open"].iloc[0] == start_price
    ticks = first(market, 40)
    # Nothing before now: the current minute's ticks from 09:30:35 on, one every 5 s each.
    assert ticks[0].ts == T0 + timedelta(seconds=35)
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
    btc = [t for t in ticks if t.symbol == "BTC"]
    assert all(b.ts - a.ts == timedelta(seconds=5) for a, b in itertools.pairwise(btc))
    assert all(t.price == t.price.quantize(Decimal("0.01")) and t.price > 0 for t in ticks)


def test_each_minute_is_played_as_ticks_whose_bar_is_whole() -> None:
    market = LiveMarket(["BTC"], seed=3, history_bars=0, ticks_per_bar=12, now=T0)
    assert market.history()["BTC"].empty
    ticks = first(market, 12 * 30)
    minutes = {}
    for tick in ticks:
        minutes.setdefault(tick.ts.replace(second=0), []).append(tick)
    assert len(minutes) == 30 and all(len(group) == 12 for group in minutes.values())
    for group in minutes.values():
        # Twelve ticks over the minute; volumes add up to the bar's whole volume.
        assert group[0].ts.second == 0 and group[-1].ts.second == 55
        volume = sum((t.volume for t in group), Decimal(0))
        assert volume == volume.to_integral_value() and volume > 0
    # The next minute opens near the last close (a gap of a few percent at most).
    closes = [group[-1].price for group in minutes.values()]
    opens = [group[0].price for group in minutes.values()]
    assert all(abs(o / c - 1) < Decimal("0.05") for c, o in zip(closes, opens[1:], strict=False))


def test_the_market_is_the_same_for_the_same_seed_and_time() -> None:
    a = LiveMarket(["BTC"], seed=11, history_bars=60, now=T0)
    b = LiveMarket(["BTC"], seed=11, history_bars=60, now=T0)
    c = LiveMarket(["BTC"], seed=12, history_bars=60, now=T0)
    pd.testing.assert_frame_equal(a.history()["BTC"], b.history()["BTC"])
    assert first(a, 50) == first(b, 50)
    assert first(a, 50) != first(c, 50)


def test_a_restart_goes_on_from_the_last_stored_price() -> None:
    last = {"BTC": LastPrice(T0 - timedelta(hours=3, seconds=-20), Decimal("123.45"))}
    market = LiveMarket(["BTC", "ETH"], seed=7, history_bars=10_080, last=last, now=T0)
    btc = market.history()["BTC"]
    # The minutes since the last price, from that price; ETH had nothing stored.
    assert btc.index[0] == pd.Timestamp(T0 - timedelta(hours=3) + MINUTE)
    assert len(btc) == 179
    assert btc["open"].iloc[0] == 123.45
    assert len(market.history()["ETH"]) == 10_080


def test_a_long_stop_fills_at_most_the_history_and_a_fresh_price_fills_nothing() -> None:
    month_ago = {"BTC": LastPrice(T0 - timedelta(days=30), Decimal(50))}
    assert (
        len(LiveMarket(["BTC"], seed=1, history_bars=100, last=month_ago, now=T0).history()["BTC"])
        == 100
    )
    just_now = {"BTC": LastPrice(T0 - timedelta(seconds=10), Decimal("50.5"))}
    market = LiveMarket(["BTC"], seed=1, history_bars=100, last=just_now, now=T0)
    assert market.history()["BTC"].empty
    # The live minute after it starts from the stored price.
    assert first(market, 1)[0].price == Decimal("50.5")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"history_bars": -1}, "history_bars"), ({"ticks_per_bar": 3}, "ticks_per_bar")],
)
def test_bad_settings_are_refused(kwargs: dict[str, int], message: str) -> None:
    options = {"seed": 0, "history_bars": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        LiveMarket(["BTC"], **options)
