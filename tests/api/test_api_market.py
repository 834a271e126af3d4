"""Bars for charts, trend/regime readings, performance reports and the settings view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.store.db import session_scope
from sigma.store.models import BarRecord, PerformanceReport, TrendData
from tests.api.conftest import add_users, login, make_app

Headers = Callable[[str], dict[str, str]]
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def add_bars(app: App, symbol: str, n: int, timeframe: str = "1m") -> None:
    with session_scope(app.sessions) as s:
        for i in range(n):
            price = Decimal(100 + i)
            s.add(
                BarRecord(
                    symbol=symbol,
                    timeframe=timeframe,
                    ts=T0 + timedelta(minutes=i),
                    open=price,
                    high=price + Decimal("0.5"),
                    low=price - Decimal("0.5"),
                    close=price + Decimal("0.25"),
                    volume=Decimal(i),
                )
            )


def test_bars_latest_window_in_chart_order(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    add_bars(sigma_app, "BTC", 10)
    add_bars(sigma_app, "BTC", 3, timeframe="1h")
    add_bars(sigma_app, "ETH", 2)
    h = auth("viewer")
    latest = client.get("/api/bars?symbol=BTC&limit=3", headers=h).json()
    assert [b["close"] for b in latest] == ["107.25", "108.25", "109.25"]
    assert latest[0] == {
        "ts": "2024-05-01T00:07:00Z",
        "open": "107",
        "high": "107.5",
        "low": "106.5",
        "close": "107.25",
        "volume": "7",
    }
    window = client.get(
        "/api/bars?symbol=BTC&since=2024-05-01T00:02:00Z&until=2024-05-01T00:04:00Z", headers=h
    ).json()
    assert [b["open"] for b in window] == ["102", "103"]
    assert len(client.get("/api/bars?symbol=BTC&timeframe=1h", headers=h).json()) == 3
    assert client.get("/api/bars?symbol=DOGE", headers=h).json() == []
    missing = client.get("/api/bars", headers=h)
    assert missing.status_code == 422
    assert missing.json()["detail"] == "query.symbol: Field required"


def test_trend_history_and_latest_per_symbol(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    with session_scope(sigma_app.sessions) as s:
        for i, (trend, strength) in enumerate([("range", 0.1), ("trend_up", 0.8)]):
            s.add(
                TrendData(
                    symbol="BTC",
                    timeframe="1h",
                    ts=T0 + timedelta(hours=i),
                    trend=trend,
                    strength=strength,
                    data={"probability": 0.9, "commentary": f"BTC note {i}"},
                )
            )
        s.add(TrendData(symbol="ETH", timeframe="1h", ts=T0, trend="trend_down", strength=-0.9))
        s.add(TrendData(symbol="ETH", timeframe="1d", ts=T0, trend="range", strength=None))
    h = auth("viewer")
    history = client.get("/api/trends?symbol=BTC", headers=h).json()
    assert [t["trend"] for t in history] == ["trend_up", "range"]
    assert history[0]["data"] == {"probability": 0.9, "commentary": "BTC note 1"}
    assert [t["commentary"] for t in history] == ["BTC note 1", "BTC note 0"]
    assert len(client.get("/api/trends?symbol=BTC&limit=1", headers=h).json()) == 1
    assert client.get("/api/trends?symbol=BTC&timeframe=1d", headers=h).json() == []
    assert (
        len(client.get("/api/trends?symbol=BTC&since=2024-05-01T00:30:00Z", headers=h).json()) == 1
    )

    latest = client.get("/api/trends/latest", headers=h).json()
    assert [(t["symbol"], t["timeframe"], t["trend"]) for t in latest] == [
        ("ETH", "1h", "trend_down"),
        ("BTC", "1h", "trend_up"),
        ("ETH", "1d", "range"),
    ]
    assert [t["commentary"] for t in latest] == [None, "BTC note 1", None]
    hourly = client.get("/api/trends/latest?timeframe=1h", headers=h).json()
    assert [t["symbol"] for t in hourly] == ["ETH", "BTC"]


def test_reports_list_view_and_download(
    client: TestClient, auth: Headers, sigma_app: App, tmp_path: Path
) -> None:
    page = tmp_path / "weekly.html"
    page.write_text("<h1>week 18</h1>")
    with session_scope(sigma_app.sessions) as s:
        s.add_all(
            [
                PerformanceReport(
                    kind="weekly",
                    period_start=T0,
                    period_end=T0 + timedelta(days=7),
                    stats={"pnl": "12.5"},
                    path=str(page),
                ),
                PerformanceReport(
                    kind="daily",
                    strategy="sma_cross",
                    mode="paper",
                    period_start=T0,
                    period_end=T0 + timedelta(days=1),
                    stats={},
                    path=str(tmp_path / "gone.html"),
                ),
            ]
        )
    h = auth("viewer")
    listed = client.get("/api/reports", headers=h).json()
    assert [(r["kind"], r["has_file"]) for r in listed] == [("weekly", True), ("daily", False)]
    for query, kinds in [
        ("kind=daily", ["daily"]),
        ("strategy=sma_cross", ["daily"]),
        ("since=2024-05-02T00:00:00Z", ["weekly", "daily"]),
        ("since=2024-05-02T00:00:01Z", ["weekly"]),
        ("until=2024-05-08T00:00:00Z", ["daily"]),
        ("limit=1&offset=1", ["daily"]),
    ]:
        assert [r["kind"] for r in client.get(f"/api/reports?{query}", headers=h).json()] == kinds
    weekly, daily = listed[0]["id"], listed[1]["id"]
    view = client.get(f"/api/reports/{weekly}/file", headers=h)
    assert view.text == "<h1>week 18</h1>"
    assert view.headers["content-type"].startswith("text/html")
    assert view.headers["content-disposition"].startswith("inline")
    download = client.get(f"/api/reports/{weekly}/file?download=true", headers=h)
    assert download.headers["content-disposition"].startswith('attachment; filename="weekly.html"')
    gone = client.get(f"/api/reports/{daily}/file", headers=h)
    assert (gone.status_code, gone.json()["detail"]) == (404, f"report {daily} has no file")
    unknown = client.get("/api/reports/999/file", headers=h)
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "report 999 not found")


def test_settings_are_admin_only_and_masked(tmp_path: Path) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 's.db'}",
        tmp_path / "var",
        redis_url="redis://:hunter2@127.0.0.1:6379/0",
        amqp_url="amqp://guest@127.0.0.1:5672/",
        jwt_secret=SecretStr("j" * 40),
        exchange_config={
            "apiKey": "AKIA-123",
            "secret": "s3",
            "enableRateLimit": True,
            "proxies": {"https": "http://me:PROXYPASS@proxy.example:3128"},
        },
        optuna_storage="postgresql://optuna:OPTUNAPASS@db.example/optuna",
        news_feed_urls=[
            "https://news.example/rss?lang=en&api_key=NEWSKEY1&q=btc",
            "https://user:NEWSPASS@feeds.example/all?Token=NEWSKEY2",
            "https://plain.example/feed",
        ],
    )
    add_users(app)
    api = create_api(api_deps(app), InMemoryPubSub(), static_dir=None)
    with TestClient(api) as client:
        assert client.get("/api/settings", headers=login(client, "trader")).status_code == 403
        shown = client.get("/api/settings", headers=login(client, "admin")).json()
    app.close()
    assert shown["redis_url"] == "redis://:***@127.0.0.1:6379/0"
    assert shown["amqp_url"] == "amqp://guest@127.0.0.1:5672/"
    assert shown["jwt_secret"] == "***" and shown["admin_password"] == "***"
    assert shown["exchange_config"] == {
        "apiKey": "***",
        "secret": "***",
        "enableRateLimit": True,
        "proxies": {"https": "http://me:***@proxy.example:3128"},
    }
    # A URL's password is masked whatever the setting is named and however deep it stands.
    assert shown["optuna_storage"] == "postgresql://optuna:***@db.example/optuna"
    assert shown["initial_cash"] == "10000" and shown["var_dir"] == str(tmp_path / "var")
    assert shown["database_url"] == f"sqlite:///{tmp_path / 's.db'}"  # an absolute path stays so
    assert shown["news_feed_urls"] == [
        "https://news.example/rss?lang=en&api_key=***&q=btc",
        "https://user:***@feeds.example/all?Token=***",
        "https://plain.example/feed",
    ]
    assert "hunter2" not in str(shown) and "AKIA" not in str(shown)
    assert "NEWS" not in str(shown) and "PASS" not in str(shown)
