"""Upbit's live prices: its ``trade`` stream through ``ccxt.pro``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from sigma.feeds.ws_client import FeedOptions
from sigma.venues.ccxt.data import CcxtDataClient, make_data_client
from sigma.venues.upbit.config import NAME, ccxt_options


def make_data(
    symbols: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    **options: Unpack[FeedOptions],
) -> CcxtDataClient:
    """Upbit's trades for SIGMA symbols ``symbols`` (-> ccxt symbols), with ccxt ``config``
    (``urls`` to reach `sigma venue`); ``options`` are the feed's (cleaner, detector, bus,
    backoff, stale alert)."""
    # Every trade is a tick: bars are built from them exactly as from the built-in feed.
    return make_data_client(NAME, ccxt_options(config), symbols, watch="trades", **options)
