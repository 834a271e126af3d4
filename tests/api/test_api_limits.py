"""Limits and headers: preference count and size, WebSocket connections per user and command
size and depth, security headers, documentation and metrics closed unless opened."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from sigma.api import api_deps, create_api, headlimit
from sigma.api.headers import DASHBOARD_CSP, DOCS_CSP
from sigma.api.server import WS_MAX_MESSAGE_BYTES
from sigma.api.ws import MAX_COMMAND_CHARS, MAX_COMMAND_DEPTH, nesting_depth
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from tests.api.conftest import PASSWORD, add_users, issue_token, make_app, serving

Headers = Callable[[str], dict[str, str]]


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[App]:
    """An App with small limits and everything opened by settings."""
    app = make_app(
        f"sqlite:///{tmp_path / 'small.db'}",
        tmp_path / "var",
        api_prefs_max_keys=3,
        api_prefs_max_bytes=1024,
        api_ws_per_user=2,
        api_public_docs=True,
        api_public_metrics=True,
    )
    add_users(app)
    yield app
    app.close()


@pytest.fixture
def small(small_app: App) -> Iterator[TestClient]:
    with TestClient(create_api(api_deps(small_app), InMemoryPubSub(), static_dir=None)) as client:
        yield client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(client.app, username)}"}  # type: ignore[arg-type]


def test_preferences_are_limited_in_count_and_size(small: TestClient) -> None:
    headers = bearer(small, "viewer")
    assert (
        small.put("/api/me/prefs", json={"a": 1, "b": 2, "c": 3}, headers=headers).status_code
        == 200
    )
    too_many = small.put("/api/me/prefs", json={"d": 4}, headers=headers)
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == "body: at most 3 preferences per user (this would make 4)"
    # Replacing one key by another stays within the count.
    swapped = small.put("/api/me/prefs", json={"c": None, "d": 4}, headers=headers)
    assert swapped.json() == {"a": 1, "b": 2, "d": 4}
    too_big = small.put("/api/me/prefs", json={"d": "x" * 1100}, headers=headers)
    assert too_big.status_code == 422
    assert "at most 1024 bytes of JSON per user" in too_big.json()["detail"]
    # Nothing of a refused request was stored.
    assert small.get("/api/me/prefs", headers=headers).json() == {"a": 1, "b": 2, "d": 4}


def test_websocket_connections_per_user_are_capped(small: TestClient) -> None:
    viewer = issue_token(small.app, "viewer")  # type: ignore[arg-type]
    with (
        small.websocket_connect(f"/ws?token={viewer}"),
        small.websocket_connect(f"/ws?token={viewer}"),
    ):
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            small.websocket_connect(f"/ws?token={viewer}") as third,
        ):
            third.receive_text()
        assert refused.value.code == 1008
        assert refused.value.reason == "too many connections: at most 2 per user"
        # Another user is counted apart.
        trader = issue_token(small.app, "trader")  # type: ignore[arg-type]
        with small.websocket_connect(f"/ws?token={trader}&channels=fills") as ws:
            ws.send_text('{"subscribe": []}')
            assert ws.receive_json() == {"channel": "subscribed", "data": ["fills"]}
    # Closed connections no longer count.
    with small.websocket_connect(f"/ws?token={viewer}&channels=fills") as ws:
        ws.send_text('{"subscribe": []}')
        assert ws.receive_json()["channel"] == "subscribed"


def test_deep_or_long_commands_are_refused_without_parsing(
    client: TestClient, auth: Headers, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = auth("viewer")["Authorization"].removeprefix("Bearer ")
    caplog.set_level(logging.INFO, logger="sigma.api.ws")
    with client.websocket_connect(f"/ws?token={viewer}&channels=fills") as ws:
        ws.send_text("[" * 100_000)  # beyond the recursion limit of json.loads
        assert ws.receive_json() == {
            "channel": "error",
            "data": f"a command has at most {MAX_COMMAND_CHARS} characters",
        }
        ws.send_text("[" * 3000 + "]" * 3000)
        assert ws.receive_json()["data"] == f"a command has at most {MAX_COMMAND_CHARS} characters"
        ws.send_text('{"subscribe": [[[["fills"]]]]}')
        assert ws.receive_json() == {
            "channel": "error",
            "data": f"a command nests at most {MAX_COMMAND_DEPTH} levels deep",
        }
        # The connection still works.
        ws.send_text('{"subscribe": ["alerts"]}')
        assert ws.receive_json() == {"channel": "subscribed", "data": ["alerts", "fills"]}
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_a_command_flood_closes_the_websocket(
    client: TestClient, auth: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, a client could send commands as fast as its link allowed, each one answered.
    monkeypatch.setattr("sigma.api.ws.MAX_COMMANDS_PER_WINDOW", 3)
    monkeypatch.setattr("sigma.api.ws.COMMAND_WINDOW_SECONDS", 60.0)
    viewer = auth("viewer")["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/ws?token={viewer}&channels=fills") as ws:
        for _ in range(4):
            ws.send_text('{"subscribe": ["alerts"]}')
        for _ in range(3):
            assert ws.receive_json()["channel"] == "subscribed"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1008
    assert closed.value.reason == "too many commands: at most 3 per 60 s"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"subscribe": ["a", "b"]}', 2),
        ('{"a": "[[[[{{{{\\"]]"}', 1),  # brackets and escaped quotes inside a string
        ("[[[[[[[[", 5),  # stops counting past the limit
        ("", 0),
    ],
)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(text, 4) == depth


def test_security_headers_on_api_and_dashboard(sigma_app: App, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html>app</html>")
    with TestClient(create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=dist)) as client:
        for path in ("/", "/backtests/3", "/api/health", "/api/nothing", "/metrics"):
            headers = client.get(path).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "no-referrer", path
            assert headers["x-frame-options"] == "DENY", path
            assert headers["content-security-policy"] == DASHBOARD_CSP, path
            # API answers (tokens, orders) are never cached; the dashboard's files may be.
            private = not path.startswith("/backtests") and path != "/"
            assert (headers.get("cache-control") == "no-store") is private, path
        login = client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORD})
        assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
        # No CORS: another origin's page may neither read answers nor pass a preflight.
        evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        for answer in (
            client.get("/api/health", headers=evil),
            client.options("/api/me", headers=evil),
        ):
            assert not any(h.startswith("access-control-") for h in answer.headers), answer.headers
    assert "frame-ancestors 'none'" in DASHBOARD_CSP and "script-src 'self';" in DASHBOARD_CSP


def test_documentation_and_metrics_are_closed_by_default(client: TestClient, auth: Headers) -> None:
    for path in ("/docs", "/redoc"):
        assert client.get(path).status_code == 404
    for path in ("/openapi.json", "/metrics"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=auth("trader")).status_code == 403, path
        assert client.get(path, headers=auth("admin")).status_code == 200, path


def test_settings_open_documentation_and_metrics(small: TestClient) -> None:
    assert small.get("/openapi.json").json()["info"]["title"] == "SIGMA"
    assert small.get("/metrics").status_code == 200
    docs = small.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert docs.headers["content-security-policy"] == DOCS_CSP
    assert small.get("/redoc").status_code == 200


@pytest.fixture
def served(sigma_app: App) -> Iterator[tuple[str, FastAPI]]:
    """The API behind the uvicorn server `sigma api` runs: its base WebSocket URL and app."""
    with serving(sigma_app) as (port, api, _):
        yield f"ws://127.0.0.1:{port}/ws", api


def test_the_server_closes_a_websocket_sending_an_oversized_message(
    served: tuple[str, FastAPI],
) -> None:
    # uvicorn's default took messages of 16 MiB, 32 of them queued per connection.
    url, api = served
    # Authenticated as the dashboard does it: the token as a subprotocol, which the server
    # must name back (a real client drops the connection otherwise).
    offered = [Subprotocol("bearer"), Subprotocol(issue_token(api, "viewer"))]
    with ws_connect(f"{url}?channels=fills", subprotocols=offered) as ws:
        assert ws.subprotocol == "bearer"
        ws.send(json.dumps({"subscribe": ["alerts"]}))
        assert json.loads(ws.recv(timeout=10)) == {
            "channel": "subscribed",
            "data": ["alerts", "fills"],
        }
        ws.send("x" * (WS_MAX_MESSAGE_BYTES + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _raw(url: str, request: bytes) -> bytes:
    """Everything the server answers to `request` on one connection, until it closes it (a
    request should say `Connection: close`)."""
    host, port = url.removeprefix("ws://").removesuffix("/ws").split(":")
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            conn.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


def test_an_oversized_request_head_is_431_and_a_big_body_is_not_one(
    served: tuple[str, FastAPI],
) -> None:
    url, _ = served
    # httptools buffered a head of any size: a 20 MB header was read and answered 200.
    # Whether the head comes in one read or in many.
    for head in (b"X-Big: " + b"a" * 70_000, b"X-Big: " + b"a" * 20_000_000, b"X: 1\r\n" * 20_000):
        answer = _raw(url, b"GET /api/health HTTP/1.1\r\nHost: sigma\r\n" + head + b"\r\n\r\n")
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert json.loads(body) == {"detail": "request line and headers larger than 65536 bytes"}
    # Within the limit, as before; a body never counts against it, however it is split.
    ok = _raw(
        url,
        b"GET /api/health HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\nX-Big: "
        + b"a" * 30_000
        + b"\r\n\r\n",
    )
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:200]
    body = b'{"refresh_token": "' + b"a" * 900_000 + b'"}'
    posted = _raw(
        url,
        b"POST /api/auth/refresh HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )
    assert posted.startswith((b"HTTP/1.1 401 ", b"HTTP/1.1 422 ")), posted[:200]


def test_a_request_head_that_does_not_arrive_in_time_is_408_and_closed(
    served: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A connection sending half a head, or nothing, stayed open for good: a few hundred of
    # them held every file descriptor of the process.
    monkeypatch.setattr(headlimit.HeadLimitedHttpTools, "head_seconds", 0.5)
    url, _ = served
    for sent in (b"GET /api/health HTTP/1.1\r\nHost: sigma\r\n", b""):
        started = time.monotonic()
        answer = _raw(url, sent)  # returns once the server closes the connection
        assert time.monotonic() - started < 10
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert json.loads(body) == {"detail": "request line and headers not received in time"}
    # A head that arrives in time is served, and the clock stops with it.
    ok = _raw(url, b"GET /api/health HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:200]


def test_a_body_that_does_not_arrive_in_time_is_408_and_closed(
    served: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A head promising a body, then part of it: the connection and the request's task were
    # held for good (the head's clock stops with the head).
    monkeypatch.setattr(headlimit, "BODY_SECONDS", 0.5)
    url, _ = served
    started = time.monotonic()
    answer = _raw(
        url,
        b"POST /api/auth/token HTTP/1.1\r\nHost: sigma\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        b"username=",
    )
    assert time.monotonic() - started < 10
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert json.loads(body) == {"detail": "request body not received in time"}
    # A whole body in time is read and answered as ever.
    form = b"username=viewer&password=wrong-password"
    posted = _raw(
        url,
        b"POST /api/auth/token HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(form)).encode()
        + b"\r\n\r\n"
        + form,
    )
    assert posted.startswith(b"HTTP/1.1 401 "), posted[:200]


def test_a_request_the_parser_refuses_is_400_in_the_apis_shape(
    served: tuple[str, FastAPI],
) -> None:
    # Content-Length beside Transfer-Encoding (request smuggling): uvicorn answered plain text.
    answer = _raw(
        served[0],
        b"GET /api/health HTTP/1.1\r\nHost: sigma\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    )
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"content-type: application/json" in status
    # Answered before the app, with the headers every answer carries.
    assert b"X-Content-Type-Options: nosniff" in status and b"Cache-Control: no-store" in status
    assert json.loads(body) == {"detail": "malformed request: Invalid HTTP request received."}


def test_a_body_refused_by_its_declared_size_does_not_hold_the_connection(
    served: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(headlimit, "BODY_SECONDS", 0.5)
    started = time.monotonic()
    answer = _raw(
        served[0],
        b"POST /api/news HTTP/1.1\r\nHost: sigma\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2000000\r\n\r\n{",
    )
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert time.monotonic() - started < 10
