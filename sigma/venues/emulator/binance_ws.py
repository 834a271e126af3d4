"""Binance spot's WebSocket side: market streams (``/ws``, ``/ws/<streams>``, ``/stream``) with
the live SUBSCRIBE protocol, and the WebSocket API's user-data stream (``/ws-api/v3``).

Real-time streams (``trade``, ``aggTrade``, ``bookTicker``) go out as the venue reports each
change; the others at Binance's update speeds from one pump task: ``depth``/``depthN`` every
1000 ms (100 ms with ``@100ms``), ``ticker``/``miniTicker`` every 1000 ms, ``kline_<i>`` every
2000 ms (web-socket-streams.md). Each connection writes through its own queue, so frames keep
their order and each waits the latency fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from sigma.venues.emulator.binance_wire import (
    INTERVALS,
    ApiError,
    BinanceSettings,
    BookVersions,
    authenticate,
    average_price,
    book_top,
    connect_refusal,
    day_ticker,
    execution_report,
    fmt,
    fold_klines,
    interval_label,
    rate_limit,
    weight_refusal,
)
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import client_address, json_reply
from sigma.venues.emulator.limits import WeightWindow
from sigma.venues.emulator.model import BalanceEvent, MarketTrade, OrderEvent, VenueEvent
from sigma.venues.emulator.venue import Venue

__all__ = ["BinanceStreams"]

_PUMP_MS = 100
#: the longest a connection closed for its message rate waits for its queued answers to go
_FLUSH_S = 1.0
_BOOK_DEPTH = 5000
_DEPTH = re.compile(r"depth(5|10|20)?(@100ms|@1000ms)?")
_REQUEST_ID = re.compile("[A-Za-z0-9]{1,36}")
#: 24hrTicker event fields from the REST ticker's
_TICKER_KEYS = {
    "p": "priceChange",
    "P": "priceChangePercent",
    "w": "weightedAvgPrice",
    "x": "prevClosePrice",
    "c": "lastPrice",
    "Q": "lastQty",
    "b": "bidPrice",
    "B": "bidQty",
    "a": "askPrice",
    "A": "askQty",
    "o": "openPrice",
    "h": "highPrice",
    "l": "lowPrice",
    "v": "volume",
    "q": "quoteVolume",
    "O": "openTime",
    "C": "closeTime",
    "F": "firstId",
    "L": "lastId",
    "n": "count",
}
_MINI_KEYS = ("c", "o", "h", "l", "v", "q")
# WebSocket API request weights (web-socket-api.md, each method's "Weight"); others weigh 1.
_CONNECT_WEIGHT = 2
_API_WEIGHTS = {
    "userDataStream.subscribe.signature": 2,
    "userDataStream.unsubscribe": 2,
    "session.subscriptions": 2,
}


def _dumps(body: Any) -> str:
    return orjson.dumps(body).decode()


class _Socket:
    """One client connection: frames queue up and one writer task sends them in order, and a
    heartbeat pings the client, cutting it once no pong has answered a ping for the timeout.

    Binance's rule, not aiohttp's heartbeat (which cuts after half the ping interval): a
    ping every 20 s, a minute to answer it, and "unsolicited pong frames are allowed, but
    will not prevent disconnection", so only a pong carrying a ping's payload counts."""

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        faults: Faults,
        settings: BinanceSettings,
    ) -> None:
        self.request = request
        self.ws = ws
        self.faults = faults
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name="binance-ws-writer")
        self._pinged: set[bytes] = set()
        self._answered = time.monotonic()
        self._heartbeat = asyncio.create_task(
            self._beat(settings.ping_every_ms / 1000, settings.pong_timeout_ms / 1000),
            name="binance-ws-heartbeat",
        )

    async def texts(self, per_second: int | None = None) -> AsyncIterator[str]:
        """The client's text frames; its pings answered with their payload, its pongs
        counted when they answer a ping. With ``per_second``, a client that sends more
        messages (any frame, pings and pongs included) within a second is disconnected."""
        received: deque[float] = deque()
        async for message in self.ws:
            if per_second is not None:
                now = time.monotonic()
                received.append(now)
                while now - received[0] >= 1:
                    received.popleft()
                if len(received) > per_second:
                    # The messages within the limit were answered: those answers go first.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._queue.join(), _FLUSH_S)
                    await self.ws.close(
                        code=WSCloseCode.POLICY_VIOLATION, message=b"Too many requests"
                    )
                    return
            if message.type is WSMsgType.TEXT:
                yield message.data
            elif message.type is WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.pong(message.data)
            elif message.type is WSMsgType.PONG and bytes(message.data) in self._pinged:
                self._pinged.clear()
                self._answered = time.monotonic()

    async def _beat(self, every: float, timeout: float) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            next_ping = time.monotonic() + every
            while True:
                now = time.monotonic()
                if now - self._answered >= timeout:
                    self.abort()
                    return
                if now >= next_ping:
                    payload = str(time.time_ns()).encode()
                    self._pinged.add(payload)
                    await self.ws.ping(payload)
                    next_ping = now + every
                await asyncio.sleep(min(next_ping, self._answered + timeout) - now)

    def send(self, text: str) -> None:
        self._queue.put_nowait(text)

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                text = await self._queue.get()
                try:
                    await self.faults.delay()
                    await self.ws.send_str(text)
                finally:
                    self._queue.task_done()

    def abort(self) -> None:
        """Cut the connection without a closing handshake (the disconnect fault)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def stop(self) -> None:
        """Stop writing (the connection is gone) and cut the transport if still open."""
        self._writer.cancel()
        self._heartbeat.cancel()
        self.abort()

    async def close(self, farewell: str) -> None:
        """Send ``farewell`` (the ``serverShutdown`` event) and close with a handshake; frames
        still queued are dropped, as a server going down drops them."""
        self._writer.cancel()
        self._heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(farewell)
        await self.ws.close(code=1001, message=b"server shutdown")


@dataclass(frozen=True)
class _Stream:
    """A market stream name parsed: ``btcusdt@depth5@100ms`` is ("BTCUSDT", "depth", 5, 100)."""

    name: str
    symbol: str
    kind: str
    arg: str = ""
    period_ms: int = 0


@dataclass
class _Periodic:
    """What a periodic stream last sent: the book it diffed against, or a change marker."""

    last_u: int = 0
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    mark: tuple[Any, ...] = ()


class BinanceStreams:
    """The WebSocket routes of one Binance venue (see the module docstring)."""

    def __init__(
        self,
        venue: Venue,
        faults: Faults,
        settings: BinanceSettings,
        versions: BookVersions,
        limiter: WeightWindow,
    ) -> None:
        self.venue = venue
        self.faults = faults
        self.settings = settings
        self.versions = versions
        #: the REST API's request-weight window: the WebSocket API shares it per address
        self.limiter = limiter
        #: connection attempts per address, on the market streams and on the WebSocket API
        #: (Binance serves them from different hosts, each with its own count)
        self.stream_connects = _connect_window(settings, venue.now_ms)
        self.api_connects = _connect_window(settings, venue.now_ms)
        self.sockets: set[_Socket] = set()
        self._subscribers: dict[str, dict[_Socket, bool]] = {}
        self._streams: dict[str, _Stream] = {}
        self._state: dict[str, _Periodic] = {}
        self._combined: dict[_Socket, bool] = {}
        self._users: dict[str, dict[_Socket, int]] = {}
        self._next_subscription: dict[_Socket, int] = {}
        self._dirty: set[str] = set()
        self._execution_id = 0
        self._pump: asyncio.Task[None] | None = None
        venue.listeners.append(self._on_event)

    def install(self, app: web.Application) -> None:
        """Add the ``/ws``, ``/stream`` and ``/ws-api/v3`` routes to ``app``."""
        app.router.add_get("/ws", self._market)
        app.router.add_get("/ws/{streams:.*}", self._market)
        app.router.add_get("/stream", self._market)
        app.router.add_get("/ws-api/v3", self._user)

    async def close(self) -> None:
        """Stop the pump and close every connection with a closing handshake, each told first
        with a ``serverShutdown`` event in its own framing (web-socket-streams.md and
        web-socket-api.md "Server Shutdown")."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        event = {"e": "serverShutdown", "E": self.venue.now_ms()}
        for sock in list(self.sockets):
            combined = self._combined.get(sock)
            if combined is None:
                farewell: dict[str, Any] = {"event": event}
            elif combined:
                farewell = {"stream": "!serverShutdown", "data": event}
            else:
                farewell = event
            await sock.close(_dumps(farewell))

    def disconnect(self) -> int:
        """Abort every connection (the WebSocket disconnect fault); how many."""
        sockets = list(self.sockets)
        for sock in sockets:
            sock.abort()
        return len(sockets)

    # ----------------------------------------------------------------- connections
    async def _open(self, request: web.Request) -> tuple[web.WebSocketResponse, _Socket]:
        ws = web.WebSocketResponse(autoping=False)  # the socket answers and sends pings
        await ws.prepare(request)
        sock = _Socket(request, ws, self.faults, self.settings)
        self.sockets.add(sock)
        return ws, sock

    async def _market(self, request: web.Request) -> web.StreamResponse:
        refused = _refused_attempt(self.stream_connects, request, self.settings)
        if refused is not None:
            return refused
        combined = request.path == "/stream"
        names = (
            request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        )
        # Names that are no stream (ccxt.pro connects to /ws/0, /ws/1…) just open the socket.
        streams = list(dict.fromkeys(n for n in names.split("/") if self._stream(n)))
        if len(streams) > self.settings.streams_per_connection:
            error = self._too_many_streams()["error"]
            return json_reply(error, 400)
        ws, sock = await self._open(request)
        self._combined[sock] = combined
        self._subscribe(sock, streams)
        try:
            async for text in sock.texts(self.settings.stream_messages_per_second):
                sock.send(_dumps(self._control(sock, text)))
        finally:
            self._forget(sock)
        return ws

    def _forget(self, sock: _Socket) -> None:
        self.sockets.discard(sock)
        self._combined.pop(sock, None)
        self._next_subscription.pop(sock, None)
        for name in [n for n, subs in self._subscribers.items() if sock in subs]:
            self._unsubscribe(sock, [name])
        for subs in self._users.values():
            subs.pop(sock, None)
        sock.stop()

    def _control(self, sock: _Socket, text: str) -> dict[str, Any]:
        """Answer one SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/…_PROPERTY request."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"error": {"code": 3, "msg": "Invalid JSON: expected value"}, "id": None}
        if not isinstance(request, dict):
            return {"error": {"code": 2, "msg": "Invalid request: expected an object"}, "id": None}
        if "id" not in request or not _request_id(request["id"]):
            msg = "Invalid request: request ID must be an unsigned integer"
            return {"error": {"code": 2, "msg": msg}, "id": None}
        rid, method, params = request.get("id"), request.get("method"), request.get("params") or []
        if method is None:
            return {
                "error": {"code": 2, "msg": "Invalid request: missing field `method`"},
                "id": rid,
            }
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            names = [str(n) for n in params] if isinstance(params, list) else []
            if not names or not all(self._stream(n) for n in names):
                return {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": rid}
            if method == "UNSUBSCRIBE":
                self._unsubscribe(sock, names)
            elif len(self._listened(sock) | set(names)) > self.settings.streams_per_connection:
                return {**self._too_many_streams(), "id": rid}
            else:
                self._subscribe(sock, names)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(self._listened(sock)), "id": rid}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or params[0] != "combined":
                return {"error": {"code": 0, "msg": "Unknown property"}, "id": rid}
            if method == "GET_PROPERTY":
                return {"result": self._combined[sock], "id": rid}
            if len(params) < 2 or not isinstance(params[1], bool):
                return {
                    "error": {"code": 1, "msg": "Invalid value type: expected Boolean"},
                    "id": rid,
                }
            self._combined[sock] = params[1]
            return {"result": None, "id": rid}
        return {
            "error": {"code": 2, "msg": f"Invalid request: unknown variant {method}"},
            "id": rid,
        }

    def _listened(self, sock: _Socket) -> set[str]:
        """The streams ``sock`` listens to."""
        return {n for n, subs in self._subscribers.items() if sock in subs}

    def _too_many_streams(self) -> dict[str, Any]:
        # Binance documents the limit, not its refusal: the stream protocol's "Invalid
        # request" error (code 2) saying which limit, and nothing subscribed.
        limit = self.settings.streams_per_connection
        msg = f"Invalid request: too many streams; a connection can listen to at most {limit}"
        return {"error": {"code": 2, "msg": msg}}

    def _stream(self, name: str) -> _Stream | None:
        """The stream ``name`` describes, or None when it names none."""
        known = self._streams.get(name)
        if known is not None:
            return known
        lower, _, rest = name.partition("@")
        symbol = lower.upper()
        if lower != lower.lower() or symbol not in self.venue.markets:
            return None
        stream: _Stream | None = None
        if rest in ("trade", "aggTrade", "bookTicker"):
            stream = _Stream(name, symbol, rest)
        elif rest in ("ticker", "miniTicker", "avgPrice"):
            stream = _Stream(name, symbol, rest, period_ms=1000)
        elif rest.startswith("kline_") and rest[6:] in INTERVALS:
            # 1s klines update every second, the others every 2 (web-socket-streams.md).
            period = 1000 if rest[6:] == "1s" else 2000
            stream = _Stream(name, symbol, "kline", rest[6:], period_ms=period)
        elif match := _DEPTH.fullmatch(rest):
            levels, speed = match.groups()
            period = 100 if speed == "@100ms" else 1000
            stream = _Stream(name, symbol, "depth", levels or "", period_ms=period)
        if stream is not None:
            self._streams[name] = stream
        return stream

    def _subscribe(self, sock: _Socket, names: list[str]) -> None:
        for name in names:
            self._subscribers.setdefault(name, {})[sock] = True
            stream = self._streams[name]
            if stream.kind == "depth" and not stream.arg and name not in self._state:
                # A diff stream starts from the book as it is now.
                self._state[name] = self._diff_base(stream.symbol)
        if self._pump is None and any(self._streams[n].period_ms for n in names):
            self._pump = asyncio.create_task(self._run_pump(), name="binance-stream-pump")

    def _unsubscribe(self, sock: _Socket, names: list[str]) -> None:
        for name in names:
            subs = self._subscribers.get(name)
            if subs is not None:
                subs.pop(sock, None)
                if not subs:
                    del self._subscribers[name]
                    self._state.pop(name, None)

    # ----------------------------------------------------------------- publishing
    def _publish(self, name: str, payload: dict[str, Any]) -> None:
        subs = self._subscribers.get(name)
        if not subs or self.faults.stale_streams:
            return
        raw = _dumps(payload)
        wrapped = f'{{"stream":{_dumps(name)},"data":{raw}}}'
        for sock in subs:
            sock.send(wrapped if self._combined.get(sock) else raw)

    def _on_event(self, event: VenueEvent) -> None:
        if isinstance(event, MarketTrade):
            self._on_trade(event)
            self._book_changed(event.symbol)
        elif isinstance(event, OrderEvent):
            self._book_changed(event.order.symbol)
            self._user_event(event.order.account, self._report(event))
        elif isinstance(event, BalanceEvent):
            self._user_event(event.account, _account_position(event))

    def _on_trade(self, trade: MarketTrade) -> None:
        prefix, now = trade.symbol.lower(), self.venue.now_ms()
        common = {"s": trade.symbol, "p": fmt(trade.price), "q": fmt(trade.qty), "T": trade.time_ms}
        flags = {"m": trade.buyer_is_maker, "M": True}
        self._publish(
            f"{prefix}@trade", {"e": "trade", "E": now, **common, "t": trade.trade_id, **flags}
        )
        ids = {"a": trade.trade_id, "f": trade.trade_id, "l": trade.trade_id}
        self._publish(f"{prefix}@aggTrade", {"e": "aggTrade", "E": now, **common, **ids, **flags})

    def _book_changed(self, symbol: str) -> None:
        if f"{symbol.lower()}@bookTicker" not in self._subscribers:
            return
        if not self._dirty:
            # One request changes the book many times; send its top once, after it.
            asyncio.get_running_loop().call_soon(self._send_book_tickers)
        self._dirty.add(symbol)

    def _send_book_tickers(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for symbol in dirty:
            name = f"{symbol.lower()}@bookTicker"
            top = book_top(self.venue, symbol)
            state = self._state.setdefault(name, _Periodic())
            mark = tuple(top.values())
            if mark != state.mark:
                state.mark = mark
                payload = {"u": self.versions[symbol], "s": symbol, "b": top["bidPrice"]}
                payload.update(B=top["bidQty"], a=top["askPrice"], A=top["askQty"])
                self._publish(name, payload)

    # ----------------------------------------------------------------- periodic streams
    async def _run_pump(self) -> None:
        step = 0
        while True:
            await asyncio.sleep(_PUMP_MS / 1000)
            step += 1
            # Stale streams send nothing; the diff streams resume where they stopped.
            if self.faults.stale_streams:
                continue
            for name in list(self._subscribers):
                stream = self._streams[name]
                if stream.period_ms and step % (stream.period_ms // _PUMP_MS) == 0:
                    payload = self._render(stream)
                    if payload is not None:
                        self._publish(name, payload)

    def _render(self, stream: _Stream) -> dict[str, Any] | None:
        render: Callable[[_Stream], dict[str, Any] | None] = {
            "depth": self._depth_update if not stream.arg else self._partial_depth,
            "kline": self._kline,
            "ticker": self._ticker,
            "miniTicker": self._ticker,
            "avgPrice": self._avg_price,
        }[stream.kind]
        return render(stream)

    def _diff_base(self, symbol: str) -> _Periodic:
        bids, asks = self.venue.book(symbol, _BOOK_DEPTH)
        return _Periodic(self.versions[symbol], dict(bids), dict(asks))

    def _depth_update(self, stream: _Stream) -> dict[str, Any] | None:
        """The levels changed since the last update, ``U``..``u`` in the book's update ids."""
        state = self._state[stream.name]
        now = self._diff_base(stream.symbol)
        if now.last_u == state.last_u:
            return None
        bids, asks = _changes(state.bids, now.bids), _changes(state.asks, now.asks)
        if not bids and not asks:
            # Nothing visible changed: the next update covers these ids too.
            return None
        first = state.last_u + 1
        self._state[stream.name] = now
        return {
            "e": "depthUpdate",
            "E": self.venue.now_ms(),
            "s": stream.symbol,
            "U": first,
            "u": now.last_u,
            "b": bids,
            "a": asks,
        }

    def _partial_depth(self, stream: _Stream) -> dict[str, Any]:
        bids, asks = self.venue.book(stream.symbol, int(stream.arg))
        return {
            "lastUpdateId": self.versions[stream.symbol],
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    def _kline(self, stream: _Stream) -> dict[str, Any] | None:
        now = self.venue.now_ms()
        # The kline in progress, or the one just closed when its last trades came after the
        # previous push: a 1s kline is closed by the next push, later still when the loop is
        # busy, so the look-back is never under ten seconds.
        since = now - max(2 * INTERVALS[stream.arg], 10_000)
        current = list(fold_klines(self.venue, stream.symbol, stream.arg, since, None))
        if not current:
            return None
        candle, close_ms = current[-1]
        state = self._state.setdefault(stream.name, _Periodic())
        mark = (candle.open_ms, candle.trades)
        if mark == state.mark:
            return None
        state.mark = mark
        kline = {
            "t": candle.open_ms,
            "T": close_ms,
            "s": stream.symbol,
            "i": stream.arg,
            "f": -1,
            "L": -1,
            "o": fmt(candle.open),
            "c": fmt(candle.close),
            "h": fmt(candle.high),
            "l": fmt(candle.low),
            "v": fmt(candle.volume),
            "n": candle.trades,
            "x": close_ms < now,
            "q": fmt(candle.quote_volume),
            "V": fmt(None),
            "Q": fmt(None),
            "B": "0",
        }
        return {"e": "kline", "E": now, "s": stream.symbol, "k": kline}

    def _ticker(self, stream: _Stream) -> dict[str, Any] | None:
        state = self._state.setdefault(stream.name, _Periodic())
        mark = (self.versions[stream.symbol],)
        if mark == state.mark:
            return None
        state.mark = mark
        now = self.venue.now_ms()
        full = day_ticker(self.venue, stream.symbol, now)
        fields = {key: full[rest] for key, rest in _TICKER_KEYS.items()}
        if stream.kind == "miniTicker":
            fields = {key: fields[key] for key in _MINI_KEYS}
            return {"e": "24hrMiniTicker", "E": now, "s": stream.symbol, **fields}
        return {"e": "24hrTicker", "E": now, "s": stream.symbol, **fields}

    def _avg_price(self, stream: _Stream) -> dict[str, Any] | None:
        """The average price when it changed since the last push."""
        now = self.venue.now_ms()
        mins, price, last_ms = average_price(self.venue, stream.symbol, now)
        state = self._state.setdefault(stream.name, _Periodic())
        if state.mark == (price,):
            return None
        state.mark = (price,)
        return {
            "e": "avgPrice",
            "E": now,
            "s": stream.symbol,
            "i": f"{mins}m",
            "w": fmt(price),
            "T": last_ms,
        }

    # ----------------------------------------------------------------- user data
    async def _user(self, request: web.Request) -> web.StreamResponse:
        refused = _refused_attempt(self.api_connects, request, self.settings)
        if refused is not None:
            return refused
        client = client_address(request)
        verdict = self.limiter.check(client, _CONNECT_WEIGHT)
        if verdict.status != 200:
            error = weight_refusal(verdict, self.settings, self.venue.now_ms())
            headers = {"Retry-After": str(verdict.retry_after)}
            return json_reply(error.body(), error.status, headers)
        # returnRateLimits=false in the URL hides them unless a request asks for them.
        shown = request.query.get("returnRateLimits") != "false"
        ws, sock = await self._open(request)
        try:
            async for text in sock.texts():
                sock.send(_dumps(self._api_request(sock, text, client, shown)))
        finally:
            self._forget(sock)
        return ws

    def _api_request(self, sock: _Socket, text: str, client: str, shown: bool) -> dict[str, Any]:
        """Answer one WebSocket API request (web-socket-api.md "Request format"), its weight
        counted with the client address's REST requests ("IP limits")."""
        try:
            request = orjson.loads(text)
            if not isinstance(request, dict):
                raise ValueError(text)
        except ValueError:
            request = None
        rid = request.get("id") if request else None
        method = request.get("method") if request else None
        params = request.get("params") if request else None
        if not isinstance(params, dict):
            params = {}
        verdict = self.limiter.check(client, _API_WEIGHTS.get(str(method), 1))
        if verdict.status != 200:
            now = self.venue.now_ms()
            error = weight_refusal(verdict, self.settings, now)
            retry_at = now + verdict.retry_after * 1000
            reply = _api_error(rid, error)
            reply["error"]["data"] = {"serverTime": now, "retryAfter": retry_at}
        elif request is None:
            reply = _api_error(None, ApiError(400, -1135, "Invalid JSON Request"))
        else:
            reply = self._dispatch(sock, rid, method, params)
        if params.get("returnRateLimits", shown) is not False:
            name, count, _ = interval_label(self.settings.weight_window_ms)
            weight = rate_limit("REQUEST_WEIGHT", name, count, self.settings.weight_limit)
            reply["rateLimits"] = [{**weight, "count": verdict.used}]
        return reply

    def _dispatch(self, sock: _Socket, rid: Any, method: Any, params: Any) -> dict[str, Any]:
        try:
            if method == "userDataStream.subscribe.signature":
                result: Any = self._subscribe_user(sock, params)
            elif method == "userDataStream.unsubscribe":
                result = self._unsubscribe_user(sock, params.get("subscriptionId"))
            elif method == "session.subscriptions":
                result = [
                    {"subscriptionId": i}
                    for subs in self._users.values()
                    if (i := subs.get(sock)) is not None
                ]
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self.venue.now_ms()}
            else:
                raise ApiError(400, -1020, "This operation is not supported.")
        except ApiError as error:
            return _api_error(rid, error)
        return {"id": rid, "status": 200, "result": result}

    def _subscribe_user(self, sock: _Socket, params: dict[str, Any]) -> dict[str, int]:
        texts = {k: _param_text(v) for k, v in params.items()}
        payload = "&".join(f"{k}={v}" for k, v in sorted(texts.items()) if k != "signature")
        account = authenticate(
            self.venue.accounts,
            texts.get("apiKey"),
            texts,
            payload,
            now_ms=self.venue.now_ms(),
            max_recv_window_ms=self.settings.max_recv_window_ms,
        )
        subs = self._users.setdefault(account.api_key, {})
        if sock in subs:
            raise ApiError(400, -2035, "User Data Stream subscription already active.")
        subscription = self._next_subscription.get(sock, 0)
        self._next_subscription[sock] = subscription + 1
        subs[sock] = subscription
        return {"subscriptionId": subscription}

    def _unsubscribe_user(self, sock: _Socket, subscription: Any) -> dict[str, Any]:
        """End one subscription of the connection, or all without an id; each ends with an
        ``eventStreamTerminated`` event (user-data-stream.md "Event Stream Terminated")."""
        for subs in self._users.values():
            if sock in subs and subscription in (None, subs[sock]):
                ended = subs.pop(sock)
                event = {"e": "eventStreamTerminated", "E": self.venue.now_ms()}
                sock.send(_dumps({"subscriptionId": ended, "event": event}))
        return {}

    def _report(self, event: OrderEvent) -> dict[str, Any] | None:
        # A stop reaching its trigger is no execution type of Binance's (enums.md); skip it.
        if event.kind == "TRIGGERED" or not self._users.get(event.order.account):
            return None
        self._execution_id += 1
        return execution_report(event, self._execution_id, self.venue.now_ms())

    def _user_event(self, account: str, payload: dict[str, Any] | None) -> None:
        subs = self._users.get(account)
        if not subs or payload is None:
            return
        raw = _dumps(payload)
        for sock, subscription in subs.items():
            sock.send(f'{{"subscriptionId":{subscription},"event":{raw}}}')


def _connect_window(settings: BinanceSettings, clock: Callable[[], int]) -> WeightWindow:
    """Connection attempts counted per address, an attempt weighing 1."""
    return WeightWindow(
        settings.stream_connects_per_window,
        settings.stream_connect_window_ms,
        clock,
        ban_after=settings.ban_after,
        ban_ms=settings.ban_ms,
    )


def _refused_attempt(
    attempts: WeightWindow, request: web.Request, settings: BinanceSettings
) -> web.Response | None:
    """The refusal of a connection attempt over ``attempts``' limit, before any upgrade."""
    verdict = attempts.check(client_address(request), 1)
    if verdict.status == 200:
        return None
    error = connect_refusal(verdict, settings)
    return json_reply(error.body(), error.status, {"Retry-After": str(verdict.retry_after)})


def _request_id(rid: Any) -> bool:
    """Whether ``rid`` is an id a stream request may carry: a 64-bit signed integer, an
    alphanumeric string of at most 36 characters, or null (web-socket-streams.md)."""
    if rid is None:
        return True
    if isinstance(rid, bool):
        return False
    if isinstance(rid, int):
        return -(2**63) <= rid < 2**63
    return isinstance(rid, str) and _REQUEST_ID.fullmatch(rid) is not None


def _changes(before: dict[Decimal, Decimal], after: dict[Decimal, Decimal]) -> list[list[str]]:
    """Levels whose quantity differs (a level gone at quantity 0), in price order."""
    changed = [
        (price, after.get(price, Decimal(0)))
        for price in before.keys() | after.keys()
        if before.get(price) != after.get(price)
    ]
    return [[fmt(p), fmt(q)] for p, q in sorted(changed)]


def _account_position(event: BalanceEvent) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": event.time_ms,
        "u": event.time_ms,
        "B": [
            {"a": asset, "f": fmt(free), "l": fmt(locked)}
            for asset, (free, locked) in event.balances.items()
        ],
    }


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _api_error(rid: Any, error: ApiError) -> dict[str, Any]:
    return {"id": rid, "status": error.status, "error": error.body()}
