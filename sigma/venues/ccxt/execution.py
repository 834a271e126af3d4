"""The execution client for ccxt venues: SIGMA's `Broker` on a ccxt async exchange.

Every order carries our client order id to the venue (Binance ``newClientOrderId``, Upbit
``identifier``), and the id is looked up before any send: a redelivered order, or one resent
after a timeout or a dropped connection, finds the order the venue already holds instead of
placing a second one. Orders are put on the venue's steps and checked against its minimums
before sending (:meth:`VenueProfile.plan`); a refusal comes back as a REJECTED report with the
reason and nothing is sent. Errors are sorted as :mod:`sigma.venues.ccxt.errors` describes.

After placement an order is followed by :class:`sigma.execution.follower.OrderFollower`: it
waits on :meth:`watch_updates` (the venue's user-data stream, when the exchange object is
ccxt.pro's) and asks :meth:`lookup` for the authoritative state. Reconciliation reads the
account through :meth:`fetch_balances`, :meth:`open_orders` and :meth:`trades_since`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt
from ccxt.async_support.base.exchange import Exchange as AsyncExchange

from sigma.domain import Instrument, OrderStatus
from sigma.domain.text import clip
from sigma.execution.broker import BrokerReport, Capability, OrderUpdate
from sigma.execution.events import OrderEvent
from sigma.execution.reconcile import VenueAsset, VenueOrder
from sigma.venues.ccxt.errors import (
    RATE_LIMITED,
    TRANSIENT,
    RetryPolicy,
    refused,
    retry_after,
    venue_message,
)
from sigma.venues.ccxt.instruments import TICK_SIZE, decimal, instruments_from_markets
from sigma.venues.ccxt.profile import Exchange, OrderPlan, RawOrder, VenueProfile
from sigma.venues.ccxt.reconcile import venue_assets, venue_order
from sigma.venues.ccxt.reports import to_report

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class CcxtExecutionClient:
    """Orders on a ccxt venue. ``symbols`` maps SIGMA symbols to ccxt's (``BTC/KRW``); the
    markets are loaded once, on first use, into :attr:`instruments`."""

    def __init__(
        self,
        exchange: Exchange,
        profile: VenueProfile,
        symbols: Mapping[str, str],
        *,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.exchange = exchange
        self.profile = profile
        self.symbols = dict(symbols)
        self.name = profile.name
        # The user-data stream needs ccxt.pro's exchange object (ccxt's async one has none).
        stream = (getattr(exchange, "has", None) or {}).get("watchOrders") is True
        self.capabilities = profile.capabilities | (
            {Capability.USER_STREAM} if stream else frozenset()
        )
        # Every ccxt venue lists balances, open orders and trades (sigma.venues.ccxt.reconcile).
        self.capabilities |= {Capability.RECONCILE}
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._instruments: dict[str, Instrument] | None = None
        self._loading = asyncio.Lock()
        self._resume_at = 0.0
        self._recovering = False
        self._refusals = 0
        self._probe = asyncio.Lock()
        if isinstance(exchange, AsyncExchange):
            self._pace(exchange)

    def _pace(self, exchange: AsyncExchange) -> None:
        """One pause for every request of this client. Orders, lookups and reconciliation
        share the client concurrently, and Binance bans (418) an address that goes on sending
        after a 429: so a rate-limit refusal of any request holds back all the others until
        its ``Retry-After`` has passed (before they are signed, also those already waiting in
        ccxt's own throttle), and then they go one at a time until one is answered without a
        refusal. A request that finds a new pause started while it waited its turn is not
        sent: it fails as rate-limited, and its caller backs off and signs it anew."""
        fetch2, throttle, fetch = exchange.fetch2, exchange.throttle, exchange.fetch

        async def paced_fetch2(*args: Any, **kwargs: Any) -> Any:
            await self._paused()
            return await fetch2(*args, **kwargs)

        async def paced_throttle(*args: Any, **kwargs: Any) -> None:
            await throttle(*args, **kwargs)
            await self._paused()

        async def send(*args: Any, **kwargs: Any) -> Any:
            try:
                answer = await fetch(*args, **kwargs)
            except RATE_LIMITED as exc:
                pause = self.retry.delay(1, retry_after(exc, exchange))
                self._resume_at = max(self._resume_at, time.monotonic() + pause)
                self._recovering = True
                self._refusals += 1
                raise
            self._recovering = False
            return answer

        async def paced_fetch(*args: Any, **kwargs: Any) -> Any:
            if not self._recovering:
                return await send(*args, **kwargs)
            refusals = self._refusals
            async with self._probe:
                if self._refusals != refusals:
                    raise ccxt.RateLimitExceeded(f"{self.name}: paused after a 429, not sent")
                return await send(*args, **kwargs)

        exchange.fetch2 = paced_fetch2  # type: ignore[method-assign]
        exchange.throttle = paced_throttle  # type: ignore[method-assign]
        exchange.fetch = paced_fetch  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        """The venue's REST address ccxt sends to (its public API root), for messages."""
        api = (getattr(self.exchange, "urls", None) or {}).get("api")
        if isinstance(api, dict):
            api = api.get("public") or next((v for v in api.values() if isinstance(v, str)), "")
        if not isinstance(api, str):
            return ""
        implode = getattr(self.exchange, "implode_hostname", None)  # Upbit's "https://{hostname}"
        return str(implode(api)) if implode is not None else api

    async def _paused(self) -> None:
        """Wait out the pause a rate-limit refusal started, if any."""
        wait = self._resume_at - time.monotonic()
        if wait > 0:
            await self._sleep(wait)

    # --- instruments ------------------------------------------------------------------------
    async def instruments(self) -> Mapping[str, Instrument]:
        """The configured symbols' instruments, from the venue's markets (loaded once)."""
        async with self._loading:
            if self._instruments is None:
                markets = await self._retrying("load markets", self.exchange.load_markets)
                found = instruments_from_markets(
                    markets, self.symbols, int(getattr(self.exchange, "precisionMode", TICK_SIZE))
                )
                self._instruments = {s: self.profile.refine(i) for s, i in found.items()}
        return self._instruments

    async def last_prices(self) -> dict[str, tuple[Decimal, datetime]]:
        """The last traded price of each configured symbol and when it traded, from the
        venue's ticker (symbols whose ticker has no last price are left out)."""
        out: dict[str, tuple[Decimal, datetime]] = {}
        for symbol, market in self.symbols.items():
            ticker = await self._retrying(
                f"fetch ticker {market}", partial(self.exchange.fetch_ticker, market)
            )
            last, stamp = ticker.get("last"), ticker.get("timestamp")
            if last:
                when = datetime.fromtimestamp(stamp / 1000, UTC) if stamp else datetime.now(UTC)
                out[symbol] = (decimal(last), when)
        return out

    async def instrument(self, symbol: str) -> Instrument:
        """The instrument SIGMA trades as ``symbol``; ValueError when it is not configured."""
        if symbol not in self.symbols:
            raise ValueError(f"{self.name}: no exchange market configured for symbol {symbol!r}")
        return (await self.instruments())[symbol]

    # --- the Broker interface ---------------------------------------------------------------
    async def place(self, order: OrderEvent) -> BrokerReport:
        """Send the order unless the venue already holds its client id; a refusal before
        sending, or by the venue, is a REJECTED report with the reason."""
        coid = order.client_order_id
        inst = await self.instrument(order.symbol)
        plan = self.profile.plan(order, inst)
        if isinstance(plan, str):
            log.warning("%s: order %s refused before sending: %s", self.name, coid, plan)
            return BrokerReport(coid, OrderStatus.REJECTED, reason=plan)
        failures = 0
        while True:
            try:
                known = await self._find(coid, inst)
                if known is not None:
                    log.info("%s: order %s already at the venue", self.name, coid)
                    return await self._report(coid, known, inst)
                raw = await self._create(plan, coid, inst)
                return await self._report(coid, raw, inst)
            except TRANSIENT as exc:
                failures = await self._backoff("place " + coid, exc, failures)
            except ccxt.ExchangeError as exc:
                return await self._refused(coid, inst, exc)

    async def lookup(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """The venue's state of the order with this client id, with its fills; None when the
        venue has no such order."""
        inst = await self.instrument(symbol)
        return await self._retrying(
            "lookup " + client_order_id, partial(self._lookup, client_order_id, inst)
        )

    async def cancel(self, client_order_id: str, symbol: str) -> BrokerReport | None:
        """Cancel the order; its state afterwards (an order that finished first comes back
        finished), or None when the venue has no such order. Upbit cancels asynchronously:
        right after the request the order may still show as open."""
        inst = await self.instrument(symbol)

        async def cancel() -> None:
            try:
                await self.profile.cancel(self.exchange, client_order_id, inst)
            except ccxt.OrderNotFound:
                log.info("%s: order %s was not open to cancel", self.name, client_order_id)

        await self._retrying("cancel " + client_order_id, cancel)
        return await self.lookup(client_order_id, symbol)

    async def cancel_all(self, symbols: Iterable[str] | None = None) -> int:
        """Cancel every open order at the venue on ``symbols`` (every configured symbol by
        default), orders placed outside SIGMA included; how many were cancelled."""
        cancelled = 0
        for symbol in self.symbols if symbols is None else symbols:
            inst = await self.instrument(symbol)
            count = await self._retrying(
                "cancel all " + symbol, partial(self.profile.cancel_all, self.exchange, inst)
            )
            log.warning("%s: cancelled %d open orders on %s", self.name, count, symbol)
            cancelled += count
        return cancelled

    async def watch_updates(self) -> list[OrderUpdate]:
        """The next order changes the venue streams (see :class:`StreamingBroker`)."""
        orders = await self.profile.watch_orders(self.exchange)
        return [
            OrderUpdate(str(raw.get("clientOrderId") or ""), str(raw.get("id") or ""))
            for raw in orders
        ]

    # --- reconciliation (see sigma.execution.reconcile) ---------------------------------------
    async def fetch_balances(self) -> list[VenueAsset]:
        """The configured symbols' assets with their totals at the venue."""
        balance = await self._retrying("fetch balances", self.exchange.fetch_balance)
        return venue_assets(balance, await self.instruments())

    async def open_orders(self, symbols: Iterable[str] | None = None) -> list[VenueOrder]:
        """Every open order at the venue on ``symbols`` (every configured symbol by default),
        orders placed outside SIGMA included."""
        out = []
        for symbol in self.symbols if symbols is None else symbols:
            inst = await self.instrument(symbol)
            raws = await self._retrying(
                "open orders " + symbol,
                partial(self.exchange.fetch_open_orders, inst.venue_symbol),
            )
            out += [venue_order(inst, raw) for raw in raws]
        return out

    async def trades_since(self, symbol: str, since: datetime) -> list[VenueOrder]:
        """The orders on ``symbol`` that traded since ``since``, each with those trades."""
        inst = await self.instrument(symbol)
        since_ms = int(since.timestamp() * 1000)
        raws = await self._retrying(
            "trades " + symbol, partial(self.profile.traded_orders, self.exchange, inst, since_ms)
        )
        return [venue_order(inst, raw) for raw in raws]

    async def close(self) -> None:
        """Close the exchange session."""
        await self.exchange.close()

    # --- helpers ----------------------------------------------------------------------------
    async def _lookup(self, coid: str, inst: Instrument) -> BrokerReport | None:
        raw = await self._find(coid, inst)
        return None if raw is None else await self._report(coid, raw, inst)

    async def _find(self, coid: str, inst: Instrument) -> RawOrder | None:
        try:
            return await self.profile.find(self.exchange, coid, inst)
        except ccxt.OrderNotFound:
            return None

    async def _create(self, plan: OrderPlan, coid: str, inst: Instrument) -> RawOrder:
        params = {**plan.params, **self.profile.client_id_params(coid)}
        raw: RawOrder = await self.exchange.create_order(
            inst.venue_symbol, plan.type, plan.side, plan.amount, plan.price, params
        )
        return raw

    async def _report(self, coid: str, raw: RawOrder, inst: Instrument) -> BrokerReport:
        if not raw.get("id"):
            # ccxt parses any 2xx body (cut short, empty, a proxy's page, JSON of another
            # shape) into an order of Nones. Taken as the answer, it booked an order the venue
            # may never have seen as open, acked its message and lost it. Whether the venue
            # took it is unknown, as after a timeout: transient, so the id is looked up
            # before the order is sent again.
            body = clip(repr(raw.get("info")), 200)
            raise ccxt.BadResponse(
                f"{self.name}: the answer about order {coid} is not an order (no order id): {body}"
            )
        if not raw.get("trades") and decimal(raw.get("filled")) > 0:
            raw = await self.profile.with_trades(self.exchange, raw, inst)
        return to_report(coid, raw, fill_prefix=f"{inst.venue_id}-")

    async def _refused(self, coid: str, inst: Instrument, exc: Exception) -> BrokerReport:
        """The report for an order the venue answered with an error."""
        if not refused(exc):
            # Unsorted, or a duplicate client id: the venue may hold the order after all.
            known = await self._retrying("lookup " + coid, partial(self._lookup, coid, inst))
            if known is not None:
                return known
        reason = venue_message(exc)
        log.warning("%s: order %s rejected: %s", self.name, coid, reason)
        return BrokerReport(coid, OrderStatus.REJECTED, reason=reason)

    async def _backoff(self, what: str, exc: Exception, failures: int) -> int:
        """Wait before the next try after a transient error; re-raise when the tries are used
        up or the venue asks for a longer pause than the policy allows."""
        failures += 1
        wait = retry_after(exc, self.exchange)
        if failures >= self.retry.attempts or (wait or 0) > self.retry.max_retry_after:
            log.error("%s: %s failed %d times: %r", self.name, what, failures, exc)
            raise exc
        delay = self.retry.delay(failures, wait)
        log.warning("%s: %s: %r; trying again in %.2fs", self.name, what, exc, delay)
        await self._sleep(delay)
        return failures

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                return await call()
            except TRANSIENT as exc:
                failures = await self._backoff(what, exc, failures)
