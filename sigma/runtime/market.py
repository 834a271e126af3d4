"""The built-in market of `sigma up` (no feed URL, no venue): which one, and its history.

At `SIGMA_FEED_SPEED=1` (the default) it is the wall-clock `LiveMarket`: it goes on from the
last stored price, and the minutes it traded before now (since the last run, or
`SIGMA_MARKET_HISTORY_BARS` for a fresh store) are stored as bars first, so the strategies
start warm and the research jobs have data, and every row SIGMA writes carries one clock.
Any other speed is the accelerated demo market: `MARKET_BARS` of history played faster than
real time until they reach the present (market time then runs behind the wall clock).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pandas as pd

from sigma.config import Settings
from sigma.config.settings import timeframe_label
from sigma.feeds.live_market import MINUTE, LastPrice, LiveMarket
from sigma.feeds.resample import resample_bars
from sigma.feeds.ws_server import BarReplay, TickSource
from sigma.runtime.restore import market_start
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.restart import last_prices

__all__ = ["MARKET_BARS", "builtin_market", "history_to_store"]

log = logging.getLogger(__name__)

MARKET_BARS = 200_000
"""Bars of history the accelerated market plays before it reaches the present."""


def builtin_market(
    sessions: SessionFactory, settings: Settings, now: datetime | None = None
) -> TickSource:
    """The built-in market `settings` describe; a wall-clock one has its history stored
    through `sessions`."""
    s = settings
    if s.feed.feed_speed != 1:
        start = market_start(sessions, s.trading.symbols, MINUTE, MARKET_BARS, now=now)
        return BarReplay.synthetic(
            s.trading.symbols,
            seed=s.feed.feed_seed,
            bars=MARKET_BARS,
            speed=s.feed.feed_speed,
            start=start,
        )
    with sessions() as session:
        stored = last_prices(session, s.trading.symbols, timeframe_label(60))
    market = LiveMarket(
        s.trading.symbols,
        seed=s.feed.feed_seed,
        history_bars=s.feed.market_history_bars,
        last={symbol: LastPrice(sp.ts, sp.price) for symbol, sp in stored.items()},
        now=now,
    )
    history_to_store(sessions, market.history(), market.live_from, s.trading.bar_seconds)
    return market


def history_to_store(
    sessions: SessionFactory,
    history: dict[str, pd.DataFrame],
    until: datetime,
    bar_seconds: int,
) -> None:
    """Store the market's 1-minute `history` (bars before `until`) and, for a bigger bar size
    the strategies use, its complete bars of that size (a bucket cut by the start of the
    history or by `until` is left to the recorder)."""
    size = timedelta(seconds=bar_seconds)
    with session_scope(sessions) as session:
        for symbol, bars in history.items():
            if bars.empty:
                continue
            upsert_bars(session, symbol, timeframe_label(60), bars)
            # A smaller bar size cannot be made of minute bars (resample_bars refuses it).
            if size > MINUTE:
                label = timeframe_label(bar_seconds)
                first = pd.Timestamp(bars.index[0])
                sized = resample_bars(bars, label)
                last_start = pd.Timestamp(until) - pd.Timedelta(size)
                whole = (sized.index >= first) & (sized.index <= last_start)
                upsert_bars(session, symbol, label, sized[whole])
            log.info(
                "built-in market: %d bars of %s stored (%s to %s)",
                len(bars),
                symbol,
                bars.index[0],
                bars.index[-1],
            )
