"""A strategy account the price runs over, live: the bot sends the closing order the engine
decided, reports the liquidation once, and the strategy trades no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bot_helpers import Sent

from sigma.domain import Tick
from sigma.engine.engine import EngineConfig
from sigma.risk.limits import RiskLimits, RiskManager
from sigma.runtime.bot import TradingBot
from tests.scripted import FromBarZero

SYMBOL = "ACME"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


class ShortOnce(FromBarZero):
    """Goes short on its first bar, then holds."""

    name = "short_once"

    def init(self) -> None:
        self.decisions = 0

    def on_bar(self) -> None:
        self.decisions += 1
        self.go_short()


async def test_a_liquidated_account_is_closed_reported_once_and_stopped() -> None:
    sent = Sent()
    decisions: list[tuple[str, dict[str, Any]]] = []
    strategy = ShortOnce()
    bot = TradingBot(
        [(strategy, SYMBOL)],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=Decimal(10_000)),
        risk=RiskManager(RiskLimits(max_open_orders=None, max_drawdown=None)),
        executor=sent,
        decode=lambda raw: None,
        on_decision=lambda kind, info: decisions.append((kind, info)),
    )
    engine = bot.engines[("short_once", SYMBOL)]
    for minute, price in enumerate([100, 100, 150, 250, 250, 100, 100]):
        ts = START + timedelta(minutes=minute)
        await bot.on_tick(Tick(SYMBOL, ts, Decimal(price), Decimal(1)))
        await bot.drain()
        for fill in list(engine.inflight.values()):
            engine.on_fill(fill)
    entry, closing = sent.orders
    assert entry.side.value == "sell" and entry.qty == 100
    assert closing.tag == "liquidation" and closing.reduce_only and closing.qty == 100
    liquidated = [info for kind, info in decisions if kind == "liquidated"]
    assert len(liquidated) == 1
    assert liquidated[0]["strategy"] == "short_once" and liquidated[0]["symbol"] == SYMBOL
    assert liquidated[0]["liquidation_price"] == "250.0"
    assert "at or below zero" in liquidated[0]["liquidation_reason"]
    assert bot.liquidated == {("short_once", SYMBOL): liquidated[0]["liquidation_reason"]}
    assert engine.portfolio.qty(SYMBOL) == 0
    assert strategy.decisions == 3  # the bars before the one closing at 250, none after
