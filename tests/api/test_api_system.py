"""Health, metrics, error bodies, request logging, dashboard serving, start-up helpers."""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from sigma.api import api_deps, create_api, ensure_admin
from sigma.api.auth import load_jwt_secret
from sigma.api.users import authenticate
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.ops.components import ComponentStatus
from sigma.ops.metrics import Metrics
from tests.api.conftest import issue_token, login, make_app

Headers = Callable[[str], dict[str, str]]


def test_health_ok(client: TestClient, auth: Headers) -> None:
    assert client.get("/api/health", headers=auth("viewer")).json() == {
        "status": "ok",
        "checks": {"database": "ok", "bus": "ok", "feed": "ok"},
        "components": {},
        "version": "0.1.0",
    }
    # A probe without a login learns that the process is alive, not which version it runs.
    assert client.get("/api/health").json() == {"status": "ok"}


def test_health_shows_each_supervised_component_and_degrades_while_one_is_down(
    sigma_app: App,
) -> None:
    since = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    board = [
        ComponentStatus("bot", "restarting", since, restarts=2, last_error="ValueError('x')"),
        ComponentStatus("scheduler", "running", since),
    ]
    api = create_api(
        api_deps(sigma_app), InMemoryPubSub(), static_dir=None, components=lambda: board
    )
    with TestClient(api) as client:
        viewer = login(client, "viewer")
        body = client.get("/api/health", headers=viewer).json()
        assert body["status"] == "ok"  # back, if on probation
        assert body["components"] == {
            "bot": {
                "state": "restarting",
                "since": "2026-12-07T02:00:00Z",
                "restarts": 2,
                "last_error": "ValueError('x')",
            },
            "scheduler": {
                "state": "running",
                "since": "2026-12-07T02:00:00Z",
                "restarts": 0,
                "last_error": None,
            },
        }
        board[1] = ComponentStatus("scheduler", "down", since, 0, "SchedulerDied('ended')")
        response = client.get("/api/health", headers=viewer)
    # Still 200: probes read the status field (deploy/ checks no health code).
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["components"]["scheduler"]["state"] == "down"


def test_health_degraded_by_stale_feed_and_failing_checks(sigma_app: App) -> None:
    metrics = Metrics()
    metrics.feed_stale.set(1)

    async def worker() -> str:
        return "no heartbeat for 60 s"

    async def broken() -> str:
        raise RuntimeError("boom")

    api = create_api(
        api_deps(sigma_app),
        InMemoryPubSub(),
        metrics=metrics,
        static_dir=None,
        health_checks={"worker": worker, "exchange": broken},
    )
    with TestClient(api) as client:
        body = client.get("/api/health", headers=login(client, "viewer")).json()
    assert body["status"] == "degraded"
    assert body["checks"] == {
        "database": "ok",
        "bus": "ok",
        "feed": "stale",
        "worker": "no heartbeat for 60 s",
        "exchange": "error: RuntimeError: boom",
    }


def test_health_reports_a_broken_database(sigma_app: App, client: TestClient) -> None:
    viewer = login(client, "viewer")
    sigma_app.db.dispose()
    sigma_app.read_db.dispose()
    Path(sigma_app.settings.database.database_url.removeprefix("sqlite:///")).unlink()
    # A fresh empty file is created and answers SELECT 1; point the engine at a folder instead.
    Path(sigma_app.settings.database.database_url.removeprefix("sqlite:///")).mkdir()
    body = client.get("/api/health", headers=viewer).json()
    assert body["status"] == "degraded"
    # The store names the file and why SQLite cannot use it (sigma.store: DatabaseFileError).
    assert body["checks"]["database"].startswith("error: DatabaseFileError: SQLite database ")
    assert "unable to open database file" in body["checks"]["database"]


def test_health_shows_only_the_status_without_a_login(sigma_app: App) -> None:
    # Errors name hosts, database users, paths and SQL, the version the flaws to try: before,
    # anyone could read them here.
    since = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    board = [ComponentStatus("bot", "down", since, 1, "OperationalError('db-host:5432 sigma')")]

    async def broken() -> str:
        raise RuntimeError("password authentication failed for user 'sigma'")

    api = create_api(
        api_deps(sigma_app),
        InMemoryPubSub(),
        static_dir=None,
        components=lambda: board,
        health_checks={"exchange": broken},
    )
    with TestClient(api) as client:
        viewer = login(client, "viewer")
        for headers in ({}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic x"}):
            assert client.get("/api/health", headers=headers).json() == {"status": "degraded"}
        full = client.get("/api/health", headers=viewer).json()
    assert full["checks"]["exchange"].startswith("error: RuntimeError: password authentication")
    assert full["components"]["bot"]["last_error"] == "OperationalError('db-host:5432 sigma')"


def test_health_shows_only_the_status_to_a_revoked_or_disabled_token(
    sigma_app: App, client: TestClient
) -> None:
    viewer, trader = login(client, "viewer"), login(client, "trader")
    assert "checks" in client.get("/api/health", headers=viewer).json()
    assert client.post("/api/auth/logout", headers=viewer).status_code == 204
    admin = login(client, "admin")
    assert client.patch("/api/users/trader", json={"active": False}, headers=admin).is_success
    for revoked in (viewer, trader):
        assert client.get("/api/me", headers=revoked).status_code == 401
        assert client.get("/api/health", headers=revoked).json() == {"status": "ok"}


def test_metrics_exposes_the_process_registry_to_admins(sigma_app: App) -> None:
    metrics = Metrics()
    metrics.fills.labels(symbol="BTC", side="buy").inc(3)
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), metrics=metrics, static_dir=None)
    with TestClient(api) as c:
        assert c.get("/metrics").status_code == 401
        viewer = {"Authorization": f"Bearer {issue_token(api, 'viewer')}"}
        assert c.get("/metrics", headers=viewer).status_code == 403
        admin = {"Authorization": f"Bearer {issue_token(api, 'admin')}"}
        response = c.get("/metrics", headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'sigma_fills_total{side="buy",symbol="BTC"} 3.0' in response.text


def test_metrics_as_json_for_a_viewer(sigma_app: App) -> None:
    metrics = Metrics()
    metrics.fills.labels(symbol="BTC", side="buy").inc(3)
    metrics.tick_to_order.observe(0.25)
    metrics.equity.labels(account="a").set(float("nan"))
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), metrics=metrics, static_dir=None)
    with TestClient(api) as c:
        assert c.get("/api/metrics").status_code == 401
        token = issue_token(api, "viewer")
        samples = c.get("/api/metrics", headers={"Authorization": f"Bearer {token}"}).json()
    by_name = {(s["name"], tuple(sorted(s["labels"].items()))): s["value"] for s in samples}
    assert by_name[("sigma_fills_total", (("side", "buy"), ("symbol", "BTC")))] == 3.0
    assert by_name[("sigma_tick_to_order_seconds_count", ())] == 1.0
    assert by_name[("sigma_tick_to_order_seconds_sum", ())] == 0.25
    names = [s["name"] for s in samples]
    assert names == sorted(names)
    assert not [n for n in names if n.endswith(("_bucket", "_created"))]
    assert "sigma_equity" not in names  # NaN: JSON has no number for it


def test_unknown_route_and_wrong_method_have_clear_details(client: TestClient) -> None:
    missing = client.get("/api/nothing")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "no such route: GET /api/nothing"},
    )
    wrong = client.delete("/api/health")
    assert (wrong.status_code, wrong.json()) == (
        405,
        {"detail": "method DELETE is not allowed on /api/health"},
    )


def test_unexpected_errors_are_500_json_and_logged(
    api: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    @api.get("/api/explode")
    def explode() -> None:
        raise KeyError("secret-internal")

    with TestClient(api, raise_server_exceptions=False) as client:
        response = client.get("/api/explode")
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error in GET /api/explode (KeyError); see the server log"
    }
    assert any("unhandled error in GET /api/explode" in r.getMessage() for r in caplog.records)


def test_each_request_is_logged_with_user_status_and_latency(
    client: TestClient, auth: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    headers = auth("trader")
    with caplog.at_level(logging.INFO, logger="sigma.api.requests"):
        client.get("/api/orders?limit=5", headers=headers)
        client.get("/api/orders")
        client.post("/api/auth/token", data={"username": "viewer", "password": "not-it"})
    lines = [r for r in caplog.records if r.name == "sigma.api.requests"]
    fields = [(r.method, r.path, r.status, r.user) for r in lines]  # type: ignore[attr-defined]
    assert fields == [
        ("GET", "/api/orders", 200, "trader"),
        ("GET", "/api/orders", 401, "-"),
        ("POST", "/api/auth/token", 401, "-"),
    ]
    assert all(r.latency_ms >= 0 for r in lines)  # type: ignore[attr-defined]
    # Neither the query string nor the password reaches the log.
    text = " ".join(r.getMessage() for r in lines)
    assert "limit=5" not in text and "not-it" not in text


def test_successful_login_is_logged_with_its_user(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.api.conftest import login

    with caplog.at_level(logging.INFO, logger="sigma.api.requests"):
        login(client, "viewer")
    assert [r.user for r in caplog.records if r.name == "sigma.api.requests"] == ["viewer"]  # type: ignore[attr-defined]


# --- dashboard ------------------------------------------------------------------------------


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<html>SIGMA dashboard</html>")
    (folder / "assets" / "app.js").write_text("console.log('sigma')")
    (tmp_path / "outside.txt").write_text("private")
    return folder


def test_dashboard_is_served_with_spa_fallback(sigma_app: App, dist: Path) -> None:
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=dist)) as client:
        root = client.get("/")
        assert root.status_code == 200 and "SIGMA dashboard" in root.text
        asset = client.get("/assets/app.js")
        assert asset.text == "console.log('sigma')"
        assert "javascript" in asset.headers["content-type"]
        # Client-side routes get the app.
        assert "SIGMA dashboard" in client.get("/backtests/3").text
        # Escaping the folder gets the app, never the file.
        escaped = client.get("/assets/..%2F..%2Foutside.txt")
        assert "private" not in escaped.text
        # A symbolic link out of the folder is not followed (the app instead).
        (dist / "assets" / "link.js").symlink_to(dist.parent / "outside.txt")
        assert "private" not in client.get("/assets/link.js").text
        # A NUL character was an unhandled ValueError: a 500 and a stack trace in the log.
        for path in ("/%00", "/assets/app.js%00.html"):
            nul = client.get(path)
            assert (nul.status_code, nul.json()) == (
                404,
                {"detail": "no such file: the path holds a NUL character"},
            ), path
        # API paths stay JSON.
        missing = client.get("/api/nothing")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "no such route: GET /api/nothing"}
        assert client.get("/api/health").json()["status"] == "ok"
        # Not public by default (SIGMA_API_PUBLIC_DOCS): the schema is for admins, and the
        # documentation pages are not the dashboard's either.
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/docs").status_code == 404


def test_dotfiles_and_source_maps_in_the_build_are_not_served(sigma_app: App, dist: Path) -> None:
    (dist / ".env").write_text("SIGMA_JWT_SECRET=secret-of-the-env-file")
    (dist / ".git").mkdir()
    (dist / ".git" / "config").write_text("url = https://user:secret-of-git@example.com/x")
    (dist / "assets" / "app.js.map").write_text('{"sourcesContent": ["secret-of-the-map"]}')
    (dist / ".well-known").mkdir()
    (dist / ".well-known" / "security.txt").write_text("Contact: mailto:security@example.com")
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=dist)) as client:
        for path in (
            "/.env",
            "/.git/config",
            "/assets/app.js.map",
            "/assets/%2e%2e/.env",
            "/assets/..%2F.git%2Fconfig",
            "/.well-known/../.env",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "secret-of" not in answer.text, path
            assert answer.json()["detail"].startswith("no such file: /"), path
        # The one dot-folder meant to be public (RFC 8615).
        assert "Contact:" in client.get("/.well-known/security.txt").text


def test_no_dashboard_without_a_build(sigma_app: App, tmp_path: Path) -> None:
    with TestClient(
        create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=tmp_path / "none")
    ) as c:
        assert c.get("/").status_code == 404


# --- start-up helpers -----------------------------------------------------------------------


def test_jwt_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "var")
    first = load_jwt_secret(app.settings)
    assert len(first) >= 60
    path = tmp_path / "var" / "jwt_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_jwt_secret(app.settings) == first
    path.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_jwt_secret(app.settings)


def test_jwt_secret_from_settings_must_be_long(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    given = make_app(url, tmp_path / "var", jwt_secret=SecretStr("s" * 32))
    assert load_jwt_secret(given.settings) == "s" * 32
    assert not (tmp_path / "var" / "jwt_secret").exists()
    short = make_app(url, tmp_path / "var", jwt_secret=SecretStr("short"))
    with pytest.raises(ValueError, match="SIGMA_JWT_SECRET"):
        load_jwt_secret(short.settings)


def test_tokens_survive_a_restart(sigma_app: App, tmp_path: Path) -> None:
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)) as c:
        from tests.api.conftest import login

        headers = login(c, "viewer")
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)) as c:
        assert c.get("/api/me", headers=headers).status_code == 200


def test_ensure_admin_creates_admin_once(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "var")
    password = ensure_admin(app.sessions, app.settings.api)
    assert password is not None and len(password) >= 12
    assert ensure_admin(app.sessions, app.settings.api) is None
    with app.sessions() as session:
        user = authenticate(session, "admin", password)
        assert user is not None and user.role == "admin"
    app.close()


def test_ensure_admin_uses_the_configured_password(tmp_path: Path) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "var", admin_password=SecretStr("from-env-123")
    )
    # The operator knows it: it is used, but not handed back to be printed.
    assert ensure_admin(app.sessions, app.settings.api) is None
    with app.sessions() as session:
        assert authenticate(session, "admin", "from-env-123", rounds=4) is not None
    app.close()


def test_api_owns_the_bus_from_settings_when_none_is_given(sigma_app: App) -> None:
    api = create_api(api_deps(sigma_app), static_dir=None)
    with TestClient(api) as client:
        health = client.get("/api/health", headers=login(client, "viewer")).json()
        assert health["checks"]["bus"] == "ok"
        hub = api.state.hub
        assert isinstance(hub.pubsub, InMemoryPubSub)
    # Closed with the API: no subscription is left.
    assert hub.pubsub._subscribers == {}


def test_server_logs_never_show_the_websocket_token(
    api: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # uvicorn's own line for an accepted WebSocket, as it formats it.
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/ws?channels=fills&token=eyJ.abc.def",
        )
        logging.getLogger("uvicorn.error").info("plain %d", 5)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        '127.0.0.1:5000 - "WebSocket /ws?channels=fills&token=***" [accepted]',
        "plain 5",
    ]
