"""`sigma venue`'s server: both protocols' front ends, the price path and the admin routes on
one loopback port.

Binance's routes live under ``/api/v3``, ``/ws``, ``/stream`` and ``/ws-api/v3``, Upbit's under
``/v1`` and ``/websocket/v1``, so one port serves both (point each ccxt exchange's ``urls`` at it:
:func:`ccxt_config`). The admin routes under ``/sigma/`` let a test or an operator switch faults,
cut every stream, or move a price while the venue runs:

- ``GET /sigma/health``: the venues, their markets and last prices.
- ``GET /sigma/faults``, ``PATCH /sigma/faults`` (a JSON object of fault fields).
- ``POST /sigma/disconnect``: close every WebSocket connection now.
- ``POST /sigma/tick`` ``{"venue": "binance", "symbol": "BTCUSDT", "price": "9", "qty": "1"}``:
  the market trades there (with a ``manual`` source, the only way prices move).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from aiohttp import web

from sigma.ops.connections import ConnectionLimits
from sigma.venues.emulator.accounts import Account
from sigma.venues.emulator.binance import BinanceFrontEnd, BinanceSettings
from sigma.venues.emulator.binance import ccxt_config as binance_ccxt_config
from sigma.venues.emulator.binance import default_markets as binance_markets
from sigma.venues.emulator.config import ProtocolConfig, VenueConfig
from sigma.venues.emulator.connections import BoundedRunner, Bounds
from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.http import ConnectionDropped, json_reply
from sigma.venues.emulator.journal import FileJournal
from sigma.venues.emulator.model import FeeRule, MarketSpec, Rejection
from sigma.venues.emulator.prices import PriceDriver
from sigma.venues.emulator.upbit import UpbitFrontEnd, UpbitSettings
from sigma.venues.emulator.upbit import ccxt_config as upbit_ccxt_config
from sigma.venues.emulator.upbit import default_markets as upbit_markets
from sigma.venues.emulator.venue import Venue, wall_clock_ms

__all__ = ["VenueServer", "ccxt_config"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FrontEnd(Protocol):
    """What the server needs of a protocol's front end."""

    def install(self, app: web.Application) -> None: ...

    def error_reply(self, path: str, status: int, message: str) -> web.Response | None:
        """The protocol's own error reply for a request to ``path`` that no handler answered
        (an unknown path, a method the path does not take, a body too large, a failure); None
        when ``path`` is not the protocol's."""
        ...

    async def close(self) -> None: ...

    def disconnect_streams(self) -> int: ...


def ccxt_config(protocol: str, http_url: str, ws_url: str) -> dict[str, Any]:
    """The ccxt (and ccxt.pro) config that points exchange ``protocol`` at a venue serving on
    ``http_url``/``ws_url``; add ``apiKey`` and ``secret`` to trade."""
    if protocol == "binance":
        return binance_ccxt_config(http_url, ws_url)
    if protocol == "upbit":
        return upbit_ccxt_config(http_url, ws_url)
    raise ValueError(f"unknown protocol {protocol!r}: binance or upbit")


class VenueServer:
    """The local exchange: build it from a :class:`VenueConfig`, run it with :meth:`serve`."""

    def __init__(self, config: VenueConfig, *, database_url: str | None = None) -> None:
        self.config = config
        self.faults = Faults()
        self.faults.update(config.faults)
        self.journal = FileJournal(config.state_file) if config.state_file else None
        self.venues: dict[str, Venue] = {}
        self.fronts: dict[str, FrontEnd] = {}
        # The settings were checked against these dataclasses when the config was built.
        if config.binance.enabled:
            venue = self._venue("binance", config.binance, binance_markets(), FeeRule.RECEIVED)
            self.venues["binance"] = venue
            settings = BinanceSettings(**config.binance.settings)
            self.fronts["binance"] = BinanceFrontEnd(venue, self.faults, settings)
        if config.upbit.enabled:
            upbit = UpbitSettings(**config.upbit.settings)
            # The markets' order totals are the settings' (min_order_total, max_order_total).
            markets = upbit_markets(upbit)
            venue = self._venue("upbit", config.upbit, markets, FeeRule.QUOTE, unique=True)
            self.venues["upbit"] = venue
            self.fronts["upbit"] = UpbitFrontEnd(venue, self.faults, upbit)
        if not self.venues:
            raise ValueError("no protocol enabled: enable binance or upbit")
        self.prices = PriceDriver(
            list(self.venues.values()),
            source=config.source,
            speed=config.speed,
            seed=config.seed,
            history_bars=config.history_bars,
            database_url=database_url,
        )
        self.port = config.port
        self._restore()

    # ------------------------------------------------------------------ running
    @property
    def http_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def binance(self) -> Venue:
        return self.venues["binance"]

    @property
    def upbit(self) -> Venue:
        return self.venues["upbit"]

    def ccxt_config(self, protocol: str) -> dict[str, Any]:
        """The ccxt config for ``protocol`` on this server (see :func:`ccxt_config`)."""
        return ccxt_config(protocol, self.http_url, self.ws_url)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[VenueServer]:
        """Listen, and play the price path, while the context is open."""
        self.prices.load_history(wall_clock_ms())
        app = web.Application(
            middlewares=[self._json_errors, _swallow_drops], client_max_size=64 * 1024
        )
        for front in self.fronts.values():
            front.install(app)
        self._admin_routes(app)
        bounds = Bounds(
            ConnectionLimits(self.config.max_connections, self.config.max_connections_per_client),
            head_seconds=self.config.head_seconds,
            body_seconds=self.config.body_seconds,
        )
        runner = BoundedRunner(
            app,
            self._error_reply,
            bounds,
            access_log=None,
            handle_signals=False,
            # aiohttp's default keeps an idle connection for an hour; its run_app's 75 s.
            keepalive_timeout=75.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port, reuse_address=True)
        try:
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or ()
            if sockets:
                self.port = sockets[0].getsockname()[1]
            log.info("venue serving %s on %s", ", ".join(self.venues), self.http_url)
            driver = asyncio.create_task(self.prices.run(), name="venue-prices")
            try:
                yield self
            finally:
                driver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await driver
                for front in self.fronts.values():
                    await front.close()
        finally:
            await runner.cleanup()
            if self.journal is not None:
                self.journal.close()

    @web.middleware
    async def _json_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every refusal in JSON, in the shape of the protocol whose path was asked for, never
        aiohttp's plain-text pages: unknown paths (404), methods a path does not take (405),
        bodies over the size limit (413), a WebSocket route asked without an upgrade (400),
        and, as a last resort, a handler's failure (500, logged)."""
        try:
            return await handler(request)
        except web.HTTPError as exc:  # the 4xx and 5xx ones
            return self._error_reply(request.path, exc.status, exc.text or exc.reason)
        except Exception:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                raise  # the upgrade may be under way: aiohttp closes the connection
            log.exception("venue failed on %s %s", request.method, request.path)
            return self._error_reply(request.path, 500, "Internal Server Error")

    def _error_reply(self, path: str, status: int, message: str) -> web.Response:
        for front in self.fronts.values():
            reply = front.error_reply(path, status, message)
            if reply is not None:
                return reply
        return _admin_error(status, message)

    def disconnect_streams(self) -> int:
        """Close every WebSocket connection of every front end now; how many were closed."""
        return sum(front.disconnect_streams() for front in self.fronts.values())

    # ------------------------------------------------------------------ building
    def _venue(
        self,
        name: str,
        config: ProtocolConfig,
        markets: list[MarketSpec],
        fee_rule: FeeRule,
        *,
        unique: bool = False,
    ) -> Venue:
        accounts = [Account.funded(a.api_key, a.secret, a.balances) for a in config.accounts]
        return Venue(
            name,
            markets,
            accounts,
            maker_fee=config.maker_fee,
            taker_fee=config.taker_fee,
            fee_rule=fee_rule,
            unique_client_ids=unique,
            clock=self._clock,
            journal=self.journal,
        )

    def _clock(self) -> int:
        return wall_clock_ms() + self.faults.clock_skew_ms

    def _restore(self) -> None:
        if self.journal is None:
            return
        for name, state in self.journal.load().items():
            venue = self.venues.get(name)
            if venue is not None:
                venue.restore(
                    sorted(state.orders.values(), key=lambda o: o.order_id),
                    sorted(state.trades.values(), key=lambda t: t.trade_id),
                    state.balance_rows(),
                )

    # ------------------------------------------------------------------ admin
    def _admin_routes(self, app: web.Application) -> None:
        app.router.add_get("/sigma/health", self._health)
        app.router.add_get("/sigma/faults", self._get_faults)
        app.router.add_patch("/sigma/faults", self._patch_faults)
        app.router.add_post("/sigma/disconnect", self._disconnect)
        app.router.add_post("/sigma/tick", self._tick)

    def _authorised(self, request: web.Request) -> bool:
        token = self.config.admin_token
        return token is None or request.headers.get("X-Sigma-Admin") == token

    async def _health(self, request: web.Request) -> web.Response:
        return json_reply(
            {
                "status": "ok",
                "venues": {
                    name: {s: str(venue.last_price(s)) for s in venue.markets}
                    for name, venue in self.venues.items()
                },
                "ticks": self.prices.ticks,
            }
        )

    async def _get_faults(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _admin_error(403, "admin token required")
        return json_reply(self.faults.as_dict())

    async def _patch_faults(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _admin_error(403, "admin token required")
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object of fault fields")
            self.faults.update(changes)
        except ValueError as exc:
            return _admin_error(400, str(exc))
        log.warning("faults now %s", self.faults.as_dict())
        return json_reply(self.faults.as_dict())

    async def _disconnect(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _admin_error(403, "admin token required")
        return json_reply({"closed": self.disconnect_streams()})

    async def _tick(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _admin_error(403, "admin token required")
        try:
            body = await request.json()
            venue = self.venues[str(body["venue"])]
            symbol = str(body["symbol"])
            price, qty = Decimal(str(body["price"])), Decimal(str(body.get("qty", "1")))
            venue.tick(symbol, price, qty)
        except (ValueError, KeyError, TypeError, InvalidOperation, Rejection) as exc:
            return _admin_error(400, f"tick needs venue, symbol, price and qty: {exc}")
        return json_reply({"symbol": symbol, "price": str(venue.last_price(symbol))})


def _admin_error(status: int, message: str) -> web.Response:
    return json_reply({"error": message}, status=status)


@web.middleware
async def _swallow_drops(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ConnectionDropped:
        # The transport is gone already; this reply is never written.
        return web.Response(status=499)
