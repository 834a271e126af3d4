"""SimRunner: paper fills on the live stream, stored in sim_orders, same result as a backtest."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from sigma.domain import Tick
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.research.backtest import run_backtest
from sigma.runtime.sim import SimRunner, rate_sim_run
from sigma.store.db import init_db, session_factory
from sigma.store.models import SimOrder, SimRun
from sigma.strategies.builtin import RsiReversion, SmaCross

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


def test_rating_and_comment(sessions) -> None:
    runner = SimRunner(
        sessions, [(SmaCross, "AAA")], timeframe=timedelta(minutes=1), config=EngineConfig()
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
