"""A trader drives the running bot from the dashboard in headless Chromium: a strategy the
regime loop disabled shows why and is re-enabled, another is stopped, forced into a position
and closed, its parameters pinned and released, and a resting order is cancelled - against a
real `sigma up` (bot, worker, API) on an in-process bus."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from e2e_support import PASSWORD, ensure_dist, free_port, login
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from sigma.api.server import serve_embedded
from sigma.api.users import create_user
from sigma.bootstrap import App
from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.config import load_settings
from sigma.domain import Order, OrderType, Side, Tick
from sigma.feeds.ticks import encode_tick
from sigma.regime.state import AdaptiveStateStore
from sigma.runtime.services import Services
from sigma.store.db import session_scope
from sigma.store.models import ActionLog, OrderRecord

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SYMBOL = "BTC"
T = TypeVar("T")


@dataclass
class RunningBot:
    """`sigma up` with bot, worker and API in a thread of its own."""

    url: str
    app: App
    system: Services
    loop: asyncio.AbstractEventLoop

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the system's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    def bars(self, count: int) -> None:
        """Close `count` one-minute bars at 100 (the bot has a price to trade at)."""
        start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=count + 1)
        for minute in range(count + 1):
            tick = Tick(SYMBOL, start + timedelta(minutes=minute), Decimal(100), Decimal(1))
            self.call(self.system.pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick)))


@pytest.fixture
def bot_server(tmp_path: Path) -> Iterator[RunningBot]:
    ensure_dist()
    port = free_port()
    app = App(
        load_settings(
            database_url=f"sqlite:///{tmp_path / 'sigma.db'}",
            var_dir=tmp_path / "var",
            symbols=[SYMBOL],
            live_strategies=["sma_cross", "rsi_reversion"],
            bar_seconds=60,
            adaptive=True,
            adaptive_test_bars=0,
            max_open_orders=None,
            max_drawdown=None,
            api_port=port,
            bcrypt_rounds=4,
            jwt_secret="e2e-controls-secret-0123456789-abcdefghij",
        )
    )
    with session_scope(app.sessions) as session:
        create_user(session, "trader", PASSWORD, "trader", rounds=4)
    # What the default demo's regime loop did to 3 of 4 pairs: the UI must say why.
    AdaptiveStateStore(app.sessions).save_strategy(
        "rsi_reversion",
        SYMBOL,
        status="disable",
        score=-2.0,
        reason="lost 9 of the last 10 trades",
        blocked=frozenset(),
        baseline={},
        current={},
        ts=datetime.now(UTC),
        since=datetime.now(UTC),
    )
    system = Services(app, ("bot", "worker", "api"), serve_embedded)
    loop = asyncio.new_event_loop()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        await system.run(stop[0])

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code < 500:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("sigma up did not start")
        time.sleep(0.1)
    try:
        yield RunningBot(url, app, system, loop)
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)
        loop.close()
        app.close()


def test_trader_controls_the_running_bot_from_the_dashboard(
    browser: Browser, bot_server: RunningBot, tmp_path: Path
) -> None:
    context = browser.new_context(base_url=bot_server.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page: Page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login(page, "trader")
        page.get_by_role("link", name="Strategies").click()
        table = page.get_by_test_id("controls-table")
        notice = page.get_by_test_id("control-notice")

        # The regime loop's disable, and why; lifted by the trader.
        rsi = "rsi_reversion-BTC"
        expect(page.get_by_test_id(f"state-{rsi}")).to_contain_text("disabled")
        expect(page.get_by_test_id(f"state-{rsi}")).to_contain_text("lost 9 of the last 10")
        page.locator("input[name=control-reason]").fill("e2e: checked the feed")
        page.get_by_test_id(f"reenable-{rsi}").click()
        expect(notice).to_contain_text("the regime loop's verdict is lifted")
        expect(page.get_by_test_id(f"state-{rsi}")).to_contain_text("live")

        # Stop, then a forced entry (past the stop) and a close, booked like any order.
        sma = "sma_cross-BTC"
        page.get_by_test_id(f"stop-{sma}").click()
        expect(notice).to_contain_text("stopped: opens no new position")
        expect(page.get_by_test_id(f"state-{sma}")).to_contain_text(
            "stopped by api:trader: e2e: checked the feed"
        )
        bot_server.bars(3)
        page.get_by_test_id(f"qty-{sma}").fill("2")
        page.get_by_test_id(f"entry-{sma}").click()
        expect(notice).to_contain_text("long entry: buy 2 at market sent")
        row = table.locator("tbody tr", has=page.get_by_test_id(f"state-{sma}"))
        expect(row.locator("td[data-label=Position]")).to_have_text("2")
        page.get_by_test_id(f"close-{sma}").click()
        expect(notice).to_contain_text("close of 2: sell 2 at market sent")
        expect(row.locator("td[data-label=Position]")).to_have_text("0")
        page.get_by_test_id(f"start-{sma}").click()
        expect(page.get_by_test_id(f"state-{sma}")).to_contain_text("live")

        # The regime pin: set and lifted, shown in the table.
        page.get_by_test_id(f"pin-{sma}").click()
        expect(page.get_by_test_id(f"pinned-{sma}")).to_contain_text("pinned by api:trader")
        page.get_by_test_id(f"unpin-{sma}").click()
        expect(page.get_by_test_id(f"pinned-{sma}")).to_have_text("on")
        context_shot = tmp_path / "strategies-controls.png"
        page.screenshot(path=str(context_shot), full_page=True)

        # A resting order, cancelled from the Orders page.
        bot = bot_server.system.bot
        assert bot is not None
        engine = bot.engines[("sma_cross", SYMBOL)]
        resting = Order(SYMBOL, Side.BUY, OrderType.LIMIT, qty=Decimal(1), limit_price=Decimal(50))
        resting.strategy = "sma_cross"
        assert bot_server.call(bot.place(engine, resting)) == ""
        coid = resting.client_order_id
        page.get_by_role("link", name="Orders").click()
        page.get_by_test_id(f"cancel-{coid}").click()
        expect(page.get_by_test_id("cancel-notice")).to_contain_text(f"cancel of {coid} sent")

        def status() -> str | None:
            # A session per read: on SQLite one open read transaction keeps its snapshot, and
            # would never see the cancel booked after it began.
            with bot_server.app.sessions() as session:
                return session.scalar(
                    select(OrderRecord.status).where(OrderRecord.client_order_id == coid)
                )

        deadline = time.monotonic() + 15
        while (seen := status()) != "cancelled":
            assert time.monotonic() < deadline, f"the cancel was never booked (status {seen})"
            time.sleep(0.05)
        expect(page.get_by_test_id(f"cancel-{coid}")).to_have_count(0)
        page.screenshot(path=str(tmp_path / "orders-cancelled.png"), full_page=True)
        assert context_shot.stat().st_size > 0
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    with bot_server.app.sessions() as session:
        audited = {(a.source, a.action) for a in session.scalars(select(ActionLog))}
    # Every command is on record with the API's audit rows (the bot's own follow in batches).
    for action in ("reenable", "stop", "start", "pin", "unpin", "force_entry", "close_position"):
        assert ("api", f"control_{action}") in audited, action
    assert ("api", "control_cancel_order") in audited
