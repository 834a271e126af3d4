"""GET /api/chart: stored bars, the strategy's indicator lines over them (warm from the first
shown bar) and the fills to mark."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.store.db import session_scope
from sigma.store.models import BarRecord, FillRecord, OrderRecord
from sigma.store.params import set_params

Headers = Callable[[str], dict[str, str]]
T0 = datetime(2026, 12, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CLOSES = [100 + (i % 7) for i in range(40)]


def _fill(session: object, cid: str, strategy: str, side: str, minute: int, price: str) -> None:
    session.add(  # type: ignore[attr-defined]
        OrderRecord(
            client_order_id=cid, mode="paper", symbol="BTC", side=side, qty=D("0.5"),
            strategy=strategy, status="filled", filled_qty=D("0.5"),
        )
    )  # fmt: skip
    session.add(  # type: ignore[attr-defined]
        FillRecord(
            client_order_id=cid, qty=D("0.5"), price=D(price), fee=D(0), ts=T0 + minute * MINUTE
        )
    )


@pytest.fixture
def charted(sigma_app: App) -> App:
    with session_scope(sigma_app.sessions) as session:
        for i, close in enumerate(CLOSES):
            session.add(
                BarRecord(
                    symbol="BTC", timeframe="1m", ts=T0 + i * MINUTE, open=D(close),
                    high=D(close + 1), low=D(close - 1), close=D(close), volume=D(i),
                )
            )  # fmt: skip
        set_params(session, "sma_cross", "BTC", {"fast": 3, "slow": 5}, reason="t", changed_by="t")
        _fill(session, "early", "sma_cross", "buy", 2, "101")  # before the shown bars
        _fill(session, "o1", "sma_cross", "buy", 35, "100.5")
        _fill(session, "o2", "rsi_reversion", "sell", 36, "101.5")
    return sigma_app


@pytest.mark.usefixtures("charted")
def test_chart_has_bars_warm_indicator_lines_and_the_strategys_fills(
    client: TestClient, auth: Headers
) -> None:
    query = "/api/chart?symbol=BTC&timeframe=1m&strategy=sma_cross&limit=10"
    body = client.get(query, headers=auth("viewer")).json()
    assert body["params"] == {"fast": 3, "slow": 5, "allow_short": True}
    bars = body["bars"]
    assert len(bars) == 10 and bars[0]["ts"] == "2026-12-01T00:30:00Z"
    assert (bars[-1]["close"], bars[-1]["volume"]) == (str(CLOSES[-1]), "39")
    fast, slow = body["lines"]
    assert (fast["name"], slow["name"]) == ("fast_ma", "slow_ma")
    # Warm from the first shown bar: the look-back was read before it.
    assert fast["values"][0] == pytest.approx(sum(CLOSES[28:31]) / 3)
    assert slow["values"][-1] == pytest.approx(sum(CLOSES[-5:]) / 5)
    assert [(m["client_order_id"], m["side"], m["price"]) for m in body["markers"]] == [
        ("o1", "buy", "100.5")
    ]
    every = client.get("/api/chart?symbol=BTC&limit=10", headers=auth("viewer")).json()
    assert (every["lines"], every["strategy"], every["params"]) == ([], None, {})
    assert [m["client_order_id"] for m in every["markers"]] == ["o1", "o2"]


@pytest.mark.usefixtures("charted")
def test_bollinger_lines_during_warm_up_are_null(client: TestClient, auth: Headers) -> None:
    query = "/api/chart?symbol=BTC&strategy=bollinger_breakout&limit=40"
    body = client.get(query, headers=auth("viewer")).json()
    assert [line["name"] for line in body["lines"]] == ["mid", "upper", "lower"]
    mid = body["lines"][0]["values"]
    assert mid[:19] == [None] * 19 and mid[19] == pytest.approx(sum(CLOSES[:20]) / 20)


def test_chart_of_nothing_stored_and_of_an_unknown_strategy(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    with session_scope(sigma_app.sessions) as session:
        # Stored when they fitted an older version of the strategy: the defaults are charted.
        set_params(session, "sma_cross", "ETH", {"fast": 9, "slow": 5}, reason="t", changed_by="t")
    empty = client.get("/api/chart?symbol=ETH&strategy=sma_cross", headers=auth("viewer")).json()
    assert (empty["bars"], empty["lines"], empty["markers"]) == ([], [], [])
    assert (empty["params"]["fast"], empty["params"]["slow"]) == (10, 20)
    unknown = client.get("/api/chart?symbol=ETH&strategy=nope", headers=auth("viewer"))
    assert unknown.status_code == 404
