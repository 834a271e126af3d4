"""The core read/write flow on PostgreSQL (the production database)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient

from sigma.api import api_deps, create_api
from sigma.api.routers import users as users_router
from sigma.api.routers.trading import FillOut, OrderOut
from sigma.api.serialize import dec
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.store.db import session_scope
from sigma.store.models import FillRecord, OrderRecord, TrendData
from sigma.store.queries import Session
from sigma.store.queries.users import active_admins, get_user
from tests.api.conftest import issue_token, login, serving
from tests.api.test_api_trading import seed

pytestmark = pytest.mark.pg


@pytest.fixture
def pg_client(pg_app: App) -> Iterator[TestClient]:
    seed(pg_app)
    with TestClient(create_api(api_deps(pg_app), InMemoryPubSub(), static_dir=None)) as client:
        yield client


def test_core_flow_on_postgres(pg_client: TestClient, pg_app: App) -> None:
    client = pg_client
    trader, admin, viewer = login(client, "trader"), login(client, "admin"), login(client, "viewer")
    assert client.get("/api/health", headers=viewer).json()["checks"]["database"] == "ok"

    changed = client.put(
        "/api/params/sma_cross/BTC", json={"params": {"fast": 8}, "reason": "pg"}, headers=trader
    )
    assert changed.status_code == 200 and changed.json()["params"]["fast"] == 8
    history = client.get("/api/params/sma_cross/BTC/history", headers=viewer).json()
    assert [h["changed_by"] for h in history] == ["trader"]

    run = client.post(
        "/api/backtests",
        json={"strategy": "donchian_trend", "symbol": "BTC", "bars": 300},
        headers=trader,
    ).json()
    detail = client.get(f"/api/backtests/{run['id']}", headers=viewer).json()
    assert detail["summary"]["final_equity"] == run["final_equity"]
    assert len(detail["trades"]) == run["stats"]["n_trades"]
    assert client.get(f"/api/backtests/{run['id']}/report", headers=viewer).status_code == 200

    switched = client.put(
        "/api/risk/kill-switch", json={"enabled": True, "reason": "pg test"}, headers=admin
    ).json()
    assert (switched["enabled"], switched["changed_by"]) == (True, "admin")
    assert client.get("/api/alerts?severity=critical", headers=viewer).json()[0]["source"] == "api"

    orders = client.get("/api/orders?status=filled", headers=viewer).json()
    assert [o["client_order_id"] for o in orders] == ["o3", "o1"]
    window = "since=2024-03-01T12:30:00Z&until=2024-03-02T00:00:00Z"
    assert [
        o["client_order_id"] for o in client.get(f"/api/orders?{window}", headers=viewer).json()
    ] == ["o2"]
    assert client.get("/api/ledger/summary", headers=viewer).json()["paper"] == {
        "cash": "-40.125",
        "fees": "0.06",
        "realized_pnl": "-1.5",
        "entries": 2,
    }
    assert client.get("/api/ledger/summary", headers=viewer).json()["live"] == {
        "cash": "55",
        "fees": "0.05",
        "realized_pnl": "4.875",
        "entries": 1,
    }
    # Grouped in SQL on PostgreSQL: the same figures as the exact Python path on SQLite.
    assert client.get("/api/pnl", headers=viewer).json() == [
        {"key": "2024-03-01", "realized_pnl": "0", "fees": "0.05", "entries": 1},
        {"key": "2024-03-02", "realized_pnl": "3.375", "fees": "0.06", "entries": 2},
    ]
    by_strategy = client.get("/api/pnl?by=strategy&mode=paper", headers=viewer).json()
    assert [(r["key"], r["realized_pnl"]) for r in by_strategy] == [
        ("rsi_reversion", "-1.5"),
        ("sma_cross", "0"),
    ]
    late = client.get(
        "/api/pnl?by=symbol&since=2024-03-02T13:00:00Z&until=2024-03-03T00:00:00Z", headers=viewer
    ).json()
    assert [(r["key"], r["entries"]) for r in late] == [("ETH", 1)]
    fills = client.get("/api/fills?mode=paper", headers=viewer).json()
    assert [f["price"] for f in fills] == ["100.41666", "100"]
    run = client.get("/api/sim/runs?symbol=BTC&since=2024-03-01T00:00:00Z", headers=viewer).json()
    sim_orders = client.get(f"/api/sim/runs/{run[0]['id']}/orders", headers=viewer).json()
    assert [(o["client_order_id"], o["fill_price"]) for o in sim_orders] == [
        ("s1", "100.1"),
        ("s2", None),
    ]

    with session_scope(pg_app.sessions) as session:
        for hour, trend in enumerate(["range", "trend_up"]):
            session.add(
                TrendData(
                    symbol="BTC",
                    timeframe="1h",
                    ts=datetime(2024, 3, 1, hour, tzinfo=UTC),
                    trend=trend,
                    strength=0.5,
                )
            )
    latest = client.get("/api/trends/latest", headers=viewer).json()
    assert [(t["symbol"], t["trend"]) for t in latest] == [("BTC", "trend_up")]

    prefs = client.put("/api/me/prefs", json={"layout": {"cols": 2}}, headers=viewer)
    assert prefs.json() == {"layout": {"cols": 2}}
    created = client.post(
        "/api/users", json={"username": "pguser", "password": "long-enough"}, headers=admin
    )
    assert created.status_code == 201


def test_values_postgres_refuses_are_client_errors(pg_client: TestClient) -> None:
    viewer, admin = login(pg_client, "viewer"), login(pg_client, "admin")
    for path in ("/api/orders?symbol=BT%00C", "/api/trends?symbol=%00", "/api/pnl?mode=paper"):
        response = pg_client.get(path, headers=viewer)
        assert response.status_code in (200, 422), (path, response.text)
    nul = pg_client.get("/api/orders?symbol=BT%00C", headers=viewer)
    assert nul.status_code == 422
    assert nul.json() == {
        "detail": 'a value was refused by the database: invalid byte sequence for encoding "UTF8": '
        "0x00"
    }
    nul_reason = pg_client.put(
        "/api/risk/kill-switch", json={"enabled": False, "reason": "x\u0000"}, headers=admin
    )
    assert nul_reason.status_code == 422
    assert nul_reason.json()["detail"].startswith("a value was refused by the database: ")
    huge = pg_client.get(f"/api/backtests/{2**31}", headers=viewer)
    assert huge.status_code == 422
    assert huge.json()["detail"].startswith("path.backtest_id: Input should be less than")


def test_positions_and_partial_day_windows_on_postgres(pg_client: TestClient) -> None:
    viewer = login(pg_client, "viewer")
    positions = pg_client.get("/api/positions", headers=viewer).json()
    assert [(p["mode"], p["qty"], p["realized_pnl"]) for p in positions] == [
        ("live", "0", "4.875"),
        ("paper", "0.5", "0"),
    ]
    # Whole days from ledger_daily, the partial day at each end entry by entry.
    window = "since=2024-03-01T12:00:00Z&until=2024-03-02T13:00:00Z"
    assert pg_client.get(f"/api/pnl?{window}", headers=viewer).json() == [
        {"key": "2024-03-01", "realized_pnl": "0", "fees": "0.05", "entries": 1},
        {"key": "2024-03-02", "realized_pnl": "4.875", "fees": "0.05", "entries": 1},
    ]
    assert pg_client.get("/api/ledger/summary", headers=viewer).json()["live"]["cash"] == "55"
    # A time without an offset is UTC.
    naive = pg_client.get("/api/orders?since=2024-03-01T12:30:00", headers=viewer).json()
    assert [o["client_order_id"] for o in naive] == ["o3", "o2"]


AMOUNTS = ["0", "-0", "1", "0.5", "-12.3456789012", "0.0000000001", "123456789012345678.9", "100"]


def _diverse(app: App) -> None:
    """Orders and fills with every shape of amount and timestamp a listing must render."""
    t0 = datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC)
    with session_scope(app.sessions) as s:
        for i, amount in enumerate(AMOUNTS):
            coid = f"d{i}"
            s.add(
                OrderRecord(
                    client_order_id=coid,
                    exchange_order_id=None if i % 2 else f"x-{i}",
                    mode=("paper", "live")[i % 2],
                    symbol="BTC",
                    side="buy",
                    type="limit",
                    qty=Decimal(amount),
                    limit_price=None if i % 3 else Decimal(amount),
                    status="filled",
                    strategy='s\u00e9/"q"',
                    filled_qty=Decimal(amount),
                    created_at=t0 + timedelta(microseconds=1500 * i),
                    updated_at=t0 + timedelta(seconds=i),
                )
            )
            s.flush()
            s.add(FillRecord(client_order_id=coid, qty=Decimal(amount), price=Decimal("2"), ts=t0))


def test_listings_are_the_same_json_on_both_databases(pg_app: App, sigma_app: App) -> None:
    bodies = []
    for app in (sigma_app, pg_app):
        _diverse(app)
        with TestClient(create_api(api_deps(app), InMemoryPubSub(), static_dir=None)) as client:
            viewer = login(client, "viewer")
            bodies.append(
                [
                    client.get(path, headers=viewer).content
                    for path in (
                        "/api/orders?limit=1000",
                        "/api/orders?mode=live&limit=2&offset=1",
                        "/api/fills",
                        "/api/fills?since=2024-03-01T23:59:59Z&strategy=s%C3%A9%2F%22q%22",
                    )
                ]
            )
    sqlite, postgres = bodies
    assert sqlite == postgres  # byte for byte
    orders = [OrderOut.model_validate(o) for o in json.loads(sqlite[0])]
    assert [o.qty for o in orders] == [dec(Decimal(a)) for a in reversed(AMOUNTS)]
    assert orders[-1].created_at.microsecond == 0 and orders[-2].created_at.microsecond == 1500
    assert b'"created_at":"2024-03-01T23:59:59.001500Z"' in sqlite[0]
    assert [FillOut.model_validate(f).qty for f in json.loads(sqlite[3])] == [
        dec(Decimal(a)) for a in reversed(AMOUNTS)
    ]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    pg_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each request counts the admins, then demotes: both must not count two and both demote.
    both_counting = threading.Barrier(2, timeout=10)

    def counted_together(session: Session, **kwargs: bool) -> int:
        both_counting.wait()
        return active_admins(session, **kwargs)

    monkeypatch.setattr(users_router, "active_admins", counted_together)
    with session_scope(pg_app.sessions) as session:
        trader = get_user(session, "trader")
        assert trader is not None
        trader.role = "admin"
    with serving(pg_app) as (port, api, _):
        tokens = {name: issue_token(api, name) for name in ("admin", "trader")}
        url = f"http://127.0.0.1:{port}/api/users"

        def demote(pair: tuple[str, str]) -> int:
            by, whom = pair
            headers = {"Authorization": f"Bearer {tokens[by]}"}
            return httpx.patch(
                f"{url}/{whom}", json={"role": "viewer"}, headers=headers
            ).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(demote, [("admin", "trader"), ("trader", "admin")]))
    assert statuses == [200, 409]
    with pg_app.sessions() as session:
        assert active_admins(session) == 1
