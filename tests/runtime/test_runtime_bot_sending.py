"""The bot sends the orders decided on one bar as one message, and a message that cannot be
sent rejects each of its orders in the engine that made it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sigma.engine.engine import EngineConfig
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from tests.runtime.bot_helpers import Sent, trade_minutes
from tests.scripted import FromBarZero

SYMBOL = "ACME"
T0 = datetime(2026, 3, 2, tzinfo=UTC)


class Reverser(FromBarZero):
    """Long, then short, then long: from the second bar on, each bar closes and opens."""

    name = "reverser"

    def on_bar(self) -> None:
        if len(self.data) % 2:
            self.go_long()
        else:
            self.go_short()


async def run_bars(sent: Sent, bars: int) -> tuple[TradingBot, list[str]]:
    decisions: list[str] = []
    bot = TradingBot(
        [(Reverser(), SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
        on_decision=lambda kind, info: decisions.append(kind),
    )
    await trade_minutes(bot, SYMBOL, T0, bars)
    return bot, decisions


async def test_the_orders_of_one_bar_go_out_as_one_message() -> None:
    sent = Sent()
    bot, decisions = await run_bars(sent, bars=3)
    assert [len(orders) for orders in sent.messages] == [1, 2, 2]  # open; close + open twice
    assert [o.side.value for o in sent.messages[1]] == ["sell", "sell"]
    assert bot.counters.orders_sent == 5 and decisions.count("order_sent") == 5


async def test_a_message_that_cannot_be_sent_rejects_each_of_its_orders() -> None:
    bot, decisions = await run_bars(Sent(down=True), bars=3)
    assert bot.counters.orders_sent == 0
    assert bot.counters.orders_rejected == decisions.count("order_failed") > 0
    (engine,) = bot.engines.values()
    assert engine.inflight == {}  # nothing waits for a fill that cannot come
