"""The live bot's protective orders survive a restart: kept in the store as they change
(written behind), armed again at start, so the first tick after the restart triggers exactly
what an uninterrupted bot triggers; protection with nothing left to protect is dropped."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sigma.domain import Fill, OrderStatus, OrderType, Side, Tick
from sigma.engine.engine import EngineConfig
from sigma.engine.live import DispatchEngine
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from sigma.runtime.protection import ProtectionKeeper, protection_doc, restore_protection
from sigma.runtime.restore import restore_bot
from sigma.store.bars import upsert_bars
from sigma.store.db import init_db, session_factory
from sigma.store.models import OrderRecord, PositionRecord, ProtectiveStateRecord
from sigma.store.protection import ProtectionStore
from sigma.strategies.base import Strategy
from tests.runtime.bot_helpers import Sent
from tests.scripted import FromBarZero

SYMBOL = "ACME"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
D1 = Decimal(1)


class Trailing(FromBarZero):
    """Buys 5 on its first bar with a trailing stop 3 below the best price and a
    take-profit at 110 (one cancels the other)."""

    name = "trailing"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(5, trailing=3, tp=110)


class Waiting(FromBarZero):
    """Bids 5 at 90 for 4 bars on its first bar, with a stop-loss at 85."""

    name = "waiting"

    def on_bar(self) -> None:
        if self.bar_index == 0:
            self.buy(5, limit=90, bars=4, sl=85)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = init_db(db_url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


class Run:
    """One bot process: its bot, the orders it sent and its protection store."""

    def __init__(self, strategy: Strategy, sessions: sessionmaker[Session]) -> None:
        self.sent = Sent()
        self.store = ProtectionStore(sessions, "paper")
        self.bot = TradingBot(
            [(strategy, SYMBOL)],
            timeframe=MINUTE,
            config=EngineConfig(initial_cash=Decimal(10_000)),
            risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
            executor=self.sent,
            decode=lambda raw: None,
            protection=ProtectionKeeper(self.store.save),
        )
        self.engine: DispatchEngine = self.bot.engines[(strategy.name, SYMBOL)]

    async def tick(self, seconds: int, price: str) -> None:
        await self.bot.on_tick(Tick(SYMBOL, START + timedelta(seconds=seconds), Decimal(price), D1))
        await self.bot.drain()

    def fill_inflight(self) -> None:
        """The worker fills every market order out at its projected price."""
        for fill in list(self.engine.inflight.values()):
            self.engine.on_fill(fill)
            self.bot._keep_protection([self.engine])

    def kept(self) -> dict[tuple[str, str], dict[str, object]]:
        """What the store holds once the queued writes are done."""
        with self.store.sessions() as session:
            return self.store._writer.after_writes(lambda: load(session))


def load(session: Session) -> dict[tuple[str, str], dict[str, object]]:
    rows = session.scalars(select(ProtectiveStateRecord))
    return {(r.strategy, r.symbol): r.state for r in rows}


def book(sessions: sessionmaker[Session], strategy: str, qty: int, *, bars: int) -> None:
    """What the worker and the recorder stored: the position and the closed bars."""
    index = pd.DatetimeIndex([START + i * MINUTE for i in range(bars)])
    frame = pd.DataFrame(
        {"open": 100.0, "high": 104.0, "low": 100.0, "close": 104.0, "volume": 1.0}, index=index
    )
    with sessions.begin() as s:
        upsert_bars(s, SYMBOL, "1m", frame)
        if qty:
            s.add(
                PositionRecord(
                    symbol=SYMBOL, strategy=strategy, mode="paper", qty=Decimal(qty),
                    avg_price=Decimal(100),
                )
            )  # fmt: skip


def store_order(sessions: sessionmaker[Session], order_id: str, **row: object) -> None:
    with sessions.begin() as s:
        s.add(
            OrderRecord(
                client_order_id=order_id, mode="paper", symbol=SYMBOL, qty=Decimal(5),
                decided_at=START, **row,
            )
        )  # fmt: skip


def restart(strategy: Strategy, sessions: sessionmaker[Session]) -> Run:
    run = Run(strategy, sessions)
    restore_bot(run.bot, sessions, "paper", MINUTE)
    return run


async def armed_trailing(sessions: sessionmaker[Session]) -> Run:
    """A first run: the entry filled at 100, bar 1 traded up to 104 (the stop is at 101)."""
    run = Run(Trailing(), sessions)
    await run.tick(0, "100")
    await run.tick(60, "100")  # bar 0 closes: the entry goes
    run.fill_inflight()
    await run.tick(70, "104")
    await run.tick(120, "103")  # bar 1 closes: the stop trails 104 by 3
    (stop,) = [g for g in run.engine.book.armed if g.is_stop]
    assert stop.level == Decimal(101)
    return run


def sent_stops(run: Run) -> list[tuple[Side, Decimal | None, str, str, bool]]:
    return [
        (o.side, o.qty, o.reason, o.parent_id, o.reduce_only)
        for message in run.sent.messages
        for o in message
        if o.reason != "signal"
    ]


async def test_a_restarted_bot_triggers_on_its_first_tick_what_an_uninterrupted_one_does(
    sessions: sessionmaker[Session],
) -> None:
    first = await armed_trailing(sessions)
    doc = first.kept()[("trailing", SYMBOL)]
    assert [g["reason"] for g in doc["guards"]] == ["trailing_stop", "take_profit"]  # type: ignore[index]
    book(sessions, "trailing", 5, bars=2)

    second = restart(Trailing(), sessions)
    restored = {g.order.reason: g for g in second.engine.book.armed}
    kept = {g.order.reason: g for g in first.engine.book.armed}
    assert set(restored) == {"trailing_stop", "take_profit"}
    for reason, guard in kept.items():
        again = restored[reason]
        assert (again.order.client_order_id, again.level, again.extreme, again.order.qty) == (
            guard.order.client_order_id, guard.level, guard.extreme, guard.order.qty,
        )  # fmt: skip
        assert again.order.oco == guard.order.oco != ""
    # The same first tick, through the stop: both send the same reduce-only close, once.
    for run in (first, second):
        await run.tick(130, "100.9")
        await run.tick(135, "100")
    assert sent_stops(second) == sent_stops(first)[-1:] != []
    (close,) = sent_stops(second)
    assert close[:3] == (Side.SELL, Decimal(5), "trailing_stop")
    # Its fill closes the position and cancels the take-profit, which the store forgets.
    second.fill_inflight()
    assert second.engine.book.guards() == []
    take = next(o for o in second.engine.orders if o.reason == "take_profit")
    assert take.status is OrderStatus.CANCELLED
    assert second.kept() == {}
    for run in (first, second):
        run.store.close()


async def test_a_trailing_stop_that_moved_is_kept_at_its_new_level(
    sessions: sessionmaker[Session],
) -> None:
    run = await armed_trailing(sessions)
    await run.tick(130, "108")
    await run.tick(180, "107")  # bar 2 closes: 108 - 3
    doc = run.kept()[("trailing", SYMBOL)]
    stop = next(g for g in doc["guards"] if g["reason"] == "trailing_stop")  # type: ignore[union-attr]
    assert (Decimal(stop["stop_price"]), Decimal(stop["extreme"]), stop["armed"]) == (
        Decimal(105), Decimal(108), True,
    )  # fmt: skip
    assert doc["bar"] == (START + 2 * MINUTE).isoformat()
    run.store.close()


async def test_protection_of_a_position_flat_after_reconciliation_is_dropped(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    first = await armed_trailing(sessions)
    first.store.close()
    book(sessions, "trailing", 0, bars=2)  # the venue says flat: nothing was booked

    with caplog.at_level(logging.INFO, logger="sigma.runtime.protection"):
        second = restart(Trailing(), sessions)
    assert second.engine.book.guards() == []
    assert "trailing ACME: trailing_stop at 101.0 dropped" in caplog.text
    assert "dropped: no position left to protect" in caplog.text
    await second.tick(130, "90")
    assert second.sent.messages == []
    assert second.kept() == {}  # the first check wrote what was left: nothing
    second.store.close()


async def test_a_trigger_order_still_out_is_not_sent_again_after_a_restart(
    sessions: sessionmaker[Session],
) -> None:
    first = await armed_trailing(sessions)
    await first.tick(130, "100.5")  # the stop triggers: its close is out
    (close,) = [o for m in first.sent.messages for o in m if o.reason == "trailing_stop"]
    first.store.close()
    book(sessions, "trailing", 5, bars=2)
    store_order(sessions, close.client_order_id, side="sell", type="market", strategy="trailing")

    second = restart(Trailing(), sessions)
    (stop,) = [g for g in second.engine.book.armed if g.is_stop]
    assert stop.child == close.client_order_id
    await second.tick(135, "99")
    assert second.sent.messages == []  # already out: not sent twice
    fill = Fill(close.client_order_id, SYMBOL, Side.SELL, Decimal(5), Decimal(100), Decimal(0),
                START + 3 * MINUTE, "trailing")  # fmt: skip
    second.engine.on_fill(fill)
    assert second.engine.portfolio.qty(SYMBOL) == 0
    assert second.engine.book.guards() == []
    second.store.close()


async def test_a_trigger_order_that_ended_while_down_frees_its_stop(
    sessions: sessionmaker[Session],
) -> None:
    first = await armed_trailing(sessions)
    await first.tick(130, "100.5")  # the stop triggers; its order is refused while down
    first.store.close()
    book(sessions, "trailing", 5, bars=2)

    second = restart(Trailing(), sessions)
    (stop,) = [g for g in second.engine.book.armed if g.is_stop]
    assert stop.child == ""
    await second.tick(135, "100")
    assert [c[2] for c in sent_stops(second)] == ["trailing_stop"]
    second.store.close()


async def test_protection_waiting_for_its_entry_and_the_bars_left_are_restored(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    first = Run(Waiting(), sessions)
    await first.tick(0, "100")
    await first.tick(60, "100")  # bar 0 closes: the bid rests
    (bid,) = first.engine.resting.values()
    await first.tick(120, "100")  # bar 1 closes
    assert first.engine.bars_left(bid) == 3
    doc = first.kept()[("waiting", SYMBOL)]
    # Written when it was sent, counted from that bar: no write each bar.
    assert doc["bar"] == START.isoformat()
    assert doc["resting"] == {bid.client_order_id: {"bars_left": 4, "oco": ""}}
    first.store.close()
    book(sessions, "waiting", 0, bars=2)
    store_order(sessions, bid.client_order_id, side="buy", type="limit", limit_price=Decimal(90),
                strategy="waiting")  # fmt: skip

    second = restart(Waiting(), sessions)
    engine = second.engine
    (guard,) = engine.book.guards()
    assert (guard.armed, guard.order.parent_id, guard.order.stop_price) == (
        False, bid.client_order_id, Decimal(85),
    )  # fmt: skip
    assert engine.bars_left(engine.resting[bid.client_order_id]) == 3
    # The bid fills: its stop-loss is armed for what filled.
    fill = Fill(bid.client_order_id, SYMBOL, Side.BUY, Decimal(5), Decimal(90), Decimal(0),
                START + 2 * MINUTE, "waiting")  # fmt: skip
    engine.on_fill(fill)
    (armed,) = engine.book.armed
    assert (armed.order.qty, armed.level) == (Decimal(5), Decimal(85))
    second.store.close()

    # An entry no longer open (cancelled while no bot ran) takes its protection along.
    with sessions.begin() as s:
        s.execute(update(OrderRecord).values(status="cancelled"))
    third = Run(Waiting(), sessions)
    with caplog.at_level(logging.INFO, logger="sigma.runtime.protection"):
        restore_bot(third.bot, sessions, "paper", MINUTE)
    assert third.engine.book.guards() == []
    assert f"its entry {bid.client_order_id} is no longer open" in caplog.text
    third.store.close()

    # An entry that filled while no bot ran (the worker booked it) arms its protection.
    with sessions.begin() as s:
        s.execute(
            update(OrderRecord).values(
                status="filled", filled_qty=Decimal(5), avg_fill_price=Decimal(90)
            )
        )
        s.add(PositionRecord(symbol=SYMBOL, strategy="waiting", mode="paper", qty=Decimal(5),
                             avg_price=Decimal(90)))  # fmt: skip
    fourth = Run(Waiting(), sessions)
    restore_bot(fourth.bot, sessions, "paper", MINUTE)
    (armed,) = fourth.engine.book.armed
    assert (armed.order.qty, armed.level) == (Decimal(5), Decimal(85))
    await fourth.tick(200, "84")
    assert [c[:3] for c in sent_stops(fourth)] == [(Side.SELL, Decimal(5), "stop_loss")]
    fourth.store.close()


async def test_a_resting_order_in_an_oco_group_keeps_its_group(
    sessions: sessionmaker[Session],
) -> None:
    class Bracket(FromBarZero):
        name = "bracket"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(5, limit=90, oco="entry")
                self.buy(5, limit=80, oco="entry")
                self.buy(1, limit=70)  # neither expires nor belongs to a group: not kept

    first = Run(Bracket(), sessions)
    await first.tick(0, "100")
    await first.tick(60, "100")
    high, low, _plain = first.engine.resting.values()
    (doc,) = first.kept().values()
    assert set(doc["resting"]) == {high.client_order_id, low.client_order_id}  # type: ignore[arg-type]
    first.store.close()
    book(sessions, "bracket", 0, bars=1)
    for order in (high, low):
        store_order(sessions, order.client_order_id, side="buy", type="limit",
                    limit_price=order.limit_price, strategy="bracket")  # fmt: skip

    second = restart(Bracket(), sessions)
    engine = second.engine
    assert engine.resting[low.client_order_id].oco == "entry"
    fill = Fill(high.client_order_id, SYMBOL, Side.BUY, Decimal(5), Decimal(90), Decimal(0),
                START + MINUTE, "bracket")  # fmt: skip
    engine.on_fill(fill)
    assert [o.client_order_id for _, o in second.bot._cancels] == [low.client_order_id]
    assert engine.resting[low.client_order_id].type is OrderType.LIMIT
    second.store.close()


def test_a_document_kept_before_the_first_bar_counts_from_the_first_bar_restored(
    sessions: sessionmaker[Session],
) -> None:
    run = Run(Waiting(), sessions)
    restore_protection(run.engine, {"bar": None, "guards": [], "resting": {}})
    assert run.engine.book.guards() == []
    assert protection_doc(run.engine) is None
    run.store.close()
