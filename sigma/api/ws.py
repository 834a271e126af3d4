"""`/ws`: bus events broadcast to authenticated WebSocket clients.

One subscription per channel feeds every client (the JSON text is built once per message).
Each client has a bounded queue drained by its own sender task; a client whose queue is full
is too slow and is dropped (closed with 1013), so it never holds up the others or the bus.

Clients authenticate with the subprotocols `bearer, <access token>` (or, for clients that
cannot set them, `?token=`), pick channels with `?channels=price_update,fills` and can change
them later by sending `{"subscribe": [...]}` or `{"unsubscribe": [...]}`. A browser page of
another origin than the API's own (or one of SIGMA_API_ALLOWED_ORIGINS) is refused (1008),
whatever token it sends (`sigma.api.origin`). A user may hold at most
SIGMA_API_WS_PER_USER connections; a command longer than `MAX_COMMAND_CHARS` or nested deeper
than `MAX_COMMAND_DEPTH` is answered with an error frame without being parsed, and a client
sending more than `MAX_COMMANDS_PER_WINDOW` commands within `COMMAND_WINDOW_SECONDS` is closed
(1008).

The token is checked again every `Hub.auth_recheck` seconds while the connection is open: a
logout, a disabled or deleted user, a changed password or an expired token closes it (1008)
rather than letting it read fills and orders for as long as it stays connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Query, WebSocket

from sigma.api.context import ApiContext, get_ctx, principal_for
from sigma.api.origin import origin_allowed
from sigma.bus.base import (
    CHANNEL_ALERTS,
    CHANNEL_FILLS,
    CHANNEL_ORDER_STATUS,
    CHANNEL_PRICE_UPDATE,
    PubSub,
    Subscription,
)
from sigma.ops.repeats import RepeatFilter

log = logging.getLogger(__name__)
# Any viewer can send bad frames as fast as it likes: one line per minute and a count.
log.addFilter(RepeatFilter())

CHANNELS: tuple[str, ...] = (
    CHANNEL_PRICE_UPDATE,
    CHANNEL_FILLS,
    CHANNEL_ORDER_STATUS,
    CHANNEL_ALERTS,
)
CLOSE_POLICY = 1008  # bad token or request
MAX_SYMBOLS = 10_000  # bounds the last-price memory against a feed inventing symbols
CLOSE_TOO_SLOW = 1013  # "try again later"
AUTH_RECHECK_SECONDS = 5.0
BEARER_PROTOCOL = "bearer"
# A command is `{"subscribe": [names]}`: a few hundred characters, two levels deep.
MAX_COMMAND_CHARS = 4096
MAX_COMMAND_DEPTH = 4
MAX_COMMANDS_PER_WINDOW = 100
COMMAND_WINDOW_SECONDS = 1.0


class TextSink(Protocol):
    """The part of a WebSocket the hub writes to."""

    async def send_text(self, data: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection."""


def check_channels(names: Iterable[str]) -> set[str]:
    """`names` as a channel set; ValueError naming an unknown channel."""
    chosen = {n.strip() for n in names if n.strip()}
    unknown = sorted(chosen - set(CHANNELS))
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(unknown)}; known: {', '.join(CHANNELS)}")
    return chosen


def nesting_depth(text: str, limit: int) -> int:
    """How deeply the JSON `text` nests arrays and objects, counted without parsing (so a
    hostile document cannot exhaust the parser's recursion); stops counting past `limit`."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def decode(message: bytes) -> Any:
    """A bus message's JSON, or its text when it is not JSON."""
    try:
        return json.loads(message)
    except ValueError:
        return message.decode("utf-8", "replace")


def frame(channel: str, data: Any) -> str:
    """The text sent to clients: `{"channel": ..., "data": ...}`."""
    return json.dumps({"channel": channel, "data": data}, separators=(",", ":"))


class Client:
    """One connected WebSocket, its channels and its outgoing queue."""

    def __init__(self, sink: TextSink, channels: set[str], queue_size: int, name: str) -> None:
        self.sink = sink
        self.channels = channels
        self.name = name
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False
        self._sender: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def offer(self, text: str) -> bool:
        """Queue `text`; False when the queue is full."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    def start(self) -> asyncio.Task[None]:
        """Start the task that sends the queued frames."""
        self._sender = asyncio.create_task(self._send_loop())
        return self._sender

    def drop(
        self, code: int = CLOSE_TOO_SLOW, reason: str = "too slow: messages were piling up"
    ) -> None:
        """Stop sending and close the connection with `code` (1013: too slow). The sender is
        cancelled rather than told: a slow client's sender is usually stuck in a send."""
        self.dropped = True
        if self._sender is not None:
            self._sender.cancel()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.sink.close(code, reason)

    async def _send_loop(self) -> None:
        while True:
            text = await self.queue.get()
            try:
                await self.sink.send_text(text)
            except Exception:  # the peer went away; the receive side ends the session
                return


class Hub:
    """Fans the bus channels out to the connected clients."""

    def __init__(
        self,
        pubsub: PubSub,
        *,
        queue_size: int = 1000,
        auth_recheck: float = AUTH_RECHECK_SECONDS,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.pubsub = pubsub
        self.queue_size = queue_size
        self.auth_recheck = auth_recheck
        """Seconds between checks that a connected client's token still holds."""
        self.clients: set[Client] = set()
        self.dropped = 0
        self.last_prices: dict[str, dict[str, Any]] = {}
        """The latest `price_update` per symbol since start (for `/api/prices` and for
        clients that just connected)."""
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Subscribe to every channel and start relaying."""
        for channel in CHANNELS:
            sub = await self.pubsub.subscribe(channel)
            self._subs.append(sub)
            self._tasks.append(asyncio.create_task(self._relay(channel, sub)))

    async def stop(self) -> None:
        """Unsubscribe and stop relaying; connected clients are closed with 1001."""
        for sub in self._subs:
            await sub.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._subs, self._tasks = [], []
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.sink.close(1001, "server shutting down")
        self.clients.clear()

    async def _relay(self, channel: str, sub: Subscription) -> None:
        async for message in sub:
            self.broadcast(channel, message)

    def broadcast(self, channel: str, message: bytes) -> None:
        """Queue `message` for every client on `channel`; drop clients that cannot keep up."""
        data = decode(message)
        if channel == CHANNEL_PRICE_UPDATE and isinstance(data, dict):
            symbol = data.get("symbol")
            if isinstance(symbol, str) and (
                symbol in self.last_prices or len(self.last_prices) < MAX_SYMBOLS
            ):
                self.last_prices[symbol] = data
        text = frame(channel, data)
        for client in list(self.clients):
            if channel in client.channels:
                self.send(client, text)

    def send(self, client: Client, text: str) -> None:
        """Queue `text` for one client, dropping it when it cannot keep up."""
        if client.dropped or client.offer(text):
            return
        log.warning("websocket client %s is too slow; dropping it", client.name)
        self.dropped += 1
        self.clients.discard(client)
        client.drop()


def bearer_protocol(subprotocols: list[str]) -> str | None:
    """The token a client offers as its WebSocket subprotocols `bearer, <token>`, else None.

    A browser cannot set an Authorization header on a WebSocket; this keeps the token out of
    the URL, which proxies and servers log."""
    if len(subprotocols) == 2 and subprotocols[0] == BEARER_PROTOCOL and subprotocols[1]:
        return subprotocols[1]
    return None


router = APIRouter()


@router.websocket("/ws")
async def websocket_endpoint(
    websocket: WebSocket,
    token: str | None = Query(default=None, description="access token (JWT)"),
    channels: str | None = Query(default=None, description="comma-separated; default all"),
) -> None:
    """Authenticate with the subprotocols `bearer, <token>` (or `?token=`), then receive
    `{channel, data}` frames."""
    ctx = get_ctx(websocket)
    hub: Hub = websocket.app.state.hub
    origin = websocket.headers.get("origin")
    allowed = ctx.deps.settings.api.api_allowed_origins
    if not origin_allowed(origin, websocket.headers.get("host"), allowed):
        log.warning("websocket refused: origin %r is not the API's own", origin)
        reason = f"origin {origin!r} may not open /ws (SIGMA_API_ALLOWED_ORIGINS)"
        await websocket.close(CLOSE_POLICY, reason[:120])
        return
    offered = bearer_protocol(websocket.scope.get("subprotocols", []))
    token = offered or token
    try:
        principal = await principal_for(ctx, token)
        chosen = check_channels(channels.split(",")) if channels else set(CHANNELS)
    except HTTPException as exc:
        await websocket.close(CLOSE_POLICY, str(exc.detail)[:120])
        return
    except ValueError as exc:
        await websocket.close(CLOSE_POLICY, str(exc)[:120])
        return
    limit = ctx.deps.settings.api.api_ws_per_user
    # No await between this count and the add below: concurrent connects cannot both pass.
    if sum(1 for c in hub.clients if c.name == principal.username) >= limit:
        log.warning(
            "websocket refused: user=%s already has %d connections", principal.username, limit
        )
        await websocket.close(CLOSE_POLICY, f"too many connections: at most {limit} per user")
        return
    client = Client(websocket, chosen, hub.queue_size, principal.username)
    # Registered before the handshake completes: a message published once the client sees
    # the connection open is never missed.
    hub.clients.add(client)
    # A browser drops a connection whose server does not name one of the offered protocols.
    await websocket.accept(subprotocol=BEARER_PROTOCOL if offered else None)
    log.info("websocket open user=%s channels=%s", principal.username, sorted(chosen))
    if CHANNEL_PRICE_UPDATE in chosen:
        # The latest price of every symbol first, so a chart need not wait for the next tick;
        # capped at half the queue so a snapshot alone never makes the client "too slow".
        for data in list(hub.last_prices.values())[: hub.queue_size // 2]:
            hub.send(client, frame(CHANNEL_PRICE_UPDATE, data))
    sender = client.start()
    watcher = asyncio.create_task(_watch_token(ctx, hub, client, token))
    window_start, in_window = time.monotonic(), 0
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            now = time.monotonic()
            if now - window_start >= COMMAND_WINDOW_SECONDS:
                window_start, in_window = now, 0
            in_window += 1
            if in_window > MAX_COMMANDS_PER_WINDOW:
                # A dashboard sends a command when a page changes; a flood is not one.
                log.warning("websocket user=%s closed: command flood", client.name)
                await websocket.close(
                    CLOSE_POLICY,
                    f"too many commands: at most {MAX_COMMANDS_PER_WINDOW} "
                    f"per {COMMAND_WINDOW_SECONDS:g} s",
                )
                break
            # A binary frame is read as UTF-8 text rather than ending the session with an error.
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            reply = _handle_command(client, text)
            if reply is not None and not client.offer(reply):
                break
    finally:
        hub.clients.discard(client)
        sender.cancel()
        watcher.cancel()
        await asyncio.gather(sender, watcher, return_exceptions=True)
        log.info("websocket closed user=%s", principal.username)


async def _watch_token(ctx: ApiContext, hub: Hub, client: Client, token: str | None) -> None:
    """Close the connection with 1008 once its token no longer admits it (revoked, expired,
    its user disabled or deleted); until then, check every `hub.auth_recheck` seconds."""
    while True:
        await asyncio.sleep(hub.auth_recheck)
        try:
            await principal_for(ctx, token)
        except HTTPException as exc:
            log.info("websocket user=%s closed: %s", client.name, exc.detail)
            hub.clients.discard(client)
            client.drop(CLOSE_POLICY, str(exc.detail)[:120])
            return


def _handle_command(client: Client, text: str) -> str | None:
    """Apply a `{"subscribe": [...]}` / `{"unsubscribe": [...]}` request; the reply frame
    (channel `subscribed` with the current set, or `error`)."""
    try:
        if len(text) > MAX_COMMAND_CHARS:
            log.info("websocket user=%s: command refused: too long", client.name)
            raise ValueError(f"a command has at most {MAX_COMMAND_CHARS} characters")
        if nesting_depth(text, MAX_COMMAND_DEPTH) > MAX_COMMAND_DEPTH:
            log.info("websocket user=%s: command refused: nested too deeply", client.name)
            raise ValueError(f"a command nests at most {MAX_COMMAND_DEPTH} levels deep")
        try:
            command = json.loads(text)
        except ValueError:
            command = None
        if not isinstance(command, dict) or not command.keys() <= {"subscribe", "unsubscribe"}:
            raise ValueError('send {"subscribe": [channels]} or {"unsubscribe": [channels]}')
        for key in ("subscribe", "unsubscribe"):
            names = command.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"{key} must be a list of channel names")
        added = check_channels(command.get("subscribe", []))
        removed = check_channels(command.get("unsubscribe", []))
    except ValueError as exc:
        return json.dumps({"channel": "error", "data": str(exc)})
    client.channels = (client.channels | added) - removed
    return json.dumps({"channel": "subscribed", "data": sorted(client.channels)})
