"""The controls routes with no bot running: what each pair's state is and why, commands stored
and audited before they are sent, clear 4xx answers for what cannot be done."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.api import api_deps, create_api
from sigma.api.context import Principal
from sigma.api.routers import controls
from sigma.api.routers.controls import KEY_TTL, Keyed, OrderIn
from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_BOT_CONTROL, CHANNEL_BOT_CONTROL_ACK
from sigma.bus.memory import InMemoryPubSub
from sigma.regime.state import AdaptiveStateStore
from sigma.runtime import operator
from sigma.runtime.commands import COMMANDS, CommandAck, ForceEntry
from sigma.store.db import session_scope
from sigma.store.idempotency import EarlierRequest, claim_key, mark_sent, reclaim_key
from sigma.store.models import ActionLog, IdempotencyRecord, OrderRecord, PositionRecord
from sigma.store.strategy_control import get_control
from tests.api.conftest import login, make_app

Headers = Callable[[str], dict[str, str]]
URL = "/api/controls/sma_cross/BTC"
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _actions(app: App) -> list[tuple[str, str, dict[str, object]]]:
    with app.sessions() as session:
        rows = session.scalars(select(ActionLog).order_by(ActionLog.id))
        return [(r.source, r.action, r.details) for r in rows]


def test_each_pair_says_whether_it_is_live_and_why(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    store = AdaptiveStateStore(sigma_app.sessions)
    store.save_strategy(
        "rsi_reversion",
        "ETH",
        status="disable",
        score=-1.0,
        reason="lost 9 of 10 trades",
        blocked=frozenset(),
        baseline={},
        current={},
        ts=datetime(2026, 3, 2, tzinfo=UTC),
    )
    with session_scope(sigma_app.sessions) as session:
        session.add(
            PositionRecord(symbol="BTC", strategy="sma_cross", mode="paper", qty=Decimal("0.5"))
        )
    stop = client.put(
        f"{URL}/enabled", json={"on": False, "reason": "bad feed"}, headers=auth("trader")
    )
    assert stop.status_code == 200, stop.text
    assert stop.json()["delivered"] is False and stop.json()["ok"] is True
    listed = {
        (p["strategy"], p["symbol"]): p
        for p in client.get("/api/controls", headers=auth("viewer")).json()
    }
    assert len(listed) == 4  # the default strategies times the default symbols
    btc = listed[("sma_cross", "BTC")]
    assert (btc["state"], btc["why"]) == ("stopped", "stopped by api:trader: bad feed")
    assert btc["position"] == "0.5" and btc["params"] is None and btc["version"] == 0
    eth = listed[("rsi_reversion", "ETH")]
    assert (eth["state"], eth["why"]) == (
        "disabled",
        "disabled by the regime loop: lost 9 of 10 trades",
    )
    assert listed[("sma_cross", "ETH")]["state"] == "live"
    store.save_strategy(
        "rsi_reversion",
        "ETH",
        status="throttle",
        score=0.1,
        reason="",
        blocked=frozenset(),
        baseline={},
        current={},
        ts=datetime(2026, 3, 2, tzinfo=UTC),
    )
    listed = {
        (p["strategy"], p["symbol"]): p
        for p in client.get("/api/controls", headers=auth("viewer")).json()
    }
    eth = listed[("rsi_reversion", "ETH")]
    assert (eth["state"], eth["why"]) == (
        "throttled",
        "throttled by the regime loop: no reason saved",
    )


def test_a_manual_change_is_pinned_until_allowed_again_and_audited(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    trader = auth("trader")
    change = client.put(
        "/api/params/sma_cross/BTC",
        json={"params": {"fast": 12}, "reason": "wider"},
        headers=trader,
    )
    assert change.status_code == 200, change.text
    assert change.json()["changed_by"] == "trader" and change.json()["bot"]["delivered"] is False
    with sigma_app.sessions() as session:
        control = get_control(session, "sma_cross", "BTC")
    assert control.pinned and control.pin_reason == "manual change v1: wider"
    unpin = client.put(f"{URL}/pinned", json={"on": False, "reason": "let it tune"}, headers=trader)
    assert unpin.status_code == 200, unpin.text
    (pair,) = [
        p
        for p in client.get("/api/controls", headers=trader).json()
        if p["symbol"] == "BTC" and p["strategy"] == "sma_cross"
    ]
    assert (pair["pinned"], pair["pin_reason"], pair["params_by"]) == (
        False,
        "let it tune",
        "trader",
    )
    assert [(s, a) for s, a, _ in _actions(sigma_app)] == [
        ("api", "control_set_params"),
        ("api", "control_unpin"),
    ]


def test_orders_need_a_running_bot_and_a_known_target(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    trader = auth("trader")
    entry = client.post(f"{URL}/entry", json={"qty": "0.5", "reason": "test"}, headers=trader)
    assert entry.status_code == 409
    assert entry.json()["detail"].startswith("no running bot answered within")
    # Audited although nothing was done: the attempt is part of the record.
    (source, action, details) = _actions(sigma_app)[-1]
    assert (source, action, details["qty"], details["by"]) == (
        "api",
        "control_force_entry",
        "0.5",
        "api:trader",
    )
    close = client.post(f"{URL}/close", json={"qty": "1"}, headers=trader)
    assert close.status_code == 422
    assert client.post(f"{URL}/entry", json={"qty": "-1"}, headers=trader).status_code == 422
    # A quantity the books cannot hold (NUMERIC(28, 10)) is refused before anything is sent:
    # it was sent to the bot, and stored rounded (1e-12 as 0) or not at all (1e30).
    for qty, problem in [
        ("1e30", "no more than 28 digits in total"),
        ("0.000000000001", "no more than 10 decimal places"),
    ]:
        refused = client.post(f"{URL}/entry", json={"qty": qty}, headers=trader)
        assert refused.status_code == 422, qty
        assert refused.json() == {"detail": f"body.qty: Decimal input should have {problem}"}
    assert len(_actions(sigma_app)) == 1  # only the first entry was audited (and sent)
    unknown = client.post("/api/controls/nope/BTC/entry", json={}, headers=trader)
    assert unknown.status_code == 404
    untraded = client.post("/api/controls/sma_cross/DOGE/close", json={}, headers=trader)
    assert untraded.status_code == 404
    assert untraded.json()["detail"] == (
        "sma_cross on DOGE is not traded: the bot runs sma_cross, rsi_reversion on BTC, ETH"
    )
    missing = client.post("/api/orders/no-such-order/cancel", json={}, headers=trader)
    assert (missing.status_code, missing.json()["detail"]) == (404, "no order 'no-such-order'")
    with session_scope(sigma_app.sessions) as session:
        for coid, status in (("filled-order-1", "filled"), ("open-order-1", "new")):
            session.add(
                OrderRecord(
                    client_order_id=coid,
                    mode="paper",
                    symbol="BTC",
                    strategy="sma_cross",
                    side="buy",
                    type="limit",
                    qty=Decimal(1),
                    limit_price=Decimal(50),
                    status=status,
                )
            )
    done = client.post("/api/orders/filled-order-1/cancel", json={}, headers=trader)
    assert (done.status_code, done.json()["detail"]) == (
        409,
        "order filled-order-1 is filled: nothing to cancel",
    )
    resting = client.post("/api/orders/open-order-1/cancel", json={}, headers=trader)
    assert resting.status_code == 409 and "no running bot answered" in resting.json()["detail"]
    assert (
        client.post("/api/orders/open-order-1/cancel", json={}, headers=auth("viewer")).status_code
        == 403
    )


@dataclass
class Gate:
    """Whether the stand-in bot answers: it holds each command while `open` is clear, and
    sets `holding` while it does."""

    open: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def gate() -> Gate:
    """Open: the stand-in bot answers at once."""
    gate = Gate()
    gate.open.set()
    return gate


@pytest.fixture
def bot(
    client: TestClient, pubsub: InMemoryPubSub, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """A stand-in bot on the API's bus: the id of every command it received, each answered
    as placed once the `gate` is open."""
    monkeypatch.setattr(operator, "ACK_TIMEOUT", 10.0)
    received: list[str] = []
    listening = threading.Event()

    async def serve() -> None:
        commands = await pubsub.subscribe(CHANNEL_BOT_CONTROL)
        listening.set()
        async for raw in commands:
            command = COMMANDS.validate_json(raw)
            received.append(command.command_id)
            if not gate.open.is_set():
                gate.holding.set()
                await asyncio.to_thread(gate.open.wait, 10)
            ack = CommandAck(command_id=command.command_id, ok=True, detail="placed")
            await pubsub.publish(CHANNEL_BOT_CONTROL_ACK, ack.to_bytes())

    serving = client.portal.start_task_soon(serve)  # type: ignore[union-attr]
    assert listening.wait(10), "the stand-in bot did not subscribe"
    yield received
    serving.cancel()  # the client's portal waits for its tasks on exit


def test_an_idempotency_key_sends_an_order_once(
    client: TestClient, auth: Headers, sigma_app: App, bot: list[str]
) -> None:
    # A client retrying a timed-out entry placed a second market order.
    trader = {**auth("trader"), "Idempotency-Key": "retry-key-0001"}
    first = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=trader)
    assert first.status_code == 200 and first.json()["detail"] == "placed"
    # The retry is told what became of the first request (its command, its order).
    again = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=trader)
    assert (again.status_code, again.json()) == (200, first.json())
    # The key names that one request: another body, pair or kind with it is refused.
    for url, body in [
        (f"{URL}/entry", {"qty": "0.7"}),
        ("/api/controls/sma_cross/ETH/entry", {"qty": "0.5"}),
        (f"{URL}/close", {}),
    ]:
        refused = client.post(url, json=body, headers=trader)
        assert refused.status_code == 409, url
        assert refused.json()["detail"].startswith(
            "Idempotency-Key 'retry-key-0001' was used at "
        ), url
    # Keys are the user's own: another user's same key is another request.
    admin = {**auth("admin"), "Idempotency-Key": "retry-key-0001"}
    theirs = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=admin)
    assert theirs.status_code == 200
    assert theirs.json()["command_id"] != first.json()["command_id"]
    # Without a key every request is its own order, as before.
    plain = auth("trader")
    assert [client.post(f"{URL}/entry", json={}, headers=plain).status_code for _ in "ab"] == [
        200,
        200,
    ]
    orders = [(a, d) for _, a, d in _actions(sigma_app) if a.startswith("control_")]
    assert [d["command_id"] for _, d in orders] == bot and len(set(bot)) == 4
    assert [(a, d.get("idempotency_key")) for a, d in orders] == [
        ("control_force_entry", "retry-key-0001"),
        ("control_force_entry", "retry-key-0001"),
        ("control_force_entry", None),
        ("control_force_entry", None),
    ]


def test_a_retry_while_the_first_request_is_sent_sends_nothing(
    client: TestClient, auth: Headers, bot: list[str], gate: Gate
) -> None:
    gate.open.clear()
    keyed = {**auth("trader"), "Idempotency-Key": "race-key-0002"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, f"{URL}/close", json={}, headers=keyed)
        assert gate.holding.wait(10), "the first request did not reach the bot"
        racing = client.post(f"{URL}/close", json={}, headers=keyed)
        gate.open.set()
        answered = first.result(timeout=20)
    assert racing.status_code == 409
    assert racing.json()["detail"].startswith(
        "Idempotency-Key 'race-key-0002': this close_position of sma_cross on BTC was received at "
    )
    assert "has no answer yet" in racing.json()["detail"]
    assert answered.status_code == 200 and len(bot) == 1
    later = client.post(f"{URL}/close", json={}, headers=keyed)
    assert (later.status_code, later.json()) == (200, answered.json())
    assert len(bot) == 1


@pytest.mark.parametrize("database", ["sigma_app", pytest.param("pg_app", marks=pytest.mark.pg)])
def test_a_refusal_is_kept_for_the_retries_to_any_api_process(
    request: pytest.FixtureRequest, database: str, tmp_path: Path
) -> None:
    # Two API processes on one database: the key and its answer are the database's.
    app: App = request.getfixturevalue(database)
    other = make_app(app.settings.database.database_url, tmp_path / "other")
    entry = "/api/controls/sma_cross/BTC/entry"
    try:
        answers = []
        for one in (app, other):
            with TestClient(create_api(api_deps(one), InMemoryPubSub(), static_dir=None)) as c:
                keyed = {**login(c, "trader"), "Idempotency-Key": "no-bot-0001"}
                answers.append(c.post(entry, json={"qty": "1"}, headers=keyed))
    finally:
        other.close()
    first, again = answers
    assert first.status_code == 409
    assert first.json()["detail"].startswith("no running bot answered")  # sent, unanswered
    assert (again.status_code, again.json()) == (409, first.json())
    sent = [a for _, a, _ in _actions(app) if a == "control_force_entry"]
    assert sent == ["control_force_entry"]


def test_a_malformed_idempotency_key_is_422(client: TestClient, auth: Headers) -> None:
    for key in ("short", "x" * 65, "has space in it", "semi;colon;key"):
        response = client.post(
            f"{URL}/entry", json={}, headers={**auth("trader"), "Idempotency-Key": key}
        )
        assert response.status_code == 422, key
        assert response.json()["detail"].startswith("header.Idempotency-Key: "), key


def _entry(qty: str) -> tuple[ForceEntry, str]:
    """`trader`'s entry of `qty` and the fingerprint the API gives its request."""
    body = OrderIn(qty=Decimal(qty))
    command = ForceEntry(author="api:trader", strategy="sma_cross", symbol="BTC", qty=body.qty)
    keyed = Keyed.of(Principal("trader", "trader"), "any-key-0001", command, body)
    assert keyed is not None
    return command, keyed.fingerprint


def _stopped_claim(app: App, key: str, qty: str, *, sent: bool, age: timedelta) -> str:
    """The claim of an entry of `qty` by `trader` with `key` that an API process left when it
    stopped `age` ago, before (`sent` False) or after handing the command to the bot; its
    command id."""
    command, fingerprint = _entry(qty)
    then = datetime.now(UTC) - age
    with session_scope(app.sessions) as session:
        claimed = claim_key(
            session,
            "trader",
            key,
            fingerprint,
            command_id=command.command_id,
            now=then,
            ttl=KEY_TTL,
        )
        assert claimed is None
        if sent:
            assert mark_sent(session, "trader", key, command.command_id, now=then)
    return command.command_id


def test_a_claim_its_process_left_unsent_is_sent_by_a_retry_once(
    client: TestClient, auth: Headers, sigma_app: App, bot: list[str]
) -> None:
    # Its API process stopped between the claim and the send: the key answered 409 for 24 h.
    keyed = {**auth("trader"), "Idempotency-Key": "stopped-key-01"}
    pending = timedelta(seconds=sigma_app.settings.api.api_idempotency_pending_seconds)
    _stopped_claim(sigma_app, "stopped-key-01", "0.5", sent=False, age=pending + MINUTE)
    retry = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=keyed)
    assert (retry.status_code, retry.json()["detail"]) == (200, "placed")
    assert bot == [retry.json()["command_id"]]
    again = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=keyed)
    assert (again.status_code, again.json()) == (200, retry.json())
    # Another request with the key is still refused, however old the lost claim.
    _stopped_claim(sigma_app, "stopped-key-02", "0.5", sent=False, age=pending + MINUTE)
    other = {**keyed, "Idempotency-Key": "stopped-key-02"}
    refused = client.post(f"{URL}/entry", json={"qty": "0.7"}, headers=other)
    assert refused.status_code == 409 and "for another request" in refused.json()["detail"]
    assert len(bot) == 1


def test_a_claim_younger_than_the_pending_limit_is_not_taken_over(
    client: TestClient, auth: Headers, sigma_app: App, bot: list[str]
) -> None:
    keyed = {**auth("trader"), "Idempotency-Key": "young-key-001"}
    _stopped_claim(sigma_app, "young-key-001", "0.5", sent=False, age=timedelta(seconds=1))
    retry = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=keyed)
    assert retry.status_code == 409
    assert retry.json()["detail"].endswith(
        "has no answer yet (it is being sent); not sent again: retry in a few seconds for its "
        "answer (one its API process stopped before sending is sent by a retry 60s after it "
        "was received)"
    )
    assert bot == []


def test_a_sent_claim_without_an_answer_is_never_sent_again(
    client: TestClient, auth: Headers, sigma_app: App, bot: list[str]
) -> None:
    # Handed to the bot, then the process stopped: the order may exist, so the client is
    # told where to look instead of a second order being sent.
    keyed = {**auth("trader"), "Idempotency-Key": "sent-key-0001"}
    command_id = _stopped_claim(sigma_app, "sent-key-0001", "0.5", sent=True, age=HOUR)
    for _ in "ab":
        retry = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=keyed)
        assert retry.status_code == 409
        detail = retry.json()["detail"]
        assert f"as command {command_id} and its answer was lost" in detail
        assert "GET /api/actions?action=control_force_entry&strategy=sma_cross&symbol=BTC" in detail
        assert detail.endswith("send it again with a new key only if it placed nothing")
    # A claim stored before sends were recorded (no command, no send time) may have been
    # sent too.
    then = datetime.now(UTC) - HOUR
    with session_scope(sigma_app.sessions) as session:
        session.add(
            IdempotencyRecord(
                username="trader",
                key="legacy-key-01",
                fingerprint=_entry("0.5")[1],
                created_at=then,
                expires_at=then + KEY_TTL,
            )
        )
    legacy = {**keyed, "Idempotency-Key": "legacy-key-01"}
    retry = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=legacy)
    assert retry.status_code == 409
    assert (
        f"was received at {then.isoformat()}, may have been sent, and its answer was lost"
        in (retry.json()["detail"])
    )
    assert bot == []


def test_a_request_whose_claim_a_retry_took_over_sends_nothing(
    client: TestClient,
    auth: Headers,
    sigma_app: App,
    bot: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first request stalls between its claim and its send, long enough for a retry to
    # take the key over: of the two, only the retry may send.
    def taken_over_meanwhile(
        session: Session, username: str, key: str, command_id: str, *, now: datetime
    ) -> bool:
        with session_scope(sigma_app.sessions) as other:
            stalled = EarlierRequest("", now, None, None, command_id)
            assert reclaim_key(
                other, username, key, stalled, command_id="the-retry", now=now, ttl=KEY_TTL
            )
        return mark_sent(session, username, key, command_id, now=now)

    monkeypatch.setattr(controls, "mark_sent", taken_over_meanwhile)
    keyed = {**auth("trader"), "Idempotency-Key": "stalled-key-1"}
    stalled = client.post(f"{URL}/entry", json={"qty": "0.5"}, headers=keyed)
    assert stalled.status_code == 409
    assert stalled.json()["detail"] == (
        "Idempotency-Key 'stalled-key-1': this request was not sent within 60s and a retry "
        "took the key over: nothing sent by this request (the retry's answer says what became "
        "of the order)"
    )
    assert bot == []
    assert [a for _, a, _ in _actions(sigma_app)] == []  # nothing sent, nothing audited
