"""The built-in market WebSocket server: replays history or a seeded synthetic market as ticks.

Every connected client receives each tick as the :func:`~sigma.feeds.ticks.encode_tick` JSON
(a text frame). A client may send ``{"subscribe": ["BTC", ...]}`` to receive only those
symbols (``{"subscribe": null}`` or ``[]`` for all again); other messages are ignored.

Bars become ticks through :func:`bar_ticks`: four per bar (open, the two extremes in the order
the price most likely visited them, close) spread evenly inside the bar. ``speed`` scales time:
1.0 replays at the bars' own pace, 60 a minute per second, 0 as fast as the clients read.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Protocol

import pandas as pd
import typer
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from sigma.domain import Tick
from sigma.feeds.errors import DataError
from sigma.feeds.ticks import encode_tick, valid_symbol
from sigma.ops.repeats import RepeatFilter

__all__ = [
    "BarReplay",
    "MarketServer",
    "TickSource",
    "bar_ticks",
    "feed_command",
    "run_feed",
]

log = logging.getLogger(__name__)
# A client can send bad messages as fast as it likes: one line a minute, counted.
log.addFilter(RepeatFilter())

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SUBSCRIPTIONS = 1000


def _decimal(value: float) -> Decimal:
    # repr is the shortest round-tripping form: 100.01 stays 100.01, not 100.0100000000000051.
    return Decimal(repr(float(value)))


def bar_ticks(symbol: str, frame: pd.DataFrame) -> Iterator[Tick]:
    """Four ticks per bar of ``frame`` (a bar frame): open, high and low, close.

    An up bar (close > open) most likely dipped first, so its path is open, low, high, close;
    any other bar is open, high, low, close. The ticks sit at 0, 1/4, 2/4 and 3/4 of the bar's
    duration (the gap to the next bar; the last bar reuses the previous gap, a lone bar lasts
    one minute), and each carries a quarter of the bar's volume.
    """
    if frame.empty:
        return
    starts = [int(us) for us in pd.DatetimeIndex(frame.index).as_unit("us").asi8]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    gaps.append(gaps[-1] if gaps else 60_000_000)
    rows = frame[["open", "high", "low", "close", "volume"]].itertuples(index=False, name=None)
    for start, gap, (o, h, lo, c, v) in zip(starts, gaps, rows, strict=True):
        path = (o, lo, h, c) if c > o else (o, h, lo, c)
        volume = _decimal(v) / 4
        t0 = _EPOCH + timedelta(microseconds=start)
        for k, price in enumerate(path):
            yield Tick(symbol, t0 + timedelta(microseconds=gap * k // 4), _decimal(price), volume)


@dataclass
class BarReplay:
    """A tick source: bar frames per symbol, merged in time order, played at ``speed``."""

    frames: Mapping[str, pd.DataFrame]
    speed: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.speed) or self.speed < 0:
            raise ValueError(f"speed must be a finite number >= 0, got {self.speed}")
        for symbol in self.frames:
            if not valid_symbol(symbol):
                raise ValueError(f"invalid symbol {symbol!r}")

    def ticks(self) -> Iterator[Tick]:
        """All ticks of all symbols in timestamp order (ties keep the symbols' order)."""
        streams = [bar_ticks(symbol, frame) for symbol, frame in self.frames.items()]
        return heapq.merge(*streams, key=lambda tick: tick.ts)

    @classmethod
    def from_history(
        cls,
        source: str,
        symbols: Sequence[str],
        *,
        speed: float = 0.0,
        bars: int | None = None,
        database_url: str | None = None,
    ) -> BarReplay:
        """Replay ``source`` (a CSV/Parquet path or ``pg:TABLE``, see ``load_bars``) for each
        symbol (a file without a symbol column serves its bars under every name given); at
        most the first ``bars`` bars per symbol."""
        from sigma.feeds.loaders import load_bars

        frames = {}
        for symbol in symbols:
            frame = load_bars(source, symbol=symbol, database_url=database_url)
            frames[symbol] = frame.iloc[:bars] if bars else frame
        return cls(frames, speed)

    @classmethod
    def synthetic(
        cls,
        symbols: Sequence[str],
        *,
        seed: int = 0,
        bars: int = 10_000,
        speed: float = 0.0,
        freq: str = "1min",
        start: datetime | None = None,
    ) -> BarReplay:
        """The seeded regime-switching market of ``generate_bars`` for each symbol (seed
        ``seed + i`` and start price ``100 * (i + 1)`` for the i-th symbol). Without ``start``
        the bars end at the current minute, so their timestamps are never in the future."""
        from sigma.feeds.synthetic import generate_bars

        step = pd.Timedelta(freq)
        if start is None:
            start = (pd.Timestamp.now(tz="UTC").floor(step) - bars * step).to_pydatetime()
        frames = {
            symbol: generate_bars(
                bars, seed=seed + i, start=start, freq=freq, start_price=100.0 * (i + 1)
            )[0]
            for i, symbol in enumerate(symbols)
        }
        return cls(frames, speed)


class TickSource(Protocol):
    """What `MarketServer` streams: ticks in time order, paced at `speed` (0: no pacing)."""

    speed: float

    def ticks(self) -> Iterator[Tick]:
        """The ticks to send, in timestamp order."""
        ...


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    symbols: frozenset[str] | None = None


def _subscription(message: str | bytes) -> frozenset[str] | None:
    """The symbol filter a ``{"subscribe": [...]}`` message asks for; ValueError otherwise."""
    request = json.loads(message)
    if not isinstance(request, dict) or "subscribe" not in request:
        raise ValueError("expected {'subscribe': [symbols]}")
    wanted = request["subscribe"]
    if not wanted:
        return None
    if (
        not isinstance(wanted, list)
        or len(wanted) > _MAX_SUBSCRIPTIONS
        or not all(valid_symbol(symbol) for symbol in wanted)
    ):
        raise ValueError("subscribe takes a list of symbols")
    return frozenset(wanted)


@dataclass(eq=False)
class MarketServer:
    """Streams ``source`` to every connected WebSocket client.

    ``port=0`` picks a free port (read :attr:`port` or :attr:`url` once serving). The stream
    starts when ``min_clients`` clients are connected, so a fast replay is not played to an
    empty room. A client that cannot take a frame within ``send_timeout`` seconds is dropped
    instead of stalling everyone else.
    """

    host: str
    port: int
    source: TickSource
    min_clients: int = 0
    send_timeout: float = 5.0
    sent: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _clients: set[_Client] = field(default_factory=set)
    _joined: asyncio.Event = field(default_factory=asyncio.Event)
    _server: Server | None = None

    @property
    def url(self) -> str:
        """``ws://host:port`` of the running server."""
        return f"ws://{self.host}:{self.port}"

    @property
    def clients(self) -> int:
        """Connected clients."""
        return len(self._clients)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[MarketServer]:
        """Listen and stream while the context is open; closes every connection on exit."""
        async with serve(self._handle, self.host, self.port, max_size=2**16) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1] if server.sockets else self.port
            log.info("market server on %s", self.url)
            stream = asyncio.create_task(self._stream())
            try:
                yield self
            finally:
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream
                server.close()

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws)
        self._clients.add(client)
        if len(self._clients) >= self.min_clients:
            self._joined.set()
        try:
            async for message in ws:
                try:
                    client.symbols = _subscription(message)
                except (ValueError, RecursionError) as exc:
                    log.info("ignoring client message: %s", exc)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)

    async def _stream(self) -> None:
        if self.min_clients > 0:
            await self._joined.wait()
        loop = asyncio.get_running_loop()
        speed = self.source.speed
        origin: tuple[float, datetime] | None = None
        for tick in self.source.ticks():
            if speed > 0:
                # Pace against the first tick instead of sleeping gaps, so sleep overshoot
                # does not accumulate over a long replay.
                if origin is None:
                    origin = (loop.time(), tick.ts)
                due = origin[0] + (tick.ts - origin[1]).total_seconds() / speed
                await asyncio.sleep(max(0.0, due - loop.time()))
            else:
                await asyncio.sleep(0)  # let the clients' handlers run between ticks
            # A market that caught up with the present goes on in real time: a tick is never
            # sent before its own time (consumers drop ticks from the future).
            ahead = (tick.ts - datetime.now(UTC)).total_seconds()
            if ahead > 0:
                await asyncio.sleep(ahead)
            await self._broadcast(tick)
        self.finished.set()
        log.info("stream finished after %d ticks", self.sent)

    async def _broadcast(self, tick: Tick) -> None:
        frame = encode_tick(tick)
        for client in list(self._clients):
            if client.symbols is not None and tick.symbol not in client.symbols:
                continue
            try:
                async with asyncio.timeout(self.send_timeout):
                    await client.ws.send(frame, text=True)
            except (ConnectionClosed, TimeoutError):
                self._clients.discard(client)
                client.ws.transport.abort()
        self.sent += 1


async def run_feed(
    source: str = "synthetic",
    symbols: Sequence[str] = ("BTC", "ETH"),
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    speed: float = 1.0,
    seed: int = 0,
    bars: int | None = None,
    database_url: str | None = None,
    announce: Callable[[str], object] | None = None,
) -> int:
    """Serve a market until its stream ends; returns the number of ticks sent.

    ``source`` is ``"synthetic"``, a CSV/Parquet path or ``pg:TABLE``. ``bars`` is the number of
    synthetic bars (default 10,000) or a limit on the history. At ``speed`` 0 the stream waits
    for the first client, since it would otherwise be over before anyone listens.
    ``announce(url)`` is called once listening.
    """
    if source == "synthetic":
        replay = BarReplay.synthetic(symbols, seed=seed, bars=bars or 10_000, speed=speed)
    else:
        replay = BarReplay.from_history(
            source, symbols, speed=speed, bars=bars, database_url=database_url
        )
    server = MarketServer(host, port, replay, min_clients=1 if speed == 0 else 0)
    async with server.serve():
        if announce is not None:
            announce(server.url)
        await server.finished.wait()
    return server.sent


def feed_command(
    source: Annotated[
        str, typer.Option("--source", help="synthetic, a CSV/Parquet path, or pg:TABLE")
    ] = "synthetic",
    symbols: Annotated[
        str, typer.Option("--symbols", help="comma-separated symbols to stream")
    ] = "BTC,ETH",
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0: any free port)")] = 8765,
    speed: Annotated[
        float, typer.Option("--speed", help="1 = real time of the bars, 0 = as fast as possible")
    ] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="synthetic market seed")] = 0,
    bars: Annotated[
        int | None,
        typer.Option("--bars", help="synthetic bars per symbol (10000) or history limit"),
    ] = None,
) -> None:
    """Serve a replayed or synthetic market as ticks on a WebSocket (`sigma feed`)."""
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    bad = [s for s in names if not valid_symbol(s)]
    if not names or bad:
        raise typer.BadParameter(f"invalid symbols: {bad or symbols!r}", param_hint="--symbols")
    if not math.isfinite(speed) or speed < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--speed")
    database_url = None
    if source.startswith("pg:"):
        from sigma.config import load_settings

        database_url = load_settings().database.database_url
    try:
        sent = asyncio.run(
            run_feed(
                source,
                names,
                host=host,
                port=port,
                speed=speed,
                seed=seed,
                bars=bars,
                database_url=database_url,
                announce=lambda url: typer.echo(f"serving {', '.join(names)} on {url}"),
            )
        )
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--source") from None
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        return
    typer.echo(f"stream finished: {sent} ticks sent")
