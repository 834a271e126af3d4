"""Live prices from real exchanges through ccxt's async WebSocket API (``ccxt.pro``).

:class:`ExchangePriceSource` watches trades (or tickers) for a set of exchange symbols, turns
each into a :class:`~sigma.domain.Tick` under a SIGMA symbol name (``BTC/USDT`` -> ``BTC``, as
configured) and delivers it like :class:`~sigma.feeds.ws_client.PriceClient` does: the same
cleaner, detector, callback, pub/sub channel, backoff and stale detection (it is the same
:class:`~sigma.feeds.ws_client.ReconnectingFeed` loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, Unpack

from sigma.domain import Tick
from sigma.feeds.ticks import TickError, tick_from_fields
from sigma.feeds.ws_client import FeedOptions, ReconnectingFeed
from sigma.risk.cleaner import DataCleaner

__all__ = [
    "SUPPORTED_EXCHANGES",
    "ExchangePriceSource",
    "WatchingExchange",
    "make_exchange",
    "ticker_to_tick",
    "trade_to_tick",
]

log = logging.getLogger(__name__)

SUPPORTED_EXCHANGES: tuple[str, ...] = ("upbit", "binance")


class WatchingExchange(Protocol):
    """The part of a ``ccxt.pro`` exchange this module uses."""

    async def watch_trades(self, symbol: str) -> list[dict[str, Any]]:
        """The trades since the last call (waits for at least one)."""
        ...

    async def watch_ticker(self, symbol: str) -> dict[str, Any]:
        """The next ticker update."""
        ...

    async def close(self) -> None:
        """Close the exchange's connections."""
        ...


def make_exchange(name: str, config: Mapping[str, Any] | None = None) -> WatchingExchange:
    """A ``ccxt.pro`` exchange by id (``"upbit"``, ``"binance"``, ...); ``config`` is passed to
    ccxt (API keys are not needed for public market data)."""
    import ccxt.pro

    factory = getattr(ccxt.pro, name, None)
    if factory is None:
        raise ValueError(f"ccxt.pro has no exchange {name!r}")
    exchange: WatchingExchange = factory({"enableRateLimit": True, **(config or {})})
    return exchange


def trade_to_tick(trade: Mapping[str, Any], symbol: str) -> Tick:
    """A ccxt unified trade (``timestamp`` ms, ``price``, ``amount``) as a tick of ``symbol``.

    Raises :class:`~sigma.feeds.ticks.TickError` for anything the wire decoder would reject.
    """
    return tick_from_fields(
        {
            "symbol": symbol,
            "ts": trade.get("timestamp"),
            "price": trade.get("price"),
            "volume": trade.get("amount"),
        }
    )


def ticker_to_tick(ticker: Mapping[str, Any], symbol: str) -> Tick:
    """A ccxt unified ticker (``timestamp``, ``last``, ``bid``, ``ask``, ``baseVolume``) as a
    tick of ``symbol``; the volume is the ticker's rolling 24h base volume."""
    return tick_from_fields(
        {
            "symbol": symbol,
            "ts": ticker.get("timestamp"),
            "price": ticker.get("last"),
            "volume": ticker.get("baseVolume"),
            "bid": ticker.get("bid"),
            "ask": ticker.get("ask"),
        }
    )


_Convert = Callable[[Mapping[str, Any], str], Tick]


class ExchangePriceSource(ReconnectingFeed):
    """Streams ticks from ``exchange`` (a ``ccxt.pro`` id or an exchange object) for
    ``symbols``: a mapping exchange symbol -> SIGMA symbol (``{"BTC/USDT": "BTC"}``), or a list
    of exchange symbols used as they are. ``watch`` picks trades or tickers.

    One task per symbol calls ``watch_trades``/``watch_ticker`` in a loop; an error in any of
    them ends the session, which is retried after the backoff delay. The cleaner (by default
    one that accepts only the SIGMA symbols) still checks timestamps and order. Other keyword
    arguments are those of :class:`~sigma.feeds.ws_client.ReconnectingFeed`.
    """

    def __init__(
        self,
        exchange: str | WatchingExchange,
        symbols: Mapping[str, str] | Sequence[str],
        *,
        watch: Literal["trades", "ticker"] = "trades",
        cleaner: DataCleaner | None = None,
        **options: Unpack[FeedOptions],
    ) -> None:
        self.symbol_map = dict(symbols) if isinstance(symbols, Mapping) else {s: s for s in symbols}
        if not self.symbol_map:
            raise ValueError("no symbols to watch")
        if isinstance(exchange, str) and exchange not in SUPPORTED_EXCHANGES:
            log.warning("exchange %r is not one SIGMA is tested with", exchange)
        self.exchange = make_exchange(exchange) if isinstance(exchange, str) else exchange
        self.watch = watch
        super().__init__(cleaner=cleaner or DataCleaner(self.symbol_map.values()), **options)

    def __str__(self) -> str:
        return f"ExchangePriceSource({type(self.exchange).__name__})"

    async def _teardown(self) -> None:
        await self.exchange.close()

    async def _session(self) -> None:
        async with asyncio.TaskGroup() as group:
            for market, symbol in self.symbol_map.items():
                group.create_task(self._pump(market, symbol))

    async def _pump(self, market: str, symbol: str) -> None:
        while True:
            if self.watch == "trades":
                items = await self.exchange.watch_trades(market)
                await self._convert(items, symbol, trade_to_tick)
            else:
                ticker = await self.exchange.watch_ticker(market)
                await self._convert([ticker], symbol, ticker_to_tick)

    async def _convert(
        self, items: Sequence[Mapping[str, Any]], symbol: str, convert: _Convert
    ) -> None:
        for item in items:
            self.received += 1
            try:
                tick = convert(item, symbol)
            except TickError as exc:
                # Counted and logged like a bad wire frame.
                self.cleaner.drop(exc.reason, str(exc), item)
                await self._deliver(None)
                continue
            await self._deliver(self.cleaner.check(tick))
