"""Live prices from a ccxt venue's WebSocket (``ccxt.pro``): the data client of every ccxt venue.

:class:`CcxtDataClient` watches trades (or tickers) for the configured markets, turns each into
a :class:`~sigma.domain.Tick` under its SIGMA symbol (``BTC/USDT`` -> ``BTC``) and delivers it
exactly as the built-in feed's :class:`~sigma.feeds.ws_client.PriceClient` does: the same
cleaner, anomaly detector, callback, ``price_update`` channel, backoff and stale alert (it is
the same :class:`~sigma.feeds.ws_client.ReconnectingFeed` loop). A venue's ``data`` module
builds it on that venue's ``ccxt.pro`` exchange (:func:`make_data_client`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, Unpack

from sigma.domain import Tick
from sigma.feeds.cleaner import DataCleaner
from sigma.feeds.ticks import TickError, tick_from_fields
from sigma.feeds.ws_client import FeedOptions, ReconnectingFeed

__all__ = [
    "CcxtDataClient",
    "WatchingExchange",
    "make_data_client",
    "ticker_to_tick",
    "trade_to_tick",
]

Watch = Literal["trades", "ticker"]


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


class CcxtDataClient(ReconnectingFeed):
    """Streams ticks from ``exchange`` (a ``ccxt.pro`` exchange) for ``symbols``: SIGMA symbol
    -> the venue's ccxt symbol (``{"BTC": "BTC/USDT"}``), as the execution client takes them.
    ``watch`` picks trades or tickers.

    One task per market calls ``watch_trades``/``watch_ticker`` in a loop; an error in any of
    them (a dropped connection) ends the session, which is retried after the backoff delay.
    The cleaner (by default one that accepts only the SIGMA symbols) still checks timestamps
    and order. Other keyword arguments are those of
    :class:`~sigma.feeds.ws_client.ReconnectingFeed`.
    """

    def __init__(
        self,
        exchange: WatchingExchange,
        symbols: Mapping[str, str],
        *,
        watch: Watch = "trades",
        cleaner: DataCleaner | None = None,
        **options: Unpack[FeedOptions],
    ) -> None:
        if not symbols:
            raise ValueError("no symbols to watch")
        # The venue's streams name markets; each is delivered under its SIGMA symbol.
        self.markets = {market: symbol for symbol, market in symbols.items()}
        self.exchange = exchange
        self.watch = watch
        super().__init__(cleaner=cleaner or DataCleaner(symbols), **options)

    def __str__(self) -> str:
        return f"CcxtDataClient({type(self.exchange).__name__})"

    async def _teardown(self) -> None:
        await self.exchange.close()

    async def _session(self) -> None:
        async with asyncio.TaskGroup() as group:
            for market, symbol in self.markets.items():
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


def make_data_client(
    name: str,
    ccxt_config: Mapping[str, Any],
    symbols: Mapping[str, str],
    *,
    watch: Watch = "trades",
    **options: Unpack[FeedOptions],
) -> CcxtDataClient:
    """The data client on ``ccxt.pro``'s exchange ``name`` built with ``ccxt_config`` (no keys
    needed: market data is public; ``urls`` to reach `sigma venue`)."""
    # Imported here: ccxt.pro takes a while to import and only venue feeds need it.
    import ccxt.pro

    exchange: WatchingExchange = getattr(ccxt.pro, name)(dict(ccxt_config))
    return CcxtDataClient(exchange, symbols, watch=watch, **options)
