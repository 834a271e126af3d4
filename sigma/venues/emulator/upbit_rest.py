"""Upbit's REST API under ``/v1``: quotation (markets, tickers, books, trades, candles) and the
exchange API (accounts, order chance, orders), with Upbit's JWT, rate-limit groups and faults.

Every request: the latency fault, then a 5xx or rate-limit-storm fault if one is due, then the
JWT (exchange API), then the group's rate limit, then the handler. Replies carry Upbit's
``Remaining-Req: group=...; min=...; sec=...`` header.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from multidict import MultiDict, MultiMapping

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import client_address, drop, json_reply
from sigma.venues.emulator.klines import MINUTE_MS, Candle
from sigma.venues.emulator.limits import Verdict, WeightWindow
from sigma.venues.emulator.model import (
    OrderRequest,
    OrderType,
    Rejection,
    Side,
    TimeInForce,
    VenueOrder,
)
from sigma.venues.emulator.upbit_auth import JwtVerifier
from sigma.venues.emulator.upbit_settings import UpbitSettings
from sigma.venues.emulator.upbit_wire import (
    DAY_MS,
    KST,
    UpbitError,
    book_units,
    day_stats,
    limit_refusal,
    num,
    order_json,
    order_state,
    rejection_error,
    remaining_req,
    side_code,
    text,
    ticker_fields,
    utc_parts,
    validation_error,
)
from sigma.venues.emulator.venue import Venue

__all__ = ["UpbitRest"]

Params = MultiMapping[str]
Handler = Callable[[web.Request, Params, Account | None], Awaitable[Any]]

_NAMES = {"BTC": ("비트코인", "Bitcoin"), "ETH": ("이더리움", "Ethereum")}
_SIDES = {"bid": Side.BUY, "ask": Side.SELL}
_MINUTE_UNITS = frozenset({1, 3, 5, 10, 15, 30, 60, 240})
#: period -> (interval, grid offset): weeks start on Monday, four days after the epoch
_PERIODS = {"days": (DAY_MS, 0), "weeks": (7 * DAY_MS, 4 * DAY_MS)}
_CLOSED_RANGE_MS = 7 * DAY_MS
# Numbers as text: ASCII digits, a fraction, and for a JSON number printed by its sender an
# exponent. Not what int() and Decimal() also take ("1_0" is ten, " 5 " five, "٣" three):
# a typo must not become an order of another size.
_INTEGER = re.compile("[0-9]{1,18}")
_NUMBER = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?")
_OPEN_STATES = frozenset({"wait", "watch"})
_CLOSED_STATES = frozenset({"done", "cancel"})


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    group: str
    handler: Handler
    private: bool
    status: int = 200


class UpbitRest:
    """The REST routes of one Upbit venue."""

    def __init__(self, venue: Venue, faults: Faults, settings: UpbitSettings) -> None:
        self.venue = venue
        self.faults = faults
        self.settings = settings
        self.jwt = JwtVerifier(venue)
        s = settings
        quotation = s.quotation_per_window
        per_group = {
            "market": (quotation, 1),
            "ticker": (quotation, 1),
            "orderbook": (quotation, 1),
            "trade": (quotation, 1),
            "candle": (quotation, 1),
            "default": (s.exchange_per_window, 1),
            "order": (s.order_per_window, 1),
            "order-cancel-all": (s.cancel_all_per_window, s.cancel_all_windows),
        }
        self.limiters = {
            group: WeightWindow(
                limit, s.window_ms * windows, venue.now_ms, ban_after=s.ban_after, ban_ms=s.ban_ms
            )
            for group, (limit, windows) in per_group.items()
        }

    def install(self, app: web.Application) -> None:
        """Add the ``/v1`` routes to ``app``."""
        routes = [
            _Route("GET", "/v1/market/all", "market", self.market_all, False),
            _Route("GET", "/v1/ticker", "ticker", self.ticker, False),
            _Route("GET", "/v1/ticker/all", "ticker", self.ticker_all, False),
            _Route("GET", "/v1/orderbook", "orderbook", self.orderbook, False),
            _Route("GET", "/v1/trades/ticks", "trade", self.trades, False),
            _Route("GET", "/v1/candles/minutes/{unit}", "candle", self.candles, False),
            _Route(
                "GET", "/v1/candles/{period:days|weeks|months|years}", "candle", self.candles, False
            ),
            _Route("GET", "/v1/accounts", "default", self.accounts, True),
            _Route("GET", "/v1/orders/chance", "default", self.chance, True),
            _Route("POST", "/v1/orders", "order", self.create_order, True, 201),
            _Route("GET", "/v1/order", "default", self.get_order, True),
            _Route("DELETE", "/v1/order", "default", self.cancel_order, True),
            _Route("GET", "/v1/orders/open", "default", self.open_orders, True),
            _Route("GET", "/v1/orders/closed", "default", self.closed_orders, True),
            _Route("GET", "/v1/orders/uuids", "default", self.orders_by_ids, True),
            _Route("GET", "/v1/orders", "default", self.orders, True),
        ]
        for route in routes:
            app.router.add_route(route.method, route.path, self._endpoint(route))

    # ------------------------------------------------------------------ the pipeline
    def _endpoint(self, route: _Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            await self.faults.delay()
            if self.faults.take("error_5xx"):
                # A gateway's answer, not Upbit's error object: clients see a server outage.
                return web.Response(status=503, text="503 Service Temporarily Unavailable")
            limiter = self.limiters[route.group]
            headers: dict[str, str] = {}
            try:
                params, query = await _params(request)
                account = None
                if route.private:
                    auth = request.headers.get("Authorization")
                    account = self.jwt.verify(auth, query, replay=True)
                client = account.api_key if account else client_address(request)
                if self.faults.take("rate_limit_storm"):
                    return self._refused(limiter.refuse(client), route.group)
                verdict = limiter.check(client, 1)
                if verdict.status != 200:
                    return self._refused(verdict, route.group)
                headers = self._remaining(route.group, verdict)
                body = await route.handler(request, params, account)
            except UpbitError as error:
                return error.reply(headers)
            return json_reply(body, route.status, headers)

        return endpoint

    def _remaining(self, group: str, verdict: Verdict) -> dict[str, str]:
        return remaining_req(group, self.limiters[group].limit, verdict)

    def _refused(self, verdict: Verdict, group: str) -> web.Response:
        return limit_refusal(group, self.limiters[group].limit, verdict)

    # ------------------------------------------------------------------ quotation
    async def market_all(self, request: web.Request, params: Params, _: Account | None) -> Any:
        details = params.get("isDetails", "false").lower() == "true"
        rows = []
        for symbol, spec in self.venue.markets.items():
            korean, english = _NAMES.get(spec.base, (spec.base, spec.base))
            row: dict[str, object] = {
                "market": symbol,
                "korean_name": korean,
                "english_name": english,
            }
            if details:
                row["market_event"] = {"warning": False, "caution": {}}
            rows.append(row)
        return rows

    async def ticker(self, request: web.Request, params: Params, _: Account | None) -> Any:
        return [self._ticker(symbol) for symbol in self._symbols(params.get("markets"))]

    async def ticker_all(self, request: web.Request, params: Params, _: Account | None) -> Any:
        quotes = set(_required(params, "quote_currencies").split(","))
        return [self._ticker(s) for s, spec in self.venue.markets.items() if spec.quote in quotes]

    def _ticker(self, symbol: str) -> dict[str, object]:
        now = self.venue.now_ms()
        return {"market": symbol, **ticker_fields(day_stats(self.venue, symbol, now), now)}

    async def orderbook(self, request: web.Request, params: Params, _: Account | None) -> Any:
        depth = _int(
            params, "count", self.settings.rest_book_depth, 1, self.settings.rest_book_depth
        )
        now = self.venue.now_ms()
        return [
            {"market": s, "timestamp": now, **book_units(self.venue, s, depth)}
            for s in self._symbols(params.get("markets"))
        ]

    async def trades(self, request: web.Request, params: Params, _: Account | None) -> Any:
        (symbol,) = self._symbols(_required(params, "market"))
        count = _int(params, "count", 1, 1, 500)
        cursor = _int(params, "cursor", 0, 0, None)
        tape = [t for t in self.venue.tape(symbol) if not cursor or t.trade_id < cursor]
        stats = day_stats(self.venue, symbol, self.venue.now_ms())
        rows = []
        for t in reversed(tape[-count:]):
            moment = utc_parts(t.time_ms)
            rows.append(
                {
                    "market": symbol,
                    "trade_date_utc": moment.strftime("%Y-%m-%d"),
                    "trade_time_utc": moment.strftime("%H:%M:%S"),
                    "timestamp": t.time_ms,
                    "trade_price": num(t.price),
                    "trade_volume": num(t.qty),
                    "prev_closing_price": num(stats.prev_close),
                    "change_price": num(t.price - stats.prev_close),
                    "ask_bid": "ASK" if t.buyer_is_maker else "BID",
                    "sequential_id": t.trade_id,
                }
            )
        return rows

    async def candles(self, request: web.Request, params: Params, _: Account | None) -> Any:
        (symbol,) = self._symbols(_required(params, "market"))
        count = _int(params, "count", 1, 1, 200)
        to = params.get("to")
        end = _time_ms(to) if to else self.venue.now_ms() + 1
        period = request.match_info.get("period", "minutes")
        unit = _int(request.match_info, "unit", 1, 1, None) if period == "minutes" else None
        if unit is not None and unit not in _MINUTE_UNITS:
            raise validation_error("unit")
        bars = _bars(self.venue, symbol, period, unit, end)[-count:]
        rows = []
        for i, bar in enumerate(bars):
            row = _candle_json(symbol, bar, period, unit, end)
            if period == "days" and i > 0:
                prev = bars[i - 1].close
                row["prev_closing_price"] = num(prev)
                row["change_price"] = num(bar.close - prev)
                row["change_rate"] = num((bar.close - prev) / prev)
            rows.append(row)
        return rows[::-1]

    def _symbols(self, markets: str | None) -> list[str]:
        if not markets:
            raise validation_error("markets")
        symbols = markets.split(",")
        if any(s not in self.venue.markets for s in symbols):
            raise UpbitError(404, 404, "Code not found")
        return symbols

    # ------------------------------------------------------------------ exchange
    async def accounts(self, request: web.Request, params: Params, account: Account | None) -> Any:
        assert account is not None
        return [
            _account_row(account, asset)
            for asset in account.assets()
            if any(account.balance(asset)) or asset == "KRW"
        ]

    async def chance(self, request: web.Request, params: Params, account: Account | None) -> Any:
        assert account is not None
        spec = self._market(_required(params, "market"))
        market = {
            "id": spec.symbol,
            "name": f"{spec.base}/{spec.quote}",
            "order_types": [],
            "order_sides": ["ask", "bid"],
            "bid_types": ["best_fok", "best_ioc", "limit", "limit_fok", "limit_ioc", "price"],
            "ask_types": ["best_fok", "best_ioc", "limit", "limit_fok", "limit_ioc", "market"],
            "bid": {"currency": spec.quote, "min_total": text(spec.min_notional)},
            "ask": {"currency": spec.quote, "min_total": text(spec.min_notional)},
            "max_total": text(spec.max_notional),
            "state": "active",
        }
        venue = self.venue
        return {
            "bid_fee": text(venue.taker_fee),
            "ask_fee": text(venue.taker_fee),
            "maker_bid_fee": text(venue.maker_fee),
            "maker_ask_fee": text(venue.maker_fee),
            "market": market,
            "bid_account": _account_row(account, spec.quote),
            "ask_account": _account_row(account, spec.base),
        }

    async def create_order(
        self, request: web.Request, params: Params, account: Account | None
    ) -> Any:
        assert account is not None
        order_request = _order_request(params)
        try:
            order = self.venue.place(account.api_key, order_request)
        except Rejection as rejection:
            spec = self.venue.markets.get(order_request.symbol)
            raise rejection_error(rejection, order_request.side, spec) from rejection
        if self.faults.take("drop_after_accept"):
            drop(request)
        return order_json(self.venue, order)

    async def get_order(self, request: web.Request, params: Params, account: Account | None) -> Any:
        order = self._order(params, account)
        return order_json(self.venue, order, self.venue.order_trades(order.order_id))

    async def cancel_order(
        self, request: web.Request, params: Params, account: Account | None
    ) -> Any:
        order = self._order(params, account)
        # Upbit accepts the cancel and answers with the order as it was ("wait").
        before = order.snapshot()
        try:
            self.venue.cancel(order.account, None, order_id=order.order_id)
        except Rejection as rejection:
            raise rejection_error(rejection) from rejection
        return order_json(self.venue, before)

    async def open_orders(
        self, request: web.Request, params: Params, account: Account | None
    ) -> Any:
        states = _states(params, _OPEN_STATES)
        return self._listing(params, account, states, limit_max=100)

    async def closed_orders(
        self, request: web.Request, params: Params, account: Account | None
    ) -> Any:
        states = _states(params, _CLOSED_STATES)
        start, end = params.get("start_time"), params.get("end_time")
        end_ms = _time_ms(end) if end else None
        start_ms = _time_ms(start) if start else None
        if start_ms is None:
            end_ms = end_ms if end_ms is not None else self.venue.now_ms()
            start_ms = end_ms - _CLOSED_RANGE_MS
        elif end_ms is None:
            end_ms = start_ms + _CLOSED_RANGE_MS
        if end_ms - start_ms > _CLOSED_RANGE_MS or end_ms < start_ms:
            raise validation_error("end_time")
        return self._listing(params, account, states, limit_max=1000, window=(start_ms, end_ms))

    async def orders_by_ids(
        self, request: web.Request, params: Params, account: Account | None
    ) -> Any:
        if not (params.getall("uuids[]", []) or params.getall("identifiers[]", [])):
            raise validation_error("uuids")
        return self._listing(params, account, _OPEN_STATES | _CLOSED_STATES, limit_max=100)

    async def orders(self, request: web.Request, params: Params, account: Account | None) -> Any:
        return self._listing(params, account, _states(params, frozenset({"wait"})), limit_max=100)

    def _listing(
        self,
        params: Params,
        account: Account | None,
        states: Iterable[str],
        *,
        limit_max: int,
        window: tuple[int, int] | None = None,
    ) -> list[dict[str, object]]:
        assert account is not None
        market = params.get("market")
        if market:
            self._market(market)
        uuids = set(params.getall("uuids[]", []))
        identifiers = set(params.getall("identifiers[]", []))
        wanted = set(states)
        found = [
            o
            for o in self.venue.orders(account.api_key, market or None)
            if order_state(o) in wanted
            and (not uuids or self.venue.uuid_of(o) in uuids)
            and (not identifiers or o.client_id in identifiers)
            and (window is None or window[0] <= o.created_ms <= window[1])
        ]
        if params.get("order_by", "desc") != "asc":
            found.reverse()
        limit = _int(params, "limit", 100, 1, limit_max)
        page = _int(params, "page", 1, 1, None)
        return [order_json(self.venue, o) for o in found[(page - 1) * limit : page * limit]]

    def _order(self, params: Params, account: Account | None) -> VenueOrder:
        assert account is not None
        uid, identifier = params.get("uuid"), params.get("identifier")
        if not uid and not identifier:
            raise validation_error("uuid")
        try:
            return self.venue.order(account.api_key, uid=uid or None, client_id=identifier)
        except Rejection as rejection:
            raise rejection_error(rejection) from rejection

    def _market(self, symbol: str) -> Any:
        spec = self.venue.markets.get(symbol)
        if spec is None:
            raise validation_error("market")
        return spec


# ---------------------------------------------------------------------- parsing
async def _params(request: web.Request) -> tuple[Params, str | None]:
    """The request's parameters and the string its ``query_hash`` covers (None: none)."""
    if request.method != "POST":
        raw = request.rel_url.raw_query_string
        return request.query, unquote(raw) if raw else None
    body = await request.read()
    try:
        fields = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise UpbitError(400, "validation_error", "JSON 형식이 올바르지 않습니다.") from exc
    if not isinstance(fields, dict):
        raise UpbitError(400, "validation_error", "JSON 형식이 올바르지 않습니다.")
    pairs = [(str(k), _field_text(v)) for k, v in fields.items() if v is not None]
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return MultiDict(pairs), query or None


def _field_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise validation_error(name)
    return value


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise validation_error(name)
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise validation_error(name)
    return value


def _decimal(params: Params, name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _NUMBER.fullmatch(raw):
        raise validation_error(name)
    value = Decimal(raw)
    if value <= 0:
        raise validation_error(name)
    return value


def _time_ms(raw: str) -> int:
    """Epoch milliseconds, or ISO 8601 (naive: UTC)."""
    # ASCII digits only: str.isdigit also holds for "²", which int() refuses.
    if raw.isascii() and raw.isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError as exc:
        raise validation_error("to") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _states(params: Params, allowed: frozenset[str]) -> frozenset[str]:
    asked = params.getall("states[]", []) or ([params["state"]] if params.get("state") else [])
    if not asked:
        return allowed
    if not set(asked) <= allowed:
        raise validation_error("state")
    return frozenset(asked)


def _order_request(params: Params) -> OrderRequest:
    """POST /v1/orders' body as a venue order. Upbit's order types: ``limit`` (price, volume),
    ``price`` (a market bid spending ``price`` KRW), ``market`` (a market ask of ``volume``) and
    ``best`` (the best price now, ``time_in_force`` ioc or fok; a bid by amount, an ask by
    volume)."""
    market = _required(params, "market")
    side = _SIDES.get(params.get("side", ""))
    if side is None:
        raise UpbitError(
            400, "validation_error", "side is missing, side does not have a valid value"
        )
    kind = _required(params, "ord_type")
    price, volume = _decimal(params, "price"), _decimal(params, "volume")
    tif_text = params.get("time_in_force")
    identifier = params.get("identifier") or None
    wrong = UpbitError(
        400, f"create_{side_code(side)}_error", "주문 요청 정보가 올바르지 않습니다."
    )
    if kind == "limit":
        if price is None or volume is None:
            raise validation_error("price" if price is None else "volume")
        tif = {"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}.get(tif_text or "", TimeInForce.GTC)
        if tif_text not in (None, "ioc", "fok", "post_only"):
            raise validation_error("time_in_force")
        order_type = OrderType.LIMIT_MAKER if tif_text == "post_only" else OrderType.LIMIT
        return OrderRequest(
            market, side, order_type, qty=volume, price=price, tif=tif, client_id=identifier
        )
    if kind == "best" and tif_text not in ("ioc", "fok"):
        raise validation_error("time_in_force")
    if kind in ("price", "best") and side is Side.BUY:
        if price is None or volume is not None:
            raise wrong
        return OrderRequest(market, side, OrderType.MARKET, quote_qty=price, client_id=identifier)
    if kind in ("market", "best") and side is Side.SELL:
        if volume is None or price is not None:
            raise wrong
        return OrderRequest(market, side, OrderType.MARKET, qty=volume, client_id=identifier)
    if kind in ("price", "market", "best"):
        raise wrong
    raise validation_error("ord_type")


def _account_row(account: Account, asset: str) -> dict[str, object]:
    free, locked = account.balance(asset)
    return {
        "currency": asset,
        "balance": text(free),
        "locked": text(locked),
        "avg_buy_price": "0",
        "avg_buy_price_modified": False,
        "unit_currency": "KRW",
    }


# ---------------------------------------------------------------------- candles
def _bars(venue: Venue, symbol: str, period: str, unit: int | None, end_ms: int) -> list[Candle]:
    """The candles of ``period`` that start before ``end_ms``, oldest first."""
    series = venue.candles(symbol)
    if unit is not None:
        return list(series.folded(unit * MINUTE_MS, end_ms=end_ms - 1))
    if period in _PERIODS:
        interval, offset = _PERIODS[period]
        return list(series.folded(interval, end_ms=end_ms - 1, offset_ms=offset))
    merged: list[Candle] = []
    for day in series.folded(DAY_MS, end_ms=end_ms - 1):
        start = _calendar_start(day.open_ms, period)
        last = merged[-1] if merged else None
        if last is not None and last.open_ms == start:
            last.high, last.low, last.close = (
                max(last.high, day.high),
                min(last.low, day.low),
                day.close,
            )
            last.volume += day.volume
            last.quote_volume += day.quote_volume
            last.trades += day.trades
        else:
            day.open_ms = start
            merged.append(day)
    return merged


def _calendar_start(time_ms: int, period: str) -> int:
    moment = utc_parts(time_ms)
    first = moment.replace(
        month=1 if period == "years" else moment.month,
        day=1,
        hour=0,
        minute=0,
        second=0,
        microsecond=0,
    )
    return int(first.timestamp() * 1000)


def _candle_json(
    symbol: str, bar: Candle, period: str, unit: int | None, end_ms: int
) -> dict[str, object]:
    utc = utc_parts(bar.open_ms)
    row: dict[str, object] = {
        "market": symbol,
        "candle_date_time_utc": utc.strftime("%Y-%m-%dT%H:%M:%S"),
        "candle_date_time_kst": utc.astimezone(KST).strftime("%Y-%m-%dT%H:%M:%S"),
        "opening_price": num(bar.open),
        "high_price": num(bar.high),
        "low_price": num(bar.low),
        "trade_price": num(bar.close),
        "timestamp": min(end_ms - 1, bar.open_ms + (unit or 1) * MINUTE_MS - 1),
        "candle_acc_trade_price": num(bar.quote_volume),
        "candle_acc_trade_volume": num(bar.volume),
    }
    if unit is not None:
        row["unit"] = unit
    elif period != "days":
        row["first_day_of_period"] = utc.strftime("%Y-%m-%d")
    return row
