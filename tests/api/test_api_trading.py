"""Read endpoints over orders, fills, positions, ledger, PnL, simulation runs and logs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from sigma.bootstrap import App
from sigma.store.alerts import record_alert
from sigma.store.db import session_scope
from sigma.store.models import (
    ActionLog,
    AlertLog,
    FillRecord,
    LedgerEntry,
    OrderRecord,
    PositionRecord,
    SimOrder,
    SimRun,
)

Headers = Callable[[str], dict[str, str]]
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def seed(app: App) -> None:
    """Two paper orders (BTC filled, ETH new) and a live one, their fills, ledger and
    positions, two simulation runs (the first with two orders), two alerts and two actions."""
    with session_scope(app.sessions) as s:
        orders = [
            OrderRecord(
                client_order_id="o1",
                mode="paper",
                symbol="BTC",
                side="buy",
                qty=Decimal("0.5"),
                status="filled",
                strategy="sma_cross",
                filled_qty=Decimal("0.5"),
                avg_fill_price=Decimal("100.25"),
                created_at=T0,
            ),
            OrderRecord(
                client_order_id="o2",
                mode="paper",
                symbol="ETH",
                side="sell",
                type="limit",
                qty=Decimal("2"),
                limit_price=Decimal("50.5"),
                status="new",
                strategy="rsi_reversion",
                created_at=T0 + timedelta(hours=1),
            ),
            OrderRecord(
                client_order_id="o3",
                mode="live",
                symbol="BTC",
                side="sell",
                qty=Decimal("0.5"),
                status="filled",
                strategy="sma_cross",
                filled_qty=Decimal("0.5"),
                avg_fill_price=Decimal("110"),
                created_at=T0 + timedelta(days=1),
            ),
        ]
        s.add_all(orders)
        s.flush()
        s.add_all(
            [
                FillRecord(
                    client_order_id="o1",
                    qty=Decimal("0.2"),
                    price=Decimal("100"),
                    fee=Decimal("0.02"),
                    ts=T0,
                ),
                FillRecord(
                    client_order_id="o1",
                    qty=Decimal("0.3"),
                    price=Decimal("100.41666"),
                    fee=Decimal("0.03"),
                    ts=T0 + timedelta(minutes=1),
                ),
                FillRecord(
                    client_order_id="o3",
                    qty=Decimal("0.5"),
                    price=Decimal("110"),
                    fee=Decimal("0.05"),
                    ts=T0 + timedelta(days=1),
                ),
                LedgerEntry(
                    ts=T0,
                    mode="paper",
                    symbol="BTC",
                    strategy="sma_cross",
                    cash_delta=Decimal("-50.125"),
                    fee=Decimal("0.05"),
                    reason="fill",
                    client_order_id="o1",
                ),
                LedgerEntry(
                    ts=T0 + timedelta(days=1),
                    mode="live",
                    symbol="BTC",
                    strategy="sma_cross",
                    cash_delta=Decimal("55"),
                    fee=Decimal("0.05"),
                    realized_pnl=Decimal("4.875"),
                    reason="fill",
                    client_order_id="o3",
                ),
                LedgerEntry(
                    ts=T0 + timedelta(days=1, hours=2),
                    mode="paper",
                    symbol="ETH",
                    strategy="rsi_reversion",
                    cash_delta=Decimal("10"),
                    fee=Decimal("0.01"),
                    realized_pnl=Decimal("-1.5"),
                    reason="fill",
                ),
                PositionRecord(
                    symbol="BTC",
                    strategy="sma_cross",
                    mode="paper",
                    qty=Decimal("0.5"),
                    avg_price=Decimal("100.25"),
                ),
                PositionRecord(
                    symbol="BTC",
                    strategy="sma_cross",
                    mode="live",
                    qty=Decimal("0"),
                    avg_price=Decimal("0"),
                    realized_pnl=Decimal("4.875"),
                ),
                SimRun(
                    strategy="sma_cross",
                    symbol="BTC",
                    params={"fast": 5},
                    initial_cash=Decimal("1000"),
                    final_equity=Decimal("1012.5"),
                    stats={"n_trades": 3},
                    started_at=T0,
                    orders=[
                        SimOrder(
                            client_order_id="s2",
                            ts=T0 + timedelta(minutes=2),
                            symbol="BTC",
                            side="sell",
                            type="limit",
                            qty=Decimal("0.5"),
                            limit_price=Decimal("105.50"),
                        ),
                        SimOrder(
                            client_order_id="s1",
                            ts=T0 + timedelta(minutes=1),
                            symbol="BTC",
                            side="buy",
                            qty=Decimal("0.5"),
                            status="filled",
                            fill_price=Decimal("100.10"),
                            fee=Decimal("0.05"),
                        ),
                    ],
                ),
                SimRun(
                    strategy="rsi_reversion",
                    symbol="ETH",
                    initial_cash=Decimal("1000"),
                    started_at=T0 + timedelta(hours=1),
                ),
                AlertLog(ts=T0, severity="warning", source="feed", message="feed stale"),
                AlertLog(
                    ts=T0 + timedelta(minutes=5),
                    severity="critical",
                    source="risk",
                    message="drawdown",
                ),
                ActionLog(
                    ts=T0,
                    source="bot",
                    action="signal",
                    mode="paper",
                    strategy="sma_cross",
                    symbol="BTC",
                    details={"side": "buy"},
                ),
                ActionLog(
                    ts=T0 + timedelta(seconds=1),
                    source="risk",
                    action="order_rejected",
                    mode="paper",
                    strategy="rsi_reversion",
                    symbol="ETH",
                    details={},
                ),
            ]
        )


@pytest.fixture
def seeded(sigma_app: App) -> App:
    seed(sigma_app)
    return sigma_app


def ids(rows: list[dict[str, object]], key: str = "client_order_id") -> list[object]:
    return [r[key] for r in rows]


@pytest.mark.usefixtures("seeded")
def test_orders_newest_first_with_filters(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    everything = client.get("/api/orders", headers=h).json()
    assert ids(everything) == ["o3", "o2", "o1"]
    o2 = everything[1]
    assert (o2["type"], o2["qty"], o2["limit_price"], o2["stop_price"]) == (
        "limit",
        "2",
        "50.5",
        None,
    )
    assert everything[2]["avg_fill_price"] == "100.25" and everything[2]["filled_qty"] == "0.5"
    assert ids(client.get("/api/orders?status=filled", headers=h).json()) == ["o3", "o1"]
    assert ids(client.get("/api/orders?symbol=ETH", headers=h).json()) == ["o2"]
    assert ids(client.get("/api/orders?mode=live", headers=h).json()) == ["o3"]
    assert ids(client.get("/api/orders?strategy=sma_cross", headers=h).json()) == ["o3", "o1"]
    window = "since=2024-03-01T12:30:00Z&until=2024-03-02T00:00:00Z"
    assert ids(client.get(f"/api/orders?{window}", headers=h).json()) == ["o2"]
    assert ids(client.get("/api/orders?limit=1&offset=1", headers=h).json()) == ["o2"]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("status=lost", "query.status: Input should be"),
        ("mode=demo", "query.mode: Input should be 'live' or 'paper'"),
        ("limit=0", "query.limit: Input should be greater than or equal to 1"),
        ("since=yesterday", "query.since: Input should be a valid datetime"),
    ],
)
def test_bad_order_queries_are_422(
    client: TestClient, auth: Headers, query: str, detail: str
) -> None:
    response = client.get(f"/api/orders?{query}", headers=auth("viewer"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


@pytest.mark.usefixtures("seeded")
def test_fills_with_their_order(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    fills = client.get("/api/fills", headers=h).json()
    assert [(f["client_order_id"], f["qty"]) for f in fills] == [
        ("o3", "0.5"),
        ("o1", "0.3"),
        ("o1", "0.2"),
    ]
    assert fills[1] | {"id": 0, "ts": ""} == {
        "id": 0,
        "client_order_id": "o1",
        "symbol": "BTC",
        "strategy": "sma_cross",
        "mode": "paper",
        "side": "buy",
        "qty": "0.3",
        "price": "100.41666",
        "fee": "0.03",
        "ts": "",
    }
    assert len(client.get("/api/fills?mode=paper", headers=h).json()) == 2
    assert client.get("/api/fills?symbol=ETH", headers=h).json() == []
    assert len(client.get("/api/fills?strategy=sma_cross&limit=2", headers=h).json()) == 2
    assert (
        len(
            client.get(
                "/api/fills?since=2024-03-01T12:00:30Z&until=2024-03-02T00:00:00Z", headers=h
            ).json()
        )
        == 1
    )


@pytest.mark.usefixtures("seeded")
def test_positions_by_mode(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    assert len(client.get("/api/positions", headers=h).json()) == 2
    paper = client.get("/api/positions?mode=paper", headers=h).json()
    assert [(p["symbol"], p["qty"], p["avg_price"], p["realized_pnl"]) for p in paper] == [
        ("BTC", "0.5", "100.25", "0")
    ]


@pytest.mark.usefixtures("seeded")
def test_ledger_summary_is_exact_per_mode(client: TestClient, auth: Headers) -> None:
    summary = client.get("/api/ledger/summary", headers=auth("viewer")).json()
    assert summary == {
        "live": {"cash": "55", "fees": "0.05", "realized_pnl": "4.875", "entries": 1},
        "paper": {"cash": "-40.125", "fees": "0.06", "realized_pnl": "-1.5", "entries": 2},
    }


def test_ledger_summary_of_empty_ledger(client: TestClient, auth: Headers) -> None:
    assert client.get("/api/ledger/summary", headers=auth("viewer")).json() == {}


@pytest.mark.usefixtures("seeded")
def test_pnl_grouped_by_day_strategy_symbol(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    by_day = client.get("/api/pnl", headers=h).json()
    assert by_day == [
        {"key": "2024-03-01", "realized_pnl": "0", "fees": "0.05", "entries": 1},
        {"key": "2024-03-02", "realized_pnl": "3.375", "fees": "0.06", "entries": 2},
    ]
    by_strategy = client.get("/api/pnl?by=strategy", headers=h).json()
    assert [(r["key"], r["realized_pnl"]) for r in by_strategy] == [
        ("rsi_reversion", "-1.5"),
        ("sma_cross", "4.875"),
    ]
    by_symbol = client.get("/api/pnl?by=symbol&mode=live", headers=h).json()
    assert [(r["key"], r["realized_pnl"]) for r in by_symbol] == [("BTC", "4.875")]
    late = client.get(
        "/api/pnl?by=symbol&since=2024-03-02T13:00:00Z&until=2024-03-03T00:00:00Z", headers=h
    )
    assert [(r["key"], r["entries"]) for r in late.json()] == [("ETH", 1)]


@pytest.mark.usefixtures("seeded")
def test_sim_runs_and_rating(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    runs = client.get("/api/sim/runs", headers=h).json()
    assert [r["strategy"] for r in runs] == ["rsi_reversion", "sma_cross"]
    assert runs[1]["final_equity"] == "1012.5" and runs[0]["final_equity"] is None
    assert [
        r["symbol"] for r in client.get("/api/sim/runs?strategy=sma_cross", headers=h).json()
    ] == ["BTC"]
    run_id = runs[1]["id"]
    rated = client.post(
        f"/api/sim/runs/{run_id}/rating",
        json={"rating": 4, "comment": "steady"},
        headers=auth("trader"),
    )
    assert rated.status_code == 200
    assert (rated.json()["rating"], rated.json()["comment"]) == (4, "steady")
    again = client.get("/api/sim/runs?strategy=sma_cross", headers=h).json()[0]
    assert (again["rating"], again["comment"]) == (4, "steady")


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("query", "symbols"),
    [
        ("symbol=ETH", ["ETH"]),
        ("since=2024-03-01T12:30:00Z", ["ETH"]),
        ("until=2024-03-01T12:30:00Z", ["BTC"]),
        ("limit=1", ["ETH"]),
        ("limit=1&offset=1", ["BTC"]),
        ("offset=2", []),
    ],
)
def test_sim_run_filters_and_pages(
    client: TestClient, auth: Headers, query: str, symbols: list[str]
) -> None:
    runs = client.get(f"/api/sim/runs?{query}", headers=auth("viewer")).json()
    assert [r["symbol"] for r in runs] == symbols


@pytest.mark.usefixtures("seeded")
def test_sim_run_orders_in_placing_order(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    run_ids = {r["strategy"]: r["id"] for r in client.get("/api/sim/runs", headers=h).json()}
    orders = client.get(f"/api/sim/runs/{run_ids['sma_cross']}/orders", headers=h).json()
    assert [o["client_order_id"] for o in orders] == ["s1", "s2"]
    assert {k: v for k, v in orders[0].items() if k != "id"} == {
        "client_order_id": "s1",
        "ts": "2024-03-01T12:01:00Z",
        "symbol": "BTC",
        "side": "buy",
        "type": "market",
        "qty": "0.5",
        "limit_price": None,
        "status": "filled",
        "fill_price": "100.1",
        "fee": "0.05",
    }
    assert (orders[1]["limit_price"], orders[1]["fill_price"]) == ("105.5", None)
    second = client.get(
        f"/api/sim/runs/{run_ids['sma_cross']}/orders?limit=1&offset=1", headers=h
    ).json()
    assert [o["client_order_id"] for o in second] == ["s2"]
    assert client.get(f"/api/sim/runs/{run_ids['rsi_reversion']}/orders", headers=h).json() == []
    missing = client.get("/api/sim/runs/999/orders", headers=h)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "simulation run 999 not found"}


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("run", "body", "status", "detail"),
    [
        (None, {"rating": 6}, 422, "body.rating: Input should be less than or equal to 5"),
        (None, {"rating": 0}, 422, "body.rating: Input should be greater than or equal to 1"),
        (None, {"comment": "x"}, 422, "body.rating: Field required"),
        (999, {"rating": 3}, 404, "simulation run 999 not found"),
    ],
)
def test_bad_ratings(
    client: TestClient,
    auth: Headers,
    run: int | None,
    body: dict[str, object],
    status: int,
    detail: str,
) -> None:
    run_id = run or client.get("/api/sim/runs", headers=auth("viewer")).json()[0]["id"]
    response = client.post(f"/api/sim/runs/{run_id}/rating", json=body, headers=auth("trader"))
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


@pytest.mark.usefixtures("seeded")
def test_alerts_and_actions(client: TestClient, auth: Headers) -> None:
    h = auth("viewer")
    alerts = client.get("/api/alerts", headers=h).json()
    assert [a["message"] for a in alerts] == ["drawdown", "feed stale"]
    assert [a["source"] for a in client.get("/api/alerts?severity=warning", headers=h).json()] == [
        "feed"
    ]
    assert len(client.get("/api/alerts?since=2024-03-01T12:01:00Z", headers=h).json()) == 1
    for query, messages in [
        ("limit=1", ["drawdown"]),
        ("limit=1&offset=1", ["feed stale"]),
        ("source=feed", ["feed stale"]),
        ("until=2024-03-01T12:05:00Z", ["feed stale"]),
    ]:
        assert [a["message"] for a in client.get(f"/api/alerts?{query}", headers=h).json()] == (
            messages
        )
    bad = client.get("/api/alerts?severity=loud", headers=h)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("query.severity:")

    actions = client.get("/api/actions", headers=h).json()
    assert [a["action"] for a in actions] == ["order_rejected", "signal"]
    assert actions[1]["details"] == {"side": "buy"}
    for query, expected in [
        ("strategy=sma_cross", ["signal"]),
        ("symbol=ETH", ["order_rejected"]),
        ("action=signal", ["signal"]),
        ("limit=1", ["order_rejected"]),
        ("limit=1&offset=1", ["signal"]),
        ("since=2024-03-01T12:00:01Z", ["order_rejected"]),
        ("until=2024-03-01T12:00:01Z", ["signal"]),
    ]:
        assert [
            a["action"] for a in client.get(f"/api/actions?{query}", headers=h).json()
        ] == expected


def test_a_repeating_alert_is_one_row_with_its_count(
    sigma_app: App, client: TestClient, auth: Headers
) -> None:
    with session_scope(sigma_app.sessions) as session:
        for minutes, severity, message, key in [
            (0, "warning", "stale 10s", "stale:BTC"),
            (1, "warning", "other", "other"),
            (5, "warning", "stale 300s", "stale:BTC"),
            (9, "error", "stale 540s", "stale:BTC"),
        ]:
            record_alert(
                session,
                ts=T0 + timedelta(minutes=minutes),
                severity=severity,
                source="feed",
                message=message,
                dedupe_key=key,
            )
    stale, other = client.get("/api/alerts", headers=auth("viewer")).json()
    assert (stale["message"], stale["severity"], stale["count"], stale["dedupe_key"]) == (
        "stale 540s",
        "error",
        3,
        "stale:BTC",
    )
    assert (stale["ts"], stale["last_seen"]) == ("2024-03-01T12:00:00Z", "2024-03-01T12:09:00Z")
    assert (other["count"], other["ts"], other["last_seen"]) == (
        1,
        "2024-03-01T12:01:00Z",
        "2024-03-01T12:01:00Z",
    )
    # The window bounds the last sighting: the key still repeating is in it.
    window = client.get("/api/alerts?since=2024-03-01T12:05:00Z", headers=auth("viewer"))
    assert [a["message"] for a in window.json()] == ["stale 540s"]
