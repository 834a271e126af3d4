"""Connection limits of the API's server, over real sockets: per client address and in all,
a 503 with `Retry-After` or a WebSocket closed with 1013 beyond them, and the room a closed
connection leaves."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from sigma.api.connlimit import REFUSED_HEAD_SECONDS, RETRY_AFTER_SECONDS
from sigma.bootstrap import App
from sigma.ops.connections import ConnectionLimits
from tests.api.conftest import add_users, issue_token, make_app, serving

TOTAL, PER_CLIENT = 4, 3
HEALTH = b"GET /api/health HTTP/1.1\r\nHost: sigma\r\nConnection: close\r\n\r\n"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[int, FastAPI, ConnectionLimits]]:
    """The served API with room for `TOTAL` connections, `PER_CLIENT` from one address, and
    127.0.0.9 a trusted proxy."""
    app: App = make_app(
        f"sqlite:///{tmp_path / 'sigma.db'}",
        tmp_path / "var",
        api_max_connections=TOTAL,
        api_max_connections_per_client=PER_CLIENT,
        api_trusted_proxies="127.0.0.9",
    )
    add_users(app)
    with serving(app) as (port, api, server):
        yield port, api, _limits(server)
    app.close()


def _limits(server: uvicorn.Server) -> ConnectionLimits:
    limits: ConnectionLimits = server.config.app.limits
    return limits


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _open(port: int, source: str = "127.0.0.1") -> socket.socket:
    """An idle connection from `source` (a loopback address), as a keep-alive one is."""
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def _ask(port: int, source: str = "127.0.0.1") -> tuple[bytes, dict[str, str], bytes]:
    """`GET /api/health` on a new connection from `source`: status line, headers, body."""
    answer = b""
    with _open(port, source) as conn:
        conn.sendall(HEALTH)
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    return status.encode(), headers, body


def _hold_the_share(port: int, limits: ConnectionLimits) -> list[socket.socket]:
    """`PER_CLIENT` idle connections from 127.0.0.1, once the server has counted them."""
    held = [_open(port) for _ in range(PER_CLIENT)]
    _wait(lambda: limits.open == PER_CLIENT, "the held connections were not counted")
    return held


def _assert_refused(answer: tuple[bytes, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    assert status.startswith(b"HTTP/1.1 503 "), answer
    assert headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == {"detail": "too many connections: try again later"}


def test_one_address_gets_its_share_then_503s_and_a_closed_connection_frees_room(
    limited: tuple[int, FastAPI, ConnectionLimits],
) -> None:
    port, api, limits = limited
    held = _hold_the_share(port, limits)
    _assert_refused(_ask(port))
    # A WebSocket from that address is accepted, then closed with "try again later", which a
    # browser sees (a refused handshake would be an anonymous 1006 to it).
    offered = [Subprotocol("bearer"), Subprotocol(issue_token(api, "viewer"))]
    with ws_connect(f"ws://127.0.0.1:{port}/ws", subprotocols=offered) as ws:
        assert ws.subprotocol == "bearer"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1013,
        "too many connections: try again later",
    )
    # Another address still has room, and refused connections were never counted.
    assert _ask(port, "127.0.0.2")[0].startswith(b"HTTP/1.1 200 ")
    assert limits.open == PER_CLIENT
    held.pop().close()
    _wait(lambda: limits.open == PER_CLIENT - 1, "a closed connection was not uncounted")
    assert _ask(port)[0].startswith(b"HTTP/1.1 200 ")
    for conn in held:
        conn.close()
    _wait(lambda: limits.open == 0, "closed connections were not uncounted")


def test_the_server_total_refuses_every_address_and_a_websocket_frees_its_room(
    limited: tuple[int, FastAPI, ConnectionLimits],
) -> None:
    port, api, limits = limited
    offered = [Subprotocol("bearer"), Subprotocol(issue_token(api, "viewer"))]
    held = [_open(port, "127.0.0.1"), _open(port, "127.0.0.2")]
    with ws_connect(f"ws://127.0.0.1:{port}/ws?channels=fills", subprotocols=offered) as ws:
        held.append(_open(port, "127.0.0.3"))
        _wait(lambda: limits.open == TOTAL, "the connections were not counted")
        # The fifth connection, from an address with none open, is over the total.
        _assert_refused(_ask(port, "127.0.0.4"))
        ws.send(json.dumps({"subscribe": ["alerts"]}))  # the admitted WebSocket works
        assert json.loads(ws.recv(timeout=10))["channel"] == "subscribed"
    _wait(lambda: limits.open == TOTAL - 1, "the closed WebSocket was not uncounted")
    assert _ask(port, "127.0.0.4")[0].startswith(b"HTTP/1.1 200 ")
    for conn in held:
        conn.close()


def test_a_trusted_proxy_is_bound_only_by_the_total(
    limited: tuple[int, FastAPI, ConnectionLimits],
) -> None:
    # Every client behind a proxy shares its address: a per-address bound would refuse them.
    port, _, limits = limited
    held = [_open(port, "127.0.0.9") for _ in range(PER_CLIENT + 1)]
    _wait(lambda: limits.open == TOTAL, "the proxy's connections were not counted")
    _assert_refused(_ask(port, "127.0.0.9"))
    for conn in held:
        conn.close()


def test_limits_exempt_networks_or_every_address() -> None:
    limits = ConnectionLimits(total=10, per_client=1, exempt=["10.0.0.0/8"])
    assert limits.admit(("10.1.2.3", 1)) and limits.admit(("10.1.2.3", 2))
    assert limits.admit(("192.0.2.1", 1)) and not limits.admit(("192.0.2.1", 2))
    assert limits.refused(("192.0.2.1", 2)) and not limits.refused(("192.0.2.1", 1))
    # A peer that is no IP address (uvicorn names some sockets otherwise) is not exempt.
    assert limits.admit(("peer", 1)) and not limits.admit(("peer", 2))
    # A Unix socket has no peer address: always admitted, never counted.
    assert limits.admit(None) and not limits.refused(None)
    limits.release(None)
    for peer in [("10.1.2.3", 1), ("10.1.2.3", 2), ("192.0.2.1", 1), ("192.0.2.1", 2)]:
        limits.release(peer)
    assert limits.open == 1  # ("peer", 1)
    # A name that is no address (a Unix socket's, say) is matched as written, not refused.
    named = ConnectionLimits(total=10, per_client=1, exempt=["proxy-socket"])
    assert named.admit(("proxy-socket", 1)) and named.admit(("proxy-socket", 2))
    assert named.admit(("10.0.0.1", 1)) and not named.admit(("10.0.0.1", 2))
    anyone = ConnectionLimits(total=2, per_client=1, exempt=["*"])
    assert anyone.admit(("192.0.2.1", 1)) and anyone.admit(("192.0.2.1", 2))
    assert not anyone.admit(("192.0.2.1", 3))


def test_a_refused_connection_sending_nothing_is_closed_within_seconds(
    limited: tuple[int, FastAPI, ConnectionLimits],
) -> None:
    # Refused connections are not counted: the short head clock bounds what they hold.
    port, _, limits = limited
    held = _hold_the_share(port, limits)
    started = time.monotonic()
    answer = b""
    with _open(port) as idle, contextlib.suppress(ConnectionResetError):
        while chunk := idle.recv(65536):
            answer += chunk
    assert time.monotonic() - started < REFUSED_HEAD_SECONDS + 3
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    for conn in held:
        conn.close()
