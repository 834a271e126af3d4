"""The operator's end of the control channel, shared by the API and the CLI: write the durable
state and its audit row in one transaction, then tell the running bot and wait for its answer.

    version = store_params(session, "sma_cross", "BTCUSDT", {"fast": 12}, "why", "api:alice")
    session.commit()
    ack = await deliver(pubsub, SetParams(..., version=version, pin=True))

A manual parameter change pins the pair: the regime loop leaves it alone until someone allows
regime tuning again (`store_pin(..., pinned=False)`). `deliver` returns None when no bot
answered in time: the durable commands still apply (the bot reads the stored state at start,
after a reconnection and every few seconds), the orders do not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from sigma.bootstrap import make_pubsub
from sigma.bus.base import CHANNEL_BOT_CONTROL, CHANNEL_BOT_CONTROL_ACK, PubSub
from sigma.config import Settings
from sigma.runtime.commands import BotCommand, CommandAck
from sigma.store.handles import Session
from sigma.store.params import set_params
from sigma.store.strategy_control import ControlState, audit, set_enabled, set_pinned

__all__ = [
    "ACK_TIMEOUT",
    "deliver",
    "describe",
    "store_enabled",
    "store_params",
    "store_pin",
    "tell_bot",
]

log = logging.getLogger(__name__)

ACK_TIMEOUT = 2.0
"""Seconds to wait for the bot's answer (it applies a command within a second)."""


def store_params(
    session: Session,
    strategy: str,
    symbol: str,
    params: Mapping[str, Any],
    reason: str,
    author: str,
    *,
    source: str,
) -> int:
    """Make `params` the active set, written by `author`, and pin them against the regime
    loop (the caller commits); the new version."""
    version = set_params(session, strategy, symbol, params, reason, author)
    set_pinned(
        session,
        strategy,
        symbol,
        True,
        reason=f"manual change v{version}" + (f": {reason}" if reason else ""),
        by=author,
    )
    audit(
        session,
        "control_set_params",
        source=source,
        strategy=strategy,
        symbol=symbol,
        by=author,
        reason=reason,
        version=version,
        params=dict(params),
    )
    return version


def store_pin(
    session: Session,
    strategy: str,
    symbol: str,
    pinned: bool,
    reason: str,
    author: str,
    *,
    source: str,
) -> ControlState:
    """Pin the parameters against the regime loop, or allow it to tune them again."""
    action = "control_pin" if pinned else "control_unpin"
    return _switch(session, set_pinned, action, strategy, symbol, pinned, reason, author, source)


def store_enabled(
    session: Session,
    strategy: str,
    symbol: str,
    enabled: bool,
    reason: str,
    author: str,
    *,
    source: str,
) -> ControlState:
    """Start or stop the strategy on the symbol."""
    action = "control_start" if enabled else "control_stop"
    return _switch(session, set_enabled, action, strategy, symbol, enabled, reason, author, source)


def _switch(
    session: Session,
    setter: Callable[..., ControlState],
    action: str,
    strategy: str,
    symbol: str,
    on: bool,
    reason: str,
    author: str,
    source: str,
) -> ControlState:
    """Store one of a pair's switches with `setter` and audit it as `action`."""
    state = setter(session, strategy, symbol, on, reason=reason, by=author)
    audit(
        session,
        action,
        source=source,
        strategy=strategy,
        symbol=symbol,
        by=author,
        reason=reason,
    )
    return state


async def deliver(
    pubsub: PubSub, command: BotCommand, timeout: float | None = None
) -> CommandAck | None:
    """Publish `command` on `bot_control` and return the bot's answer, or None when none
    came within `timeout` seconds (default `ACK_TIMEOUT`; no bot listens, or the bus is
    unreachable)."""
    try:
        answers = await pubsub.subscribe(CHANNEL_BOT_CONTROL_ACK)
    except Exception:
        log.warning("bus unreachable: command %s not sent", command.command_id, exc_info=True)
        return None
    try:
        await pubsub.publish(CHANNEL_BOT_CONTROL, command.to_bytes())
        async with asyncio.timeout(ACK_TIMEOUT if timeout is None else timeout):
            async for raw in answers:
                try:
                    ack = CommandAck.model_validate_json(raw)
                except ValidationError:
                    continue
                if ack.command_id == command.command_id:
                    return ack
    except TimeoutError:
        return None
    except Exception:
        log.warning("bus unreachable: command %s not sent", command.command_id, exc_info=True)
        return None
    finally:
        await answers.close()
    return None


def tell_bot(settings: Settings, command: BotCommand) -> CommandAck | None:
    """`deliver` from a process without an event loop (the CLI), over the configured Redis;
    None without one (an in-process bus reaches no other process: the bot reads the stored
    state within seconds instead)."""
    if settings.bus.redis_url is None:
        return None
    url: str = settings.bus.redis_url

    async def send() -> CommandAck | None:
        pubsub = make_pubsub(url, settings.bus.bus_prefix)
        try:
            return await deliver(pubsub, command)
        finally:
            await pubsub.close()

    return asyncio.run(send())


def describe(ack: CommandAck | None) -> str:
    """One line on what the running bot did with a stored command."""
    if ack is None:
        return "no running bot answered: it applies the change when it next reads the stored state"
    return f"bot: {ack.detail}" if ack.ok else f"bot refused: {ack.detail}"
