"""The news webhook feeding the bot's NewsHandler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.regime.news import NewsHandler
from tests.api.conftest import login

ITEM = {"ts": "2024-06-01T10:00:00Z", "headline": "Exchange hacked, withdrawals halted"}


@pytest.fixture
def handler() -> NewsHandler:
    return NewsHandler(symbol_keywords={"BTC": ["bitcoin"]})


@pytest.fixture
def news_client(sigma_app: App, handler: NewsHandler) -> Iterator[TestClient]:
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None, news=handler)
    with TestClient(api) as client:
        yield client


def test_pushed_news_is_scored_and_remembered(
    news_client: TestClient, handler: NewsHandler
) -> None:
    trader = login(news_client, "trader")
    bad = news_client.post(
        "/api/news", json={**ITEM, "symbols": ["eth "], "source": "wire"}, headers=trader
    )
    assert bad.status_code == 201
    event = bad.json()
    assert event["symbols"] == ["ETH"] and event["source"] == "wire"
    assert event["sentiment"] < 0 and event["matched"]
    assert event["high_risk"] is True and event["risk_until"] == "2024-06-01T12:00:00Z"
    good = news_client.post(
        "/api/news",
        json={"ts": "2024-06-01T11:00:00Z", "headline": "Bitcoin rallies on strong inflows"},
        headers=trader,
    ).json()
    assert good["symbols"] == ["BTC"] and good["high_risk"] is False
    assert len(handler.events) == 2

    viewer = login(news_client, "viewer")
    listed = news_client.get("/api/news", headers=viewer).json()
    assert [e["headline"] for e in listed] == [good["headline"], ITEM["headline"]]
    assert [
        e["symbols"] for e in news_client.get("/api/news?symbol=eth", headers=viewer).json()
    ] == [["ETH"]]
    assert len(news_client.get("/api/news?limit=1", headers=viewer).json()) == 1
    assert news_client.post("/api/news", json=ITEM, headers=viewer).status_code == 403


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"headline": "x"}, "body.ts: Field required"),
        ({**ITEM, "ts": "soon"}, "body.ts: Input should be a valid datetime"),
        ({**ITEM, "headline": ""}, "body.headline: String should have at least 1 character"),
        ({**ITEM, "symbols": "BTC"}, "body.symbols: Input should be a valid list"),
    ],
)
def test_bad_news_is_422(news_client: TestClient, body: dict[str, object], detail: str) -> None:
    response = news_client.post("/api/news", json=body, headers=login(news_client, "trader"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_without_a_handler_news_is_503(sigma_app: App) -> None:
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)) as client:
        trader = login(client, "trader")
        for method in ("get", "post"):
            response = client.request(method, "/api/news", json=ITEM, headers=trader)
            assert response.status_code == 503
            assert "no news handler runs in this process" in response.json()["detail"]
