"""What the venue adapters' tests share: SIGMA's execution client on the test venue through
real ccxt over HTTP, order events, and a sleep that records the backoff instead of waiting."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

from sigma.domain import OrderType, Side
from sigma.execution.events import OrderEvent
from sigma.venues.binance.config import ccxt_options as binance_options
from sigma.venues.binance.execution import BinanceProfile
from sigma.venues.ccxt.errors import RetryPolicy
from sigma.venues.ccxt.execution import CcxtExecutionClient
from sigma.venues.emulator.server import VenueServer, ccxt_config
from sigma.venues.upbit.config import ccxt_options as upbit_options
from sigma.venues.upbit.execution import UpbitProfile

_VENUES: dict[str, Any] = {
    "binance": (binance_options, BinanceProfile, {"BTC": "BTC/USDT", "ETH": "ETH/USDT"}),
    "upbit": (upbit_options, UpbitProfile, {"BTC": "BTC/KRW", "ETH": "ETH/KRW"}),
}


class Sleeps(list[float]):
    """Records each backoff and returns at once (the tests wait on the venue, not on time)."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@contextlib.asynccontextmanager
async def adapter(
    server: VenueServer,
    venue: str,
    key: str,
    secret: str,
    *,
    attempts: int = 4,
    http_url: str | None = None,
) -> AsyncIterator[tuple[CcxtExecutionClient, Sleeps]]:
    """The execution client for ``venue`` on ``server`` with account ``key``, its markets
    loaded, and the sleeps it took; its REST requests go to ``http_url`` when given (a proxy
    in front of the server)."""
    options, profile, symbols = _VENUES[venue]
    urls = ccxt_config(venue, http_url or server.http_url, server.ws_url)
    config = options({**urls, "apiKey": key, "secret": secret})
    exchange = getattr(ccxt_async, venue)(config)
    sleeps = Sleeps()
    client = CcxtExecutionClient(
        exchange, profile(), symbols, retry=RetryPolicy(attempts=attempts), sleep=sleeps
    )
    try:
        await client.instruments()
        yield client, sleeps
    finally:
        await client.close()


def event(
    coid: str,
    side: Side = Side.BUY,
    qty: str = "0.01",
    ref: str | Decimal = "92000",
    symbol: str = "BTC",
    **extra: Any,
) -> OrderEvent:
    """A live order event."""
    return OrderEvent(
        client_order_id=coid,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        ref_price=Decimal(ref),
        mode="live",
        created_at=datetime.now(UTC),
        **extra,
    )


def limit(coid: str, side: Side, qty: str, price: str | int, **extra: Any) -> OrderEvent:
    """A limit order event decided at its own price."""
    return event(
        coid, side, qty, str(price), type=OrderType.LIMIT, limit_price=Decimal(price), **extra
    )
