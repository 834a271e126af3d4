"""The local exchange's Binance spot front end: Binance's public REST API, market streams and
user-data stream on loopback, so the unchanged ccxt / ccxt.pro ``binance`` classes trade
against :class:`~sigma.venues.emulator.venue.Venue` with only their ``urls`` overridden
(:func:`ccxt_config`).

REST lives in :mod:`~sigma.venues.emulator.binance_rest` (parameters and weights in
:mod:`~sigma.venues.emulator.binance_params`), the WebSocket side in
:mod:`~sigma.venues.emulator.binance_ws`, the JSON shapes and signing they share in
:mod:`~sigma.venues.emulator.binance_wire`. Doc files cited below are those of
``binance/binance-spot-api-docs``.

| Modelled | Binance's documented behaviour (doc) | Not modelled |
|---|---|---|
| ping, time, exchangeInfo | filters PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, \
PERCENT_PRICE_BY_SIDE, NOTIONAL (market orders at the 5-minute average), MAX_NUM_ORDERS, \
MAX_NUM_ALGO_ORDERS; rateLimits; \
symbolStatus (-1122, -1220), permissions, showPermissionSets (rest-api.md, filters.md, \
enums.md) | RAW_REQUESTS, SOR, \
reference price |
| depth, trades, historicalTrades, aggTrades, klines 1s-1M, avgPrice, ticker/24hr and \
ticker (rolling window) FULL and MINI, ticker/price, ticker/bookTicker | limits, weights, \
lastUpdateId; weeks from Monday, calendar months; 1s klines from the public tape \
(rest-api.md) | uiKlines, timeZone, \
tradingDay ticker; taker-buy volumes ("0") |
| order POST/GET/DELETE, order/test (filters, computeCommissionRates), openOrders \
GET/DELETE, allOrders, myTrades (-1127 past 24 h), account, account/commission, \
rateLimit/order | mandatory parameters per type (-1102), parameters a type does not take \
(-1106), quantity or quoteOrderQty, ACK/RESULT/FULL with fills, expiryReason, -2039 for \
a query whose ids disagree (rest-api.md, CHANGELOG.md) | order lists, STP, amend; \
iceberg, trailing and pegged orders (refused with -2010, as exchangeInfo disallows them) |
| Signed requests | HMAC-SHA256 over query + body, X-MBX-APIKEY, timestamp in ms or µs \
(digits only), recvWindow 5000/60000 with up to three decimals; -2014, -2015, -1022, -1102, \
-1021; a body read only as application/x-www-form-urlencoded (rest-api.md) | RSA/Ed25519 \
keys, key permissions, X-MBX-TIME-UNIT |
| Errors | -1013 "Filter failure: ...", -2010 messages, -2011, -2013, -1121, -1100 with \
the legal range (a body not in UTF-8 too), -1101 repeated parameter, -1111 precision, \
-1115/6/7, -1151 a symbol listed twice, -1128 myTrades options in a combination rest-api.md \
does not list (errors.md); every refusal JSON: an unknown path \
or method 404/405 -1020, a body over 64 KiB 413 -1000, a failure 500 -1000, a request \
line over 8190 bytes 414 -1000, a header over 8190 bytes or over 128 headers 431 -1000, a \
malformed head 400 -1000 | -1104 unread parameters |
| Rate limits | weight per IP per window shared by REST and the WebSocket API, \
X-MBX-USED-WEIGHT-1M, 429 -1003 then 418, Retry-After; orders and cancels weigh 0 when \
they succeed; X-MBX-ORDER-COUNT-10S/1D, -1015 (rest-api.md "LIMITS", CHANGELOG.md \
2026-03-27) | escalating bans; unfilled-order decrement |
| Market streams | /ws/<s>, /stream, SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, \
SET/GET_PROPERTY, request ids as Binance takes them; trade, aggTrade, kline (1s every \
second), bookTicker, ticker, \
miniTicker, avgPrice, depthN, depth diff U/u continuous with lastUpdateId; ping every 20 s, \
cut when no pong answers one for a minute (unsolicited pongs do not count), a client ping \
answered with its payload; \
serverShutdown before closing; a connection sending more than 5 messages (text, ping, \
pong) in a second is closed after the answers within the limit (1008 "Too many requests", \
as clients of Binance report it: binance-connector-go#90), \
``stream_messages_per_second``; more than 300 connection attempts per address in 5 minutes \
(``stream_connects_per_window``, ``stream_connect_window_ms``; the WebSocket API counted \
apart) refused before the upgrade, 429 then 418 as REST's weight; at most 1024 streams a \
connection (``streams_per_connection``) (web-socket-streams.md "WebSocket Limits", \
web-socket-api.md "Connection limits") | !...@arr streams, timeUnit, referencePrice \
stream, the 24 h limit; bans of addresses repeatedly cut for their message rate; the \
refusals' shapes are the venue's (Binance documents the limits, not their answers: -1034 \
from errors.md for attempts, stream error code 2 for streams) |
| WebSocket API and user-data stream | userDataStream.subscribe.signature (HMAC over \
sorted params), unsubscribe (eventStreamTerminated), session.subscriptions, ping, time; \
rateLimits on responses unless returnRateLimits=false; executionReport \
NEW/TRADE/CANCELED (c the cancel's id, C the order's)/EXPIRED (eR) and \
outboundAccountPosition in order (web-socket-api.md, user-data-stream.md) | session.logon, \
WebSocket API trading and market data, balanceUpdate; listenKey streams: \
POST/PUT/DELETE /api/v3/userDataStream answer 410 Gone as Binance's have since their \
retirement on 2026-02-20 (CHANGELOG.md 2026-01-21); no event when a stop triggers (no such \
execution type, enums.md) |
| Faults | 5XX (503 with -1001's body), 429/418 (rest-api.md "HTTP Return Codes"); \
latency on every reply and frame, reply dropped after an accepted order, stale streams, \
aborted WebSockets, clock skew (-1021) | - |

(The source wraps long rows with backslash continuations; the docstring joins them.)
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from sigma.venues.emulator.binance_rest import BinanceRest
from sigma.venues.emulator.binance_wire import ApiError, BinanceSettings, BookVersions
from sigma.venues.emulator.binance_ws import BinanceStreams
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import json_reply
from sigma.venues.emulator.model import MarketSpec, MarketTrade, OrderEvent, VenueEvent
from sigma.venues.emulator.venue import Venue

__all__ = ["BinanceFrontEnd", "BinanceSettings", "ccxt_config", "default_markets"]

# ccxt.binance's other API families: pointed at the venue too, where they answer 404, so no
# call of a spot-only test ever leaves the machine.
_OTHER_APIS = (
    "sapi",
    "sapiV2",
    "sapiV3",
    "sapiV4",
    "dapiPublic",
    "dapiPrivate",
    "dapiPrivateV2",
    "dapiData",
    "eapiPublic",
    "eapiPrivate",
    "fapiPublic",
    "fapiPublicV2",
    "fapiPublicV3",
    "fapiPrivate",
    "fapiPrivateV2",
    "fapiPrivateV3",
    "fapiData",
    "papi",
    "papiV2",
)
#: the paths whose failures answer in Binance's shape: spot's own and the other families'
_PATHS = ("/api/", "/ws", "/stream", *(f"/{name}/" for name in _OTHER_APIS))
_OTHER_STREAMS = ("linear", "inverse", "stock", "option", "optionMarket", "optionPrivate", "papi")


def default_markets() -> list[MarketSpec]:
    """BTCUSDT and ETHUSDT with Binance spot's filters (tick, step, minimum notional)."""
    common: dict[str, Any] = {
        "quote": "USDT",
        "tick_sizes": ((Decimal(0), Decimal("0.01")),),
        "max_qty": Decimal(9000),
        "max_price": Decimal(1_000_000),
        "min_notional": Decimal(5),
        # PERCENT_PRICE_BY_SIDE and MAX_NUM_ALGO_ORDERS as on Binance's BTCUSDT: limit prices
        # within 0.2x-5x of the 5-minute average, five open stop orders
        "price_band": (Decimal("0.2"), Decimal(5)),
        "max_stop_orders": 5,
        "market_notional_at_average": True,
        "levels": 20,
    }
    return [
        MarketSpec(
            "BTCUSDT",
            "BTC",
            step_size=Decimal("0.00001"),
            min_qty=Decimal("0.00001"),
            min_price=Decimal("0.01"),
            start_price=Decimal("92000.00"),
            level_qty=Decimal("0.05"),
            **common,
        ),
        MarketSpec(
            "ETHUSDT",
            "ETH",
            step_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            min_price=Decimal("0.01"),
            start_price=Decimal("3000.00"),
            level_qty=Decimal(1),
            **common,
        ),
    ]


def ccxt_config(http_url: str, ws_url: str) -> dict[str, Any]:
    """The config for ``ccxt.async_support.binance`` / ``ccxt.pro.binance`` that points them at
    a venue serving on ``http_url``/``ws_url`` (add ``apiKey``/``secret`` to trade).

    Besides the URLs: only spot markets are loaded (no futures exchangeInfo), and neither the
    currencies nor the margin pairs, which ccxt reads from the ``sapi`` wallet API."""
    api: dict[str, Any] = {name: f"{http_url}/{name}" for name in _OTHER_APIS}
    api.update(
        public=f"{http_url}/api/v3",
        private=f"{http_url}/api/v3",
        v1=f"{http_url}/api/v1",
        ws={
            **{name: f"{ws_url}/{name}/ws" for name in _OTHER_STREAMS},
            "spot": f"{ws_url}/ws",
            "margin": f"{ws_url}/ws",
            "ws-api": {"spot": f"{ws_url}/ws-api/v3"},
        },
    )
    return {
        "urls": {"api": api},
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }


class BinanceFrontEnd:
    """Binance spot's protocol for one venue: install its routes on an aiohttp app."""

    def __init__(
        self, venue: Venue, faults: Faults, settings: BinanceSettings | None = None
    ) -> None:
        self.venue = venue
        self.settings = settings or BinanceSettings()
        self.versions = BookVersions()
        # First among the listeners: the book's update id moves before anyone renders it.
        venue.listeners.insert(0, self._bump)
        self.rest = BinanceRest(venue, faults, self.settings, self.versions)
        self.streams = BinanceStreams(
            venue, faults, self.settings, self.versions, self.rest.limiter
        )

    def install(self, app: web.Application) -> None:
        """Add the REST and WebSocket routes to ``app``."""
        self.rest.install(app)
        self.streams.install(app)

    async def close(self) -> None:
        """Close every WebSocket connection cleanly."""
        await self.streams.close()

    def disconnect_streams(self) -> int:
        """Abort every WebSocket connection (the disconnect fault); how many."""
        return self.streams.disconnect()

    def error_reply(self, path: str, status: int, message: str) -> web.Response | None:
        """Binance's error body for a request under its paths that no route answered: -1020
        "This operation is not supported." for an unknown path or method (ccxt: BadRequest),
        -1000 with the reason otherwise (errors.md: "Codes are universal, but messages can
        vary")."""
        if not path.startswith(_PATHS):
            return None
        if status in (404, 405):
            error = ApiError(status, -1020, "This operation is not supported.")
        else:
            error = ApiError(status, -1000, message)
        return json_reply(error.body(), error.status)

    def _bump(self, event: VenueEvent) -> None:
        if isinstance(event, MarketTrade):
            self.versions.bump(event.symbol)
        elif isinstance(event, OrderEvent):
            self.versions.bump(event.order.symbol)
