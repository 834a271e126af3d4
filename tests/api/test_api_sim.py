"""Simulation runs through the API when the SimRunner rolled them over: several runs per
strategy and symbol, each with its own orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.engine.engine import EngineConfig
from sigma.engine.fill_model import FillModel
from sigma.runtime.sim import SimRunner
from sigma.strategies.builtin import RsiReversion, SmaCross
from tests.runtime.test_runtime_sim import as_bars, bars

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def rolled(sigma_app: App, tmp_path: Path) -> SimRunner:
    """Two strategies on AAA for 350 bars in runs of 100: four runs each."""
    runner = SimRunner(
        sigma_app.sessions,
        [(lambda: SmaCross(fast=5, slow=20), "AAA"), (RsiReversion, "AAA")],
        timeframe=timedelta(minutes=1),
        config=EngineConfig(fill_model=FillModel(commission_pct=Decimal("0.001"))),
        run_bars=100,
        report_dir=tmp_path / "sims",
    )
    runner.start()
    for bar in as_bars(bars(350), "AAA"):
        runner.on_bar(bar)
    runner.finish()
    return runner


@pytest.mark.usefixtures("rolled")
def test_rolled_over_runs_list_newest_first_and_chain(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    runs = client.get("/api/sim/runs?strategy=sma_cross&symbol=AAA", headers=h).json()
    assert len(runs) == 4 and all(r["status"] == "finished" for r in runs)
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
    assert [r["stats"]["bars"] for r in runs] == [50, 100, 100, 100]
    assert runs[-1]["initial_cash"] == "10000"
    # Newest first: each run starts with the equity the run before it ended with.
    assert [r["initial_cash"] for r in runs[:-1]] == [r["final_equity"] for r in runs[1:]]
    older = client.get("/api/sim/runs?strategy=sma_cross&limit=2&offset=2", headers=h).json()
    assert [r["id"] for r in older] == [r["id"] for r in runs[2:]]
    everything = client.get("/api/sim/runs", headers=h).json()
    assert sorted(r["strategy"] for r in everything) == ["rsi_reversion"] * 4 + ["sma_cross"] * 4


@pytest.mark.usefixtures("rolled")
def test_each_rolled_over_run_has_its_own_orders(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    runs = client.get("/api/sim/runs?strategy=sma_cross", headers=h).json()
    seen: set[str] = set()
    for run in runs:
        orders = client.get(f"/api/sim/runs/{run['id']}/orders?limit=1000", headers=h).json()
        assert orders, run["id"]
        start, end = (datetime.fromisoformat(run["stats"][k]) for k in ("start", "end"))
        assert all(start <= datetime.fromisoformat(o["ts"]) <= end for o in orders)
        ids = {o["client_order_id"] for o in orders}
        assert not ids & seen
        seen |= ids
        fees = sum((Decimal(o["fee"]) for o in orders), start=Decimal(0))
        assert fees == Decimal(run["stats"]["total_fees"])
