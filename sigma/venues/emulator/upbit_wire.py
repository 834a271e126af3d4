"""Upbit's wire shapes: errors, orders, trades, tickers, books and candles as Upbit prints them.

Shared by the REST routes (:mod:`upbit_rest`) and the WebSocket streams (:mod:`upbit_ws`). The
exchange API prints amounts as strings ("NumberString"); quotation replies and stream frames print
them as JSON numbers, written here exactly (an ``orjson.Fragment`` of the decimal's digits, never
a float). Times are epoch milliseconds, or ISO 8601 in UTC or Korean time (KST, +09:00) where
Upbit uses them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
from aiohttp import web

from sigma.venues.emulator.http import decimal_text, json_reply
from sigma.venues.emulator.limits import Verdict
from sigma.venues.emulator.model import (
    MarketSpec,
    OrderStatus,
    OrderType,
    Reason,
    Rejection,
    Side,
    TimeInForce,
    VenueOrder,
    VenueTrade,
)
from sigma.venues.emulator.venue import Venue

__all__ = [
    "DAY_MS",
    "KST",
    "DayStats",
    "OrderFees",
    "UpbitError",
    "ask_bid",
    "book_units",
    "day_stats",
    "iso_kst",
    "limit_refusal",
    "num",
    "ord_type",
    "order_fees",
    "order_json",
    "order_state",
    "rejection_error",
    "remaining_req",
    "side_code",
    "text",
    "ticker_fields",
    "time_in_force",
    "trade_json",
    "trade_uuid",
    "utc_parts",
    "validation_error",
]

KST = timezone(timedelta(hours=9), "KST")
DAY_MS = 86_400_000
_YEAR_MS = 365 * DAY_MS
_ZERO = Decimal(0)


class UpbitError(Exception):
    """A refusal in Upbit's shape: ``{"error": {"name": ..., "message": ...}}`` with a status."""

    def __init__(self, status: int, name: str | int, message: str) -> None:
        super().__init__(f"{status} {name}: {message}")
        self.status = status
        self.name = name
        self.message = message

    def reply(self, headers: dict[str, str] | None = None) -> web.Response:
        body = {"error": {"name": self.name, "message": self.message}}
        return json_reply(body, self.status, headers)


def remaining_req(group: str, limit: int, verdict: Verdict) -> dict[str, str]:
    """Upbit's ``Remaining-Req`` header after ``verdict`` in ``group`` (``limit`` a second;
    ``min`` is deprecated and fixed)."""
    left = max(0, limit - verdict.used)
    return {"Remaining-Req": f"group={group}; min={limit * 60}; sec={left}"}


def limit_refusal(group: str, limit: int, verdict: Verdict) -> web.Response:
    """A request refused by a rate limit: 429, or 418 with the ban's length. Plain text, as
    Upbit's gateway answers (no error object is documented): ccxt maps the status (429, 418)
    to its class."""
    headers = remaining_req(group, limit, verdict)
    headers["Retry-After"] = str(verdict.retry_after)
    reason = "Too many API requests."
    if verdict.status == 418:
        reason += f" Blocked for {verdict.retry_after} seconds."
    return web.Response(status=verdict.status, text=reason, headers=headers)


def validation_error(field: str) -> UpbitError:
    """Upbit's answer to a missing or malformed parameter."""
    return UpbitError(
        400, "validation_error", f"{field} is missing, {field} does not have a valid value"
    )


# Reason -> (status, name with "{side}" for bid/ask, message with "{asset}").
_REJECTIONS: dict[Reason, tuple[int, str, str]] = {
    Reason.PRICE_FILTER: (
        400,
        "invalid_price_{side}",
        "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.",
    ),
    Reason.LOT_SIZE: (
        400,
        "invalid_volume",
        "주문수량 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.",
    ),
    Reason.MIN_NOTIONAL: (400, "under_min_total_{side}", "최소주문금액 이상으로 주문해주세요"),
    Reason.MAX_NOTIONAL: (400, "create_{side}_error", "최대주문금액 이하로 주문해주세요"),
    Reason.MAX_NUM_ORDERS: (
        400,
        "create_{side}_error",
        "주문 가능한 최대 주문 수를 초과하였습니다.",
    ),
    Reason.INSUFFICIENT_BALANCE: (
        400,
        "insufficient_funds_{side}",
        "주문가능한 금액({asset})이 부족합니다.",
    ),
    Reason.NO_LIQUIDITY: (400, "create_{side}_error", "주문 가능한 호가가 없습니다."),
    Reason.WOULD_TAKE: (400, "create_{side}_error", "post_only 주문이 즉시 체결될 수 있습니다."),
    Reason.DUPLICATE_ORDER: (400, "validation_error", "identifier 값이 중복되었습니다."),
    Reason.UNKNOWN_ORDER: (404, "order_not_found", "주문을 찾지 못했습니다."),
    Reason.UNKNOWN_SYMBOL: (400, "validation_error", "market does not have a valid value"),
}


def rejection_error(
    rejection: Rejection, side: Side | None = None, spec: MarketSpec | None = None
) -> UpbitError:
    """The Upbit error for a venue refusal of an order on ``side`` (bid/ask names)."""
    status, name, message = _REJECTIONS.get(
        rejection.reason, (400, "validation_error", rejection.detail or rejection.reason.value)
    )
    if spec is not None and side is not None:
        asset = spec.quote if side is Side.BUY else spec.base
        message = message.format(asset=asset)
    return UpbitError(status, name.format(side=side_code(side or Side.BUY)), message)


def side_code(side: Side) -> str:
    """``bid`` or ``ask``."""
    return "bid" if side is Side.BUY else "ask"


def ask_bid(buyer_is_maker: bool) -> str:
    """The taker's side of a public trade: ``ASK`` when a seller hit the bid."""
    return "ASK" if buyer_is_maker else "BID"


def text(value: Decimal | None) -> str | None:
    """An amount as the exchange API prints it: a string, shortest exact form."""
    return decimal_text(value, None)


def num(value: Decimal | None) -> orjson.Fragment | None:
    """An amount as quotation replies and stream frames print it: an exact JSON number."""
    printed = decimal_text(value, None)
    return None if printed is None else orjson.Fragment(printed.encode())


def iso_kst(time_ms: int, *, micros: bool = False) -> str:
    """``2018-04-10T15:42:23+09:00`` (orders), with microseconds for trades."""
    moment = datetime.fromtimestamp(time_ms / 1000, KST)
    return moment.isoformat(timespec="microseconds" if micros else "seconds")


def utc_parts(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC)


def trade_uuid(venue: Venue, trade: VenueTrade) -> str:
    """A fill's uuid (Upbit numbers fills with uuids, the venue with integers)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"sigma-venue/{venue.name}/trade/{trade.trade_id}"))


def ord_type(order: VenueOrder) -> str:
    """Upbit's ``ord_type``: ``limit``, ``price`` (market buy by amount) or ``market``."""
    if order.type is OrderType.MARKET:
        return "price" if order.quote_qty is not None else "market"
    return "limit"


def order_state(order: VenueOrder) -> str:
    """``wait`` while open; ``done`` when filled; else ``cancel``. A market buy by amount is
    ``done`` only when it spent the amount exactly: Upbit cancels the unspendable remainder."""
    if not order.status.is_final:
        return "wait"
    if order.status is OrderStatus.FILLED and (
        order.quote_qty is None or order.cum_quote == order.quote_qty
    ):
        return "done"
    return "cancel"


_TIF = {TimeInForce.IOC: "ioc", TimeInForce.FOK: "fok"}


def time_in_force(order: VenueOrder) -> str | None:
    if order.type is OrderType.LIMIT_MAKER:
        return "post_only"
    return _TIF.get(order.tif)


@dataclass(frozen=True)
class OrderFees:
    """What a bid holds and pays in fees (Upbit holds the fee with a bid's funds)."""

    reserved: Decimal
    remaining: Decimal
    paid: Decimal


def order_fees(venue: Venue, order: VenueOrder, spec: MarketSpec) -> OrderFees:
    # Upbit holds a bid's fee with its funds (taker rate) and charges asks from the proceeds.
    paid = order.fees.get(spec.quote, _ZERO)
    if order.side is Side.SELL:
        return OrderFees(_ZERO, _ZERO, paid)
    rate = venue.taker_fee
    if order.quote_qty is not None:
        return OrderFees(order.quote_qty * rate, _ZERO, paid)
    assert order.price is not None and order.qty is not None
    remaining = order.price * order.remaining * rate if not order.status.is_final else _ZERO
    return OrderFees(order.price * order.qty * rate, remaining, paid)


def order_json(
    venue: Venue, order: VenueOrder, trades: list[VenueTrade] | None = None
) -> dict[str, object]:
    """An order as the exchange API answers it (``trades`` only on ``GET /v1/order``)."""
    spec = venue.market(order.symbol)
    fees = order_fees(venue, order, spec)
    kind = ord_type(order)
    body: dict[str, object] = {
        "uuid": venue.uuid_of(order),
        "side": side_code(order.side),
        "ord_type": kind,
        "price": text(order.quote_qty if kind == "price" else order.price),
        "state": order_state(order),
        "market": order.symbol,
        "created_at": iso_kst(order.created_ms),
        "volume": text(order.qty),
        "remaining_volume": text(order.remaining) if order.qty is not None else None,
        "reserved_fee": text(fees.reserved),
        "remaining_fee": text(fees.remaining),
        "paid_fee": text(fees.paid),
        "locked": text(order.locked),
        "executed_volume": text(order.filled),
        "executed_funds": text(order.cum_quote),
        "trades_count": order.trade_count,
        "time_in_force": time_in_force(order),
        "identifier": order.client_id if order.client_id_given else None,
        "prevented_volume": "0",
        "prevented_locked": "0",
    }
    if trades is not None:
        body["trades"] = [trade_json(venue, t) for t in trades]
    return body


def trade_json(venue: Venue, trade: VenueTrade) -> dict[str, object]:
    """One fill inside ``GET /v1/order``."""
    return {
        "market": trade.symbol,
        "uuid": trade_uuid(venue, trade),
        "price": text(trade.price),
        "volume": text(trade.qty),
        "funds": text(trade.quote_qty),
        "trend": "up" if trade.side is Side.BUY else "down",
        "created_at": iso_kst(trade.time_ms, micros=True),
        "side": side_code(trade.side),
    }


@dataclass(frozen=True)
class DayStats:
    """A market's day (from 00:00 UTC, 09:00 KST: Upbit's day), last 24 hours and 52 weeks."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    prev_close: Decimal
    volume: Decimal
    quote_volume: Decimal
    volume_24h: Decimal
    quote_volume_24h: Decimal
    high_52w: Decimal
    high_52w_ms: int
    low_52w: Decimal
    low_52w_ms: int
    last_ms: int
    last_qty: Decimal


def day_stats(venue: Venue, symbol: str, now_ms: int) -> DayStats:
    """The statistics a ticker prints, from the market's one-minute candles (one pass)."""
    last = venue.last_price(symbol)
    day_start = now_ms - now_ms % DAY_MS
    since_24h = now_ms - DAY_MS
    prev_close: Decimal | None = None
    opened: Decimal | None = None
    high = low = last
    volume = quote = volume_24h = quote_24h = _ZERO
    high_52w = low_52w = last
    high_ms = low_ms = now_ms
    for c in venue.candles(symbol).since(now_ms - _YEAR_MS):
        if c.high > high_52w or high_ms == now_ms:
            high_52w, high_ms = c.high, c.open_ms
        if c.low < low_52w or low_ms == now_ms:
            low_52w, low_ms = c.low, c.open_ms
        if c.open_ms >= since_24h:
            volume_24h += c.volume
            quote_24h += c.quote_volume
        if c.open_ms < day_start:
            prev_close = c.close
            continue
        if opened is None:
            opened, high, low = c.open, c.high, c.low
        high, low = max(high, c.high), min(low, c.low)
        volume += c.volume
        quote += c.quote_volume
    tape = venue.tape(symbol, 1)
    return DayStats(
        open=opened if opened is not None else prev_close or last,
        high=high,
        low=low,
        close=last,
        prev_close=prev_close if prev_close is not None else opened or last,
        volume=volume,
        quote_volume=quote,
        volume_24h=volume_24h,
        quote_volume_24h=quote_24h,
        high_52w=high_52w,
        high_52w_ms=high_ms,
        low_52w=low_52w,
        low_52w_ms=low_ms,
        last_ms=tape[-1].time_ms if tape else now_ms,
        last_qty=tape[-1].qty if tape else _ZERO,
    )


def _change(close: Decimal, prev: Decimal) -> str:
    return "RISE" if close > prev else "FALL" if close < prev else "EVEN"


def ticker_fields(stats: DayStats, now_ms: int) -> dict[str, object]:
    """The fields a ticker shares between ``GET /v1/ticker`` and the ``ticker`` stream."""
    utc, kst = utc_parts(stats.last_ms), datetime.fromtimestamp(stats.last_ms / 1000, KST)
    delta = stats.close - stats.prev_close
    rate = delta / stats.prev_close if stats.prev_close else _ZERO
    return {
        "trade_date": utc.strftime("%Y%m%d"),
        "trade_time": utc.strftime("%H%M%S"),
        "trade_date_kst": kst.strftime("%Y%m%d"),
        "trade_time_kst": kst.strftime("%H%M%S"),
        "trade_timestamp": stats.last_ms,
        "opening_price": num(stats.open),
        "high_price": num(stats.high),
        "low_price": num(stats.low),
        "trade_price": num(stats.close),
        "prev_closing_price": num(stats.prev_close),
        "change": _change(stats.close, stats.prev_close),
        "change_price": num(abs(delta)),
        "change_rate": num(abs(rate)),
        "signed_change_price": num(delta),
        "signed_change_rate": num(rate),
        "trade_volume": num(stats.last_qty),
        "acc_trade_price": num(stats.quote_volume),
        "acc_trade_price_24h": num(stats.quote_volume_24h),
        "acc_trade_volume": num(stats.volume),
        "acc_trade_volume_24h": num(stats.volume_24h),
        "highest_52_week_price": num(stats.high_52w),
        "highest_52_week_date": utc_parts(stats.high_52w_ms).strftime("%Y-%m-%d"),
        "lowest_52_week_price": num(stats.low_52w),
        "lowest_52_week_date": utc_parts(stats.low_52w_ms).strftime("%Y-%m-%d"),
        "timestamp": now_ms,
    }


def book_units(venue: Venue, symbol: str, depth: int) -> dict[str, object]:
    """An order book's totals and ``orderbook_units`` (one bid and one ask per unit)."""
    bids, asks = venue.book(symbol, depth)
    units = [
        {
            "ask_price": num(ap),
            "bid_price": num(bp),
            "ask_size": num(aq),
            "bid_size": num(bq),
        }
        for (ap, aq), (bp, bq) in zip(asks, bids, strict=False)
    ]
    return {
        "total_ask_size": num(sum((q for _, q in asks), _ZERO)),
        "total_bid_size": num(sum((q for _, q in bids), _ZERO)),
        "orderbook_units": units,
        "level": 0,
    }
