"""The price path: candle history before the start, then the live path played tick by tick
into the venues, from the synthetic market or a history file."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from venue_helpers import BTC_SPEC

from sigma.feeds.synthetic import generate_bars
from sigma.feeds.writers import write_csv
from sigma.venues.emulator import prices
from sigma.venues.emulator.klines import MINUTE_MS, Candle
from sigma.venues.emulator.model import MarketSpec, MarketTrade, VenueEvent
from sigma.venues.emulator.prices import MANUAL, PriceDriver
from sigma.venues.emulator.venue import Venue

D = Decimal
T0 = 1_700_000_040_000  # a minute boundary
BTC = BTC_SPEC
# Upbit's KRW-BTC: a 1000 KRW tick at these prices, 130 million KRW a coin.
KRW_BTC = replace(
    BTC,
    symbol="KRW-BTC",
    quote="KRW",
    tick_sizes=((D(0), D("0.1")), (D(2_000_000), D(1000))),
    step_size=D("0.00000001"),
    min_qty=D("0.00000001"),
    min_price=D("0.1"),
    max_price=D(10_000_000_000),
    min_notional=D(5000),
    start_price=D(130_000_000),
)


class Tape:
    """Every print the venues send, and a wait for the n-th."""

    def __init__(self, *venues: Venue) -> None:
        self.prints: list[MarketTrade] = []
        self._want = 0
        self._enough = asyncio.Event()
        for venue in venues:
            venue.listeners.append(self._on_event)

    def _on_event(self, event: VenueEvent) -> None:
        if isinstance(event, MarketTrade):
            self.prints.append(event)
            if len(self.prints) >= self._want:
                self._enough.set()

    async def wait(self, n: int, timeout: float = 10.0) -> list[MarketTrade]:
        self._want = n
        if len(self.prints) < n:
            self._enough.clear()
            await asyncio.wait_for(self._enough.wait(), timeout)
        return self.prints[:n]

    def prices(self, symbol: str, n: int) -> list[Decimal]:
        return [p.price for p in self.prints if p.symbol == symbol][:n]


@contextlib.asynccontextmanager
async def running(driver: PriceDriver) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(driver.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _closes(venue: Venue, symbol: str) -> list[Decimal]:
    return [c.close for c in venue.candles(symbol).folded(MINUTE_MS)]


def _on_grid(spec: MarketSpec, price: Decimal) -> bool:
    return price % spec.tick_at(price) == 0 and price >= spec.min_price


# ---------------------------------------------------------------- a history file
def _shape_file(tmp_path: Path) -> Path:
    # Four bars whose prices scale exactly: x920 makes them BTCUSDT's, x1,300,000 KRW-BTC's.
    frame = pd.DataFrame(
        {
            "open": [100.0, 100.5, 101.0, 102.0],
            "high": [101.0, 102.0, 103.0, 102.5],
            "low": [99.0, 100.0, 100.0, 98.0],
            "close": [100.5, 101.0, 102.0, 100.0],
            "volume": [1000.0, 1000.0, 1000.0, 0.0],
        },
        index=pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC", name="ts"),
    )
    return write_csv(frame, tmp_path / "shape.csv")


def test_history_from_a_file_is_scaled_to_each_markets_start_price(tmp_path: Path) -> None:
    binance = Venue("binance", [BTC], [])
    upbit = Venue("upbit", [KRW_BTC], [])
    driver = PriceDriver([binance, upbit], source=str(_shape_file(tmp_path)), history_bars=2)
    driver.load_history(T0 + 30_000)
    candles = list(binance.candles("BTCUSDT").folded(MINUTE_MS))
    # 100 -> 92000: every price times 920; a quarter of 1000 volume is one 0.1 BTC level.
    assert candles == [
        Candle(T0 - 2 * MINUTE_MS, D(92000), D(92920), D(91080), D(92460), D("0.4"), D(36984), 4),
        Candle(T0 - MINUTE_MS, D(92460), D(93840), D(92000), D(92920), D("0.4"), D(37168), 4),
    ]
    assert binance.last_price("BTCUSDT") == D(92920)
    # The same file drives KRW-BTC: times 1,300,000.
    assert _closes(upbit, "KRW-BTC") == [D(130_650_000), D(131_300_000)]
    assert upbit.last_price("KRW-BTC") == D(131_300_000)


def test_a_file_shorter_than_the_history_gives_what_it_has(tmp_path: Path) -> None:
    venue = Venue("binance", [BTC], [])
    driver = PriceDriver([venue], source=str(_shape_file(tmp_path)), history_bars=10)
    driver.load_history(T0)
    assert _closes(venue, "BTCUSDT") == [D(92460), D(92920), D(93840), D(92000)]
    # A bar without volume still trades the smallest step.
    last = venue.candles("BTCUSDT").last
    assert last is not None and last.volume == BTC.step_size


def test_prices_below_the_markets_minimum_are_held_at_it(tmp_path: Path) -> None:
    floor = replace(BTC, min_price=D(91500))
    venue = Venue("binance", [floor], [])
    PriceDriver([venue], source=str(_shape_file(tmp_path)), history_bars=1).load_history(T0)
    candle = venue.candles("BTCUSDT").last
    assert candle is not None and candle.low == D(91500)


async def test_the_live_path_goes_on_from_the_history_then_repeats_the_file(
    tmp_path: Path,
) -> None:
    binance = Venue("binance", [BTC], [])
    upbit = Venue("upbit", [KRW_BTC], [])
    tape = Tape(binance, upbit)
    driver = PriceDriver(
        [binance, upbit], source=str(_shape_file(tmp_path)), history_bars=2, speed=100_000
    )
    driver.load_history(T0)
    async with running(driver):
        await tape.wait(32)
    # Bars 2 and 3 follow the history (an up bar dips first: open, low, high, close), then the
    # file starts over from the last price: 92000 / 100 keeps the x920 scale.
    assert tape.prices("BTCUSDT", 16) == [
        *(D(92920), D(92000), D(94760), D(93840)),
        *(D(93840), D(94300), D(90160), D(92000)),
        *(D(92000), D(91080), D(92920), D(92460)),
        *(D(92460), D(92000), D(93840), D(92920)),
    ]
    krw = [D(131_300_000), D(130_000_000), D(133_900_000), D(132_600_000)]
    assert tape.prices("KRW-BTC", 4) == krw
    # The markets' ticks interleave in time; each carries a quarter of its bar's volume.
    assert [p.symbol for p in tape.prints[:4]] == ["BTCUSDT", "KRW-BTC"] * 2
    btc = [p for p in tape.prints if p.symbol == "BTCUSDT"]
    assert [p.qty for p in btc[:8]] == [D("0.1")] * 4 + [BTC.step_size] * 4
    assert driver.ticks >= 32


async def test_the_live_path_from_a_file_no_longer_than_the_history_starts_at_its_top(
    tmp_path: Path,
) -> None:
    venue = Venue("binance", [BTC], [])
    tape = Tape(venue)
    driver = PriceDriver([venue], source=str(_shape_file(tmp_path)), history_bars=4, speed=100_000)
    driver.load_history(T0)
    assert venue.last_price("BTCUSDT") == D(92000)
    async with running(driver):
        await tape.wait(4)
    assert tape.prices("BTCUSDT", 4) == [D(92000), D(91080), D(92920), D(92460)]


# ---------------------------------------------------------------- the synthetic market
def test_synthetic_history_is_seeded_and_each_market_has_its_own() -> None:
    def history(seed: int) -> tuple[Venue, Venue]:
        binance = Venue("binance", [BTC], [])
        upbit = Venue("upbit", [KRW_BTC], [])
        PriceDriver([binance, upbit], seed=seed, history_bars=30).load_history(T0 + 59_999)
        return binance, upbit

    binance, upbit = history(7)
    candles = list(binance.candles("BTCUSDT").folded(MINUTE_MS))
    assert len(candles) == 30
    assert candles[0].open_ms == T0 - 30 * MINUTE_MS
    assert candles[-1].open_ms == T0 - MINUTE_MS  # the minute before now's
    assert candles[0].open == D(92000)
    assert binance.last_price("BTCUSDT") == candles[-1].close
    for c in candles:
        assert all(_on_grid(BTC, p) for p in (c.open, c.high, c.low, c.close))
        assert c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)
        assert c.volume >= BTC.step_size and c.trades == 4
        assert c.quote_volume == c.close * c.volume
    krw = list(upbit.candles("KRW-BTC").folded(MINUTE_MS))
    assert krw[0].open == D(130_000_000)
    assert all(_on_grid(KRW_BTC, c.close) for c in krw)
    # The same seed gives the same path; another seed another path.
    again, _ = history(7)
    assert _closes(again, "BTCUSDT") == _closes(binance, "BTCUSDT")
    other, _ = history(8)
    assert _closes(other, "BTCUSDT") != _closes(binance, "BTCUSDT")
    # Each market its own shape, not the same path scaled: the moves from the start differ by
    # far more than the ticks' rounding (1000 / 130,000,000 < 0.001%).
    moves = [
        abs(c.close / candles[0].open - k.close / krw[0].open)
        for c, k in zip(candles, krw, strict=True)
    ]
    assert max(moves) > D("0.001")


def test_no_history_leaves_the_markets_at_their_start_price() -> None:
    venue = Venue("binance", [BTC], [])
    PriceDriver([venue], history_bars=0).load_history(T0)
    assert len(venue.candles("BTCUSDT")) == 0
    assert venue.last_price("BTCUSDT") == D(92000)


async def test_the_synthetic_live_path_continues_from_the_last_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Short segments, so the path also starts a fresh one (from its last price) in the test.
    monkeypatch.setattr(prices, "_SEGMENT_BARS", 2)
    binance = Venue("binance", [BTC, replace(BTC, symbol="ETHUSDT", start_price=D(3000))], [])
    tape = Tape(binance)
    driver = PriceDriver([binance], seed=3, history_bars=5, speed=100_000)
    driver.load_history(T0)
    start = {s: binance.last_price(s) for s in ("BTCUSDT", "ETHUSDT")}
    async with running(driver):
        await tape.wait(40)
    assert driver.ticks >= 40
    btc = tape.prices("BTCUSDT", 20)
    eth = tape.prices("ETHUSDT", 20)
    assert btc[0] == start["BTCUSDT"] and eth[0] == start["ETHUSDT"]
    assert all(_on_grid(BTC, p) for p in btc + eth)
    # A segment is 2 bars of 4 ticks; the next opens where the last closed.
    assert btc[8] == btc[7] and btc[16] == btc[15]
    assert len(set(btc)) > 4 and abs(eth[-1] / eth[0] - 1) < D("0.2")
    assert [p.symbol for p in tape.prints[:4]] == ["BTCUSDT", "ETHUSDT"] * 2
    # Live prints carry the venue's clock (now), not the bars' times.
    assert all(p.time_ms > T0 for p in tape.prints)


async def test_a_manual_source_moves_nothing() -> None:
    venue = Venue("binance", [BTC], [])
    tape = Tape(venue)
    driver = PriceDriver([venue], source=MANUAL, history_bars=0)
    driver.load_history(T0)
    await asyncio.wait_for(driver.run(), 5)  # returns at once
    assert driver.ticks == 0 and tape.prints == []
    assert venue.last_price("BTCUSDT") == D(92000)


async def test_the_live_path_lets_the_loop_run_between_ticks() -> None:
    # Far behind its schedule (an absurd speed), the driver must still yield to other tasks
    # between ticks rather than play on without a pause.
    venue = Venue("binance", [BTC], [])
    driver = PriceDriver([venue], history_bars=0, speed=1e12)

    class Enough(Exception):
        pass

    def stop(_event: VenueEvent) -> None:
        if driver.ticks >= 500:
            raise Enough

    venue.listeners.append(stop)
    task = asyncio.create_task(driver.run())
    seen = []
    for _ in range(3):
        await asyncio.sleep(0)
        seen.append(driver.ticks)
    with pytest.raises(Enough):
        await asyncio.wait_for(task, 10)
    assert seen[-1] < 10
    assert seen[-1] > seen[0] or seen[0] > 0


def test_generate_bars_matches_the_synthetic_history() -> None:
    # The history's first bar is generate_bars' first bar at the market's start price, floored
    # to the tick, with the seed + the market's index.
    venue = Venue("binance", [BTC], [])
    PriceDriver([venue], seed=11, history_bars=3).load_history(T0)
    frame, _ = generate_bars(3, seed=11, start_price=92000.0)
    closes = [D(repr(float(c))) for c in frame["close"]]
    assert _closes(venue, "BTCUSDT") == [c.quantize(D("0.01")) for c in closes]
