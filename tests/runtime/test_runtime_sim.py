"""SimRunner: paper fills on the live stream, stored in sim_orders, same result as a backtest,
and bounded run after run."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Bar, Tick
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.feeds.ticks import decode_tick, encode_tick
from sigma.research.backtest import run_backtest
from sigma.runtime import sim as sim_module
from sigma.runtime.sim import SimRunner
from sigma.store.bars import upsert_bars
from sigma.store.db import init_db, session_factory
from sigma.store.models import SimOrder, SimRun
from sigma.store.sim_runs import rate_sim_run
from sigma.strategies.base import Strategy
from sigma.strategies.builtin import RsiReversion, SmaCross
from tests.scripted import FromBarZero

D = Decimal


def bars(n: int = 800, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(50 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.round(np.concatenate(([50.0], close[:-1])), 2)
    idx = pd.date_range("2024-03-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.1,
            "low": np.minimum(open_, close) - 0.1,
            "close": close,
            "volume": 3.0,
        },
        index=idx,
    )


def ticks(frame: pd.DataFrame, symbol: str) -> list[Tick]:
    out = []
    for ts, row in frame.iterrows():
        for k, col in enumerate(("open", "low", "high", "close")):
            out.append(
                Tick(symbol, ts + pd.Timedelta(seconds=15 * k), D(repr(float(row[col]))), D(1))
            )
    return out


def as_bars(frame: pd.DataFrame, symbol: str) -> list[Bar]:
    """The frame's rows as the bars a BarBuilder would close."""
    return [
        Bar(symbol, ts.to_pydatetime(), *(D(repr(float(row[c]))) for c in COLUMNS))
        for ts, row in frame.iterrows()
    ]


COLUMNS = ("open", "high", "low", "close", "volume")


@pytest.fixture
def sessions(tmp_path: Path):
    engine = init_db(f"sqlite:///{tmp_path / 'sim.db'}")
    yield session_factory(engine)
    engine.dispose()


def test_sim_matches_backtest_and_stores_orders(sessions, tmp_path: Path) -> None:
    frame = bars()
    fm = FillModel(commission_pct=D("0.001"))
    runner = SimRunner(
        sessions,
        [(lambda: SmaCross(fast=5, slow=20), "AAA"), (lambda: RsiReversion(), "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=D(10_000), fill_model=fm),
        run_bars=10_080,
    )
    run_ids = runner.start()
    for tick in ticks(frame, "AAA") + ticks(frame.iloc[:3], "OTHER"):
        runner.on_tick(tick)
    reports = runner.finish(tmp_path / "reports")
    assert runner.bars_seen == len(frame) - 1

    batch, _ = run_backtest(SmaCross(fast=5, slow=20), frame.iloc[:-1], symbol="AAA", fill_model=fm)
    with sessions() as s:
        run = s.get(SimRun, run_ids[0])
        assert run is not None and run.status == "finished"
        assert run.final_equity == batch.final_equity
        assert run.stats["n_trades"] == len(batch.trades)
        filled = s.scalars(
            select(SimOrder).where(SimOrder.sim_run_id == run_ids[0], SimOrder.status == "filled")
        ).all()
        assert len(filled) == len(batch.fills)
        assert sorted(o.fill_price for o in filled) == sorted(f.price for f in batch.fills)
    for run_id in run_ids:
        path = reports[run_id]
        assert path is not None and path.exists() and "<svg" in path.read_text()
        assert (path.parent / "trades.csv").exists()
    # The position held at the end is listed, marked at the last close, as in the backtest.
    report = reports[run_ids[0]]
    assert report is not None
    listed = pd.read_csv(report.parent / "trades.csv", dtype={"pnl": str})
    held = listed[listed["is_open"]]
    assert batch.open_trade is not None and len(held) == 1
    assert D(held["pnl"].iloc[0]) == batch.open_trade.pnl
    assert "fast_ma" in report.read_text()


def test_rating_and_comment(sessions) -> None:
    runner = SimRunner(
        sessions,
        [(SmaCross, "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(),
        run_bars=10_080,
    )
    (run_id,) = runner.start()
    assert runner.finish() == {run_id: None}
    with sessions.begin() as s:
        rate_sim_run(s, run_id, 4, "steady, too few trades")
    with sessions() as s:
        run = s.get(SimRun, run_id)
        assert run is not None and (run.rating, run.comment) == (4, "steady, too few trades")
        with pytest.raises(ValueError, match="rating must be 1..5"):
            rate_sim_run(s, run_id, 6)
        with pytest.raises(KeyError, match="no simulation run 999"):
            rate_sim_run(s, 999, 3)


def test_rollover_carries_the_account_and_adds_up_to_one_backtest(sessions, tmp_path: Path) -> None:
    frame = bars()
    fm = FillModel(commission_pct=D("0.001"))
    runner = SimRunner(
        sessions,
        [(lambda: SmaCross(fast=5, slow=20), "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=D(10_000), fill_model=fm),
        run_bars=150,
        report_dir=tmp_path / "sims",
        # The slow SMA needs 20 bars (21 for a cross), so the trimmed window decides the same.
        warm_bars=30,
    )
    (first,) = runner.start()
    (sim,) = runner._sims["AAA"]
    engine = sim.engine
    at_rollover: dict[int, tuple[Decimal, Decimal]] = {}
    for bar in as_bars(frame, "AAA"):
        run_id = sim.run_id
        runner.on_bar(bar)
        qty = engine.portfolio.qty("AAA")
        # Exact accounting at every close: cash plus the position at the close is the equity.
        assert engine.portfolio.cash + qty * bar.close == engine.equity()
        if sim.run_id != run_id:
            at_rollover[run_id] = (engine.equity(), qty)
    reports = runner.finish()

    batch, _ = run_backtest(SmaCross(fast=5, slow=20), frame, symbol="AAA", fill_model=fm)
    with sessions() as s:
        runs = s.scalars(select(SimRun).order_by(SimRun.id)).all()
        assert runs[0].id == first and len(runs) == 6  # 5 x 150 bars, then 50
        assert all(r.status == "finished" and r.ended_at is not None for r in runs)
        assert [r.stats["bars"] for r in runs] == [150] * 5 + [50]
        assert runs[0].initial_cash == D(10_000)
        for done, successor in itertools.pairwise(runs):
            equity, _ = at_rollover[done.id]
            assert done.final_equity == equity == successor.initial_cash
            assert D(done.stats["equity_final"]) == done.final_equity
            assert D(done.stats["equity_initial"]) == done.initial_cash
        # The position is carried into the next run, not closed for the rollover.
        assert any(qty != 0 for _, qty in at_rollover.values())
        # Each run's PnL is marked to market, so the runs add up to the one long backtest.
        pnl = sum((r.final_equity - r.initial_cash for r in runs), start=D(0))
        assert runs[-1].final_equity == batch.final_equity
        assert pnl == batch.final_equity - D(10_000)
        assert sum(r.stats["n_trades"] for r in runs) == len(batch.trades)
        filled = s.scalars(select(SimOrder).where(SimOrder.status == "filled")).all()
        assert sorted(o.fill_price for o in filled) == sorted(f.price for f in batch.fills)
        by_run = {r.id: r for r in runs}
        for order in filled:
            run = by_run[order.sim_run_id]
            start, end = (pd.Timestamp(run.stats[k]) for k in ("start", "end"))
            assert start <= pd.Timestamp(order.ts) <= end
    assert reports == {runs[-1].id: tmp_path / "sims" / f"sim_{runs[-1].id}_sma_cross/report.html"}
    for run in runs:
        folder = tmp_path / "sims" / f"sim_{run.id}_sma_cross"
        assert "<svg" in (folder / "report.html").read_text()
        assert (folder / "trades.csv").exists()


def test_a_restart_carries_each_account_on_with_warm_indicators(sessions, tmp_path: Path) -> None:
    frame = bars()
    fm = FillModel(commission_pct=D("0.001"))
    config = EngineConfig(initial_cash=D(10_000), fill_model=fm)

    def runner() -> SimRunner:
        return SimRunner(
            sessions,
            [(lambda: SmaCross(fast=5, slow=20), "AAA")],
            timeframe=timedelta(minutes=1),
            config=config,
            run_bars=10_000,
        )

    split = 333
    first = runner()
    first.start()
    for bar in as_bars(frame.iloc[:split], "AAA"):
        first.on_bar(bar)
    (held,) = [sim.engine.portfolio.qty("AAA") for sim in first._sims["AAA"]]
    first.finish()
    # What the recorder kept of the first part; then the process starts again.
    with sessions.begin() as s:
        upsert_bars(s, "AAA", "1m", frame.iloc[:split])
    second = runner()
    (run_id,) = second.start()
    (sim,) = second._sims["AAA"]
    assert held != 0 and sim.engine.portfolio.qty("AAA") == held
    for bar in as_bars(frame.iloc[split:], "AAA"):
        second.on_bar(bar)
    second.finish()

    batch, _ = run_backtest(SmaCross(fast=5, slow=20), frame, symbol="AAA", fill_model=fm)
    with sessions() as s:
        done, again = s.scalars(select(SimRun).order_by(SimRun.id)).all()
        assert again.id == run_id and again.initial_cash == done.final_equity
        # The two runs are the one uninterrupted paper account.
        assert again.final_equity == batch.final_equity
        assert D(again.account["cash"]) == batch.final_cash
        assert D(again.account["qty"]) == batch.final_position


def test_a_run_that_never_finished_is_not_carried_on(sessions) -> None:
    with sessions.begin() as s:
        s.add(SimRun(strategy="sma_cross", symbol="AAA", initial_cash=D(5), account=None))
    runner = SimRunner(
        sessions,
        [(SmaCross, "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(initial_cash=D(10_000)),
        run_bars=10,
    )
    runner.start()
    (sim,) = runner._sims["AAA"]
    assert sim.initial_equity == D(10_000) and sim.engine.portfolio.cash == D(10_000)


class _Dipper(Strategy):
    """Bids below the market every few bars and sells what it bought: resting limit orders."""

    name = "dipper"

    def init(self) -> None:
        self.seen = 0

    def on_bar(self) -> None:
        self.seen += 1
        if self.position > 0:
            self.close()
        elif self.seen % 5 == 0:
            self.go_flat()  # withdraws the bid that did not fill
            self.buy(1, limit=self.data.close[-1] - 0.3)


def test_memory_stays_bounded_over_many_runs(sessions, tmp_path: Path) -> None:
    run_bars, warm_bars = 40, 25
    runner = SimRunner(
        sessions,
        [
            (lambda: SmaCross(fast=2, slow=3), "AAA"),
            (lambda: RsiReversion(period=3), "AAA"),
            (_Dipper, "AAA"),
        ],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(record_ledger=True),
        run_bars=run_bars,
        report_dir=tmp_path / "sims",
        warm_bars=warm_bars,
    )
    runner.start()
    sims = runner._sims["AAA"]
    most_orders = 0
    for bar in as_bars(bars(1010, seed=9), "AAA"):
        runner.on_bar(bar)
        for sim in sims:
            engine = sim.engine
            assert len(engine.data) <= warm_bars + run_bars
            assert len(engine.data.ts) == len(engine.data.column("close")) == len(engine.data)
            assert engine.data._ts.size <= 2 * (warm_bars + run_bars)  # allocated storage
            assert sim.bars < run_bars and len(sim.equity) == len(sim.held) == run_bars
            assert len(engine.ledger) == sim.bars
            assert len(engine.trades) <= len(engine.fills) <= 2 * sim.bars
            # Only orders still waiting to fill are held; stored ones are forgotten.
            assert [o.client_order_id for o in engine.orders] == [
                o.client_order_id for o in engine.pending
            ]
            most_orders = max(most_orders, len(engine.orders))
    assert 0 < most_orders <= 2
    runner.finish()

    with sessions() as s:
        runs = s.scalars(select(SimRun).order_by(SimRun.id)).all()
        assert len(runs) == 3 * 26  # 25 full runs each, and the 10 bars before the stop
        for run in runs:
            assert run.status == "finished" and run.stats["bars"] == (
                10 if run.id > 75 else run_bars
            )
            folder = tmp_path / "sims" / f"sim_{run.id}_{run.strategy}"
            assert (folder / "report.html").exists() and (folder / "trades.csv").exists()
        for name in ("sma_cross", "rsi_reversion", "dipper"):
            chain = [r for r in runs if r.strategy == name]
            assert [r.initial_cash for r in chain[1:]] == [r.final_equity for r in chain[:-1]]
        stored = s.scalars(select(SimOrder.sim_run_id)).all()
        assert set(stored) <= {r.id for r in runs} and len(stored) > 100


def test_a_resting_order_fills_and_is_stored_in_the_next_run(sessions) -> None:
    class BidOnce(FromBarZero):
        name = "bid_once"

        def on_bar(self) -> None:
            if self.bar_index == 0:
                self.buy(1, limit=90.0)

    runner = SimRunner(
        sessions,
        [(BidOnce, "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(),
        run_bars=2,
    )
    (first,) = runner.start()
    t0 = pd.Timestamp("2024-03-01", tz="UTC").to_pydatetime()
    for k, low in enumerate((D(99), D(99), D(89))):
        runner.on_bar(Bar("AAA", t0 + timedelta(minutes=k), D(100), D(101), low, D(100), D(1)))
    second = runner._sims["AAA"][0].run_id
    assert runner.finish() == {second: None}
    with sessions() as s:
        (order,) = s.scalars(select(SimOrder)).all()
        assert (order.sim_run_id, order.status, order.fill_price) == (second, "filled", D(90))
        run = s.get(SimRun, first)
        assert run is not None and run.stats["n_trades"] == 0
        assert run.final_equity == D(10_000) and run.initial_cash == D(10_000)


@pytest.mark.parametrize(("run_bars", "warm_bars"), [(1, 10), (10, 0)])
def test_run_and_warm_lengths_are_checked(sessions, run_bars: int, warm_bars: int) -> None:
    with pytest.raises(ValueError, match="need run_bars >= 2 and warm_bars >= 1"):
        SimRunner(
            sessions,
            [],
            timeframe=timedelta(minutes=1),
            config=EngineConfig(),
            run_bars=run_bars,
            warm_bars=warm_bars,
        )


def fast_sma_runner(sessions, run_bars: int, report_dir: Path) -> SimRunner:
    """A runner of one quick-trading SMA cross on AAA, 1-minute bars."""
    return SimRunner(
        sessions,
        [(lambda: SmaCross(fast=2, slow=3), "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(),
        run_bars=run_bars,
        report_dir=report_dir,
    )


def test_a_failed_roll_over_keeps_the_run_going_and_tries_again(
    sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "sims"
    blocked.write_text("a file where the report folder should be")
    runner = fast_sma_runner(sessions, 20, blocked)
    (first,) = runner.start()
    (sim,) = runner._sims["AAA"]
    series = as_bars(bars(60, seed=4), "AAA")
    with caplog.at_level(logging.ERROR, logger="sigma.runtime.sim"):
        for bar in series[:25]:
            runner.on_bar(bar)
    assert f"run {first} could not be finished after 20 bars" in caplog.text
    assert (sim.run_id, sim.bars, sim.equity.size) == (first, 25, 40)
    with sessions() as s:
        assert s.get(SimRun, first).status == "running"  # the failed transaction left it open
    blocked.unlink()  # the disk is writable again: the next attempt, at 40 bars, succeeds
    for bar in series[25:45]:
        runner.on_bar(bar)
    assert sim.run_id != first and (sim.bars, sim.equity.size) == (5, 20)
    with sessions() as s:
        run = s.get(SimRun, first)
        assert run.status == "finished" and run.stats["bars"] == 40
    assert (blocked / f"sim_{first}_sma_cross" / "report.html").exists()


async def test_bars_and_roll_overs_run_beside_the_event_loop(
    sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow roll-over (a report on a busy disk) must not stall the loop the bot shares."""
    real_report = sim_module.write_backtest_html

    def slow_report(*args: Any, **kwargs: Any) -> Path:
        time.sleep(0.5)
        return real_report(*args, **kwargs)

    monkeypatch.setattr(sim_module, "write_backtest_html", slow_report)
    runner = fast_sma_runner(sessions, 5, tmp_path / "sims")
    (first,) = runner.start()
    pubsub = InMemoryPubSub()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(pubsub, decode_tick, stop))
    await runner.subscribed.wait()
    gaps: list[float] = []

    async def beat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    beating = asyncio.create_task(beat())
    for tick in ticks(bars(8), "AAA"):
        await pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
    while runner.bars_seen < 7:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(task, beating)
    with sessions() as s:
        assert s.get(SimRun, first).status == "finished"  # the roll-over did happen
    assert max(gaps) < 0.4  # the report alone sleeps 0.5 s


class _Guarded(Strategy):
    """Every ninth minute when flat: a limit entry good for three bars with a stop-loss and a
    trailing stop (long or short by the minute), so a run may end with protection armed on
    the position or waiting for its entry. Decides on time, price and position only."""

    name = "guarded"

    def on_bar(self) -> None:
        when = self.data.time(self.bar_index)
        minute = when.hour * 60 + when.minute
        close = float(self.data.close[-1])
        if self.position != 0 or self.orders or minute % 9:
            return
        if minute % 18:
            self.buy(1, limit=close - 0.02, bars=3, sl=close * 0.99, trailing_pct=0.003)
        else:
            self.sell(1, limit=close + 0.02, bars=3, sl=close * 1.01, tp=close * 0.99)


@pytest.mark.parametrize("split", [262, 263, 264, 272])
def test_a_restart_carries_protective_orders_on(sessions, split: int) -> None:
    frame = bars(700, seed=12)
    fm = FillModel(commission_pct=D("0.001"))
    config = EngineConfig(initial_cash=D(10_000), fill_model=fm)

    def runner() -> SimRunner:
        return SimRunner(
            sessions,
            [(_Guarded, "AAA")],
            timeframe=timedelta(minutes=1),
            config=config,
            run_bars=10_000,
        )

    first = runner()
    first.start()
    for bar in as_bars(frame.iloc[:split], "AAA"):
        first.on_bar(bar)
    first.finish()
    with sessions.begin() as s:
        upsert_bars(s, "AAA", "1m", frame.iloc[:split])
        kept = s.scalars(select(SimRun.account)).one()
    assert kept["protective"] or kept["pending"], "the split should fall on held orders"
    second = runner()
    second.start()
    for bar in as_bars(frame.iloc[split:], "AAA"):
        second.on_bar(bar)
    second.finish()

    batch, _ = run_backtest(_Guarded(), frame, symbol="AAA", fill_model=fm)
    reasons = {t.exit_reason for t in batch.trades}
    assert {"stop_loss", "trailing_stop", "take_profit"} <= reasons
    with sessions() as s:
        _, again = s.scalars(select(SimRun).order_by(SimRun.id)).all()
        # The account is kept exact; the equity column to its scale.
        assert D(again.account["cash"]) == batch.final_cash
        assert D(again.account["qty"]) == batch.final_position
        assert abs(again.final_equity - batch.final_equity) < D("1e-9")
