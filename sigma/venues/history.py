"""History from a venue through ccxt's ``fetch_ohlcv``, page by page, and into the store
(`sigma data download`, `sigma data gaps --fill`).

The venue is reached by its ccxt config, so `sigma venue` (the local exchange) and the real
venue are the same code path. Rate limits are respected twice: ccxt spaces requests by the
venue's published limits (``enableRateLimit``), and a refusal anyway (429/418: ccxt's
``RateLimitExceeded``/``DDoSProtection``) or a transient failure is retried after a backoff
that honours the venue's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ccxt.async_support as ccxt_async
import numpy as np
import pandas as pd

from sigma.feeds.frame import make_bar_frame
from sigma.feeds.gaps import timeframe_step
from sigma.feeds.market_data import SeriesReport, Sessions, Stored
from sigma.feeds.validation import validate_bars
from sigma.store.bar_catalog import last_bar_time
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.venues.binance import config as binance_config
from sigma.venues.ccxt.errors import TRANSIENT, RetryPolicy, retry_after
from sigma.venues.upbit import config as upbit_config

log = logging.getLogger(__name__)

#: a ccxt async exchange (ccxt ships no type information)
Exchange = Any

#: each venue's ccxt config builder: SIGMA's defaults (``enableRateLimit``) under the given one
CCXT_OPTIONS: dict[str, Callable[[Mapping[str, Any] | None], dict[str, Any]]] = {
    binance_config.NAME: binance_config.ccxt_options,
    upbit_config.NAME: upbit_config.ccxt_options,
}
QUOTES = {binance_config.NAME: binance_config.QUOTE, upbit_config.NAME: upbit_config.QUOTE}
#: a download outlasts a trading retry: a storm of 429s is waited out rather than given up on
DOWNLOAD_RETRY = RetryPolicy(attempts=8, base_delay=0.5, max_delay=30.0, max_retry_after=120.0)


class DownloadError(ValueError):
    """A download that cannot go on: an unknown venue, symbol or bar size."""


@dataclass(frozen=True)
class Market:
    """A series to download: ``symbol`` as stored (the SIGMA symbol), ``venue_symbol`` as
    ccxt names the venue's market."""

    symbol: str
    venue_symbol: str


def open_exchange(venue: str, config: Mapping[str, Any] | None = None) -> Exchange:
    """ccxt's async exchange ``venue`` built with ``config`` over SIGMA's defaults."""
    options = CCXT_OPTIONS.get(venue)
    if options is None:
        raise DownloadError(f"unknown venue {venue!r}; known: {', '.join(sorted(CCXT_OPTIONS))}")
    return getattr(ccxt_async, venue)(options(config))


def to_markets(
    venue: str, symbols: Iterable[str], configured: Mapping[str, str] | None = None
) -> list[Market]:
    """Each of ``symbols`` as a :class:`Market`.

    A SIGMA symbol (``BTC``) trades on its configured market (``SIGMA_EXCHANGE_MARKETS``) or
    against the venue's quote currency (``BTC/USDT``); a venue symbol (``BTC/USDT``) is stored
    under the SIGMA symbol it stands for, and under its own name when it is no SIGMA symbol's
    market (``ETH/BTC``)."""
    given = dict(configured or {})
    back = {v: k for k, v in given.items()}
    if venue not in QUOTES:
        raise DownloadError(f"unknown venue {venue!r}; known: {', '.join(sorted(QUOTES))}")
    quote = QUOTES[venue]
    out = []
    for name in symbols:
        if "/" not in name:
            out.append(Market(name, given.get(name, f"{name}/{quote}")))
            continue
        base, _, their_quote = name.partition("/")
        own = back.get(name) or (base if their_quote == quote and base not in given else name)
        out.append(Market(own, name))
    return out


async def check_markets(exchange: Exchange, markets: Iterable[Market], timeframe: str) -> None:
    """Load the venue's markets and refuse unlisted symbols and unsupported bar sizes up front,
    with what the venue does offer."""
    await with_backoff(exchange, exchange.load_markets)
    listed = sorted(exchange.markets)
    for market in markets:
        if market.venue_symbol not in exchange.markets:
            shown = ", ".join(listed[:20]) or "nothing"
            raise DownloadError(
                f"{exchange.id} does not list {market.venue_symbol!r} (for {market.symbol}); "
                f"it lists {shown}"
            )
    sizes = exchange.timeframes or {}
    if timeframe not in sizes:
        raise DownloadError(
            f"{exchange.id} has no {timeframe!r} bars; it has {', '.join(sizes) or 'none'}"
        )


async def with_backoff(
    exchange: Exchange,
    call: Callable[..., Awaitable[Any]],
    *args: Any,
    retry: RetryPolicy = DOWNLOAD_RETRY,
) -> Any:
    """``await call(*args)``, tried again after transient failures (rate limits, timeouts,
    5xx) with :class:`RetryPolicy`'s backoff, never sooner than the venue's ``Retry-After``:
    asking again while refused is what gets a client banned (418)."""
    failures = 0
    while True:
        try:
            return await call(*args)
        except TRANSIENT as exc:
            failures += 1
            told = retry_after(exc, exchange)
            if failures >= retry.attempts or (told or 0.0) > retry.max_retry_after:
                raise
            wait = retry.delay(failures, told)
            log.warning("%s: %s; retrying in %.1f s", exchange.id, type(exc).__name__, wait)
            await asyncio.sleep(wait)


async def fetch_bars(
    exchange: Exchange,
    venue_symbol: str,
    timeframe: str,
    since_ms: int,
    until_ms: int,
    *,
    page_size: int,
    now_ms: int,
) -> AsyncIterator[pd.DataFrame]:
    """The closed bars of ``since_ms <= ts < until_ms``, one checked bar frame per page.

    Each page asks from just after the last bar received. The bar still forming at ``now_ms``
    is left out: stored, it would keep its first minutes' prices for good. A page with no bars
    skips the window it asked for (Upbit answers an empty page for a span before its history
    or without trades), so the walk always ends."""
    step = int(timeframe_step(timeframe).total_seconds() * 1000)
    end = min(until_ms, now_ms - step + 1)
    cursor = since_ms
    while cursor < end:
        page = await with_backoff(
            exchange, exchange.fetch_ohlcv, venue_symbol, timeframe, cursor, page_size
        )
        rows = [row for row in page if cursor <= int(row[0]) < end]
        if rows:
            yield _frame(rows, f"{exchange.id} {venue_symbol} {timeframe}")
            cursor = int(rows[-1][0]) + step
        elif page and int(page[-1][0]) >= cursor:
            return  # only bars at or after the end: nothing more is wanted
        else:
            cursor += page_size * step


def _frame(rows: list[list[Any]], source: str) -> pd.DataFrame:
    """ccxt's ``[ts_ms, open, high, low, close, volume]`` rows as a bar frame, checked like
    any file (a venue can send a broken bar too)."""
    table = np.asarray([[float(v) if v is not None else np.nan for v in r[:6]] for r in rows])
    stamps = pd.to_datetime(table[:, 0].astype(np.int64), unit="ms", utc=True)
    volume = np.nan_to_num(table[:, 5], nan=0.0)  # venues may omit the volume of a quiet bar
    frame = make_bar_frame(stamps, table[:, 1], table[:, 2], table[:, 3], table[:, 4], volume)
    validate_bars(frame, source)
    return frame


__all__ = [
    "CCXT_OPTIONS",
    "DOWNLOAD_RETRY",
    "DownloadError",
    "Market",
    "check_markets",
    "fetch_bars",
    "open_exchange",
    "to_markets",
    "with_backoff",
]


def _ms(stamp: datetime | pd.Timestamp) -> int:
    return int(pd.Timestamp(stamp).value // 1_000_000)  # .value is ns whatever the unit


#: called before a series' download with its market and the span asked for (ms, end exclusive)
StartHook = Callable[[Market, int, int], None]
#: called after each page is stored, with the page's bars
PageHook = Callable[[Market, pd.DataFrame], None]


# --- into the store ------------------------------------------------------------------------------


async def download_to_store(
    sessions: Sessions,
    exchange: Exchange,
    markets: Sequence[Market],
    timeframe: str,
    *,
    since: pd.Timestamp,
    until: pd.Timestamp,
    page_size: int,
    resume: bool = True,
    now: pd.Timestamp | None = None,
    on_start: StartHook | None = None,
    on_page: PageHook | None = None,
) -> list[Stored]:
    """Download each market's closed bars of ``since <= ts < until`` into the store.

    With ``resume`` a series continues after its newest stored bar when that is later than
    ``since``, so a second run fetches only what is new. Each page is committed on its own:
    a run stopped half-way (Ctrl-C, a lost connection) keeps every page it stored."""
    step = timeframe_step(timeframe)
    clock = _ms(now if now is not None else pd.Timestamp.now(tz="UTC"))
    out = []
    for market in markets:
        start = since
        if resume:
            with session_scope(sessions) as session:
                last = last_bar_time(session, market.symbol, timeframe)
            if last is not None and pd.Timestamp(last) + step > start:
                start = pd.Timestamp(last) + step
        if on_start is not None:
            on_start(market, _ms(start), _ms(until))
        count, first, latest = 0, None, None
        pages = fetch_bars(
            exchange,
            market.venue_symbol,
            timeframe,
            _ms(start),
            _ms(until),
            page_size=page_size,
            now_ms=clock,
        )
        async for frame in pages:
            with session_scope(sessions) as session:
                count += upsert_bars(session, market.symbol, timeframe, frame)
            first = frame.index[0] if first is None else first
            latest = frame.index[-1]
            if on_page is not None:
                on_page(market, frame)
        out.append(Stored(market.symbol, timeframe, count, first, latest))
    return out


async def fill_gaps(
    sessions: Sessions,
    exchange: Exchange,
    reports: Sequence[SeriesReport],
    markets: dict[str, Market],
    *,
    page_size: int,
    on_page: PageHook | None = None,
) -> list[Stored]:
    """Download the bars of every gap in ``reports`` (``markets`` maps each stored symbol to its
    venue market), through the same path as a download. A venue without a bar for a span
    (no trades then, or before its history) leaves that gap as it was."""
    out = []
    for report in reports:
        series = report.series
        step = timeframe_step(series.timeframe)
        market = markets[series.symbol]
        for gap in report.gaps:
            out += await download_to_store(
                sessions,
                exchange,
                [market],
                series.timeframe,
                since=gap.first,
                until=gap.last + step,
                page_size=page_size,
                resume=False,
                on_page=on_page,
            )
    return out
