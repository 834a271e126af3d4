"""GET /api/portfolio: the profit summary over booked ledger entries and positions, marked at
the last price (live from the bus, else stored)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Side
from sigma.execution.settlement import Holding, settle
from sigma.store.db import session_scope
from sigma.store.models import BarRecord, LedgerEntry, PositionRecord, TickRecord
from tests.api.conftest import add_users, make_app
from tests.engine.test_engine_profit import DAY1, FILLS

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def sigma_app(tmp_path: Path) -> Iterator[App]:
    """One configured account (sma_cross on BTC) with 10,000 to start."""
    app = make_app(
        f"sqlite:///{tmp_path / 'sigma.db'}",
        tmp_path / "var",
        symbols=["BTC"],
        live_strategies=["sma_cross"],
        initial_cash=D(10_000),
    )
    add_users(app)
    yield app
    app.close()


def book(app: App) -> None:
    """FILLS booked on sma_cross/BTC, an old rsi_reversion/ETH short no longer configured,
    stored prices for both, and a live-mode entry that the paper summary leaves out."""
    holding = Holding()
    with session_scope(app.sessions) as session:
        for side, qty, price, fee, ts in FILLS:
            result = settle(holding, side, qty, price, fee)
            holding = result.holding
            session.add(
                LedgerEntry(
                    ts=ts, mode="paper", symbol="BTC", strategy="sma_cross",
                    cash_delta=result.cash_delta, fee=result.fee,
                    realized_pnl=result.realized_pnl, reason="fill",
                )
            )  # fmt: skip
        session.add(
            PositionRecord(
                symbol="BTC", strategy="sma_cross", mode="paper",
                qty=holding.qty, avg_price=holding.avg_price, realized_pnl=D(15),
            )
        )  # fmt: skip
        short = settle(Holding(), Side.SELL, D(3), D(50), D(0))
        session.add(
            LedgerEntry(
                ts=DAY1, mode="paper", symbol="ETH", strategy="rsi_reversion",
                cash_delta=short.cash_delta, fee=D(0), realized_pnl=D(0), reason="fill",
            )
        )  # fmt: skip
        session.add(
            PositionRecord(symbol="ETH", strategy="rsi_reversion", mode="paper", qty=D(-3),
                           avg_price=D(50))
        )  # fmt: skip
        session.add(
            LedgerEntry(ts=DAY1, mode="live", symbol="BTC", strategy="sma_cross",
                        cash_delta=D(-1), reason="fill")
        )  # fmt: skip
        # The newest stored price wins: BTC's tick is later than its bar.
        bar = {"open": D(1), "high": D(1), "low": D(1), "volume": D(0)}
        session.add(BarRecord(symbol="BTC", timeframe="1m", ts=DAY1, close=D(95), **bar))
        session.add(TickRecord(symbol="BTC", ts=DAY1 + timedelta(days=2), price=D(90)))
        session.add(BarRecord(symbol="ETH", timeframe="1m", ts=DAY1, close=D(40), **bar))


def test_summary_per_account_and_total_with_assets_and_days(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    book(sigma_app)
    body = client.get("/api/portfolio", headers=auth("viewer")).json()
    assert body["mode"] == "paper"
    eth, btc = body["accounts"]  # by strategy, then symbol
    assert (btc["strategy"], btc["symbol"], btc["qty"], btc["last_price"]) == (
        "sma_cross", "BTC", "1", "90",
    )  # fmt: skip
    assert (btc["cash"], btc["position_value"], btc["equity"]) == ("9914.225", "90", "10004.225")
    assert (btc["closed_pnl"], btc["open_pnl"], btc["total_pnl"]) == ("14.225", "-10", "4.225")
    assert (btc["total_pnl_pct"], btc["closed_pnl_pct"], btc["open_pnl_pct"]) == (
        "0.0423", "0.1423", "-0.1",
    )  # fmt: skip
    assert (btc["trades"], btc["wins"], btc["losses"], btc["win_rate_pct"]) == (2, 1, 1, "50")
    assert (btc["max_drawdown"], btc["max_drawdown_pct"]) == ("15.205", "0.1518")
    assert (eth["strategy"], eth["qty"], eth["position_value"], eth["open_pnl"]) == (
        "rsi_reversion", "-3", "-120", "30",
    )  # fmt: skip
    total = body["total"]
    assert total["starting_capital"] == "20000"
    # The accounting identity, exactly, on the strings the API sends.
    assert D(total["equity"]) == D(total["cash"]) + D(total["position_value"]) == D("20034.225")
    assert D(total["total_pnl"]) == D(total["closed_pnl"]) + D(total["open_pnl"]) == D("34.225")
    assert [(a["asset"], a["qty"], a["value"], a["exposure_pct"]) for a in body["assets"]] == [
        ("cash", "20064.225", "20064.225", "100.1497"),
        ("BTC", "1", "90", "0.4492"),
        ("ETH", "-3", "-120", "-0.599"),
    ]
    assert [(d["day"], d["net"], d["trades"], d["cumulative"]) for d in body["daily"]] == [
        ("2026-12-01", "19.43", 1, "19.43"),
        ("2026-12-02", "-5.205", 1, "14.225"),
    ]
    live = client.get("/api/portfolio?mode=live", headers=auth("viewer")).json()
    assert live["total"]["cash"] == "9999"  # the configured account, with its one entry


def test_a_live_price_on_the_bus_marks_the_positions(
    sigma_app: App, client: TestClient, auth: Headers, pubsub: InMemoryPubSub
) -> None:
    book(sigma_app)
    # ETH's message has no usable price: its stored one stays.
    for update in ({"symbol": "ETH", "price": "n/a"}, {"symbol": "BTC", "price": "110"}):
        message = json.dumps(update).encode()
        client.portal.call(pubsub.publish, "price_update", message)  # type: ignore[union-attr]
    deadline = time.monotonic() + 5
    while len(client.get("/api/prices", headers=auth("viewer")).json()) < 2:
        assert time.monotonic() < deadline, "the price never reached the API"
    body = client.get("/api/portfolio", headers=auth("viewer")).json()
    eth, btc = body["accounts"]
    assert (btc["last_price"], btc["open_pnl"], btc["equity"]) == ("110", "10", "10024.225")
    assert eth["last_price"] == "40"


def test_accounts_without_a_price_are_marked_at_their_entry(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    with session_scope(sigma_app.sessions) as session:
        session.add(
            PositionRecord(symbol="BTC", strategy="sma_cross", mode="paper", qty=D(2),
                           avg_price=D(100))
        )  # fmt: skip
    body = client.get("/api/portfolio", headers=auth("viewer")).json()
    (btc,) = body["accounts"]
    assert (btc["last_price"], btc["position_value"], btc["open_pnl"]) == (None, "200", "0")
    assert body["assets"][1]["price"] is None
    assert client.get("/api/portfolio").status_code == 401
