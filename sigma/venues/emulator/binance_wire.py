"""What Binance's REST API and its WebSocket streams share: settings, error codes, request
signing, and the JSON shapes of orders, trades, klines and user-data events.

Shapes follow ``binance/binance-spot-api-docs`` (rest-api.md, user-data-stream.md, errors.md):
decimals are strings with eight places, times epoch milliseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.http import decimal_text
from sigma.venues.emulator.klines import MINUTE_MS, Candle
from sigma.venues.emulator.limits import Millis, NonNegative, Positive, Seconds, Verdict
from sigma.venues.emulator.model import (
    MarketSpec,
    MarketTrade,
    OrderEvent,
    OrderStatus,
    OrderType,
    Reason,
    Rejection,
    TimeInForce,
    VenueOrder,
    VenueTrade,
)
from sigma.venues.emulator.venue import TAPE_LENGTH, Venue

__all__ = [
    "INTERVALS",
    "ApiError",
    "BinanceSettings",
    "BookVersions",
    "authenticate",
    "average_price",
    "book_top",
    "connect_refusal",
    "day_ticker",
    "epoch_ms",
    "execution_report",
    "expiry_reason",
    "fmt",
    "fold_klines",
    "interval_label",
    "kline_row",
    "last_trade_price",
    "missing_param",
    "on_book",
    "order_body",
    "order_status",
    "rate_limit",
    "rejection_error",
    "symbol_info",
    "trade_body",
    "weight_refusal",
]

_ZERO = Decimal(0)
_DAY_MS = 24 * 60 * MINUTE_MS
# Binance's weeks start on Monday; the epoch (1970-01-01) was a Thursday.
_WEEK_OFFSET_MS = 4 * _DAY_MS
_MICROSECONDS_FROM = 10**14
# timestamp: whole milliseconds or microseconds; recvWindow: milliseconds with up to three
# decimals (rest-api.md "Timing security"). Checked as text, so that no number is built from
# an exponent (int(Decimal("1e99999999")) would hold the event loop for minutes).
_TIMESTAMP = re.compile("[0-9]{1,20}")
_RECV_WINDOW = re.compile(r"[0-9]{1,20}(\.[0-9]{1,3})?")
_SECOND_MS = 1000
#: kline interval -> length in ms (``1M`` is a calendar month: :func:`fold_klines`)
INTERVALS: dict[str, int] = {
    "1s": _SECOND_MS,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": _DAY_MS,
    "3d": 3 * _DAY_MS,
    "1w": 7 * _DAY_MS,
    "1M": 31 * _DAY_MS,
}


@dataclass
class BinanceSettings:
    """Binance's limits as the front end enforces them (defaults: Binance spot's published
    ones, see ``GET /api/v3/exchangeInfo`` ``rateLimits``). Each field's kind (:mod:`limits`)
    is what the venue's YAML may set it to (``binance.settings``)."""

    #: request weight per client address per window (429 beyond, then 418)
    weight_limit: Positive = 6000
    weight_window_ms: Seconds = 60_000
    #: refused requests tolerated before the 418 ban, and its length
    ban_after: NonNegative = 2
    ban_ms: Millis = 120_000
    #: new orders per account per 10 seconds and per day (-1015 beyond)
    orders_per_10s: Positive = 50
    orders_per_day: Positive = 160_000
    #: the largest ``recvWindow`` a signed request may ask for
    max_recv_window_ms: Millis = 60_000
    #: a WebSocket is pinged this often, and cut when no pong has answered a ping for this
    #: long (web-socket-streams.md, web-socket-api.md: every 20 s, within a minute)
    ping_every_ms: Millis = 20_000
    pong_timeout_ms: Millis = 60_000
    #: incoming messages (text, ping and pong frames) a market-stream connection may send in
    #: any second; the connection is closed past it (web-socket-streams.md "WebSocket Limits")
    stream_messages_per_second: Positive = 5
    #: WebSocket connection attempts per client address per window, on the market streams and
    #: on the WebSocket API each (web-socket-streams.md "WebSocket Limits", web-socket-api.md
    #: "Connection limits": 300 every 5 minutes per IP); 429 beyond, then 418 after ban_after
    stream_connects_per_window: Positive = 300
    stream_connect_window_ms: Seconds = 300_000
    #: streams one market-stream connection may listen to ("A single connection can listen
    #: to a maximum of 1024 streams")
    streams_per_connection: Positive = 1024

    def __post_init__(self) -> None:
        if self.pong_timeout_ms <= self.ping_every_ms:
            raise ValueError(
                f"pong_timeout_ms ({self.pong_timeout_ms}) must be longer than ping_every_ms "
                f"({self.ping_every_ms}): a connection would be cut before its first ping"
            )


class ApiError(Exception):
    """A refusal in Binance's shape: HTTP status, error code and message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


_FILTER = -1013
_REJECTED = -2010
_REJECTIONS: dict[Reason, tuple[int, str]] = {
    Reason.UNKNOWN_SYMBOL: (-1121, "Invalid symbol."),
    Reason.PRICE_FILTER: (_FILTER, "Filter failure: PRICE_FILTER"),
    Reason.LOT_SIZE: (_FILTER, "Filter failure: LOT_SIZE"),
    Reason.MIN_NOTIONAL: (_FILTER, "Filter failure: NOTIONAL"),
    Reason.MAX_NOTIONAL: (_FILTER, "Filter failure: NOTIONAL"),
    Reason.MAX_NUM_ORDERS: (_FILTER, "Filter failure: MAX_NUM_ORDERS"),
    Reason.MAX_NUM_STOPS: (_FILTER, "Filter failure: MAX_NUM_ALGO_ORDERS"),
    Reason.PERCENT_PRICE: (_FILTER, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    Reason.INSUFFICIENT_BALANCE: (
        _REJECTED,
        "Account has insufficient balance for requested action.",
    ),
    Reason.DUPLICATE_ORDER: (_REJECTED, "Duplicate order sent."),
    Reason.UNKNOWN_ORDER: (-2013, "Order does not exist."),
    Reason.WOULD_TAKE: (_REJECTED, "Order would immediately match and take."),
    Reason.WOULD_TRIGGER: (_REJECTED, "Order would trigger immediately."),
    Reason.NO_LIQUIDITY: (_REJECTED, "Order book liquidity is less than symbol minimum quantity."),
}


def rejection_error(rejection: Rejection) -> ApiError:
    """The Binance error for a venue refusal (errors.md: filter failures and -2010 messages)."""
    known = _REJECTIONS.get(rejection.reason)
    if known is None:
        return ApiError(400, -1102, rejection.detail or "A mandatory parameter was not sent.")
    return ApiError(400, *known)


def fmt(value: Decimal | None) -> str:
    """A decimal as Binance prints it: eight places, zero when absent."""
    text = decimal_text(_ZERO if value is None else value)
    assert text is not None
    return text


def epoch_ms(value: int) -> int:
    """A time parameter in epoch milliseconds: Binance takes them in microseconds too
    (rest-api.md "General API Information"), told apart by size, since a millisecond value
    that large would lie past the year 5000."""
    return value // 1000 if value >= _MICROSECONDS_FROM else value


def interval_label(window_ms: int) -> tuple[str, int, str]:
    """(interval name, count, header letter) of a rate-limit window: 60 000 ms is
    ``("MINUTE", 1, "M")`` as in ``X-MBX-USED-WEIGHT-1M``."""
    for name, letter, unit in (("DAY", "D", _DAY_MS), ("MINUTE", "M", MINUTE_MS)):
        if window_ms % unit == 0:
            return name, window_ms // unit, letter
    return "SECOND", max(1, window_ms // 1000), "S"


def weight_refusal(verdict: Verdict, settings: BinanceSettings, now_ms: int) -> ApiError:
    """The -1003 error of a request the weight limit refuses: 429 over the limit, 418 banned
    (errors.md -1003, with the window as ``exchangeInfo`` names it)."""
    if verdict.status == 418:
        until = now_ms + verdict.retry_after * 1000
        msg = (
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans."
        )
    else:
        name, count, _ = interval_label(settings.weight_window_ms)
        msg = (
            f"Too much request weight used; current limit is {settings.weight_limit} "
            f"request weight per {count} {name}. Please use WebSocket Streams for live "
            "updates to avoid polling the API."
        )
    return ApiError(verdict.status, -1003, msg)


def connect_refusal(verdict: Verdict, settings: BinanceSettings) -> ApiError:
    """The error of a WebSocket connection attempt over the address's limit: errors.md's
    -1034 TOO_MANY_CONNECTIONS message (its window named as ``exchangeInfo`` names windows),
    429, or 418 for an address that kept trying while refused."""
    name, count, _ = interval_label(settings.stream_connect_window_ms)
    msg = (
        "Too many connection attempts from IP; current limit is "
        f"{settings.stream_connects_per_window} per '{count} {name}'."
    )
    return ApiError(verdict.status, -1034, msg)


# ----------------------------------------------------------------- signing
def authenticate(
    accounts: Mapping[str, Account],
    api_key: str | None,
    params: Mapping[str, str],
    payload: str,
    *,
    now_ms: int,
    max_recv_window_ms: int,
) -> Account:
    """The account a signed request acts for, or the :class:`ApiError` Binance answers:
    -2014/-2015 for the key, -1022 for the HMAC-SHA256 ``signature`` over ``payload``, -1102 and
    -1021 for ``timestamp``/``recvWindow`` (rest-api.md "Timing security")."""
    if not api_key:
        raise ApiError(401, -2014, "API-key format invalid.")
    account = accounts.get(api_key)
    if account is None:
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    signature = params.get("signature")
    if not signature:
        raise missing_param("signature")
    expected = hmac.new(account.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    # HMAC signatures are not case-sensitive (rest-api.md "Signature Case Sensitivity").
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(400, -1022, "Signature for this request is not valid.")
    stamp = _number(params, "timestamp", _TIMESTAMP)
    if stamp is None:
        raise missing_param("timestamp")
    timestamp = epoch_ms(int(stamp))
    window = _number(params, "recvWindow", _RECV_WINDOW)
    window = Decimal(5000) if window is None else window
    if window > max_recv_window_ms:
        raise ApiError(
            400,
            -1102,
            f"'recvWindow' contains unexpected value. Cannot be greater than {max_recv_window_ms}.",
        )
    if timestamp >= now_ms + 1000:
        raise ApiError(
            400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if now_ms - timestamp > window:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return account


def _number(params: Mapping[str, str], name: str, pattern: re.Pattern[str]) -> Decimal | None:
    """Parameter ``name`` when it matches ``pattern`` whole; None when absent or empty, -1100
    quoting the legal range otherwise (errors.md)."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not pattern.fullmatch(text):
        raise ApiError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            f"'^{pattern.pattern}$'.",
        )
    return Decimal(text)


def missing_param(name: str) -> ApiError:
    return ApiError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


# ----------------------------------------------------------------- shapes
def order_body(order: VenueOrder) -> dict[str, Any]:
    """The fields every order response carries (rest-api.md "Response - RESULT")."""
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "price": fmt(order.price),
        # A market order by amount to spend has no quantity until it fills.
        "origQty": fmt(order.qty if order.qty is not None else order.filled),
        "executedQty": fmt(order.filled),
        "origQuoteOrderQty": fmt(order.quote_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote),
        "status": order.status.value,
        "timeInForce": order.tif.value,
        "type": order.type.value,
        "side": order.side.value,
        "selfTradePreventionMode": "NONE",
    }
    if order.stop_price is not None:
        body["stopPrice"] = fmt(order.stop_price)
    reason = expiry_reason(order)
    if reason is not None:
        body["expiryReason"] = reason
    return body


def expiry_reason(order: VenueOrder) -> str | None:
    """Why an expired order expired (enums.md "Expiry Reasons"); None unless it expired.

    Only time in force and the book's depth expire an order here: an IOC or FOK limit that did
    not fill, or a market order (a triggered stop's included) that ran out of book."""
    if order.status is not OrderStatus.EXPIRED:
        return None
    if order.tif is TimeInForce.IOC:
        return "UNFILLED_IOC_QUANTITY_EXPIRED"
    if order.tif is TimeInForce.FOK:
        return "UNFILLED_FOK_ORDER_EXPIRED"
    return "INSUFFICIENT_LIQUIDITY"


def on_book(order: VenueOrder) -> bool:
    """Whether the order works on the book now (a stop waiting for its trigger does not)."""
    return order.working and not order.status.is_final and order.type.has_limit


def order_status(order: VenueOrder) -> dict[str, Any]:
    """An order as ``GET /api/v3/order``, ``openOrders`` and ``allOrders`` show it."""
    return {
        **order_body(order),
        "stopPrice": fmt(order.stop_price),
        "icebergQty": fmt(None),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": order.working,
        "workingTime": order.created_ms if order.working else -1,
    }


def rate_limit(kind: str, interval: str, count: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": count, "limit": limit}


def symbol_info(spec: MarketSpec) -> dict[str, Any]:
    """One market of ``exchangeInfo`` with its filters (filters.md)."""
    tick = spec.tick_sizes[0][1]
    lot = {
        "minQty": fmt(spec.min_qty),
        "maxQty": fmt(spec.max_qty),
        "stepSize": fmt(spec.step_size),
    }
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base,
        "baseAssetPrecision": spec.base_precision,
        "quoteAsset": spec.quote,
        "quotePrecision": spec.quote_precision,
        "quoteAssetPrecision": spec.quote_precision,
        "baseCommissionPrecision": spec.base_precision,
        "quoteCommissionPrecision": spec.quote_precision,
        "orderTypes": [t.value for t in OrderType],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(spec.min_price),
                "maxPrice": fmt(spec.max_price),
                "tickSize": fmt(tick),
            },
            {"filterType": "LOT_SIZE", **lot},
            {"filterType": "MARKET_LOT_SIZE", **lot},
            *_percent_price(spec),
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(spec.max_notional or Decimal(9_000_000)),
                "applyMaxToMarket": spec.max_notional is not None,
                "avgPriceMins": spec.avg_price_mins,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": spec.max_open_orders},
            *(
                [{"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": spec.max_stop_orders}]
                if spec.max_stop_orders is not None
                else []
            ),
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }


def _percent_price(spec: MarketSpec) -> list[dict[str, Any]]:
    if spec.price_band is None:
        return []
    down, up = (decimal_text(m, None) for m in spec.price_band)
    return [
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": up,
            "bidMultiplierDown": down,
            "askMultiplierUp": up,
            "askMultiplierDown": down,
            "avgPriceMins": spec.avg_price_mins,
        }
    ]


def trade_body(trade: VenueTrade) -> dict[str, Any]:
    """One fill as ``GET /api/v3/myTrades`` lists it."""
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.quote_qty),
        "commission": fmt(trade.fee),
        "commissionAsset": trade.fee_asset,
        "time": trade.time_ms,
        "isBuyer": trade.side.value == "BUY",
        "isMaker": trade.maker,
        "isBestMatch": True,
    }


def execution_report(event: OrderEvent, execution_id: int, now_ms: int) -> dict[str, Any]:
    """The ``executionReport`` user-data event of an order change (user-data-stream.md)."""
    order, trade = event.order, event.trade
    body: dict[str, Any] = {
        "e": "executionReport",
        "E": now_ms,
        "s": order.symbol,
        # A cancel's report carries the cancel request's id, the order's own as "C".
        "c": order.cancel_id if event.kind == "CANCELED" else order.client_id,
        "S": order.side.value,
        "o": order.type.value,
        "f": order.tif.value,
        "q": fmt(order.qty if order.qty is not None else order.filled),
        "p": fmt(order.price),
        "P": fmt(order.stop_price),
        "F": fmt(None),
        "g": -1,
        "C": order.client_id if event.kind == "CANCELED" else "",
        "x": event.kind,
        "X": order.status.value,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(trade.qty if trade else None),
        "z": fmt(order.filled),
        "L": fmt(trade.price if trade else None),
        "n": fmt(trade.fee) if trade else "0",
        "N": trade.fee_asset if trade else None,
        "T": trade.time_ms if trade else order.updated_ms,
        "t": trade.trade_id if trade else -1,
        "I": execution_id,
        "w": on_book(order),
        "m": trade.maker if trade else False,
        "M": False,
        "O": order.created_ms,
        "Z": fmt(order.cum_quote),
        "Y": fmt(trade.quote_qty if trade else None),
        "Q": fmt(order.quote_qty),
        "V": "NONE",
    }
    if order.working:
        body["W"] = order.created_ms
    reason = expiry_reason(order)
    if reason is not None:
        body["eR"] = reason
    return body


# ----------------------------------------------------------------- klines
def fold_klines(
    venue: Venue,
    symbol: str,
    interval: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Iterator[tuple[Candle, int]]:
    """(candle, close time) of ``interval`` on ``symbol``, oldest first, whose open lies in
    [start_ms, end_ms]: folded from the one-minute candles, weeks from Monday and months from
    the calendar's first day; ``1s`` from the public tape, so only as far back as it goes."""
    if interval == "1s":
        yield from _second_klines(venue.tape(symbol, TAPE_LENGTH), start_ms, end_ms)
        return
    series = venue.candles(symbol)
    if interval != "1M":
        size = INTERVALS[interval]
        offset = _WEEK_OFFSET_MS if interval == "1w" else 0
        for candle in series.folded(size, start_ms=start_ms, end_ms=end_ms, offset_ms=offset):
            yield candle, candle.open_ms + size - 1
        return
    month: Candle | None = None
    for day in series.folded(_DAY_MS):
        start = _month_start(day.open_ms)
        if month is not None and month.open_ms == start:
            month.high, month.low = max(month.high, day.high), min(month.low, day.low)
            month.close = day.close
            month.volume += day.volume
            month.quote_volume += day.quote_volume
            month.trades += day.trades
            continue
        if month is not None and _within(month.open_ms, start_ms, end_ms):
            yield month, _next_month(month.open_ms) - 1
        month = Candle(
            start, day.open, day.high, day.low, day.close, day.volume, day.quote_volume, day.trades
        )
    if month is not None and _within(month.open_ms, start_ms, end_ms):
        yield month, _next_month(month.open_ms) - 1


def _second_klines(
    tape: list[MarketTrade], start_ms: int | None, end_ms: int | None
) -> Iterator[tuple[Candle, int]]:
    current: Candle | None = None
    for trade in tape:
        start = trade.time_ms - trade.time_ms % _SECOND_MS
        if not _within(start, start_ms, end_ms):
            continue
        if current is not None and current.open_ms == start:
            current.add(trade.price, trade.qty)
            continue
        if current is not None:
            yield current, current.open_ms + _SECOND_MS - 1
        price, qty = trade.price, trade.qty
        current = Candle(start, price, price, price, price, qty, price * qty, 1)
    if current is not None:
        yield current, current.open_ms + _SECOND_MS - 1


def _within(open_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or open_ms >= start_ms) and (end_ms is None or open_ms <= end_ms)


def _month_start(time_ms: int) -> int:
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp() * 1000)


def _next_month(start_ms: int) -> int:
    return _month_start(start_ms + 31 * _DAY_MS)


def kline_row(candle: Candle, close_ms: int) -> list[Any]:
    """One row of ``GET /api/v3/klines``. The taker-buy volumes are not tracked: "0"."""
    return [
        candle.open_ms,
        fmt(candle.open),
        fmt(candle.high),
        fmt(candle.low),
        fmt(candle.close),
        fmt(candle.volume),
        close_ms,
        fmt(candle.quote_volume),
        candle.trades,
        fmt(None),
        fmt(None),
        "0",
    ]


# ----------------------------------------------------------------- market data
class BookVersions:
    """Each market's book update id: every venue event on the market moves it on. The REST
    depth snapshot's ``lastUpdateId`` and the diff-depth stream's ``U``/``u`` count in it, so a
    client can sync one with the other (web-socket-streams.md "How to manage a local order
    book correctly")."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def bump(self, symbol: str) -> None:
        self._ids[symbol] = self._ids.get(symbol, 0) + 1

    def __getitem__(self, symbol: str) -> int:
        return self._ids.get(symbol, 0)


def average_price(venue: Venue, symbol: str, now_ms: int) -> tuple[int, Decimal, int]:
    """(minutes, average price, last trade time) of ``avgPrice``: the market's window, the
    volume-weighted price over it, and the time of the latest trade (now when none)."""
    mins = venue.market(symbol).avg_price_mins
    tape = venue.tape(symbol, 1)
    return mins, venue.average_price(symbol, mins), tape[-1].time_ms if tape else now_ms


def last_trade_price(venue: Venue, symbol: str) -> Decimal:
    """The price of the market's latest public trade, Binance's ``lastPrice``: our own fills
    print at the book's levels, away from the price path's last tick. Without trades yet,
    the price the market starts from."""
    tape = venue.tape(symbol, 1)
    return tape[-1].price if tape else venue.last_price(symbol)


def book_top(venue: Venue, symbol: str) -> dict[str, str]:
    """Best bid and ask with their quantities (``ticker/bookTicker``'s fields)."""
    bids, asks = venue.book(symbol, 1)
    bid = bids[0] if bids else (_ZERO, _ZERO)
    ask = asks[0] if asks else (_ZERO, _ZERO)
    return {
        "bidPrice": fmt(bid[0]),
        "bidQty": fmt(bid[1]),
        "askPrice": fmt(ask[0]),
        "askQty": fmt(ask[1]),
    }


def day_ticker(venue: Venue, symbol: str, now_ms: int, window_ms: int = _DAY_MS) -> dict[str, Any]:
    """The rolling statistics of ``GET /api/v3/ticker/24hr`` (FULL) over the last day, or
    over ``window_ms`` for ``GET /api/v3/ticker``, from the one-minute candles."""
    last = last_trade_price(venue, symbol)
    since = now_ms - window_ms
    minutes = list(venue.candles(symbol).folded(MINUTE_MS, start_ms=since - since % MINUTE_MS))
    first = minutes[0] if minutes else None
    volume = sum((c.volume for c in minutes), _ZERO)
    quote_volume = sum((c.quote_volume for c in minutes), _ZERO)
    opened = first.open if first else last
    tape = venue.tape(symbol, 1)
    count = sum(c.trades for c in minutes)
    last_id = tape[-1].trade_id if tape else -1
    change = last - opened
    return {
        "symbol": symbol,
        "priceChange": fmt(change),
        "priceChangePercent": f"{(change / opened * 100 if opened else _ZERO):.3f}",
        "weightedAvgPrice": fmt(quote_volume / volume if volume else last),
        "prevClosePrice": fmt(opened),
        "lastPrice": fmt(last),
        "lastQty": fmt(tape[-1].qty if tape else None),
        **book_top(venue, symbol),
        "openPrice": fmt(opened),
        "highPrice": fmt(max((c.high for c in minutes), default=last)),
        "lowPrice": fmt(min((c.low for c in minutes), default=last)),
        "volume": fmt(volume),
        "quoteVolume": fmt(quote_volume),
        "openTime": since,
        "closeTime": now_ms,
        "firstId": last_id - count + 1 if count and last_id > 0 else -1,
        "lastId": last_id if count else -1,
        "count": count,
    }
