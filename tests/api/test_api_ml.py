"""GET /api/ml/models: every stored gate model version per symbol with its out-of-sample
comparison and whether it is in use."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.research.ml_tune import TuneConfig
from sigma.research.ml_validate import tune_symbol
from sigma.store.db import session_scope
from sigma.strategies.builtin import SmaCross
from tests.research.ml_helpers import trending_bars

Headers = Callable[[str], dict[str, str]]


def test_model_versions_with_their_comparison(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    assert client.get("/api/ml/models", headers=auth("viewer")).json() == []
    fast = TuneConfig(n_estimators=10)
    with session_scope(sigma_app.sessions) as session:
        for symbol, seed in (("BTC", 0), ("ETH", 1), ("BTC", 2)):
            tune_symbol(session, symbol, trending_bars(seed=seed), [SmaCross], config=fast)
    response = client.get("/api/ml/models", headers=auth("viewer"))
    assert response.status_code == 200
    rows = response.json()
    assert [(r["symbol"], r["version"]) for r in rows] == [("BTC", 2), ("BTC", 1), ("ETH", 1)]
    newest = rows[0]
    assert not rows[1]["active"]  # at most one version per symbol is in use
    assert newest["config"]["n_estimators"] == 10
    assert 0 <= newest["accuracy"] <= 1 and 0 <= newest["baseline_accuracy"] <= 1
    gate = newest["gate"]
    assert gate["beats_ungated"] == (float(gate["gated_pnl"]) > float(gate["ungated_pnl"]))
    assert newest["active"] == (
        gate["beats_ungated"] and newest["accuracy"] - newest["baseline_accuracy"] >= 0.01
    )
    assert set(gate["strategies"]["sma_cross"]) == {"gated", "ungated"}
    only = client.get("/api/ml/models?symbol=ETH&limit=5", headers=auth("viewer")).json()
    assert [(r["symbol"], r["version"]) for r in only] == [("ETH", 1)]
    assert client.get("/api/ml/models?limit=0", headers=auth("viewer")).status_code == 422
    assert client.get("/api/ml/models").status_code == 401
