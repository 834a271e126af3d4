"""SimRunner: paper trading of every configured strategy on the live price stream.

Each (strategy, symbol) pair runs the backtest engine itself, fed bar by bar from the ticks on
`price_update`, so a simulation and a backtest of the same prices agree exactly. Orders and
fills go to `sim_orders`; at the end each run gets its statistics, an HTML report and exports,
and a user can rate it and leave a comment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from sigma.bus.base import CHANNEL_PRICE_UPDATE, PubSub
from sigma.domain import Bar, Fill, Order, OrderStatus, Tick
from sigma.engine.bar_builder import BarBuilder
from sigma.engine.engine import Engine, EngineConfig, empty_data
from sigma.engine.result import BacktestResult
from sigma.engine.stats import compute_stats
from sigma.reports.export import export_result
from sigma.reports.html_report import write_backtest_html
from sigma.runtime.tasks import consume_until
from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import SimOrder, SimRun
from sigma.strategies.base import Strategy

log = logging.getLogger(__name__)

_TERMINAL = (OrderStatus.FILLED, OrderStatus.REJECTED, OrderStatus.CANCELLED)


@dataclass(slots=True)
class _Sim:
    """One strategy on one symbol and the rows not yet written."""

    engine: Engine
    run_id: int
    equity: list[tuple[datetime, float, bool]] = field(default_factory=list)
    written: set[str] = field(default_factory=set)


class SimRunner:
    """Paper-fills every strategy's signals on live bars and records them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        strategies: list[tuple[Callable[[], Strategy], str]],
        *,
        timeframe: timedelta,
        config: EngineConfig,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.timeframe = timeframe
        self._factories = strategies
        self._sims: dict[str, list[_Sim]] = {}
        self._builders: dict[str, BarBuilder] = {}
        self.bars_seen = 0
        self.subscribed = asyncio.Event()
        """Set once the runner listens on the price channel."""

    def start(self) -> list[int]:
        """Open a `sim_runs` row per strategy and symbol; returns their ids."""
        ids = []
        with self.sessions.begin() as session:
            for factory, symbol in self._factories:
                strategy = factory()
                run = SimRun(
                    strategy=strategy.name,
                    symbol=symbol,
                    params=to_jsonable(strategy.params),
                    initial_cash=self.config.initial_cash,
                )
                session.add(run)
                session.flush()
                engine = Engine(strategy, symbol, empty_data(), self.config)
                self._sims.setdefault(symbol, []).append(_Sim(engine, run.id))
                self._builders.setdefault(symbol, BarBuilder(symbol, self.timeframe))
                ids.append(run.id)
        return ids

    def on_tick(self, tick: Tick) -> None:
        """Feed one accepted tick; runs the strategies when it closes a bar."""
        builder = self._builders.get(tick.symbol)
        if builder is None:
            return
        bar = builder.on_tick(tick)
        if bar is not None:
            self.on_bar(bar)

    def on_bar(self, bar: Bar) -> None:
        """Run every simulation of the bar's symbol and store the orders that finished."""
        self.bars_seen += 1
        sims = self._sims.get(bar.symbol, [])
        for sim in sims:
            sim.engine.on_bar(bar)
            qty = float(sim.engine.portfolio.qty(bar.symbol))
            sim.equity.append((bar.ts, float(sim.engine.equity()), qty != 0.0))
        self._write_orders(sims)

    def _write_orders(self, sims: list[_Sim]) -> None:
        rows = []
        for sim in sims:
            fills = {f.client_order_id: f for f in sim.engine.fills[-16:]}
            for order in sim.engine.orders[-16:]:
                if order.status in _TERMINAL and order.client_order_id not in sim.written:
                    sim.written.add(order.client_order_id)
                    rows.append(_row(sim.run_id, order, fills.get(order.client_order_id)))
        if rows:
            with self.sessions.begin() as session:
                session.add_all(rows)

    def finish(self, report_dir: Path | None = None) -> dict[int, Path | None]:
        """Close every run: statistics and final equity in `sim_runs`, reports on disk."""
        reports: dict[int, Path | None] = {}
        with self.sessions.begin() as session:
            for sims in self._sims.values():
                for sim in sims:
                    result = self.result(sim)
                    run = session.get(SimRun, sim.run_id)
                    assert run is not None
                    run.status = "finished"
                    run.ended_at = datetime.now(UTC)
                    run.final_equity = sim.engine.equity()
                    run.stats = to_jsonable(result.stats) if result else {}
                    path = None
                    if result is not None and report_dir is not None:
                        folder = report_dir / f"sim_{sim.run_id}_{result.strategy}"
                        path = write_backtest_html(result, folder / "report.html")
                        export_result(result, folder, formats=("csv", "json"))
                    reports[sim.run_id] = path
        return reports

    def result(self, sim: _Sim) -> BacktestResult | None:
        """The run so far in the backtest result shape (None before two bars)."""
        if len(sim.equity) < 2:
            return None
        engine = sim.engine
        data = engine.data
        index = pd.DatetimeIndex(pd.to_datetime(data.ts).tz_localize("UTC"), name="ts")
        bars = pd.DataFrame(
            {c: data.column(c) for c in ("open", "high", "low", "close", "volume")}, index=index
        )
        equity = np.array([e for _, e, _ in sim.equity])
        held = np.array([h for _, _, h in sim.equity])
        stats = compute_stats(
            index,
            bars["close"].to_numpy(),
            equity,
            held,
            engine.trades,
            self.config.initial_cash,
            engine.equity(),
            engine.portfolio.fees_paid,
        )
        return BacktestResult(
            strategy=engine.strategy.name,
            symbol=engine.symbol,
            params=dict(engine.strategy.params),
            initial_cash=self.config.initial_cash,
            final_equity=engine.equity(),
            final_cash=engine.portfolio.cash,
            final_position=engine.portfolio.qty(engine.symbol),
            equity=pd.Series(equity, index=index, name="equity"),
            trades=list(engine.trades),
            fills=list(engine.fills),
            bars=bars,
            stats=stats,
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
            self.on_tick(tick)

        await consume_until(pubsub, {channel: handle}, stop, subscribed=self.subscribed)


def _row(run_id: int, order: Order, fill: Fill | None) -> SimOrder:
    return SimOrder(
        sim_run_id=run_id,
        client_order_id=order.client_order_id,
        ts=fill.ts if fill else (order.created_at or datetime.now(UTC)),
        symbol=order.symbol,
        side=order.side.value,
        type=order.type.value,
        qty=fill.qty if fill else (order.qty or Decimal(0)),
        limit_price=order.limit_price,
        status=order.status.value,
        fill_price=fill.price if fill else None,
        fee=fill.fee if fill else Decimal(0),
    )


def rate_sim_run(session: Session, run_id: int, rating: int, comment: str = "") -> None:
    """Store a user's 1-5 rating and comment on a simulation run."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1..5, got {rating}")
    run = session.get(SimRun, run_id)
    if run is None:
        raise KeyError(f"no simulation run {run_id}")
    run.rating = rating
    run.comment = comment[:2000]
