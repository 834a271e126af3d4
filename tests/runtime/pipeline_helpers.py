"""Drive the live pipeline (bot → queue → worker → database) with a known price series and
compare what it stored with the backtest engine on the same bars."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select

from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.config import load_settings
from sigma.engine.engine import EntryGate
from sigma.engine.fill_model import FillModel
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.ticks import encode_tick
from sigma.feeds.ws_server import bar_ticks
from sigma.research.backtest import run_backtest
from sigma.runtime.services import Services
from sigma.store.models import FillRecord, LedgerEntry, OrderRecord, PositionRecord
from sigma.strategies.builtin import RsiReversion, SmaCross

SYMBOL = "XYZ"
CASH = Decimal(10_000)
STRATEGIES = (SmaCross, RsiReversion)


def bars(n: int = 600, seed: int = 11) -> pd.DataFrame:
    """A seeded regime-switching market of 1-minute bars."""
    return generate_bars(n, seed=seed, freq="1min", start_price=100.0)[0]


def make_app(database_url: str, **overrides: Any) -> App:
    """An App trading `STRATEGIES` on `SYMBOL` with costs, no loss limits."""
    settings = load_settings(
        database_url=database_url,
        symbols=[SYMBOL],
        live_strategies=[s.name for s in STRATEGIES],
        commission_pct=Decimal("0.001"),
        slippage_bps=Decimal(5),
        # Re-tuned parameters would differ from the plain backtest.
        **{
            "bar_seconds": 60,
            # All in, as the backtest the runs are compared with.
            "stake_fraction": 1,
            "adaptive": False,
            "max_drawdown": None,
            "max_open_orders": None,
            **overrides,
        },
    )
    return App(settings)


@dataclass
class Outcome:
    """What the pipeline stored."""

    orders: list[OrderRecord]
    fills: list[FillRecord]
    positions: dict[str, PositionRecord]
    ledger: list[LedgerEntry]
    system: Services


async def wait_for(check: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `check()` until true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(system: Services) -> AsyncIterator[Services]:
    """`system` started and ready; stopped in order (and waited for) when the block ends."""
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    try:
        await wait_for(system.ready.is_set, what="system ready")
        yield system
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)


async def run_pipeline(
    app: App,
    frame: pd.DataFrame,
    *,
    components: tuple[str, ...] = ("bot", "worker"),
    raw_messages: list[bytes] | None = None,
) -> Outcome:
    """Publish the bars' ticks on `price_update` (plus `raw_messages` first) and let the bot
    and the worker act on them; returns the stored rows once every order is booked."""
    async with running(Services(app, components)) as system:
        assert system.bot is not None
        bot, worker = system.bot, system.worker
        for raw in raw_messages or []:
            await system.pubsub.publish(CHANNEL_PRICE_UPDATE, raw)
        for tick in bar_ticks(SYMBOL, frame):
            await system.pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
            # Let the real bus keep up: the subscriber's buffer is large but not unbounded.
            await asyncio.sleep(0)
        bars_expected = len(frame) - 1  # the last bar never closes
        await wait_for(lambda: bot.counters.bars == bars_expected, what="bars")
        # Booked by the worker (here or in another process) and reported back to the bot.
        await wait_for(
            lambda: (
                (worker is None or worker.processed >= bot.counters.orders_sent)
                and bot.counters.fills >= bot.counters.orders_sent
            ),
            what="orders booked and reported back",
        )
    with app.sessions() as s:
        return Outcome(
            orders=list(s.scalars(select(OrderRecord).order_by(OrderRecord.created_at))),
            fills=list(s.scalars(select(FillRecord).order_by(FillRecord.id))),
            positions={p.strategy: p for p in s.scalars(select(PositionRecord))},
            ledger=list(s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))),
            system=system,
        )


def assert_matches_backtest(
    outcome: Outcome, app: App, frame: pd.DataFrame, entry_gate: EntryGate | None = None
) -> int:
    """The stored rows equal the backtest's fills, cash and positions per strategy (the
    backtest gated by `entry_gate`); returns the number of fills compared."""
    model = FillModel(commission_pct=Decimal("0.001"), slippage_bps=Decimal(5))
    compared = 0
    for cls in STRATEGIES:
        result, engine = run_backtest(
            cls(), frame, symbol=SYMBOL, initial_cash=CASH, fill_model=model, entry_gate=entry_gate
        )
        expected = [(f.side.value, f.qty, f.price, f.fee) for f in result.fills]
        by_coid = {o.client_order_id: o for o in outcome.orders if o.strategy == cls.name}
        stored = [
            (by_coid[f.client_order_id].side, f.qty, f.price, f.fee)
            for f in outcome.fills
            if f.client_order_id in by_coid
        ]
        bot = outcome.system.bot
        first = next(
            (i for i, pair in enumerate(zip(stored, expected, strict=False)) if pair[0] != pair[1]),
            min(len(stored), len(expected)),
        )
        if bot is not None:
            assert bot.engines[(cls.name, SYMBOL)].vetoes == engine.vetoes, cls.name
        assert stored == expected, (
            f"{cls.name}: {len(stored)} stored fills, {len(expected)} in the backtest; from "
            f"fill {first}: stored {stored[first : first + 3]}, backtest "
            f"{expected[first : first + 3]}; bot counters {bot.counters if bot else None}"
        )
        assert all(o.status == "filled" and o.filled_qty == o.qty for o in by_coid.values())
        cash = CASH + sum(
            (e.cash_delta for e in outcome.ledger if e.strategy == cls.name), start=Decimal(0)
        )
        assert cash == result.final_cash, cls.name
        position = outcome.positions.get(cls.name)
        held = position.qty if position is not None else Decimal(0)
        assert held == result.final_position, cls.name
        if held:
            assert position is not None
            assert position.avg_price == engine.portfolio.position(SYMBOL).avg_price
        # cash + position value = equity, at the last close
        close = Decimal(repr(float(frame["close"].iloc[-1])))
        assert cash + held * close == engine.portfolio.equity({SYMBOL: close})
        compared += len(expected)
    return compared
