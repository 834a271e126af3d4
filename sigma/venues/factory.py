"""The venue adapters by name: the composition root asks here for a venue's execution client
(the worker's broker) and its data client (the prices), and nothing else picks one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Unpack

from sigma.feeds.ws_client import FeedOptions
from sigma.venues.binance import config as binance_config
from sigma.venues.binance import data as binance_data
from sigma.venues.binance import factory as binance
from sigma.venues.ccxt.data import CcxtDataClient
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.upbit import config as upbit_config
from sigma.venues.upbit import data as upbit_data
from sigma.venues.upbit import factory as upbit

ClientFactory = Callable[[Mapping[str, str], Mapping[str, Any] | None], CcxtExecutionClient]


#: ``make_data(symbols, config, **feed_options)`` of a venue's ``data`` module
DataFactory = Callable[..., CcxtDataClient]


@dataclass(frozen=True)
class VenueAdapter:
    """One venue's factories, and the quote currency its SIGMA symbols default to."""

    execution: ClientFactory
    data: DataFactory
    quote: str


VENUES: dict[str, VenueAdapter] = {
    "binance": VenueAdapter(
        binance.make_execution_client,
        binance_data.make_data,
        binance_config.QUOTE,
    ),
    "upbit": VenueAdapter(upbit.make_execution_client, upbit_data.make_data, upbit_config.QUOTE),
}


def adapter(name: str) -> VenueAdapter:
    """The adapter of venue ``name``; ValueError naming the known ones otherwise."""
    found = VENUES.get(name)
    if found is None:
        raise ValueError(
            f"no venue adapter for {name!r}; known: {', '.join(sorted(VENUES))} "
            "(another ccxt venue needs its profile under sigma/venues/<name>/)"
        )
    return found


def venue_markets(
    name: str, symbols: Iterable[str], markets: Mapping[str, str] | None = None
) -> dict[str, str]:
    """SIGMA symbol -> the venue's ccxt symbol for each of ``symbols``: from ``markets`` where
    given, else the symbol against the venue's quote currency (``BTC`` -> ``BTC/USDT``)."""
    quote = adapter(name).quote
    given = markets or {}
    return {s: given.get(s, f"{s}/{quote}") for s in symbols}


def make_ccxt_broker(
    name: str, symbols: Mapping[str, str], config: Mapping[str, Any] | None = None
) -> CcxtExecutionClient:
    """The execution client of venue ``name`` for SIGMA symbols ``symbols`` (-> the venue's
    ccxt symbols), with ccxt ``config`` (API keys; ``urls`` to reach `sigma venue`)."""
    return adapter(name).execution(symbols, config)


def make_venue_data(
    name: str,
    symbols: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    **options: Unpack[FeedOptions],
) -> CcxtDataClient:
    """The data client (live prices) of venue ``name`` for ``symbols`` (SIGMA -> ccxt), with
    ccxt ``config``; ``options`` are the feed's (see
    :class:`~sigma.feeds.ws_client.ReconnectingFeed`)."""
    return adapter(name).data(symbols, config, **options)
