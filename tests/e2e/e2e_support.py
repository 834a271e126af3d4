"""Support for the dashboard end-to-end tests: seeded figures, the seed itself, the live
server handle and the login helper."""

from __future__ import annotations

import asyncio
import fcntl
import socket
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from playwright.sync_api import Page, expect

from sigma.api.users import create_user
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.domain import Tick
from sigma.feeds.synthetic import generate_bars
from sigma.feeds.ticks import encode_tick
from sigma.research.backtest import run_backtest
from sigma.research.ml_tune import TuneConfig
from sigma.research.ml_validate import tune_symbol
from sigma.scheduler.service import SchedulerService
from sigma.scheduler.tasks import JobContext, JobSpec, TaskManager
from sigma.store import save_backtest, session_scope, set_params, upsert_bars
from sigma.store.models import (
    ActionLog,
    AlertLog,
    FillRecord,
    LedgerEntry,
    OrderRecord,
    PerformanceReport,
    PositionRecord,
    SimOrder,
    SimRun,
    TrendData,
)
from sigma.strategies.builtin import SmaCross
from tests.research.ml_helpers import trending_bars

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
DIST = DASHBOARD / "dist"
SCREENSHOTS = ROOT / "var" / "e2e"
PASSWORD = "e2e-password-123"
ROLES = ("viewer", "trader", "admin")

# Seeded figures the UI must show exactly (as the API's strings, with display grouping).
ORDER_ID = "e2e-order-0001"
ORDER_QTY = Decimal("0.125")
ORDER_PRICE = Decimal("30123.45")
FILL_FEE = Decimal("3.7654312")
POSITION_PNL = Decimal("-12.3456")
LEDGER_CASH = Decimal("-3769.19685")
ALERT_MESSAGE = "E2E drawdown warning: equity 4.2% below peak"
SIM_FINAL = Decimal("10234.5")
SIM_ORDER_ID = "e2e-sim-0001"
SIM_FILL_PRICE = Decimal("2012.75")
COMMENTARY = "(e2e note)"
REPORT_TITLE = "Weekly performance E2E"
ETH_CLOSES = [f"{2000 + 3 * i}.25" for i in range(30)]

expect.set_options(timeout=10_000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ensure_dist() -> None:
    """Build the dashboard when there is no build (normally `make` has built it already)."""
    lock = DASHBOARD / ".e2e-build.lock"
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two xdist workers must not build at once
        if (DIST / "index.html").is_file():
            return
        for cmd in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "build"]):
            done = subprocess.run(cmd, cwd=DASHBOARD, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(
                    f"dashboard build failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}"
                )
    if not (DIST / "index.html").is_file():
        pytest.fail(f"dashboard build left no {DIST / 'index.html'}")


@dataclass
class Seeded:
    """What the seed put in the database."""

    backtest_id: int
    backtest_trades: int
    backtest_final_equity: str
    other_backtest_id: int
    eth_last_bar: datetime


def seed(app: App) -> Seeded:
    now = datetime.now(UTC).replace(microsecond=0)
    bars, _ = generate_bars(200, seed=11, freq="1h")
    cls = app.strategies.get("sma_cross")
    result, _engine = run_backtest(cls(fast=5, slow=20), bars, symbol="BTC")
    other, _engine = run_backtest(
        app.strategies.get("rsi_reversion")(), bars, symbol="BTC", initial_cash=Decimal(10000)
    )
    with session_scope(app.sessions) as session:
        for role in ROLES:
            create_user(session, role, PASSWORD, role, rounds=4)
        backtest_id = save_backtest(session, result)
        other_id = save_backtest(session, other)
        set_params(
            session,
            "sma_cross",
            "BTC",
            {"fast": 10, "slow": 30, "allow_short": True},
            "seeded for e2e",
            "admin",
        )
        order = OrderRecord(
            client_order_id=ORDER_ID,
            mode="paper",
            symbol="BTC",
            side="buy",
            type="limit",
            qty=ORDER_QTY,
            limit_price=ORDER_PRICE,
            status="filled",
            strategy="sma_cross",
            filled_qty=ORDER_QTY,
            avg_fill_price=ORDER_PRICE,
            created_at=now - timedelta(hours=1),
        )
        session.add(order)
        session.add(
            FillRecord(
                client_order_id=ORDER_ID,
                qty=ORDER_QTY,
                price=ORDER_PRICE,
                fee=FILL_FEE,
                ts=now - timedelta(minutes=59),
            )
        )
        session.add(
            LedgerEntry(
                mode="paper",
                symbol="BTC",
                strategy="sma_cross",
                cash_delta=LEDGER_CASH,
                fee=FILL_FEE,
                realized_pnl=POSITION_PNL,
                reason="fill",
                order=order,
            )
        )
        session.add(
            PositionRecord(
                symbol="BTC",
                strategy="sma_cross",
                mode="paper",
                qty=ORDER_QTY,
                avg_price=ORDER_PRICE,
                realized_pnl=POSITION_PNL,
            )
        )
        session.add(AlertLog(severity="warning", source="risk", message=ALERT_MESSAGE))
        session.add(
            ActionLog(
                source="bot",
                action="order_accepted",
                mode="paper",
                strategy="sma_cross",
                symbol="BTC",
                details={"client_order_id": ORDER_ID},
            )
        )
        session.add(
            SimRun(
                strategy="sma_cross",
                symbol="ETH",
                params={"fast": 10, "slow": 30},
                status="finished",
                initial_cash=Decimal(10000),
                final_equity=SIM_FINAL,
                ended_at=now,
                orders=[
                    SimOrder(
                        client_order_id=SIM_ORDER_ID,
                        ts=now - timedelta(hours=1),
                        symbol="ETH",
                        side="buy",
                        qty=Decimal("1.5"),
                        status="filled",
                        fill_price=SIM_FILL_PRICE,
                    )
                ],
            )
        )
    # 30 one-minute ETH bars ending 20 minutes ago, and regime readings for two symbols.
    last = now.replace(second=0) - timedelta(minutes=20)
    index = pd.date_range(end=last, periods=len(ETH_CLOSES), freq="1min", tz="UTC")
    closes = [Decimal(c) for c in ETH_CLOSES]
    frame = pd.DataFrame(
        {
            "open": [float(c - Decimal("0.5")) for c in closes],
            "high": [float(c + 1) for c in closes],
            "low": [float(c - 1) for c in closes],
            "close": [float(c) for c in closes],
            "volume": [1.0] * len(closes),
        },
        index=index,
    )
    with session_scope(app.sessions) as session:
        upsert_bars(session, "ETH", "1m", frame)
        for symbol, trend, strength in (("ETH", "trend_up", 0.8), ("BTC", "range", 0.2)):
            session.add(
                TrendData(
                    symbol=symbol,
                    timeframe="1m",
                    ts=last,
                    trend=trend,
                    strength=strength,
                    data={"commentary": f"{symbol}: {trend} {COMMENTARY}"},
                )
            )
    with session_scope(app.sessions) as session:
        # The ML gate's model for BTC, validated on its test window (shown on Backtests).
        tune_symbol(session, "BTC", trending_bars(), [SmaCross], config=TuneConfig(n_estimators=10))
    report = Path(app.settings.process.var_dir) / "reports" / "weekly-e2e.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(f"<html><body><h1>{REPORT_TITLE}</h1></body></html>", encoding="utf-8")
    with session_scope(app.sessions) as session:
        for path in (report, None):
            session.add(
                PerformanceReport(
                    kind="weekly",
                    strategy="sma_cross" if path else None,
                    mode="paper",
                    period_start=now - timedelta(days=7 if path else 14),
                    period_end=now - timedelta(days=0 if path else 7),
                    stats={"total_return_pct": 1.25, "n_trades": 7},
                    path=str(path) if path else None,
                )
            )
    return Seeded(
        backtest_id=backtest_id,
        other_backtest_id=other_id,
        eth_last_bar=last,
        backtest_trades=len(result.trades),
        backtest_final_equity=format(result.final_equity.normalize(), "f"),
    )


def _noop(_: JobContext) -> None:
    return None


def make_scheduler(app: App) -> SchedulerService:
    """Two scheduled jobs on an open job store that runs nothing by itself (like `sigma up`'s
    scheduler, minus the work), for the system page."""
    manager = TaskManager(app.sessions)
    # Descriptions as long as the real jobs' (the System page must show them with every column).
    manager.register(
        JobSpec(
            "hourly-e2e", _noop, IntervalTrigger(hours=1),
            "every hour: StrategySelector walk-forward optimisation and selection",
        )
    )  # fmt: skip
    manager.register(
        JobSpec(
            "nightly-e2e", _noop, CronTrigger.from_crontab("0 3 * * *"),
            "at 03:00: retention of old rows, log rotation and the daily summary",
        )
    )  # fmt: skip
    service = SchedulerService(app.db, manager, timezone="UTC")
    service.start(paused=True)
    service.sync(manager.specs.values())
    return service


@dataclass
class LiveServer:
    """The running API: its URL, its bus, and the seeded data."""

    url: str
    app: App
    pubsub: InMemoryPubSub
    loop: asyncio.AbstractEventLoop
    seeded: Seeded
    tokens: dict[str, str] = field(default_factory=dict)

    def publish(self, channel: str, message: bytes) -> None:
        """Publish on the server's bus from the test thread."""
        asyncio.run_coroutine_threadsafe(self.pubsub.publish(channel, message), self.loop).result(5)

    def publish_tick(self, symbol: str, price: str, ts: datetime | None = None) -> None:
        tick = Tick(symbol=symbol, ts=ts or datetime.now(UTC), price=Decimal(price))
        self.publish("price_update", encode_tick(tick))

    def token(self, role: str) -> str:
        if role not in self.tokens:
            r = httpx.post(
                f"{self.url}/api/auth/token", data={"username": role, "password": PASSWORD}
            )
            r.raise_for_status()
            self.tokens[role] = r.json()["access_token"]
        return self.tokens[role]

    def get(self, path: str, role: str) -> Any:
        r = httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token(role)}"})
        r.raise_for_status()
        return r.json()


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the signed-in shell."""
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(username)
