"""`/ws`: authenticated relay of bus channels, topic selection, slow clients dropped."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from sigma.api import api_deps, create_api
from sigma.api.context import ApiContext
from sigma.api.ws import (
    CLOSE_TOO_SLOW,
    Client,
    Hub,
    bearer_protocol,
    check_channels,
    decode,
    frame,
)
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.store.auth_sessions import start_family
from sigma.store.db import session_scope
from sigma.store.models import AuthSession, User
from sigma.store.queries.users import get_user
from tests.api.conftest import login, make_app

Headers = Callable[[str], dict[str, str]]


def token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def publish(client: TestClient, pubsub: InMemoryPubSub, channel: str, data: object) -> None:
    client.portal.call(pubsub.publish, channel, json.dumps(data).encode())  # type: ignore[union-attr]


def test_client_receives_published_messages(
    client: TestClient, auth: Headers, pubsub: InMemoryPubSub
) -> None:
    with client.websocket_connect(f"/ws?token={token(auth('viewer'))}") as ws:
        publish(client, pubsub, "price_update", {"symbol": "BTC", "price": "101.5"})
        assert ws.receive_json() == {
            "channel": "price_update",
            "data": {"symbol": "BTC", "price": "101.5"},
        }
        client.portal.call(pubsub.publish, "fills", b"not json")  # type: ignore[union-attr]
        assert ws.receive_json() == {"channel": "fills", "data": "not json"}


def test_channel_selection_and_subscribe_commands(
    client: TestClient, auth: Headers, pubsub: InMemoryPubSub
) -> None:
    with client.websocket_connect(f"/ws?token={token(auth('viewer'))}&channels=fills") as ws:
        publish(client, pubsub, "price_update", {"skipped": True})
        publish(client, pubsub, "fills", {"n": 1})
        assert ws.receive_json() == {"channel": "fills", "data": {"n": 1}}

        ws.send_text(json.dumps({"subscribe": ["alerts"], "unsubscribe": ["fills"]}))
        assert ws.receive_json() == {"channel": "subscribed", "data": ["alerts"]}
        publish(client, pubsub, "fills", {"n": 2})
        publish(client, pubsub, "alerts", {"message": "hi"})
        assert ws.receive_json() == {"channel": "alerts", "data": {"message": "hi"}}

        ws.send_bytes(b'{"subscribe": ["fills"]}')
        assert ws.receive_json() == {"channel": "subscribed", "data": ["alerts", "fills"]}
        ws.send_text(json.dumps({"unsubscribe": ["fills"]}))
        assert ws.receive_json() == {"channel": "subscribed", "data": ["alerts"]}

        for bad, why in [
            ("nonsense", "send {"),
            ('{"subscribe": "fills"}', "subscribe must be a list"),
            ('{"subscribe": ["weather"]}', "unknown channel(s) weather"),
            ('{"drop": []}', "send {"),
        ]:
            ws.send_text(bad)
            reply = ws.receive_json()
            assert reply["channel"] == "error" and reply["data"].startswith(why), bad


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "not authenticated"),
        ("?token=garbage", "invalid token"),
        ("?token={viewer}&channels=weather", "unknown channel(s) weather"),
    ],
)
def test_refused_connections_close_with_1008(
    client: TestClient, auth: Headers, query: str, reason: str
) -> None:
    url = "/ws" + query.format(viewer=token(auth("viewer")))
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url) as ws:
        ws.receive_text()
    assert refused.value.code == 1008
    assert refused.value.reason.startswith(reason)


@pytest.mark.parametrize("origin", ["https://evil.example", "http://testserver.evil", "null"])
def test_a_page_of_another_origin_cannot_open_the_websocket(
    client: TestClient, auth: Headers, origin: str
) -> None:
    # Cross-site WebSocket hijacking: the page sends a valid token, yet is not the dashboard.
    url = f"/ws?token={token(auth('viewer'))}"
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(url, headers={"Origin": origin}) as ws,
    ):
        ws.send_text('{"subscribe": []}')  # an accepted connection answers this at once
        ws.receive_text()
    assert refused.value.code == 1008
    assert refused.value.reason.startswith(f"origin {origin!r} may not open /ws")
    assert not hub.clients


def test_the_own_origin_and_configured_ones_open_the_websocket(sigma_app: App) -> None:
    app = make_app(
        str(sigma_app.settings.database.database_url),
        sigma_app.settings.process.var_dir,
        api_allowed_origins="https://Sigma.example.com/",
    )
    api = create_api(api_deps(app), InMemoryPubSub(), static_dir=None)
    try:
        with TestClient(api) as client:
            url = f"/ws?token={token(login(client, 'viewer'))}&channels=fills"
            for origin in ("http://testserver", "https://sigma.example.com"):
                with client.websocket_connect(url, headers={"Origin": origin}) as ws:
                    ws.send_text('{"subscribe": []}')
                    assert json.loads(ws.receive_text())["channel"] == "subscribed", origin
    finally:
        app.close()


def test_disconnected_client_is_forgotten(client: TestClient, auth: Headers) -> None:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    with client.websocket_connect(f"/ws?token={token(auth('viewer'))}"):
        assert len(hub.clients) == 1
    assert hub.clients == set()


# --- the hub without a server ---------------------------------------------------------------


class Sink:
    """A WebSocket stand-in; `gate` holds sends back to play a slow client."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str | None] | None = None
        self.gate = gate

    async def send_text(self, data: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_slow_client_is_dropped_and_others_keep_receiving() -> None:
    bus = InMemoryPubSub()
    hub = Hub(bus, queue_size=3)
    await hub.start()
    slow = Client(Sink(asyncio.Event()), {"price_update"}, hub.queue_size, "slow")
    fast = Client(Sink(), {"price_update"}, hub.queue_size, "fast")
    hub.clients |= {slow, fast}
    senders = [c.start() for c in (slow, fast)]
    for i in range(6):
        await bus.publish("price_update", json.dumps({"i": i}).encode())
        await settle()
    assert slow.dropped and slow not in hub.clients and hub.dropped == 1
    assert slow.sink.closed is not None and slow.sink.closed[0] == CLOSE_TOO_SLOW  # type: ignore[attr-defined]
    assert [json.loads(t)["data"]["i"] for t in fast.sink.sent] == list(range(6))  # type: ignore[attr-defined]
    assert senders[0].cancelled()
    await hub.stop()
    assert fast.sink.closed == (1001, "server shutting down")  # type: ignore[attr-defined]
    senders[1].cancel()


async def test_sender_stops_when_the_peer_is_gone() -> None:
    class Broken(Sink):
        async def send_text(self, data: str) -> None:
            raise ConnectionResetError

    client = Client(Broken(), {"fills"}, 5, "gone")
    client.offer("x")
    await asyncio.wait_for(client.start(), 5)


def test_hub_needs_a_queue() -> None:
    with pytest.raises(ValueError, match="queue_size"):
        Hub(InMemoryPubSub(), queue_size=0)


def test_frame_and_channel_checks() -> None:
    assert json.loads(frame("fills", decode(b'{"a": 1}'))) == {"channel": "fills", "data": {"a": 1}}
    assert decode(b"\xff") == "\ufffd"
    assert check_channels([" fills", "", "alerts"]) == {"fills", "alerts"}
    with pytest.raises(ValueError, match="unknown channel"):
        check_channels(["fills", "x"])


def test_latest_prices_are_kept_served_and_sent_to_new_clients(
    client: TestClient, auth: Headers, pubsub: InMemoryPubSub
) -> None:
    viewer = auth("viewer")
    with client.websocket_connect(f"/ws?token={token(viewer)}&channels=price_update") as ws:
        for symbol, price in [("ETH", "10"), ("BTC", "100"), ("ETH", "11")]:
            publish(client, pubsub, "price_update", {"symbol": symbol, "price": price})
        for _ in range(3):
            ws.receive_json()
    with client.websocket_connect(f"/ws?token={token(viewer)}") as ws:
        snapshot = [ws.receive_json() for _ in range(2)]
    assert [m["data"] for m in snapshot] == [
        {"symbol": "ETH", "price": "11"},
        {"symbol": "BTC", "price": "100"},
    ]
    assert client.get("/api/prices", headers=viewer).json() == [
        {"symbol": "BTC", "price": "100"},
        {"symbol": "ETH", "price": "11"},
    ]
    # Clients without the price channel get no snapshot.
    with client.websocket_connect(f"/ws?token={token(viewer)}&channels=fills") as ws:
        publish(client, pubsub, "fills", {"n": 1})
        assert ws.receive_json()["channel"] == "fills"


def test_last_prices_are_bounded_and_only_from_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sigma.api.ws.MAX_SYMBOLS", 2)
    hub = Hub(InMemoryPubSub())
    for symbol in ("A", "B", "C", "A"):
        hub.broadcast("price_update", json.dumps({"symbol": symbol, "n": 1}).encode())
    # Only price updates that name a symbol count.
    hub.broadcast("price_update", b'["D"]')
    hub.broadcast("price_update", b'{"symbol": 5}')
    hub.broadcast("fills", b'{"symbol": "E"}')
    hub.broadcast("price_update", json.dumps({"symbol": "A", "n": 2}).encode())
    assert hub.last_prices == {"A": {"symbol": "A", "n": 2}, "B": {"symbol": "B", "n": 1}}


async def test_a_dropped_client_is_not_dropped_twice() -> None:
    hub = Hub(InMemoryPubSub(), queue_size=1)
    client = Client(Sink(), {"fills"}, 1, "slow")
    hub.clients.add(client)
    for n in range(4):
        hub.send(client, str(n))
    assert client.dropped and hub.dropped == 1
    await settle()


def test_price_snapshot_is_capped_at_half_the_queue(sigma_app: App) -> None:
    pubsub = InMemoryPubSub()
    api = create_api(api_deps(sigma_app), pubsub, static_dir=None, ws_queue_size=4)
    with TestClient(api) as client:
        hub: Hub = api.state.hub
        for symbol in ("A", "B", "C"):
            hub.broadcast("price_update", json.dumps({"symbol": symbol}).encode())
        with client.websocket_connect(f"/ws?token={token(login(client, 'viewer'))}") as ws:
            first = [ws.receive_json()["data"]["symbol"] for _ in range(2)]
            publish(client, pubsub, "fills", {"n": 1})
            assert ws.receive_json()["channel"] == "fills"  # C was not sent, the client lives
        assert first == ["A", "B"] and hub.dropped == 0


def _closed_within(
    client: TestClient, pubsub: InMemoryPubSub, ws: WebSocketTestSession, seconds: float
) -> WebSocketDisconnect | None:
    """Publish ticks until `ws` is closed (its close) or `seconds` pass (None): every
    receive then returns, a tick or the close, so the wait is bounded either way."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        publish(client, pubsub, "fills", {"tick": True})
        try:
            ws.receive_json()
        except WebSocketDisconnect as closed:
            return closed
    return None


def _revoke_by_logout(client: TestClient, viewer: dict[str, str], _: App) -> None:
    assert client.post("/api/auth/logout", headers=viewer).status_code == 204


def _disable(client: TestClient, _: dict[str, str], app: App) -> None:
    with session_scope(app.sessions) as session:
        session.query(User).filter_by(username="viewer").one().active = False


def _delete(client: TestClient, _: dict[str, str], app: App) -> None:
    with session_scope(app.sessions) as session:
        session.query(AuthSession).filter_by(user_id=get_user(session, "viewer").id).delete()  # type: ignore[union-attr]
        session.query(User).filter_by(username="viewer").delete()


@pytest.mark.parametrize(
    ("revoke", "reason"),
    [
        (_revoke_by_logout, "token revoked"),
        (_disable, "user 'viewer' no longer exists or is disabled"),
        (_delete, "user 'viewer' no longer exists or is disabled"),
    ],
)
def test_an_open_connection_is_closed_once_its_token_is_revoked(
    client: TestClient,
    auth: Headers,
    pubsub: InMemoryPubSub,
    sigma_app: App,
    revoke: Callable[[TestClient, dict[str, str], App], None],
    reason: str,
) -> None:
    hub: Hub = client.app.state.hub  # type: ignore[attr-defined]
    hub.auth_recheck = 0.02
    viewer = auth("viewer")
    with (
        client.websocket_connect(f"/ws?token={token(viewer)}&channels=fills") as ws,
        client.websocket_connect(f"/ws?token={token(auth('trader'))}&channels=fills") as other,
    ):
        # Several re-checks pass while the token holds: the connection stays open.
        assert _closed_within(client, pubsub, ws, 0.2) is None
        revoke(client, viewer, sigma_app)
        closed = _closed_within(client, pubsub, ws, 5)
        assert closed is not None, "the revoked connection stayed open"
        assert closed.code == 1008 and closed.reason.startswith(reason)
        # The revoked client is forgotten; another user's connection is untouched.
        assert [c.name for c in hub.clients] == ["trader"]
        assert _closed_within(client, pubsub, other, 0.2) is None


def test_an_open_connection_is_closed_when_its_token_expires(
    client: TestClient, pubsub: InMemoryPubSub, sigma_app: App
) -> None:
    ctx: ApiContext = client.app.state.ctx  # type: ignore[attr-defined]
    client.app.state.hub.auth_recheck = 0.02  # type: ignore[attr-defined]
    with session_scope(sigma_app.sessions) as session:
        user = get_user(session, "viewer")
        assert user is not None
        family = start_family(session, user.id, ctx.tokens.expiry("refresh"))
        # Issued so that it expires ten seconds from now: time enough to connect on two busy
        # cores (three seconds was not, once, and the connection was refused outright).
        issued = datetime.now(UTC) - ctx.tokens.access_ttl + timedelta(seconds=10)
        short, _ = ctx.tokens.issue(
            "viewer", "viewer", version=user.token_version, family=family.id, now=issued
        )
    with client.websocket_connect(f"/ws?token={short}&channels=fills") as ws:
        closed = _closed_within(client, pubsub, ws, 40)
    assert closed is not None, "the connection outlived its token"
    assert closed.code == 1008 and closed.reason.startswith("token expired")


def test_the_token_may_travel_as_a_subprotocol_instead_of_in_the_url(
    client: TestClient, auth: Headers, pubsub: InMemoryPubSub
) -> None:
    # In `?token=` it lands in every proxy's access log; the dashboard now sends it this way.
    offered = ["bearer", token(auth("viewer"))]
    with client.websocket_connect("/ws?channels=fills", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == "bearer"
        publish(client, pubsub, "fills", {"n": 1})
        assert ws.receive_json() == {"channel": "fills", "data": {"n": 1}}
    forged = ["bearer", token(auth("viewer"))[:-4] + "AAAA"]
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws", subprotocols=forged) as ws,
    ):
        ws.receive_text()
    assert refused.value.code == 1008 and refused.value.reason.startswith("invalid token")


@pytest.mark.parametrize(
    ("offered", "found"),
    [
        (["bearer", "abc.def.ghi"], "abc.def.ghi"),
        (["bearer"], None),
        (["bearer", ""], None),
        (["chat", "abc"], None),
        (["bearer", "abc", "x"], None),
        ([], None),
    ],
)
def test_bearer_protocol(offered: list[str], found: str | None) -> None:
    assert bearer_protocol(offered) == found
