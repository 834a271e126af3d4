"""A parameter change proposed through the API goes through the StrategyTester first: on the
stored recent bars the candidate is walked forward against the set in force; a refusal is a
409 with the figures and stores nothing. A trader can lift the regime loop's verdict."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.regime.state import AdaptiveStateStore
from sigma.store.bars import upsert_bars
from sigma.store.db import session_scope
from sigma.store.params import get_active_params, param_history
from tests.api.conftest import add_users, login, make_app

# Holds one side all the time: on a rising market the short side loses in every window.
DIRECTION = '''
from sigma.strategies import Strategy
from sigma.strategies.params import Param


class Direction(Strategy):
    """Long (side 1) or short (side -1) all the time."""

    name = "direction"
    side = Param(1, low=-1, high=1)

    def on_bar(self):
        if self.side > 0:
            self.go_long()
        elif self.side < 0:
            self.go_short()
'''
LOOKBACK = 90
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def rising(n: int) -> pd.DataFrame:
    close = 100.0 * np.exp(0.001 * np.arange(n))
    index = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close},
        index=index,
    ).assign(volume=1000.0)


def _app(tmp_path: Path, test_bars: int) -> App:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "direction.py").write_text(DIRECTION)
    app = make_app(
        f"sqlite:///{tmp_path / f'p{test_bars}.db'}",
        tmp_path / "var",
        strategy_paths=[plugins],
        adaptive_test_bars=test_bars,
        # The live bars are hourly here, so the tester reads the stored 1h bars.
        bar_seconds=3600,
    )
    add_users(app)
    return app


@pytest.fixture
def tested(tmp_path: Path) -> Iterator[tuple[App, TestClient, dict[str, str]]]:
    app = _app(tmp_path, LOOKBACK)
    with TestClient(create_api(api_deps(app), InMemoryPubSub(), static_dir=None)) as client:
        yield app, client, login(client, "trader")
    app.close()


def test_a_change_needs_stored_history_to_be_tested_here(
    tested: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, trader = tested
    answer = client.put("/api/params/direction/BTC", json={"params": {"side": -1}}, headers=trader)
    assert answer.status_code == 200, answer.text
    assert answer.json()["test"].startswith(f"not tested here: 0 of {LOOKBACK} 1h bars of BTC")
    with app.sessions() as s:
        assert get_active_params(s, "direction", "BTC") == {"side": -1}


def test_a_change_that_fails_the_walk_forward_is_refused_and_stores_nothing(
    tested: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, trader = tested
    with session_scope(app.sessions) as s:
        upsert_bars(s, "BTC", "1h", rising(120))
    url = "/api/params/direction/BTC"
    kept = client.put(url, json={"params": {"side": 1}, "reason": "long"}, headers=trader)
    assert kept.status_code == 200, kept.text
    assert kept.json()["test"] == f"passed the walk-forward test on the last {LOOKBACK} 1h bars"
    refused = client.put(url, json={"params": {"side": -1}}, headers=trader)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert detail.startswith("direction on BTC: refused: passed 0 of 3 walk-forward windows")
    assert detail.count(" vs ") == 3  # the figures of each window
    with app.sessions() as s:
        assert get_active_params(s, "direction", "BTC") == {"side": 1}
        assert [c.version for c in param_history(s, "direction", "BTC")] == [1]


def test_with_the_tester_off_the_answer_says_so(tmp_path: Path) -> None:
    app = _app(tmp_path, 0)
    try:
        with TestClient(create_api(api_deps(app), InMemoryPubSub(), static_dir=None)) as client:
            answer = client.put(
                "/api/params/direction/BTC",
                json={"params": {"side": -1}},
                headers=login(client, "trader"),
            )
        assert answer.status_code == 200
        assert answer.json()["test"].startswith("not tested: the StrategyTester is off")
    finally:
        app.close()


def test_a_trader_lifts_a_disable_through_the_api(
    tested: tuple[App, TestClient, dict[str, str]],
) -> None:
    app, client, trader = tested
    url = "/api/strategies/direction/BTC/enable"
    answer = client.post(url, json={"reason": "news was wrong"}, headers=trader)
    assert answer.status_code == 409  # nothing to lift yet
    assert answer.json()["detail"] == "direction on BTC is neither throttled nor disabled"
    store = AdaptiveStateStore(app.sessions)
    store.save_strategy(
        "direction",
        "BTC",
        status="disable",
        score=-1.0,
        reason="lost 20 of 20",
        blocked=frozenset(),
        baseline={"side": 1},
        current={"side": 1},
        ts=T0,
    )
    answer = client.post(url, json={"reason": "news was wrong"}, headers=trader)
    assert answer.status_code == 202, answer.text
    lifted = answer.json()
    assert lifted.pop("bot")["delivered"] is False  # no bot runs: the stored request waits
    assert lifted == {
        "strategy": "direction",
        "symbol": "BTC",
        "status": "disable",
        "reason": "lost 20 of 20",
    }
    (request,) = store.enable_requests("BTC")
    assert (request.strategy, request.by, request.reason) == (
        "direction",
        "api:trader",
        "news was wrong",
    )
    viewer = login(client, "viewer")
    assert client.post(url, json={}, headers=viewer).status_code == 403
