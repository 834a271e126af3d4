"""SimRunner: paper trading of every configured strategy on the live price stream.

Each (strategy, symbol) pair runs the backtest engine itself, fed bar by bar from the ticks on
`price_update`, so a simulation and a backtest of the same prices agree exactly (as long as
the strategy's look-back fits in the bars kept, see below). Orders and fills go to
`sim_orders`; each run ends with its statistics, an HTML report and exports, and a user can
rate it and leave a comment.

The runner never stops, so its memory is bounded by rolling runs over: once a run has covered
`run_bars` bars it is finished exactly as `finish` finishes it at stop, and a new `sim_runs`
row continues for the same strategy and symbol. The new run carries the account on (cash,
open position, resting orders) and its `initial_cash` is the previous run's exact final
equity, so each run's PnL (`final_equity - initial_cash`) is marked to market and the runs'
PnL add up to the account's PnL since `start`, as one long run would report it. The strategy
keeps running on the same engine with the latest `warm_bars` bars (the bot's window), so it
needs no new warm-up and its indicators see no gap; those bars belong to the earlier run and
are not counted again. A trade belongs to the run in which it closes.

Memory per simulation: at most `warm_bars + run_bars` bars, one equity point per bar of the
open run, and the open run's fills and trades; a stored order is forgotten at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.bus.base import CHANNEL_PRICE_UPDATE, PubSub
from sigma.config.settings import timeframe_label
from sigma.domain import Bar, Fill, Order, OrderStatus, Position, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.engine.engine import Engine, EngineConfig, empty_data
from sigma.engine.live import MAX_BARS
from sigma.engine.result import BacktestResult
from sigma.engine.stats import compute_stats
from sigma.reports.export import export_result
from sigma.reports.html_report import write_backtest_html
from sigma.runtime.order_state import guard_doc, guard_from_doc, order_doc, order_from_doc
from sigma.runtime.tasks import consume_until
from sigma.store.bars import read_bars
from sigma.store.handles import Session, SessionFactory
from sigma.store.sim_runs import add_orders, finish_run, last_account, open_run
from sigma.strategies.base import Strategy

log = logging.getLogger(__name__)

_TERMINAL = (OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED)


@dataclass(slots=True)
class _Sim:
    """One strategy on one symbol, and the curve of its open run."""

    engine: Engine
    run_id: int
    run_bars: int
    initial_equity: Decimal
    # Fees are cumulative on the carried account; a run's statistics count its own.
    fees_before: Decimal = Decimal(0)
    bars: int = 0
    """Bars the open run has covered."""
    equity: npt.NDArray[np.float64] = field(init=False)
    """Equity at each bar's close of the open run (the first `bars` entries)."""
    held: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        self.equity = np.zeros(self.run_bars, dtype=np.float64)
        self.held = np.zeros(self.run_bars, dtype=np.bool_)

    def mark(self) -> None:
        """Record the account at the close of the bar the engine just ran."""
        engine = self.engine
        self.equity[self.bars] = float(engine.equity())
        self.held[self.bars] = engine.portfolio.qty(engine.symbol) != 0
        self.bars += 1

    @property
    def full(self) -> bool:
        """The open run has covered the bars it has room for: time to roll over."""
        return self.bars == self.equity.size

    def restart(self, run_id: int, initial_equity: Decimal, fees_before: Decimal) -> None:
        """Begin the next run of the same account, with room for `run_bars` bars again."""
        self.run_id = run_id
        self.initial_equity = initial_equity
        self.fees_before = fees_before
        self.bars = 0
        if self.equity.size != self.run_bars:  # extended after a failed roll-over
            self.equity = np.zeros(self.run_bars, dtype=np.float64)
            self.held = np.zeros(self.run_bars, dtype=np.bool_)

    def extend(self, bars: int) -> None:
        """Room for `bars` more bars in the open run (its roll-over failed: it goes on)."""
        self.equity = np.concatenate([self.equity, np.zeros(bars, dtype=np.float64)])
        self.held = np.concatenate([self.held, np.zeros(bars, dtype=np.bool_)])


class SimRunner:
    """Paper-fills every strategy's signals on live bars and records them, run after run.

    `run_bars` is the length of a run (at least 2, for statistics), `warm_bars` the bars kept
    for the indicators when a run rolls over (at least 1, for the price the account is marked
    at), and `report_dir` where each finished run's report and exports are written (None: no
    files, statistics only)."""

    def __init__(
        self,
        sessions: SessionFactory,
        strategies: list[tuple[Callable[[], Strategy], str]],
        *,
        timeframe: timedelta,
        config: EngineConfig,
        run_bars: int,
        report_dir: Path | None = None,
        warm_bars: int = MAX_BARS,
    ) -> None:
        if run_bars < 2 or warm_bars < 1:
            raise ValueError(f"need run_bars >= 2 and warm_bars >= 1, got {run_bars}, {warm_bars}")
        self.sessions = sessions
        self.config = config
        self.timeframe = timeframe
        self.run_bars = run_bars
        self.warm_bars = warm_bars
        self.report_dir = report_dir
        self._factories = strategies
        self._sims: dict[str, list[_Sim]] = {}
        self._builders: dict[str, BarBuilder] = {}
        self.bars_seen = 0
        self.subscribed = asyncio.Event()
        """Set once the runner listens on the price channel."""

    def start(self) -> list[int]:
        """Open a `sim_runs` row per strategy and symbol; returns their ids.

        Each simulation goes on from the account its last finished run ended with (its
        `initial_cash` is that run's final equity) and its indicators are warmed from the
        stored bars of its bar size, as the bot's are; a run that never finished (the process
        was killed) is not carried on."""
        ids = []
        label = timeframe_label(int(self.timeframe.total_seconds()))
        with self.sessions.begin() as session:
            history = {
                symbol: read_bars(session, symbol, label, last=self.warm_bars)
                for symbol in {symbol for _, symbol in self._factories}
            }
            for factory, symbol in self._factories:
                engine = Engine(factory(), symbol, empty_data(), self.config)
                if not history[symbol].empty:
                    engine.warm_up(history[symbol])
                initial, fees = self.config.initial_cash, Decimal(0)
                if (last := last_account(session, engine.strategy.name, symbol)) is not None:
                    initial, fees = _carry_on(engine, *last)
                run_id = _open_run(session, engine, initial)
                sim = _Sim(engine, run_id, self.run_bars, initial, fees_before=fees)
                self._sims.setdefault(symbol, []).append(sim)
                self._builders.setdefault(symbol, BarBuilder(symbol, self.timeframe))
                ids.append(run_id)
        return ids

    def on_tick(self, tick: Tick) -> None:
        """Feed one accepted tick; runs the strategies when it closes a bar."""
        if (bar := self.bar_closed(tick)) is not None:
            self.on_bar(bar)

    def bar_closed(self, tick: Tick) -> Bar | None:
        """Feed one accepted tick to its symbol's bar; the bar it closed, if any."""
        builder = self._builders.get(tick.symbol)
        return None if builder is None else builder.on_tick(tick)

    def on_bar(self, bar: Bar) -> None:
        """Run every simulation of the bar's symbol, store the orders that finished, and roll
        over the runs that reached `run_bars`."""
        self.bars_seen += 1
        sims = self._sims.get(bar.symbol, [])
        for sim in sims:
            sim.engine.on_bar(bar)
            sim.mark()
        self._write_orders(sims)
        for sim in sims:
            if sim.full:
                self._roll_over(sim)

    def _write_orders(self, sims: list[_Sim]) -> None:
        finished: list[tuple[int, Order, Fill | None]] = []
        for sim in sims:
            engine = sim.engine
            done = [o for o in engine.orders if o.status in _TERMINAL]
            # Orders are stored on the bar they end, so their fills are among the latest.
            fills = {f.client_order_id: f for f in engine.fills[-len(done) :]} if done else {}
            finished.extend((sim.run_id, o, fills.get(o.client_order_id)) for o in done)
        if finished:
            with self.sessions.begin() as session:
                add_orders(session, finished)
        for sim in sims:
            # A stored order is forgotten; a resting one stays until it ends, in whichever run.
            sim.engine.orders = [o for o in sim.engine.orders if o.status not in _TERMINAL]

    def _roll_over(self, sim: _Sim) -> None:
        """Finish the run of `sim` and continue the same account in a new run."""
        engine = sim.engine
        equity = engine.equity()
        # One transaction: the finished run and its successor exist together or not at all,
        # and a failure (e.g. writing the report) leaves the open run as it was.
        try:
            with self.sessions.begin() as session:
                report = self._close(session, sim, self.report_dir)
                run_id = _open_run(session, engine, equity)
        except Exception:
            # Paper runs must not stop the trading beside them: the run goes on, and is tried
            # again when it has run_bars more bars (or at stop).
            log.exception(
                "sim %s %s: run %d could not be finished after %d bars; it goes on and is "
                "tried again in %d bars",
                engine.strategy.name,
                engine.symbol,
                sim.run_id,
                sim.bars,
                self.run_bars,
            )
            sim.extend(self.run_bars)
            return
        log.info(
            "sim %s %s: run %d finished after %d bars (report %s), run %d continues",
            engine.strategy.name,
            engine.symbol,
            sim.run_id,
            sim.bars,
            report,
            run_id,
        )
        sim.restart(run_id, equity, engine.portfolio.fees_paid)
        for records in (engine.fills, engine.portfolio.trades, engine.ledger):
            records.clear()
        engine.drop_oldest(max(0, len(engine.data) - self.warm_bars))

    def _close(self, session: Session, sim: _Sim, report_dir: Path | None) -> Path | None:
        """Mark the open run of `sim` finished with its statistics; returns its report."""
        result = self.result(sim)
        finish_run(
            session,
            sim.run_id,
            final_equity=sim.engine.equity(),
            stats=result.stats if result else {},
            account=_account(sim.engine),
        )
        if result is None or report_dir is None:
            return None
        folder = report_dir / f"sim_{sim.run_id}_{result.strategy}"
        export_result(result, folder, formats=("csv", "json"))
        return write_backtest_html(result, folder / "report.html")

    def finish(self, report_dir: Path | None = None) -> dict[int, Path | None]:
        """Close every open run: statistics and final equity in `sim_runs`, reports on disk
        (in `report_dir`, by default the runner's folder); returns each run's report."""
        folder = report_dir or self.report_dir
        with self.sessions.begin() as session:
            return {
                sim.run_id: self._close(session, sim, folder)
                for sims in self._sims.values()
                for sim in sims
            }

    def result(self, sim: _Sim) -> BacktestResult | None:
        """The open run so far in the backtest result shape (None before two bars)."""
        n = sim.bars
        if n < 2:
            return None
        engine = sim.engine
        data = engine.data
        # The window also holds the bars an earlier run left for the indicators.
        bars = data.frame(len(data) - n)
        index = pd.DatetimeIndex(bars.index)
        equity = sim.equity[:n].copy()
        final = engine.equity()
        stats = compute_stats(
            index,
            bars["close"].to_numpy(),
            equity,
            sim.held[:n].copy(),
            engine.trades,
            sim.initial_equity,
            final,
            engine.portfolio.fees_paid - sim.fees_before,
        )
        stats.update(engine.margin.summary())
        return BacktestResult(
            strategy=engine.strategy.name,
            symbol=engine.symbol,
            params=dict(engine.strategy.params),
            initial_cash=sim.initial_equity,
            final_equity=final,
            final_cash=engine.portfolio.cash,
            final_position=engine.portfolio.qty(engine.symbol),
            equity=pd.Series(equity, index=index, name="equity"),
            trades=list(engine.trades),
            fills=list(engine.fills),
            bars=bars,
            stats=stats,
            open_trade=engine.portfolio.open_trade(
                engine.symbol,
                engine.last_price,
                index[-1].to_pydatetime(),
                len(data) - 1,
                engine.strategy.name,
            ),
            # The lines cover the warm-up bars too; the run's window is the last `n`.
            indicators=[(name, line[-n:]) for name, line in engine.strategy.indicator_lines()],
            fill_timing=engine.fill_model.timing,
            liquidation=engine.margin.liquidation,
        )

    async def run(
        self,
        pubsub: PubSub,
        decode: Callable[[bytes], Tick],
        stop: asyncio.Event,
        channel: str = CHANNEL_PRICE_UPDATE,
    ) -> None:
        """Consume `price_update` until `stop` is set (ticks on the bus are already cleaned)."""

        async def handle(raw: bytes) -> None:
            try:
                tick = decode(raw)
            except ValueError as exc:
                log.warning("sim: dropped a bad tick: %s", exc)
                return
            if (bar := self.bar_closed(tick)) is not None:
                # The strategies, the database writes and a roll-over's report run in a thread
                # (one bar at a time, in order): in `sigma up` the bot shares this loop.
                await asyncio.to_thread(self.on_bar, bar)

        await consume_until(pubsub, {channel: handle}, stop, subscribed=self.subscribed)


def _account(engine: Engine) -> dict[str, Any]:
    """The paper account of `engine` as `sim_runs.account` keeps it (exact strings), with the
    orders still pending (a signal of the last bar fills at the next bar's open) and the
    protective orders held (armed on the position, or waiting for their entry)."""
    portfolio = engine.portfolio
    held = portfolio.position(engine.symbol)
    values = {
        "cash": portfolio.cash,
        "fees_paid": portfolio.fees_paid,
        "qty": held.qty,
        "avg_price": held.avg_price,
        "realized_pnl": held.realized_pnl,
    }
    account: dict[str, Any] = {key: str(value) for key, value in values.items()}
    account["pending"] = [
        order_doc(order, bars_left=engine.bars_left(order))
        for order in engine.pending
        if order.is_open
    ]
    account["protective"] = [
        guard_doc(guard, engine.data.cursor.i) for guard in engine.book.guards()
    ]
    return account


def _carry_on(
    engine: Engine, account: dict[str, Any], equity: Decimal, since: datetime
) -> tuple[Decimal, Decimal]:
    """Give `engine` the stored `account`; returns the new run's initial equity and the fees
    paid before it."""
    fees = Decimal(account["fees_paid"])
    held = Position(
        engine.symbol,
        Decimal(account["qty"]),
        Decimal(account["avg_price"]),
        Decimal(account["realized_pnl"]),
    )
    engine.portfolio.restore(Decimal(account["cash"]), fees, held, since)
    for stored in account.get("pending", []):
        engine.restore_order(order_from_doc(engine.symbol, stored), stored.get("bars_left"))
    for stored in account.get("protective", []):
        engine.restore_guard(guard_from_doc(engine.symbol, stored, engine.data.cursor.i))
    return equity, fees


def _open_run(session: Session, engine: Engine, initial_cash: Decimal) -> int:
    """A new `running` row for the engine's strategy and symbol; returns its id."""
    strategy = engine.strategy
    return open_run(session, strategy.name, engine.symbol, strategy.params, initial_cash)
