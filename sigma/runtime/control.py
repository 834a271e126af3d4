"""BotControl: the running bot's end of the control channel.

Commands arrive on `bot_control` (see `sigma.runtime.commands`) and are applied on the bot's
event loop, each answered on `bot_control_ack` and recorded in the action log:

* new parameters (the regime loop, when on, walk-forwards them first and adopts them as its
  baseline; a refused version is replaced in `strategy_param` by the set in force);
* the pin that keeps the regime loop off a manual change, and its lifting;
* start and stop (a stopped strategy opens no new position; see `TradingBot.stopped`);
* lifting the regime loop's throttle or disable;
* an operator's market orders - a long entry, closing the position - and cancelling a resting
  order, sent through the risk check and the executor like the strategy's own.

Pub/Sub is at most once, so the durable state is read as well: at start, whenever the
subscription reconnected, and every `resync_seconds` (the scheduler's ConfigSync hands in
versions too). Each parameter version is applied once, whichever way it came first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from pydantic import ValidationError

from sigma.bus.base import CHANNEL_BOT_CONTROL, CHANNEL_BOT_CONTROL_ACK, PubSub, Subscription
from sigma.domain import Order, Side
from sigma.engine.live import DispatchEngine
from sigma.ops.action_log import ActionLogger
from sigma.regime.policy import TESTER, ParamChangePolicy
from sigma.runtime.bot import TradingBot
from sigma.runtime.commands import (
    COMMANDS,
    BotCommand,
    CancelOrder,
    ClosePosition,
    CommandAck,
    ForceEntry,
    PinParams,
    Reenable,
    SetEnabled,
    SetParams,
)
from sigma.runtime.tasks import WATCH_SECONDS, reconnects, run_until
from sigma.store.db import session_scope
from sigma.store.handles import SessionFactory
from sigma.store.jsonsafe import to_jsonable
from sigma.store.params import VersionConflict, active_version, set_params, version_author
from sigma.store.strategy_control import ControlState, get_control

__all__ = ["BotControl"]

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the database holds for one (strategy, symbol) the bot trades."""

    control: ControlState
    params: dict[str, Any] | None
    version: int
    author: str | None


class BotControl:
    """Applies operator commands and the stored controls to `bot` (see the module
    docstring)."""

    def __init__(
        self,
        bot: TradingBot,
        sessions: SessionFactory,
        actions: ActionLogger,
        *,
        resync_seconds: float = 5.0,
    ) -> None:
        self.bot = bot
        self.sessions = sessions
        self.actions = actions
        self.hook = bot.adaptive
        self.policy = ParamChangePolicy(self.hook)
        self.resync_seconds = resync_seconds
        self.subscribed = asyncio.Event()
        """Set once commands published from then on reach this bot."""
        self.applied: dict[Key, int] = {}
        """The newest parameter version handled per (strategy, symbol)."""
        self.resyncs = 0
        """Reads of the stored state so far (for tests and logs)."""
        self._controls: dict[Key, ControlState] = {}
        self._locks: dict[Key, asyncio.Lock] = {}

    # --- the channel ------------------------------------------------------------------------
    async def run(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        """Apply the stored state, then every command, until `stop`."""
        subscription = await pubsub.subscribe(CHANNEL_BOT_CONTROL)
        self.subscribed.set()
        try:
            await run_until(self._serve(pubsub, subscription), stop)
        finally:
            await subscription.close()

    async def _serve(self, pubsub: PubSub, subscription: Subscription) -> None:
        # Counted before the first read: a reconnection during it is read after it again.
        seen = reconnects(subscription)
        await self.resync()
        await asyncio.gather(self._pump(pubsub, subscription), self._watch(subscription, seen))

    async def _pump(self, pubsub: PubSub, subscription: Subscription) -> None:
        async for raw in subscription:
            ack = await self.handle(raw)
            if ack is None:
                continue
            try:
                await pubsub.publish(CHANNEL_BOT_CONTROL_ACK, ack.to_bytes())
            except Exception:  # the answer is a courtesy: the command was applied
                log.warning("could not answer command %s", ack.command_id, exc_info=True)

    async def _watch(self, subscription: Subscription, seen: int) -> None:
        """Read the stored state again after a reconnection (messages may have been lost
        meanwhile; `seen` reconnections were read after already) and every
        `resync_seconds`."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(min(WATCH_SECONDS, self.resync_seconds))
            now = reconnects(subscription)
            if now != seen or loop.time() - last >= self.resync_seconds:
                if now != seen:
                    log.info("control channel reconnected: reading the stored controls")
                seen, last = now, loop.time()
                await self.resync()

    async def handle(self, raw: bytes) -> CommandAck | None:
        """Apply one `bot_control` message; its answer (None: not a command, logged, or for a
        pair this bot does not trade)."""
        try:
            command = COMMANDS.validate_json(raw)
        except ValidationError as exc:
            log.warning("ignored a malformed bot_control message: %s", exc)
            return None
        if (command.strategy, command.symbol) not in self.bot.engines:
            # Another bot may trade it: only the one that does answers.
            log.info(
                "command %s is for %s on %s, not traded here",
                command.command_id,
                command.strategy,
                command.symbol,
            )
            return None
        try:
            ok, detail, order_id = await self._apply(command)
        except Exception as exc:  # one bad command must not end the control channel
            log.exception("command %s failed", command.command_id)
            ok, detail, order_id = False, f"failed: {exc!r}", None
        self.actions.log(
            f"control_{command.kind}",
            strategy=command.strategy,
            symbol=command.symbol,
            level=logging.INFO if ok else logging.WARNING,
            by=command.author,
            reason=command.reason,
            command_id=command.command_id,
            ok=ok,
            detail=detail,
            client_order_id=order_id,
        )
        return CommandAck(
            command_id=command.command_id, ok=ok, detail=detail, client_order_id=order_id
        )

    async def _apply(self, command: BotCommand) -> tuple[bool, str, str | None]:
        """(done, what happened or why not, the order sent)."""
        key = (command.strategy, command.symbol)
        engine = self.bot.engines[key]
        if isinstance(command, SetParams):
            if command.pin:
                self._pin(key, True)
            ok, detail = await self.apply_version(
                *key, command.params, command.version, author=command.author
            )
            return ok, detail, None
        if isinstance(command, PinParams):
            return True, self._pin(key, command.pinned), None
        if isinstance(command, SetEnabled):
            return True, self._enable(key, command.enabled, command.reason, command.author), None
        if isinstance(command, Reenable):
            ok, detail = self._reenable(key, command.author, command.reason)
            return ok, detail, None
        if isinstance(command, ForceEntry):
            return await self._force_entry(engine, command.qty)
        if isinstance(command, ClosePosition):
            return await self._close(engine)
        return await self._cancel(engine, command)

    # --- the stored state -------------------------------------------------------------------
    async def resync(self) -> None:
        """Apply what the database says for every (strategy, symbol) the bot trades: the
        controls and a parameter version newer than the one in force."""
        try:
            stored = await asyncio.to_thread(self._read, list(self.bot.engines))
        except Exception:
            log.warning("could not read the stored controls; trying again later", exc_info=True)
            return
        self.resyncs += 1
        for key, state in stored.items():
            control = state.control
            if self._controls.get(key) != control:
                self._controls[key] = control
                self._pin(key, control.pinned)
                self._enable(key, control.enabled, control.reason, control.changed_by)
            if state.params is None:
                continue
            try:
                await self.apply_version(*key, state.params, state.version, author=state.author)
            except Exception:  # the next read tries a newer version; trading goes on
                log.exception("applying stored parameters v%d of %s %s failed", state.version, *key)

    def _read(self, keys: list[Key]) -> dict[Key, _Stored]:
        out = {}
        with self.sessions() as session:
            for strategy, symbol in keys:
                active = active_version(session, strategy, symbol)
                control = get_control(session, strategy, symbol)
                if active is None:
                    out[(strategy, symbol)] = _Stored(control, None, 0, None)
                    continue
                params, version = active
                author = version_author(session, strategy, symbol, version)
                out[(strategy, symbol)] = _Stored(control, params, version, author)
        return out

    # --- parameters -------------------------------------------------------------------------
    def scheduled(
        self,
        loop: asyncio.AbstractEventLoop,
        strategy: str,
        symbol: str,
        params: dict[str, Any] | None,
        version: int,
    ) -> concurrent.futures.Future[tuple[bool, str]] | None:
        """Hand a version the scheduler's ConfigSync found to the bot on `loop`; called in a
        scheduler thread, so the query for its author never holds up the price loop. The
        future of the change (None: nothing to change)."""
        if params is None or version <= self.applied.get((strategy, symbol), 0):
            return None
        with self.sessions() as session:
            author = version_author(session, strategy, symbol, version)
        if not self.policy.is_change(author):
            return None
        future = asyncio.run_coroutine_threadsafe(
            self.apply_version(strategy, symbol, params, version, author=author), loop
        )
        future.add_done_callback(partial(_log_failure, f"applying parameters v{version}"))
        return future

    async def apply_version(
        self,
        strategy: str,
        symbol: str,
        params: dict[str, Any],
        version: int,
        *,
        author: str | None,
    ) -> tuple[bool, str]:
        """Make `version` of the parameters of `strategy` on `symbol` the set in force, once
        (a version already handled, or the loop's own, changes nothing): (in force, what
        happened)."""
        key = (strategy, symbol)
        async with self._locks.setdefault(key, asyncio.Lock()):
            if version <= self.applied.get(key, 0):
                return True, f"parameters v{version} handled already"
            self.applied[key] = version
            engine = self.bot.engines[key]
            if to_jsonable(dict(engine.strategy.params)) == to_jsonable(params):
                return True, f"parameters v{version} in force"
            if not self.policy.is_change(author):
                return True, f"parameters v{version} are the regime loop's, in force"
            refused = await self._change(engine, params, version, author or "unknown")
        if refused:
            return False, f"parameters v{version} {refused}"
        return True, f"parameters v{version} in force"

    async def _change(
        self, engine: DispatchEngine, params: dict[str, Any], version: int, author: str
    ) -> str:
        """Use `params` from the next bar; "" when done, else why not."""
        strategy, symbol = engine.strategy.name, engine.symbol
        old = dict(engine.strategy.params)
        try:
            if refused := await self.policy.apply(engine.strategy, symbol, params, by=author):
                log.warning("parameters v%d for %s %s: %s", version, strategy, symbol, refused)
                baseline = self.policy.baseline(strategy, symbol)
                await asyncio.to_thread(
                    self._put_back, strategy, symbol, version, f"v{version} {refused}", baseline
                )
                return refused
        except ValueError as exc:
            log.warning("parameters v%d for %s %s refused: %s", version, strategy, symbol, exc)
            return f"refused: {exc}"
        self.actions.param_change(
            strategy,
            old,
            dict(engine.strategy.params),
            reason=f"strategy_param v{version} on {symbol}",
            changed_by=author,
        )
        return ""

    def _put_back(
        self, strategy: str, symbol: str, version: int, reason: str, baseline: dict[str, Any]
    ) -> None:
        """Store the baseline in force again over a refused version, so `strategy_param`
        (what the API, the dashboard and other processes read) says what really runs. A
        version that was itself replaced meanwhile is left to the newer one."""
        try:
            with session_scope(self.sessions) as session:
                set_params(
                    session, strategy, symbol, baseline, reason, TESTER, expected_version=version
                )
        except VersionConflict:
            log.info("parameters v%d for %s %s were replaced meanwhile", version, strategy, symbol)

    # --- switches ---------------------------------------------------------------------------
    def _pin(self, key: Key, pinned: bool) -> str:
        if self.hook is None:
            return "recorded; the regime loop is off in this bot"
        adjuster = self.hook.loop.adjuster
        if adjuster.is_pinned(*key) != pinned:
            adjuster.pin(*key, pinned)
            log.info("%s %s: regime tuning %s", *key, "paused" if pinned else "allowed")
        return "regime tuning paused" if pinned else "regime tuning allowed again"

    def _enable(self, key: Key, enabled: bool, reason: str, by: str) -> str:
        if enabled:
            if self.bot.stopped.pop(key, None) is not None:
                log.info("%s %s started by %s", *key, by)
            return "started: opens positions again"
        why = f"{reason or 'no reason given'} ({by})"
        if self.bot.stopped.get(key) != why:
            self.bot.stopped[key] = why
            log.warning("%s %s stopped: %s", *key, why)
        return "stopped: opens no new position; exits still go"

    def _reenable(self, key: Key, by: str, reason: str) -> tuple[bool, str]:
        hook = self.hook
        if hook is None:
            return False, "the regime loop is off in this bot: nothing to lift"
        lifted = hook.enable(*key, by=by, reason=reason or "no reason given", ts=datetime.now(UTC))
        if hook.state is not None:
            # The stored request (the backstop for a missed message) has been served.
            hook.state.drop_enable_request(*key)
        if not lifted:
            return False, "neither throttled nor disabled by the regime loop"
        return True, "the regime loop's verdict is lifted"

    # --- orders -----------------------------------------------------------------------------
    async def _force_entry(
        self, engine: DispatchEngine, qty: Decimal | None
    ) -> tuple[bool, str, str | None]:
        order = Order(
            symbol=engine.symbol,
            side=Side.BUY,
            qty=qty,
            equity_fraction=None if qty is not None else Decimal(1),
            strategy=engine.strategy.name,
            tag="operator_entry",
        )
        return await self._send(engine, order, "long entry")

    async def _close(self, engine: DispatchEngine) -> tuple[bool, str, str | None]:
        held = engine.position_qty(engine.symbol)
        engine.cancel_pending(engine.symbol)
        if held == 0:
            await self.bot.place(engine, None)
            return False, "nothing to close: the position is flat", None
        order = Order(
            symbol=engine.symbol,
            side=Side.SELL if held > 0 else Side.BUY,
            reduce_only=True,
            strategy=engine.strategy.name,
            tag="operator_close",
            reason="operator",
        )
        return await self._send(engine, order, f"close of {held}")

    async def _send(self, engine: DispatchEngine, order: Order, what: str) -> tuple[bool, str, str]:
        problem = await self.bot.place(engine, order)
        if problem:
            return False, f"{what}: {problem}", order.client_order_id
        return True, f"{what}: {order.side.value} {order.qty} at market sent", order.client_order_id

    async def _cancel(self, engine: DispatchEngine, command: CancelOrder) -> tuple[bool, str, str]:
        coid = command.client_order_id
        if not engine.cancel(coid):
            return (
                False,
                f"order {coid} does not rest with {command.strategy} on {command.symbol} "
                "(a market order cannot be recalled)",
                coid,
            )
        await self.bot.place(engine, None)
        return True, f"cancel of {coid} sent", coid


def _log_failure(what: str, future: concurrent.futures.Future[Any]) -> None:
    """Log the error of a change run through `run_coroutine_threadsafe`, which no one awaits."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.error("%s failed", what, exc_info=exc)
