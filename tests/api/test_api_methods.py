"""HEAD answers as GET without a body, on the API and the dashboard's files; a method a path
does not take is a 405 whose `Allow` names every method it does take."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from tests.api.conftest import login


class SentBodies:
    """The app with every response body byte it sends recorded: the test client drops a
    HEAD's body itself, so only this shows what the app would put on the wire."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: dict[str, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def record(message: Message) -> None:
            if message["type"] == "http.response.body":
                key = f"{scope['method']} {scope['path']}"
                self.sent[key] = self.sent.get(key, b"") + message.get("body", b"")
            await send(message)

        await self.app(scope, receive, record)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A dashboard build: the page and one asset."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text("<html>app</html>")
    (folder / "assets" / "app.js").write_text("console.log('sigma')")
    return folder


@pytest.fixture
def wire(sigma_app: App, dist: Path) -> SentBodies:
    return SentBodies(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=dist))


def test_head_is_get_without_the_body(wire: SentBodies) -> None:
    # A HEAD to any GET route was a 405, the dashboard's files included.
    with TestClient(wire) as client:
        viewer = login(client, "viewer")
        asked = [
            ("/api/health", {}),
            ("/api/me", viewer),
            ("/api/me", {}),  # 401, as for GET
            ("/api/nothing", {}),  # 404, as for GET
            ("/", {}),
            ("/assets/app.js", {}),
            ("/backtests/3", {}),  # a client-side route: the page
        ]
        for path, headers in asked:
            wire.sent.clear()
            got = client.get(path, headers=headers)
            head = client.head(path, headers=headers)
            assert head.status_code == got.status_code, path
            assert head.headers == got.headers, path
            assert wire.sent[f"HEAD {path}"] == b"", path
            assert wire.sent[f"GET {path}"] == got.content != b"", path
    assert int(head.headers["content-length"]) == len("<html>app</html>")


def test_a_method_not_taken_is_405_naming_the_methods_taken(sigma_app: App, dist: Path) -> None:
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)) as api:
        for method, path, allow in [
            ("OPTIONS", "/api/health", "GET, HEAD"),
            ("DELETE", "/api/health", "GET, HEAD"),
            ("OPTIONS", "/api/me/prefs", "GET, HEAD, PUT"),  # two routes on one path
            ("HEAD", "/api/auth/logout", "POST"),  # no GET, so no HEAD
            ("GET", "/api/auth/token", "POST"),
        ]:
            response = api.request(method, path)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == allow, (method, path)
            if method != "HEAD":
                assert response.json() == {"detail": f"method {method} is not allowed on {path}"}, (
                    path
                )
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=dist)) as app:
        for path in ("/", "/assets/app.js"):
            response = app.options(path)
            assert (response.status_code, response.headers["allow"]) == (405, "GET, HEAD")


def test_head_of_a_get_that_fails_is_a_500_without_a_body(sigma_app: App) -> None:
    # The 500 is answered outside HeadMiddleware (by Starlette's ServerErrorMiddleware),
    # which sent the GET's error body on a HEAD.
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None)

    @api.get("/api/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    wire = SentBodies(api)
    with TestClient(wire, raise_server_exceptions=False) as client:
        got = client.get("/api/boom")
        head = client.head("/api/boom")
    assert (got.status_code, head.status_code) == (500, 500)
    assert got.json() == {
        "detail": "internal error in GET /api/boom (RuntimeError); see the server log"
    }
    assert wire.sent["HEAD /api/boom"] == b""
    assert head.headers == got.headers
