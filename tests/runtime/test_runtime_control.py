"""A trader's commands reach the running bot through the API over the bus, in-process and on
the real Redis: parameters (pinned against the regime loop), stop and start, a forced entry
and a close booked like any order, a cancel of a resting order; a change the bus lost still
arrives from the stored state."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from sigma.api.server import serve_embedded
from sigma.api.users import create_user
from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.config import load_settings
from sigma.domain import Order, OrderType, Side, Tick
from sigma.feeds.ticks import encode_tick
from sigma.runtime.operator import store_params
from sigma.runtime.services import Services
from sigma.store.db import session_scope
from sigma.store.models import ActionLog, OrderRecord
from sigma.store.params import param_history
from sigma.store.strategy_control import get_control

SYMBOL = "XYZ"
STRATEGY = "sma_cross"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PASSWORD = "correct-horse-battery"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_for(check: Any, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `check()` until true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def make_app(tmp_path: Path, **bus: Any) -> App:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
        var_dir=tmp_path / "var",
        symbols=[SYMBOL],
        live_strategies=[STRATEGY],
        bar_seconds=60,
        adaptive=True,
        adaptive_test_bars=0,
        max_open_orders=None,
        max_drawdown=None,
        api_port=_port(),
        bcrypt_rounds=4,
        jwt_secret="control-test-secret-0123456789-abcdefghij",
        **bus,
    )
    app = App(settings)
    with session_scope(app.sessions) as session:
        create_user(session, "trader", PASSWORD, "trader", rounds=4)
    return app


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """The bot, the worker and the API running; a client logged in as the trader."""
    system = Services(app, ("bot", "worker", "api"), serve_embedded)
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    try:
        await wait_for(system.ready.is_set, 60, "system ready")
        base = f"http://{app.settings.api.api_host}:{app.settings.api.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(200):  # uvicorn listens a moment after `ready`
                with contextlib.suppress(httpx.TransportError):
                    token = await client.post(
                        "/api/auth/token", data={"username": "trader", "password": PASSWORD}
                    )
                    break
                await asyncio.sleep(0.05)
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            yield system, client
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)


async def bars(system: Services, count: int) -> None:
    """Publish ticks that close `count` one-minute bars at 100."""
    assert system.bot is not None
    bot, before = system.bot, system.bot.counters.bars
    for minute in range(count + 1):
        tick = Tick(SYMBOL, START + timedelta(minutes=minute), Decimal(100), Decimal(1))
        await system.pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
    await wait_for(lambda: bot.counters.bars >= before + count, what="bars")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> App:
    if request.param == "redis":
        bus = {
            "redis_url": request.getfixturevalue("redis_url"),
            "bus_prefix": request.getfixturevalue("bus_prefix"),
        }
        return make_app(tmp_path, **bus)
    return make_app(tmp_path)


async def test_a_parameter_change_reaches_the_bot_within_a_second_and_is_pinned(
    app: App,
) -> None:
    async with running(app) as (system, client):
        assert system.bot is not None and system.adaptive is not None
        engine = system.bot.engines[(STRATEGY, SYMBOL)]
        adjuster = system.adaptive.hook.loop.adjuster
        assert engine.strategy.params["fast"] != 12
        started = time.monotonic()
        answer = await client.put(
            f"/api/params/{STRATEGY}/{SYMBOL}",
            json={"params": {"fast": 12, "slow": 40}, "reason": "wider"},
        )
        assert answer.status_code == 200, answer.text
        # The answer comes once the bot applied it: the engine trades with it already.
        assert engine.strategy.params["fast"] == 12
        assert time.monotonic() - started < 1.0
        bot = answer.json()["bot"]
        assert bot["delivered"] and bot["ok"], bot
        assert adjuster.is_pinned(STRATEGY, SYMBOL)
        assert adjuster.baseline(STRATEGY, SYMBOL)["fast"] == 12
        with app.sessions() as session:
            assert param_history(session, STRATEGY, SYMBOL)[-1].changed_by == "trader"
            control = get_control(session, STRATEGY, SYMBOL)
        assert control.pinned and control.pinned_by == "trader"

        # The operator lets the regime loop tune it again: shown and audited.
        answer = await client.put(
            f"/api/controls/{STRATEGY}/{SYMBOL}/pinned", json={"on": False, "reason": "ok"}
        )
        assert answer.status_code == 200 and answer.json()["ok"], answer.text
        assert not adjuster.is_pinned(STRATEGY, SYMBOL)
        (listed,) = (await client.get("/api/controls")).json()
        assert (listed["pinned"], listed["pinned_by"]) == (False, "api:trader")
        assert (listed["version"], listed["params"]["fast"]) == (1, 12)

        # A change the bus never carried arrives from the stored state.
        assert system.control is not None
        system.control.resync_seconds = 0.1
        with session_scope(app.sessions) as session:
            store_params(session, STRATEGY, SYMBOL, {"fast": 8, "slow": 40}, "", "bob", source="t")
        await wait_for(lambda: engine.strategy.params["fast"] == 8, 5, "the stored change")
        await wait_for(lambda: adjuster.is_pinned(STRATEGY, SYMBOL), 5, "the stored pin")
    with app.sessions() as session:
        actions = {(a.source, a.action): a.details for a in session.scalars(select(ActionLog))}
    # What the API stored, and what the bot did with it.
    assert actions[("api", "control_unpin")]["by"] == "api:trader"
    assert actions[("api", "control_set_params")]["version"] == 1
    assert actions[("bot", "control_set_params")]["ok"] is True
    assert actions[("bot", "control_pin")]["detail"] == "regime tuning allowed again"


async def test_stop_force_entry_close_and_cancel_go_through_the_bot(app: App) -> None:
    async with running(app) as (system, client):
        assert system.bot is not None
        bot = system.bot
        engine = bot.engines[(STRATEGY, SYMBOL)]
        url = f"/api/controls/{STRATEGY}/{SYMBOL}"
        answer = await client.post(f"{url}/entry", json={"qty": "1"})
        assert answer.status_code == 409
        assert "no bar of XYZ yet" in answer.json()["detail"]
        await bars(system, 3)

        answer = await client.put(f"{url}/enabled", json={"on": False, "reason": "maintenance"})
        assert answer.status_code == 200 and answer.json()["ok"], answer.text
        assert bot.stopped[(STRATEGY, SYMBOL)] == "maintenance (api:trader)"
        (listed,) = (await client.get("/api/controls")).json()
        assert (listed["state"], listed["why"]) == ("stopped", "stopped by api:trader: maintenance")

        # A trader's entry passes the stop (never the risk limits) and is booked as any order.
        answer = await client.post(f"{url}/entry", json={"qty": "1", "reason": "test"})
        assert answer.status_code == 200, answer.text
        entry = answer.json()["client_order_id"]
        await wait_for(lambda: engine.portfolio.qty(SYMBOL) == 1, what="the entry's fill")
        answer = await client.post(f"{url}/close", json={})
        assert answer.status_code == 200, answer.text
        await wait_for(lambda: engine.portfolio.qty(SYMBOL) == 0, what="the close's fill")
        answer = await client.post(f"{url}/close", json={})
        assert answer.status_code == 409 and "flat" in answer.json()["detail"]
        (listed,) = (await client.get("/api/controls")).json()
        assert listed["position"] == "0"

        # A resting order is cancelled at the broker through the bot.
        resting = Order(SYMBOL, Side.BUY, OrderType.LIMIT, qty=Decimal(1), limit_price=Decimal(50))
        resting.strategy = STRATEGY
        assert await bot.place(engine, resting) == ""

        def status(coid: str) -> str | None:
            with app.sessions() as session:
                return session.scalar(
                    select(OrderRecord.status).where(OrderRecord.client_order_id == coid)
                )

        coid = resting.client_order_id
        await wait_for(lambda: status(coid) == "new", what="the resting order booked")
        answer = await client.post(f"/api/orders/{coid}/cancel", json={"reason": "stale"})
        assert answer.status_code == 200 and answer.json()["ok"], answer.text
        await wait_for(lambda: status(coid) == "cancelled", what="the cancel booked")
        answer = await client.post(f"/api/orders/{coid}/cancel", json={})
        assert answer.status_code == 409 and "cancelled" in answer.json()["detail"]
        assert (await client.post(f"/api/orders/{entry}/cancel", json={})).status_code == 409

        answer = await client.put(f"{url}/enabled", json={"on": True})
        assert answer.status_code == 200 and (STRATEGY, SYMBOL) not in bot.stopped
