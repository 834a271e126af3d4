"""Binance spot's REST API under ``/api/v3``: market data, orders, account (rest-api.md).

Every request first waits the latency fault, may answer the 503 fault, then is counted against
the request-weight window of its client address (429, then the 418 ban). Signed routes check
the ``X-MBX-APIKEY`` header, the HMAC-SHA256 ``signature`` over the query string followed by the
form body, and ``timestamp``/``recvWindow`` against the venue clock.
"""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.binance_params import (
    Params,
    by_symbol,
    client_id,
    decimal,
    depth_weight,
    enum_param,
    fixed,
    illegal,
    integer,
    my_trades_weight,
    opt_int,
    opt_time,
    page,
    page_limit,
    required,
    rolling_weight,
    symbol_name,
    symbols_param,
    test_weight,
    ticker_weight,
    unsigned,
    window,
)
from sigma.venues.emulator.binance_wire import (
    INTERVALS,
    ApiError,
    BinanceSettings,
    BookVersions,
    authenticate,
    average_price,
    book_top,
    day_ticker,
    fmt,
    fold_klines,
    interval_label,
    kline_row,
    last_trade_price,
    missing_param,
    order_body,
    order_status,
    rate_limit,
    rejection_error,
    symbol_info,
    trade_body,
    weight_refusal,
)
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import client_address, drop, json_reply
from sigma.venues.emulator.klines import MINUTE_MS
from sigma.venues.emulator.limits import Verdict, WeightWindow
from sigma.venues.emulator.model import (
    MarketTrade,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reason,
    Rejection,
    Side,
    TimeInForce,
    VenueEvent,
    VenueOrder,
    VenueTrade,
)
from sigma.venues.emulator.venue import TAPE_LENGTH, Venue

__all__ = ["BinanceRest"]


_DAY_MS = 86_400_000
_INTERNAL = ApiError(
    503, -1001, "Internal error; unable to process your request. Please try again."
)
_CLIENT_ID_MISMATCH = ApiError(400, -2039, "Client order ID is not correct for this order ID.")
_UNKNOWN_CANCEL = ApiError(400, -2011, "Unknown order sent.")
_NEEDS_TIF = frozenset({OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
# newOrderRespType defaults: FULL for MARKET and LIMIT, ACK for the others (rest-api.md).
_FULL_BY_DEFAULT = frozenset({OrderType.MARKET, OrderType.LIMIT})
_RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
_COMMISSION_KINDS = ("standard", "special", "tax")
_FORM = "application/x-www-form-urlencoded"
#: windowSize of GET /api/v3/ticker: 1m-59m, 1h-23h, 1d-7d; unit -> (ms, largest count)
_WINDOW_SIZE = re.compile(r"([0-9]{1,2})([mhd])")
_WINDOW_UNITS = {"m": (MINUTE_MS, 59), "h": (60 * MINUTE_MS, 23), "d": (_DAY_MS, 7)}
#: cancelRestrictions -> the only status a cancel may then find the order in (rest-api.md)
_CANCEL_RESTRICTIONS = {
    "ONLY_NEW": OrderStatus.NEW,
    "ONLY_PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
}
#: the fields of ``ticker/24hr?type=MINI`` (rest-api.md "Response - MINI")
_MINI_TICKER = (
    "symbol",
    "openPrice",
    "highPrice",
    "lowPrice",
    "lastPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "firstId",
    "lastId",
    "count",
)
#: the fields of GET /api/v3/ticker (FULL): the 24-hour ticker's without the previous close,
#: the last quantity and the top of the book
_ROLLING_TICKER = (
    "symbol",
    "priceChange",
    "priceChangePercent",
    "weightedAvgPrice",
    *_MINI_TICKER[1:],
)
#: optional order parameters -> the only types that take them; any other answers -1106
_ONLY_FOR: dict[str, frozenset[OrderType]] = {
    "timeInForce": _NEEDS_TIF,
    "price": frozenset(t for t in OrderType if t.has_limit),
    "stopPrice": frozenset(t for t in OrderType if t.is_stop),
    "quoteOrderQty": frozenset({OrderType.MARKET}),
}


async def _retired(request: web.Request) -> web.Response:
    """The listenKey endpoints, retired on 2026-02-20 (CHANGELOG.md 2026-01-21): Binance has
    answered them 410 Gone since; user data comes over the WebSocket API."""
    return web.Response(status=410)


async def _form_body(request: web.Request) -> tuple[str, bool]:
    """The request body's form text, and whether it was unreadable (not UTF-8). Parameters are
    read from a body only "with content type application/x-www-form-urlencoded" (rest-api.md
    "General Information on Endpoints"); a body of any other type is not read."""
    if not request.can_read_body or request.content_type != _FORM:
        return "", False
    try:
        return (await request.read()).decode("utf-8"), False
    except UnicodeDecodeError:
        return "", True


def _public_trades(tape: list[MarketTrade]) -> list[dict[str, Any]]:
    """Tape trades as ``trades`` and ``historicalTrades`` list them."""
    return [
        {
            "id": t.trade_id,
            "price": fmt(t.price),
            "qty": fmt(t.qty),
            "quoteQty": fmt(t.price * t.qty),
            "time": t.time_ms,
            "isBuyerMaker": t.buyer_is_maker,
            "isBestMatch": True,
        }
        for t in tape
    ]


def _permissions(params: Params) -> list[str]:
    """exchangeInfo's ``permissions``: one name or a JSON list of them; SPOT, MARGIN and
    LEVERAGED when absent (rest-api.md)."""
    text = params.get("permissions")
    if not text:
        return ["SPOT", "MARGIN", "LEVERAGED"]
    if not text.startswith("["):
        return [text]
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, -1100, "Illegal characters found in a parameter.")
    return names


def _listed(params: Params) -> bool:
    """Whether a market passes the ``symbolStatus`` filter: every market here is TRADING, so
    only HALT and BREAK filter them all out; -1122 for any other value."""
    status = params.get("symbolStatus")
    if status and status not in ("TRADING", "HALT", "BREAK"):
        raise ApiError(400, -1122, "Invalid symbolStatus.")
    return status in (None, "", "TRADING")


#: order parameters of features the markets do not allow (exchangeInfo says icebergAllowed,
#: allowTrailingStop and pegInstructionsAllowed false) -> the refusal (errors.md -2010)
_UNSUPPORTED = {
    "icebergQty": "Iceberg orders are not supported for this symbol.",
    "trailingDelta": "Trailing stop orders are not supported for this symbol.",
    "pegPriceType": "Pegged orders are not supported for this symbol.",
}


def _not_required(name: str) -> ApiError:
    return ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def _amount(params: Params, name: str, places: int) -> Decimal | None:
    """A price or quantity: -1100 when malformed, -1111 with more decimals than ``places``."""
    value = decimal(params, name)
    exponent = None if value is None else value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ApiError(400, -1111, f"Parameter '{name}' has too much precision.")
    return value


#: myTrades' optional parameters, and the combinations of them it takes (rest-api.md "These
#: are the supported combinations of all parameters"); any other is -1128
_MY_TRADES_OPTIONS = ("orderId", "startTime", "endTime", "fromId")
_MY_TRADES_COMBINATIONS = frozenset(
    frozenset(names)
    for names in (
        (),
        ("orderId",),
        ("startTime",),
        ("endTime",),
        ("fromId",),
        ("startTime", "endTime"),
        ("orderId", "fromId"),
    )
)


#: what each signed endpoint reads besides timestamp, recvWindow and signature (rest-api.md,
#: each endpoint's "Parameters"); any other parameter is -1104
_NEW_ORDER_PARAMS = frozenset(
    {
        "symbol",
        "side",
        "type",
        "timeInForce",
        "quantity",
        "quoteOrderQty",
        "price",
        "newClientOrderId",
        "strategyId",
        "strategyType",
        "stopPrice",
        "trailingDelta",
        "icebergQty",
        "newOrderRespType",
        "selfTradePreventionMode",
        "pegPriceType",
        "pegOffsetValue",
        "pegOffsetType",
    }
)
_ORDER_IDS = frozenset({"symbol", "orderId", "origClientOrderId"})
_SIGNING = frozenset({"timestamp", "recvWindow", "signature"})


def _unread(params: Params, reads: frozenset[str]) -> ApiError | None:
    """-1104 when a signed request carries a parameter its endpoint does not read: Binance
    counts every parameter sent, timestamp and signature included (errors.md -1104)."""
    read = sum(1 for name in params if name in reads or name in _SIGNING)
    if read == len(params):
        return None
    return ApiError(
        400,
        -1104,
        f"Not all sent parameters were read; read '{read}' parameter(s) but was sent "
        f"'{len(params)}'.",
    )


@dataclass(frozen=True)
class _Call:
    """One request as a handler sees it: its parameters and, when signed, its account."""

    request: web.Request
    params: Params
    account: Account | None

    @property
    def key(self) -> str:
        assert self.account is not None
        return self.account.api_key


Handler = Callable[[_Call], Any]


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    handler: Handler
    weight: Callable[[Params], int]
    signed: bool = False
    new_order: bool = False
    #: weight 0 when the request succeeds (order placement and cancels since 2026-04-02,
    #: CHANGELOG.md 2026-03-27); a failed one pays its weight
    free_on_success: bool = False
    #: the parameters a signed route reads (besides the signing ones)
    reads: frozenset[str] = frozenset()


@dataclass
class _OrderCount:
    """New orders per account in fixed windows (the ``ORDERS`` rate limits)."""

    window_ms: int
    limit: int
    #: the window as exchangeInfo names it: ``SECOND`` and 10 for ten seconds
    interval: str
    interval_num: int
    _counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The header suffix: ``10S`` in ``X-MBX-ORDER-COUNT-10S``."""
        return f"{self.interval_num}{self.interval[0]}"

    def rate_limit(self) -> dict[str, Any]:
        """The window as ``exchangeInfo`` lists it."""
        return rate_limit("ORDERS", self.interval, self.interval_num, self.limit)

    def add(self, account: str, now_ms: int) -> int:
        start = now_ms - now_ms % self.window_ms
        window, count = self._counts.get(account, (start, 0))
        count = count + 1 if window == start else 1
        self._counts[account] = (start, count)
        return count

    def current(self, account: str, now_ms: int) -> int:
        """New orders of ``account`` in the window ``now_ms`` falls in."""
        window, count = self._counts.get(account, (0, 0))
        return count if window == now_ms - now_ms % self.window_ms else 0

    def retry_after(self, now_ms: int) -> int:
        return max(1, -(-(self.window_ms - now_ms % self.window_ms) // 1000))


class _FillRecorder:
    """Collects the fills an order makes while it is placed (for the FULL response)."""

    def __init__(self) -> None:
        self._fills: list[VenueTrade] | None = None

    def __call__(self, event: VenueEvent) -> None:
        if self._fills is not None and isinstance(event, OrderEvent) and event.trade:
            self._fills.append(event.trade)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[VenueTrade]]:
        fills: list[VenueTrade] = []
        self._fills = fills
        try:
            yield fills
        finally:
            self._fills = None


class BinanceRest:
    """The REST routes of one Binance venue (see the module docstring)."""

    def __init__(
        self, venue: Venue, faults: Faults, settings: BinanceSettings, versions: BookVersions
    ) -> None:
        self.venue = venue
        self.faults = faults
        self.settings = settings
        self.versions = versions
        self.limiter = WeightWindow(
            settings.weight_limit,
            settings.weight_window_ms,
            venue.now_ms,
            ban_after=settings.ban_after,
            ban_ms=settings.ban_ms,
        )
        name, count, letter = interval_label(settings.weight_window_ms)
        self._weight_header = f"X-MBX-USED-WEIGHT-{count}{letter}"
        self._weight_limit = (name, count)
        self._order_counts = (
            _OrderCount(10_000, settings.orders_per_10s, "SECOND", 10),
            _OrderCount(_DAY_MS, settings.orders_per_day, "DAY", 1),
        )
        self.fills = _FillRecorder()
        venue.listeners.append(self.fills)

    def install(self, app: web.Application) -> None:
        """Add the ``/api/v3`` routes to ``app``."""
        for route in self._routes():
            app.router.add_route(route.method, f"/api/v3/{route.path}", self._endpoint(route))
        for method in ("POST", "PUT", "DELETE"):
            app.router.add_route(method, "/api/v3/userDataStream", _retired)

    def _routes(self) -> list[_Route]:
        one, signed = fixed(1), True
        return [
            _Route("GET", "ping", lambda call: {}, one),
            _Route("GET", "time", lambda call: {"serverTime": self.venue.now_ms()}, one),
            _Route("GET", "exchangeInfo", self._exchange_info, fixed(20)),
            _Route("GET", "depth", self._depth, depth_weight),
            _Route("GET", "trades", self._trades, fixed(25)),
            _Route("GET", "historicalTrades", self._historical_trades, fixed(25)),
            _Route("GET", "aggTrades", self._agg_trades, fixed(4)),
            _Route("GET", "klines", self._klines, fixed(2)),
            _Route("GET", "avgPrice", self._avg_price, fixed(2)),
            _Route("GET", "ticker/24hr", self._ticker_24hr, ticker_weight),
            _Route("GET", "ticker", self._rolling_ticker, rolling_weight),
            _Route("GET", "ticker/price", self._ticker_price, by_symbol(2, 4)),
            _Route("GET", "ticker/bookTicker", self._book_ticker, by_symbol(2, 4)),
            _Route(
                "POST",
                "order",
                self._new_order,
                one,
                signed,
                new_order=True,
                free_on_success=True,
                reads=_NEW_ORDER_PARAMS,
            ),
            _Route(
                "POST",
                "order/test",
                self._test_order,
                test_weight,
                signed,
                reads=_NEW_ORDER_PARAMS | {"computeCommissionRates"},
            ),
            _Route("GET", "order", self._query_order, fixed(4), signed, reads=_ORDER_IDS),
            _Route(
                "DELETE",
                "order",
                self._cancel_order,
                one,
                signed,
                free_on_success=True,
                reads=_ORDER_IDS | {"newClientOrderId", "cancelRestrictions"},
            ),
            _Route(
                "GET",
                "openOrders",
                self._open_orders,
                by_symbol(6, 80),
                signed,
                reads=frozenset({"symbol"}),
            ),
            _Route(
                "DELETE",
                "openOrders",
                self._cancel_open_orders,
                one,
                signed,
                free_on_success=True,
                reads=frozenset({"symbol"}),
            ),
            _Route(
                "GET",
                "allOrders",
                self._all_orders,
                fixed(20),
                signed,
                reads=frozenset({"symbol", "orderId", "startTime", "endTime", "limit"}),
            ),
            _Route(
                "GET",
                "myTrades",
                self._my_trades,
                my_trades_weight,
                signed,
                reads=frozenset({"symbol", *_MY_TRADES_OPTIONS, "limit"}),
            ),
            _Route(
                "GET",
                "account",
                self._account,
                fixed(20),
                signed,
                reads=frozenset({"omitZeroBalances"}),
            ),
            _Route(
                "GET",
                "account/commission",
                self._account_commission,
                fixed(20),
                signed,
                reads=frozenset({"symbol"}),
            ),
            _Route("GET", "rateLimit/order", self._order_rate, fixed(40), signed),
        ]

    # ----------------------------------------------------------------- serving
    def _endpoint(self, route: _Route) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            return await self._serve(request, route)

        return handle

    async def _serve(self, request: web.Request, route: _Route) -> web.Response:
        await self.faults.delay()
        raw_query = request.raw_path.partition("?")[2]
        raw_body, unreadable = await _form_body(request)
        body_pairs = parse_qsl(raw_body, keep_blank_values=True)
        query_pairs = parse_qsl(raw_query, keep_blank_values=True)
        params = dict(body_pairs)
        # A parameter in both wins from the query string (rest-api.md "General Information");
        # twice in one of them is -1101.
        params.update(query_pairs)
        repeated = any(
            len({k for k, _ in pairs}) < len(pairs) for pairs in (body_pairs, query_pairs)
        )
        client = client_address(request)
        if self.faults.take("error_5xx"):
            return json_reply(_INTERNAL.body(), _INTERNAL.status)
        weight = route.weight(params)
        if self.faults.take("rate_limit_storm"):
            verdict = self.limiter.refuse(client)
        else:
            verdict = self.limiter.check(client, weight)
        headers = self._weight_headers(verdict.used)
        if verdict.status != 200:
            return self._refusal(verdict, headers)
        try:
            if unreadable:
                raise ApiError(400, -1100, "Illegal characters found in a parameter.")
            if repeated:
                raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
            account = None
            if route.signed:
                account = authenticate(
                    self.venue.accounts,
                    request.headers.get("X-MBX-APIKEY"),
                    params,
                    unsigned(raw_query) + unsigned(raw_body),
                    now_ms=self.venue.now_ms(),
                    max_recv_window_ms=self.settings.max_recv_window_ms,
                )
                if unread := _unread(params, route.reads):
                    raise unread
            if route.new_order:
                assert account is not None
                self._count_order(account.api_key, headers)
            body = route.handler(_Call(request, params, account))
        except Rejection as rejection:
            error = rejection_error(rejection)
            return json_reply(error.body(), error.status, headers)
        except ApiError as error:
            return json_reply(error.body(), error.status, headers)
        if route.free_on_success:
            headers.update(self._weight_headers(self.limiter.refund(client, weight)))
        return json_reply(body, headers=headers)

    def _weight_headers(self, used: int) -> dict[str, str]:
        # Binance's replies carry the weight without the interval too (X-MBX-USED-WEIGHT, seen
        # next to X-MBX-USED-WEIGHT-1M); the docs name only the interval form.
        return {self._weight_header: str(used), "X-MBX-USED-WEIGHT": str(used)}

    def _refusal(self, verdict: Verdict, headers: dict[str, str]) -> web.Response:
        headers["Retry-After"] = str(verdict.retry_after)
        error = weight_refusal(verdict, self.settings, self.venue.now_ms())
        return json_reply(error.body(), error.status, headers)

    def _count_order(self, account: str, headers: dict[str, str]) -> None:
        """Count a new order in ``headers``; -1015 when a window's limit is passed."""
        now = self.venue.now_ms()
        over = None
        for counter in self._order_counts:
            count = counter.add(account, now)
            headers[f"X-MBX-ORDER-COUNT-{counter.label}"] = str(count)
            if count > counter.limit and over is None:
                over = counter
        if over is not None:
            headers["Retry-After"] = str(over.retry_after(now))
            raise ApiError(
                429,
                -1015,
                f"Too many new orders; current limit is {over.limit} orders per "
                f"{over.interval_num} {over.interval}.",
            )

    # ----------------------------------------------------------------- market data
    def _exchange_info(self, call: _Call) -> dict[str, Any]:
        wanted = symbols_param(call.params)
        # Every market is a SPOT one: asking for other permissions only lists none.
        spot = "SPOT" in _permissions(call.params)
        markets = self.venue.markets if _listed(call.params) and spot else {}
        for symbol in wanted or ():
            self.venue.market(symbol)
        shown = call.params.get("showPermissionSets") != "false"
        name, count = self._weight_limit
        return {
            "timezone": "UTC",
            "serverTime": self.venue.now_ms(),
            "rateLimits": [
                rate_limit("REQUEST_WEIGHT", name, count, self.settings.weight_limit),
                *(counter.rate_limit() for counter in self._order_counts),
            ],
            "exchangeFilters": [],
            "symbols": [
                {**symbol_info(spec), **({} if shown else {"permissionSets": []})}
                for symbol, spec in markets.items()
                if not wanted or symbol in wanted
            ],
        }

    def _depth(self, call: _Call) -> dict[str, Any]:
        symbol = self._trading(call.params)
        limit = min(integer(call.params, "limit", 100), 5000)
        bids, asks = self.venue.book(symbol, limit)
        return {
            "lastUpdateId": self.versions[symbol],
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    def _trades(self, call: _Call) -> list[dict[str, Any]]:
        symbol = self._symbol(call.params)
        return _public_trades(self.venue.tape(symbol, page_limit(call.params)))

    def _historical_trades(self, call: _Call) -> list[dict[str, Any]]:
        # Older trades than the tape holds are gone: the venue keeps its last 1000.
        symbol, params = self._symbol(call.params), call.params
        from_id = opt_int(params, "fromId")
        tape = self.venue.tape(symbol, TAPE_LENGTH)
        if from_id is None:
            return _public_trades(tape[-page_limit(params) :])
        return _public_trades([t for t in tape if t.trade_id >= from_id][: page_limit(params)])

    def _agg_trades(self, call: _Call) -> list[dict[str, Any]]:
        # Each tape trade is one taker's fill at one price: its own aggregate.
        symbol, params = self._symbol(call.params), call.params
        limit = page_limit(params)
        tape = self.venue.tape(symbol, TAPE_LENGTH)
        from_id, start, end = (
            opt_int(params, "fromId"),
            opt_time(params, "startTime"),
            opt_time(params, "endTime"),
        )
        picked = [
            t
            for t in tape
            if (from_id is None or t.trade_id >= from_id)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
        ]
        picked = picked[:limit] if from_id is not None or start is not None else picked[-limit:]
        return [
            {
                "a": t.trade_id,
                "p": fmt(t.price),
                "q": fmt(t.qty),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": t.time_ms,
                "m": t.buyer_is_maker,
                "M": True,
            }
            for t in picked
        ]

    def _klines(self, call: _Call) -> list[list[Any]]:
        symbol, params = self._symbol(call.params), call.params
        interval = required(params, "interval")
        if interval not in INTERVALS:
            raise ApiError(400, -1120, "Invalid interval.")
        # Default 500, at most 1000, and at least one (limit=0 sliced as rows[-0:], every row).
        limit = page_limit(params)
        start, end = opt_time(params, "startTime"), opt_time(params, "endTime")
        candles = fold_klines(self.venue, symbol, interval, start, end)
        rows = [kline_row(candle, close) for candle, close in candles]
        return rows[:limit] if start is not None else rows[-limit:]

    def _avg_price(self, call: _Call) -> dict[str, Any]:
        mins, price, last_ms = average_price(
            self.venue, self._symbol(call.params), self.venue.now_ms()
        )
        return {"mins": mins, "price": fmt(price), "closeTime": last_ms}

    def _ticker_24hr(self, call: _Call) -> Any:
        return self._tickers(call.params, _DAY_MS, None)

    def _rolling_ticker(self, call: _Call) -> Any:
        params = call.params
        if not params.get("symbol") and not params.get("symbols"):
            raise ApiError(
                400, -1102, "Param 'symbol' or 'symbols' must be sent, but both were empty/null!"
            )
        size = params.get("windowSize") or "1d"
        match = _WINDOW_SIZE.fullmatch(size)
        if match is None or not 1 <= int(match[1]) <= _WINDOW_UNITS[match[2]][1]:
            raise ApiError(400, -1130, "Data sent for parameter 'windowSize' is not valid.")
        return self._tickers(params, int(match[1]) * _WINDOW_UNITS[match[2]][0], _ROLLING_TICKER)

    def _tickers(self, params: Params, window_ms: int, fields: tuple[str, ...] | None) -> Any:
        """Tickers over ``window_ms``: FULL as ``fields`` names them (all of ``ticker/24hr``'s
        when None), or MINI."""
        now = self.venue.now_ms()
        kind = params.get("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise ApiError(400, -1139, "Invalid ticker type.")
        keys = _MINI_TICKER if kind == "MINI" else fields

        def render(symbol: str) -> dict[str, Any]:
            full = day_ticker(self.venue, symbol, now, window_ms)
            if window_ms != _DAY_MS:
                # The rolling window opens on a minute (rest-api.md GET /api/v3/ticker).
                full["openTime"] -= full["openTime"] % MINUTE_MS
            return full if keys is None else {key: full[key] for key in keys}

        return self._each_symbol(params, render)

    def _ticker_price(self, call: _Call) -> Any:
        return self._each_symbol(
            call.params, lambda s: {"symbol": s, "price": fmt(last_trade_price(self.venue, s))}
        )

    def _book_ticker(self, call: _Call) -> Any:
        return self._each_symbol(call.params, lambda s: {"symbol": s, **book_top(self.venue, s)})

    def _each_symbol(self, params: Params, render: Callable[[str], dict[str, Any]]) -> Any:
        """One object for ``symbol``, a list for ``symbols`` or for every market."""
        if "symbol" in params:
            return render(self._trading(params))
        wanted = symbols_param(params)
        names = [self.venue.market(s).symbol for s in wanted or self.venue.markets]
        return [render(s) for s in names] if _listed(params) else []

    # ----------------------------------------------------------------- orders
    def _new_order(self, call: _Call) -> dict[str, Any]:
        request = self._order_request(call.params)
        kind = call.params.get("newOrderRespType") or (
            "FULL" if request.type in _FULL_BY_DEFAULT else "ACK"
        )
        if kind not in _RESPONSE_TYPES:
            raise illegal("newOrderRespType", ", ".join(_RESPONSE_TYPES))
        with self.fills.recording() as fills:
            order = self.venue.place(call.key, request)
        if self.faults.take("drop_after_accept"):
            drop(call.request)
        ack = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "transactTime": order.created_ms,
        }
        if kind == "ACK":
            return ack
        body = {
            **ack,
            **order_body(order),
            "workingTime": order.created_ms if order.working else -1,
        }
        if kind == "FULL":
            body["fills"] = [
                {
                    "price": fmt(t.price),
                    "qty": fmt(t.qty),
                    "commission": fmt(t.fee),
                    "commissionAsset": t.fee_asset,
                    "tradeId": t.trade_id,
                }
                for t in fills
            ]
        return body

    def _test_order(self, call: _Call) -> dict[str, Any]:
        # Parsed and filtered like a new order; it never reaches the matching engine.
        self.venue.check_filters(call.key, self._order_request(call.params))
        if call.params.get("computeCommissionRates") != "true":
            return {}
        rates = self._commission(("maker", "taker"))
        return {f"{kind}CommissionForOrder": rates[kind] for kind in _COMMISSION_KINDS} | {
            "discount": rates["discount"]
        }

    def _account_commission(self, call: _Call) -> dict[str, Any]:
        rates = self._commission(("maker", "taker", "buyer", "seller"))
        return {
            "symbol": self._symbol(call.params),
            **{f"{kind}Commission": rates[kind] for kind in _COMMISSION_KINDS},
            "discount": rates["discount"],
        }

    def _commission(self, roles: tuple[str, ...]) -> dict[str, Any]:
        """The account's rates by kind for ``roles``: the venue's maker and taker fees as the
        standard commission, no special or tax commission, no BNB discount."""
        standard = {"maker": self.venue.maker_fee, "taker": self.venue.taker_fee}
        return {
            "standard": {role: fmt(standard.get(role)) for role in roles},
            "special": {role: fmt(None) for role in roles},
            "tax": {role: fmt(None) for role in roles},
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "BNB",
                "discount": fmt(None),
            },
        }

    def _order_rate(self, call: _Call) -> list[dict[str, Any]]:
        now = self.venue.now_ms()
        return [
            {**counter.rate_limit(), "count": counter.current(call.key, now)}
            for counter in self._order_counts
        ]

    def _order_request(self, params: Params) -> OrderRequest:
        """Parse a new order, refusing what Binance refuses before its matching engine: the
        parameters each type must have (-1102) and must not have (-1106), and amounts with
        more decimals than their asset has (-1111)."""
        symbol = self._symbol(params)
        spec = self.venue.market(symbol)
        side = enum_param(params, "side", Side, -1117, "Invalid side.")
        kind = enum_param(params, "type", OrderType, -1116, "Invalid orderType.")
        for name, kinds in _ONLY_FOR.items():
            if params.get(name) and kind not in kinds:
                raise _not_required(name)
        for name, msg in _UNSUPPORTED.items():
            if params.get(name):
                raise ApiError(400, -2010, msg)
        tif = params.get("timeInForce")
        if kind in _NEEDS_TIF and not tif:
            raise missing_param("timeInForce")
        qty = _amount(params, "quantity", spec.base_precision)
        quote = _amount(params, "quoteOrderQty", spec.quote_precision)
        price = _amount(params, "price", spec.quote_precision)
        stop = _amount(params, "stopPrice", spec.quote_precision)
        if kind is OrderType.MARKET:
            if qty is None and quote is None:
                raise ApiError(
                    400,
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
            if qty is not None and quote is not None:
                raise _not_required("quantity")
        elif qty is None:
            raise missing_param("quantity")
        if kind.has_limit and price is None:
            raise missing_param("price")
        if kind.is_stop and stop is None:
            raise missing_param("stopPrice")
        return OrderRequest(
            symbol=symbol,
            side=side,
            type=kind,
            qty=qty,
            quote_qty=quote,
            price=price,
            stop_price=stop,
            tif=enum_param(
                {"timeInForce": tif or "GTC"},
                "timeInForce",
                TimeInForce,
                -1115,
                "Invalid timeInForce.",
            ),
            client_id=client_id(params, "newClientOrderId"),
        )

    def _find(self, call: _Call) -> VenueOrder:
        params = call.params
        symbol = self._symbol(params)
        order_id, client_id = opt_int(params, "orderId"), params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise ApiError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            order = self.venue.order(call.key, symbol=symbol, order_id=order_id)
            if client_id and order.client_id != client_id:
                raise _CLIENT_ID_MISMATCH
            return order
        return self.venue.order(call.key, symbol=symbol, client_id=client_id)

    def _query_order(self, call: _Call) -> dict[str, Any]:
        return order_status(self._find(call))

    def _cancel_order(self, call: _Call) -> dict[str, Any]:
        cancel_id = client_id(call.params, "newClientOrderId")
        restriction = call.params.get("cancelRestrictions")
        if restriction and restriction not in _CANCEL_RESTRICTIONS:
            raise ApiError(400, -1145, "Invalid cancelRestrictions")
        try:
            order = self._find(call)
            if restriction and order.status is not _CANCEL_RESTRICTIONS[restriction]:
                raise ApiError(400, -2011, "Order was not canceled due to cancel restrictions.")
            self.venue.cancel(call.key, order.symbol, order_id=order.order_id, cancel_id=cancel_id)
        except Rejection as rejection:
            if rejection.reason is Reason.UNKNOWN_ORDER:
                raise _UNKNOWN_CANCEL from rejection
            raise
        except ApiError as error:
            # A cancel names a wrong pair of ids with the cancel's own code (2025-04-25's
            # -2039 is for queries only).
            if error is _CLIENT_ID_MISMATCH:
                raise _UNKNOWN_CANCEL from error
            raise
        return self._canceled(order)

    def _cancel_open_orders(self, call: _Call) -> list[dict[str, Any]]:
        symbol = self._symbol(call.params)
        canceled = self.venue.cancel_all(call.key, symbol)
        if not canceled:
            raise _UNKNOWN_CANCEL
        return [self._canceled(order) for order in canceled]

    def _canceled(self, order: VenueOrder) -> dict[str, Any]:
        return {
            **order_body(order),
            "origClientOrderId": order.client_id,
            "clientOrderId": order.cancel_id,
            "transactTime": order.updated_ms,
        }

    def _open_orders(self, call: _Call) -> list[dict[str, Any]]:
        symbol = self._symbol(call.params) if "symbol" in call.params else None
        return [order_status(o) for o in self.venue.open_orders(call.key, symbol)]

    def _all_orders(self, call: _Call) -> list[dict[str, Any]]:
        params = call.params
        orders = self.venue.orders(call.key, self._symbol(params))
        from_id = opt_int(params, "orderId")
        picked = window(
            orders,
            lambda o: o.created_ms,
            params,
            lambda o: from_id is None or o.order_id >= from_id,
        )
        return [order_status(o) for o in page(picked, params, from_id is not None)]

    def _my_trades(self, call: _Call) -> list[dict[str, Any]]:
        params = call.params
        given = frozenset(name for name in _MY_TRADES_OPTIONS if name in params)
        if given not in _MY_TRADES_COMBINATIONS:
            raise ApiError(400, -1128, "Combination of optional parameters invalid.")
        trades = self.venue.trades(call.key, self._symbol(params))
        order_id, from_id = opt_int(params, "orderId"), opt_int(params, "fromId")
        picked = window(
            trades,
            lambda t: t.time_ms,
            params,
            lambda t: (
                (order_id is None or t.order_id == order_id)
                and (from_id is None or t.trade_id >= from_id)
            ),
        )
        return [trade_body(t) for t in page(picked, params, from_id is not None)]

    def _account(self, call: _Call) -> dict[str, Any]:
        account = call.account
        assert account is not None
        omit_zero = call.params.get("omitZeroBalances") == "true"
        balances = []
        for asset in account.assets():
            free, locked = account.balance(asset)
            if omit_zero and not (free or locked):
                continue
            balances.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
        maker, taker = self.venue.maker_fee, self.venue.taker_fee
        return {
            "makerCommission": int(maker * 10_000),
            "takerCommission": int(taker * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(maker),
                "taker": fmt(taker),
                "buyer": fmt(None),
                "seller": fmt(None),
            },
            "canTrade": True,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.venue.now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": zlib.crc32(account.api_key.encode()),
        }

    def _trading(self, params: Params) -> str:
        """:meth:`_symbol`, refused with -1220 when ``symbolStatus`` asks for another status
        than the market's (always TRADING here)."""
        symbol = self._symbol(params)
        if not _listed(params):
            raise ApiError(
                400, -1220, "The symbol's status does not match the requested symbolStatus."
            )
        return symbol

    def _symbol(self, params: Params) -> str:
        """The market named by ``symbol``: -1102 when missing, -1100 when malformed, -1121
        when unknown."""
        return self.venue.market(symbol_name(params)).symbol
