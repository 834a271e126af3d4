"""BotControl on its own: what it answers to odd commands, its reads of the stored state after a
reconnection, a stop that holds back entries but not exits, and a database or bus that is
away."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bot_helpers import Sent, trade_minutes
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Order, Side
from sigma.engine.engine import EngineConfig
from sigma.ops.action_log import ActionLogger
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.runtime.commands import (
    CancelOrder,
    ClosePosition,
    CommandAck,
    ForceEntry,
    PinParams,
    Reenable,
    SetEnabled,
    SetParams,
)
from sigma.runtime.control import BotControl
from sigma.runtime.operator import deliver, describe, store_enabled, tell_bot
from sigma.store.db import init_db, session_factory, session_scope
from sigma.strategies.base import Strategy

SYMBOL = "ACME"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class Hold(Strategy):
    """Buys one unit on its first bar, then waits."""

    name = "hold"

    def init(self) -> None:
        self.bars = 0

    def on_bar(self) -> None:
        self.bars += 1
        if self.bars == 1:
            self.buy(qty=1)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return session_factory(init_db(f"sqlite:///{tmp_path / 'sigma.db'}"))


def make(sessions: sessionmaker[Session], sent: Sent | None = None) -> BotControl:
    bot = TradingBot(
        [(Hold(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent or Sent(),
        decode=lambda raw: None,
    )
    return BotControl(bot, sessions, ActionLogger(None))


def cmd(cls: Any, **fields: Any) -> bytes:
    data: bytes = cls(author="alice", strategy="hold", symbol=SYMBOL, **fields).to_bytes()
    return data


async def answer(control: BotControl, raw: bytes) -> CommandAck:
    ack = await control.handle(raw)
    assert ack is not None
    return ack


async def test_odd_commands_get_clear_answers(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    control = make(sessions)
    with caplog.at_level(logging.WARNING):
        assert await control.handle(b'{"kind": "launch"}') is None
    assert "malformed bot_control message" in caplog.text
    other = PinParams(author="a", strategy="hold", symbol="OTHER", pinned=True).to_bytes()
    assert await control.handle(other) is None  # another bot may trade it: it answers
    # Without the regime loop a pin is only recorded, and there is no verdict to lift.
    ack = await answer(control, cmd(PinParams, pinned=True))
    assert ack.ok and "regime loop is off" in ack.detail
    ack = await answer(control, cmd(Reenable))
    assert not ack.ok and "nothing to lift" in ack.detail
    ack = await answer(control, cmd(CancelOrder, client_order_id="not-resting-1"))
    assert not ack.ok and "does not rest" in ack.detail
    ack = await answer(control, cmd(ClosePosition))
    assert (ack.ok, ack.detail) == (False, "nothing to close: the position is flat")
    ack = await answer(control, cmd(SetParams, params={"bogus": 1}, version=3))
    assert not ack.ok and ack.detail.startswith("parameters v3 refused:")
    ack = await answer(control, cmd(SetParams, params={"bogus": 1}, version=3))
    assert ack.ok and ack.detail == "parameters v3 handled already"


async def test_a_failing_command_is_answered_and_the_channel_goes_on(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    control = make(sessions)

    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(control.bot, "place", broken)
    await trade_minutes(control.bot, SYMBOL, START, 2)
    ack = await answer(control, cmd(ForceEntry))
    assert not ack.ok and ack.detail == "failed: RuntimeError('boom')"


async def test_a_stop_holds_entries_back_but_not_exits(sessions: sessionmaker[Session]) -> None:
    sent = Sent()
    control = make(sessions, sent)
    bot = control.bot
    ack = await answer(control, cmd(SetEnabled, enabled=False, reason="checking"))
    assert ack.ok and bot.stopped[("hold", SYMBOL)] == "checking (alice)"
    await trade_minutes(bot, SYMBOL, START, 2)
    assert sent.orders == []  # the strategy's own entry waits
    ack = await answer(control, cmd(ForceEntry, qty=Decimal(2)))
    assert ack.ok and ack.detail == "long entry: buy 2 at market sent", ack
    engine = bot.engines[("hold", SYMBOL)]
    for fill in list(engine.inflight.values()):
        engine.on_fill(fill)
    ack = await answer(control, cmd(ClosePosition))
    assert ack.ok and ack.detail == "close of 2: sell 2 at market sent"
    assert [(o.side, o.qty, o.tag) for o in sent.orders] == [
        (Side.BUY, 2, "operator_entry"),
        (Side.SELL, 2, "operator_close"),
    ]
    ack = await answer(control, cmd(SetEnabled, enabled=True))
    assert ack.ok and bot.stopped == {}


async def test_an_order_the_risk_check_or_the_queue_refuses_is_reported(
    sessions: sessionmaker[Session],
) -> None:
    sent = Sent(down=True)
    control = make(sessions, sent)
    await trade_minutes(control.bot, SYMBOL, START, 2)
    ack = await answer(control, cmd(ForceEntry, qty=Decimal(1)))
    assert not ack.ok and "not sent: broker unreachable" in ack.detail
    control.bot.risk = RiskManager(RiskLimits(max_order_notional=Decimal(1)))
    ack = await answer(control, cmd(ForceEntry, qty=Decimal(1)))
    assert not ack.ok and ack.detail.startswith("long entry: refused by risk:")
    ack = await answer(control, cmd(ForceEntry, qty=Decimal("0.0000000001")))
    assert not ack.ok and "sized to zero" in ack.detail


class Reconnecting:
    """A subscription that reconnects when told to and carries no messages."""

    def __init__(self) -> None:
        self.reconnects = 0
        self.closed = asyncio.Event()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await self.closed.wait()
        raise StopAsyncIteration

    async def close(self) -> None:
        self.closed.set()


class OneSubscription:
    """A bus handing out one subscription; publishing fails."""

    def __init__(self, subscription: Reconnecting) -> None:
        self.subscription = subscription

    async def subscribe(self, channel: str) -> Reconnecting:
        return self.subscription

    async def publish(self, channel: str, message: bytes) -> None:
        raise ConnectionError("bus down")


async def test_the_stored_state_is_read_again_after_a_reconnection(
    sessions: sessionmaker[Session],
) -> None:
    control = make(sessions)
    control.resync_seconds = 3600.0
    subscription = Reconnecting()
    stop = asyncio.Event()
    task = asyncio.create_task(control.run(OneSubscription(subscription), stop))  # type: ignore[arg-type]
    await wait(lambda: control.resyncs == 1)
    with session_scope(sessions) as session:
        store_enabled(session, "hold", SYMBOL, False, "missed", "bob", source="test")
    subscription.reconnects += 1
    await wait(lambda: control.resyncs == 2)
    assert control.bot.stopped == {("hold", SYMBOL): "missed (bob)"}
    stop.set()
    await task
    assert subscription.closed.is_set()


async def test_a_database_away_is_logged_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def down() -> Session:
        raise ConnectionError("database down")

    control = make(down)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        await control.resync()
    assert control.resyncs == 0 and "could not read the stored controls" in caplog.text


async def test_an_answer_the_bus_cannot_carry_is_logged(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    control = make(sessions)
    subscription = Reconnecting()
    bus = OneSubscription(subscription)
    await control.handle(cmd(PinParams, pinned=True))  # warm: nothing to assert

    async def feed() -> AsyncIterator[bytes]:
        yield cmd(PinParams, pinned=False)

    with caplog.at_level(logging.WARNING):
        await control._pump(bus, feed())  # type: ignore[arg-type]
    assert "could not answer command" in caplog.text
    # The operator's side: no answer over a bus that is down, and none without Redis.
    command = SetEnabled(author="a", strategy="hold", symbol=SYMBOL, enabled=True)
    assert await deliver(bus, command, timeout=0.05) is None  # type: ignore[arg-type]
    assert describe(None).startswith("no running bot answered")
    assert describe(CommandAck(command_id="x" * 8, ok=False, detail="no")) == "bot refused: no"


def test_the_cli_needs_redis_to_reach_a_bot() -> None:
    from sigma.config import load_settings

    command = SetEnabled(author="a", strategy="hold", symbol=SYMBOL, enabled=True)
    assert tell_bot(load_settings(redis_url=None), command) is None


async def wait(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_an_order_without_a_price_waits(sessions: sessionmaker[Session]) -> None:
    control = make(sessions)
    engine = control.bot.engines[("hold", SYMBOL)]
    order = Order(SYMBOL, Side.BUY, qty=Decimal(1), strategy="hold")
    assert asyncio.run(control.bot.place(engine, order)).startswith("no bar of ACME yet")


async def test_with_the_regime_loop_versions_are_applied_once(
    sessions: sessionmaker[Session],
) -> None:
    from sigma.regime.adjuster import ADJUSTER
    from sigma.regime.backtest import build_hook

    hook = build_hook({})
    bot = TradingBot(
        [(Hold(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=Sent(),
        decode=lambda raw: None,
        adaptive=hook,
    )
    control = BotControl(bot, sessions, ActionLogger(None))
    assert await control.apply_version("hold", SYMBOL, {}, 1, author="bob") == (
        True,
        "parameters v1 in force",
    )
    assert await control.apply_version("hold", SYMBOL, {"x": 1}, 2, author=ADJUSTER) == (
        True,
        "parameters v2 are the regime loop's, in force",
    )
    loop = asyncio.get_running_loop()
    assert control.scheduled(loop, "hold", SYMBOL, None, 3) is None
    assert control.scheduled(loop, "hold", SYMBOL, {}, 2) is None
    ack = await answer(control, cmd(Reenable))
    assert (ack.ok, ack.detail) == (False, "neither throttled nor disabled by the regime loop")
    ack = await answer(control, cmd(PinParams, pinned=True))
    assert ack.detail == "regime tuning paused"
    assert hook.loop.adjuster.is_pinned("hold", SYMBOL)


class Answering:
    """A bus on which a 'bot' answers every command with noise, a stranger's answer, then
    the right one."""

    def __init__(self) -> None:
        self.inner = InMemoryPubSub()

    async def subscribe(self, channel: str) -> Any:
        return await self.inner.subscribe(channel)

    async def publish(self, channel: str, message: bytes) -> None:
        command_id = SetEnabled.model_validate_json(message).command_id
        for raw in (
            b"not json",
            CommandAck(command_id="someone-else", ok=True, detail="x").to_bytes(),
            CommandAck(command_id=command_id, ok=True, detail="started").to_bytes(),
        ):
            await self.inner.publish("bot_control_ack", raw)


class Unreachable:
    async def subscribe(self, channel: str) -> Any:
        raise ConnectionError("no bus")


async def test_the_operator_waits_for_its_own_answer() -> None:
    command = SetEnabled(author="a", strategy="hold", symbol=SYMBOL, enabled=True)
    ack = await deliver(Answering(), command, timeout=5)  # type: ignore[arg-type]
    assert ack is not None and ack.detail == "started"
    assert await deliver(Unreachable(), command, timeout=5) is None  # type: ignore[arg-type]


@pytest.mark.integration
def test_the_cli_reaches_no_bot_over_redis(
    redis_url: str, bus_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigma.config import load_settings
    from sigma.runtime import operator

    monkeypatch.setattr(operator, "ACK_TIMEOUT", 0.1)
    command = SetEnabled(author="a", strategy="hold", symbol=SYMBOL, enabled=True)
    settings = load_settings(redis_url=redis_url, bus_prefix=bus_prefix)
    assert tell_bot(settings, command) is None


async def test_stored_parameters_that_fail_to_apply_do_not_end_the_channel(
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from sigma.store.params import set_params

    control = make(sessions)
    with session_scope(sessions) as session:
        set_params(session, "hold", SYMBOL, {}, "", "bob")

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(control, "apply_version", broken)
    with caplog.at_level(logging.ERROR):
        await control.resync()
    assert control.resyncs == 1 and "applying stored parameters v1 of hold ACME" in caplog.text
