"""Upbit's WebSocket streams: public ``/websocket/v1`` (ticker, trade, orderbook) and private
``/websocket/v1/private`` (myOrder, myAsset; the JWT in the handshake's Authorization header).

A request is a JSON list, ``[{"ticket": ...}, {"type": "ticker", "codes": ["KRW-BTC"]},
{"format": "DEFAULT"}]``; each one replaces the connection's subscriptions, as Upbit's does.
Frames are binary JSON (Upbit sends bytes). Ticker and orderbook subscriptions get a
``SNAPSHOT`` first (unless ``is_only_realtime``), then ``REALTIME`` frames driven by the venue's
events: public trades, and book changes coalesced to one frame per market per loop turn. Private
frames go only to the connections of the account they concern, in the venue's event order.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import client_address
from sigma.venues.emulator.limits import Verdict, WeightWindow
from sigma.venues.emulator.model import BalanceEvent, MarketTrade, OrderEvent, VenueEvent
from sigma.venues.emulator.upbit_auth import JwtVerifier
from sigma.venues.emulator.upbit_settings import UpbitSettings
from sigma.venues.emulator.upbit_wire import (
    UpbitError,
    ask_bid,
    book_units,
    day_stats,
    limit_refusal,
    num,
    ord_type,
    order_fees,
    order_state,
    side_code,
    ticker_fields,
    time_in_force,
    trade_uuid,
    utc_parts,
)
from sigma.venues.emulator.venue import Venue

__all__ = ["UpbitStreams"]

_PUBLIC = frozenset({"ticker", "trade", "orderbook"})
_PRIVATE = frozenset({"myOrder", "myAsset"})
_ZERO = Decimal(0)
_CONNECT_GROUP = "websocket-connect"
#: the refusal of a data request over the limit: Upbit documents the limit, not its answer
#: on an open connection, so the name is the venue's own
_TOO_MANY = orjson.dumps(
    {"error": {"name": "TOO_MANY_REQUESTS", "message": "요청 수 제한을 초과했습니다."}}
)


@dataclass(eq=False)
class _Stream:
    """One connection: its subscriptions (type -> codes, None for every market) and outbox."""

    ws: web.WebSocketResponse
    request: web.Request
    account: Account | None
    subs: dict[str, frozenset[str] | None] = field(default_factory=dict)
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    #: what the data-request limits count it by
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def wants(self, kind: str, code: str) -> bool:
        if kind not in self.subs:
            return False
        codes = self.subs[kind]
        return codes is None or code in codes


class UpbitStreams:
    """The WebSocket endpoints of one Upbit venue, fed by the venue's listener."""

    def __init__(
        self, venue: Venue, faults: Faults, settings: UpbitSettings, jwt: JwtVerifier
    ) -> None:
        self.venue = venue
        self.faults = faults
        self.settings = settings
        self.jwt = jwt
        s = settings

        def window(limit: int, windows: int = 1) -> WeightWindow:
            return WeightWindow(
                limit, s.window_ms * windows, venue.now_ms, ban_after=s.ban_after, ban_ms=s.ban_ms
            )

        #: connection requests per address (public) or account (private)
        self.connects = window(s.stream_connects_per_window)
        #: data requests per connection, per second and per minute
        self.messages = (
            window(s.stream_messages_per_window),
            window(s.stream_messages_per_minute, 60),
        )
        self._streams: set[_Stream] = set()
        self._dirty: set[str] = set()
        self._flush_due = False
        venue.listeners.append(self._on_event)

    def install(self, app: web.Application) -> None:
        """Add the two WebSocket routes to ``app``."""
        app.router.add_get("/websocket/v1", self._public)
        app.router.add_get("/websocket/v1/private", self._private)

    async def close(self) -> None:
        """Close every connection cleanly and stop listening to the venue."""
        if self._on_event in self.venue.listeners:
            self.venue.listeners.remove(self._on_event)
        for stream in list(self._streams):
            await stream.ws.close(code=1001, message=b"server shutdown")

    def disconnect(self) -> int:
        """Abort every connection (the clients see them drop); how many there were."""
        streams = list(self._streams)
        for stream in streams:
            transport = stream.request.transport
            if transport is not None:
                transport.abort()
        return len(streams)

    # ------------------------------------------------------------------ connections
    async def _public(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, None)

    async def _private(self, request: web.Request) -> web.StreamResponse:
        try:
            account = self.jwt.verify(request.headers.get("Authorization"), None, replay=False)
        except UpbitError as error:
            return error.reply()
        return await self._serve(request, account)

    async def _serve(self, request: web.Request, account: Account | None) -> web.StreamResponse:
        # Upbit counts a connection request by the account when it carries one, else by IP.
        client = account.api_key if account is not None else client_address(request)
        verdict = self.connects.check(client, 1)
        if verdict.status != 200:
            return limit_refusal(_CONNECT_GROUP, self.connects.limit, verdict)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream = _Stream(ws, request, account)
        self._streams.add(stream)
        sender = asyncio.create_task(self._send_loop(stream), name="upbit-ws-send")
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._take(stream, message.data)
        finally:
            for limiter in self.messages:
                limiter.forget(stream.key)
            self._streams.discard(stream)
            stream.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        return ws

    async def _send_loop(self, stream: _Stream) -> None:
        while (frame := await stream.outbox.get()) is not None:
            await self.faults.delay()
            if stream.ws.closed:
                return
            await stream.ws.send_bytes(frame)

    # ------------------------------------------------------------------ requests
    async def _take(self, stream: _Stream, data: str | bytes) -> None:
        """A request within the connection's limits is answered; one over them is refused,
        and a connection that keeps sending while refused is closed (its "ban")."""
        verdict = self._count(stream, data)
        if verdict.status == 200:
            self._on_request(stream, data)
        elif verdict.status == 429:
            stream.outbox.put_nowait(_TOO_MANY)
        else:
            await stream.ws.close(
                code=WSCloseCode.POLICY_VIOLATION,
                message=f"Too many requests: blocked for {verdict.retry_after} s".encode(),
            )

    def _count(self, stream: _Stream, data: str | bytes) -> Verdict:
        """A data request counted against the connection's limits (a keep-alive ``PING`` is
        none); the first refusal, else the last verdict."""
        if data in ("PING", b"PING"):
            return Verdict(200, 0)
        verdict = Verdict(200, 0)
        for limiter in self.messages:
            verdict = limiter.check(stream.key, 1)
            if verdict.status != 200:
                return verdict
        return verdict

    def _on_request(self, stream: _Stream, data: str | bytes) -> None:
        if data in ("PING", b"PING"):
            stream.outbox.put_nowait(orjson.dumps({"status": "UP"}))
            return
        try:
            subs, snapshots = self._parse(stream, data)
        except UpbitError as error:
            stream.outbox.put_nowait(
                orjson.dumps({"error": {"name": error.name, "message": error.message}})
            )
            return
        stream.subs = subs
        for kind, codes in snapshots:
            for code in codes:
                self._send_market(stream, kind, code, "SNAPSHOT")

    def _parse(
        self, stream: _Stream, data: str | bytes
    ) -> tuple[dict[str, frozenset[str] | None], list[tuple[str, Iterable[str]]]]:
        try:
            request = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpbitError(400, "WRONG_FORMAT", "요청 형식이 올바르지 않습니다.") from exc
        if not isinstance(request, list) or not all(isinstance(f, dict) for f in request):
            raise UpbitError(400, "WRONG_FORMAT", "요청 형식이 올바르지 않습니다.")
        if not any("ticket" in f for f in request):
            raise UpbitError(400, "NO_TICKET", "ticket 필드가 없습니다.")
        for f in request:
            if f.get("format", "DEFAULT") != "DEFAULT":
                raise UpbitError(400, "WRONG_FORMAT", "DEFAULT 포맷만 지원합니다.")
        subs: dict[str, frozenset[str] | None] = {}
        snapshots: list[tuple[str, Iterable[str]]] = []
        for f in request:
            if "type" in f:
                kind, codes = self._type_field(stream, f)
                subs[kind] = codes
                if kind in ("ticker", "orderbook") and codes and not f.get("is_only_realtime"):
                    snapshots.append((kind, codes))
        if not subs:
            raise UpbitError(400, "NO_TYPE", "type 필드가 없습니다.")
        return subs, snapshots

    def _type_field(self, stream: _Stream, f: dict[str, Any]) -> tuple[str, frozenset[str] | None]:
        kind, codes = f.get("type"), f.get("codes")
        if kind in _PRIVATE:
            if stream.account is None:
                raise UpbitError(401, "INVALID_AUTH", "인증이 필요한 타입입니다.")
            return kind, frozenset(str(c) for c in codes) if codes else None
        if kind not in _PUBLIC:
            raise UpbitError(400, "INVALID_PARAM", f"지원하지 않는 type 입니다: {kind}")
        if not codes or not isinstance(codes, list):
            raise UpbitError(400, "NO_CODES", "codes 필드가 없습니다.")
        unknown = [c for c in codes if c not in self.venue.markets]
        if unknown:
            raise UpbitError(400, "INVALID_PARAM", f"지원하지 않는 코드입니다: {unknown[0]}")
        return kind, frozenset(codes)

    # ------------------------------------------------------------------ events
    def _on_event(self, event: VenueEvent) -> None:
        if not self._streams:
            return
        if isinstance(event, MarketTrade):
            self._on_trade(event)
        elif isinstance(event, OrderEvent):
            self._on_order(event)
        elif isinstance(event, BalanceEvent):
            self._on_balance(event)

    def _on_trade(self, trade: MarketTrade) -> None:
        if self.faults.stale_streams:
            return
        frame: bytes | None = None
        for stream in self._streams:
            if stream.wants("trade", trade.symbol):
                frame = frame or orjson.dumps(self._trade_frame(trade))
                stream.outbox.put_nowait(frame)
        self._mark(trade.symbol)

    def _mark(self, symbol: str) -> None:
        # Tickers and books change with every trade and order; one frame per loop turn is
        # what a client can use, and keeps a burst of orders from costing a book per order.
        self._dirty.add(symbol)
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        dirty, self._dirty = self._dirty, set()
        if self.faults.stale_streams:
            return
        for symbol in sorted(dirty):
            for kind in ("ticker", "orderbook"):
                for stream in [s for s in self._streams if s.wants(kind, symbol)]:
                    self._send_market(stream, kind, symbol, "REALTIME")

    def _send_market(self, stream: _Stream, kind: str, symbol: str, stream_type: str) -> None:
        now = self.venue.now_ms()
        body: dict[str, object] = {"type": kind, "code": symbol}
        if kind == "ticker":
            body.update(self._ticker_extra(symbol, now))
        else:
            body["timestamp"] = now
            body.update(book_units(self.venue, symbol, self.settings.stream_book_depth))
        body["stream_type"] = stream_type
        stream.outbox.put_nowait(orjson.dumps(body))

    def _ticker_extra(self, symbol: str, now: int) -> dict[str, object]:
        fields = ticker_fields(day_stats(self.venue, symbol, now), now)
        tape = self.venue.tape(symbol, 1)
        fields.update(
            {
                "ask_bid": ask_bid(tape[-1].buyer_is_maker) if tape else "BID",
                "market_state": "ACTIVE",
                "is_trading_suspended": False,
                "delisting_date": None,
                "market_warning": "NONE",
            }
        )
        return fields

    def _trade_frame(self, trade: MarketTrade) -> dict[str, object]:
        moment = utc_parts(trade.time_ms)
        stats = day_stats(self.venue, trade.symbol, trade.time_ms)
        bids, asks = self.venue.book(trade.symbol, 1)
        return {
            "type": "trade",
            "code": trade.symbol,
            "timestamp": self.venue.now_ms(),
            "trade_date": moment.strftime("%Y-%m-%d"),
            "trade_time": moment.strftime("%H:%M:%S"),
            "trade_timestamp": trade.time_ms,
            "trade_price": num(trade.price),
            "trade_volume": num(trade.qty),
            "ask_bid": ask_bid(trade.buyer_is_maker),
            "prev_closing_price": num(stats.prev_close),
            "change": "RISE"
            if trade.price > stats.prev_close
            else "FALL"
            if trade.price < stats.prev_close
            else "EVEN",
            "change_price": num(abs(trade.price - stats.prev_close)),
            "sequential_id": trade.trade_id,
            "best_ask_price": num(asks[0][0]) if asks else None,
            "best_ask_size": num(asks[0][1]) if asks else None,
            "best_bid_price": num(bids[0][0]) if bids else None,
            "best_bid_size": num(bids[0][1]) if bids else None,
            "stream_type": "REALTIME",
        }

    def _on_order(self, event: OrderEvent) -> None:
        order = event.order
        self._mark(order.symbol)
        frames: list[bytes] = []
        for stream in self._streams:
            if stream.account is None or stream.account.api_key != order.account:
                continue
            if not stream.wants("myOrder", order.symbol):
                continue
            frames = frames or self._order_frames(event)
            for frame in frames:
                stream.outbox.put_nowait(frame)

    def _order_frames(self, event: OrderEvent) -> list[bytes]:
        """A fill is a ``trade`` frame (the fill's price and volume); the fill that completes
        the order is followed by a ``done`` frame, as Upbit sends both."""
        order, trade, now = event.order, event.trade, self.venue.now_ms()
        fees = order_fees(self.venue, order, self.venue.market(order.symbol))
        base: dict[str, object] = {
            "type": "myOrder",
            "code": order.symbol,
            "uuid": self.venue.uuid_of(order),
            "ask_bid": side_code(order.side).upper(),
            "order_type": ord_type(order),
            "state": order_state(order),
            "trade_uuid": None,
            "price": num(order.quote_qty if order.quote_qty is not None else order.price),
            "avg_price": num(order.cum_quote / order.filled if order.filled else _ZERO),
            "volume": num(order.qty),
            "remaining_volume": num(order.remaining) if order.qty is not None else None,
            "executed_volume": num(order.filled),
            "trades_count": order.trade_count,
            "reserved_fee": num(fees.reserved),
            "remaining_fee": num(fees.remaining),
            "paid_fee": num(fees.paid),
            "locked": num(order.locked),
            "executed_funds": num(order.cum_quote),
            "time_in_force": time_in_force(order),
            "trade_fee": None,
            "is_maker": None,
            "identifier": order.client_id if order.client_id_given else None,
            "smp_type": None,
            "prevented_volume": 0,
            "prevented_locked": 0,
            "trade_timestamp": None,
            "order_timestamp": order.created_ms,
            "timestamp": now,
            "stream_type": "REALTIME",
        }
        if trade is None:
            return [orjson.dumps(base)]
        fill = {
            **base,
            "state": "trade",
            "trade_uuid": trade_uuid(self.venue, trade),
            "price": num(trade.price),
            "volume": num(trade.qty),
            "trade_fee": num(trade.fee),
            "is_maker": trade.maker,
            "trade_timestamp": trade.time_ms,
        }
        frames = [orjson.dumps(fill)]
        if order.status.is_final:
            frames.append(orjson.dumps({**base, "trade_timestamp": trade.time_ms}))
        return frames

    def _on_balance(self, event: BalanceEvent) -> None:
        frame: bytes | None = None
        for stream in self._streams:
            if stream.account is None or stream.account.api_key != event.account:
                continue
            if "myAsset" not in stream.subs:
                continue
            frame = frame or orjson.dumps(
                {
                    "type": "myAsset",
                    "asset_uuid": str(uuid.uuid4()),
                    "assets": [
                        {"currency": asset, "balance": num(free), "locked": num(locked)}
                        for asset, (free, locked) in event.balances.items()
                    ],
                    "asset_timestamp": event.time_ms,
                    "timestamp": event.time_ms,
                    "stream_type": "REALTIME",
                }
            )
            stream.outbox.put_nowait(frame)
