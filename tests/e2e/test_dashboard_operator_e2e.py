"""The operator's views in headless Chromium (issue 22): the profit header, balances and daily
profit, the trading chart with indicators, fill markers and volume, alerts grouped with their
count, the log view, the status panel, and the Overview on a 390-pixel phone. Each test saves a
screenshot under its tmp_path. They share the seeded server of conftest and add only rows no
other test counts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from e2e_support import ETH_CLOSES, LiveServer, login
from playwright.sync_api import Browser, Page, Route, expect

from sigma.ops.logging import log_file
from sigma.store import session_scope
from sigma.store.alerts import record_alert
from sigma.store.models import FillRecord, JobRun, OrderRecord

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
TABLE_OVERFLOW = (
    "() => [...document.querySelectorAll('.table-wrap')].map(w => w.scrollWidth - w.clientWidth)"
)
"""How far each table scrolls sideways (0 when every column shows)."""


def money(text: str) -> str:
    """An API amount as the dashboard shows money: grouped, at least two decimals, every
    digit kept."""
    value = Decimal(text)
    whole, _, frac = format(abs(value), "f").partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{'-' if value < 0 else ''}{int(whole):,}.{frac}"


def shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def test_profit_header_balances_and_daily_profit(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    server.publish_tick("BTC", "31000")
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not any(p.get("symbol") == "BTC" for p in server.get("/api/prices", "viewer")):
        assert datetime.now(UTC) < deadline, "the tick never reached the API"
    book = server.get("/api/portfolio", "viewer")
    total = book["total"]
    login(page, "viewer")
    header = page.get_by_test_id("profit-header")
    expect(header.get_by_test_id("kpi-equity")).to_contain_text(money(total["equity"]))
    expect(header.get_by_test_id("kpi-equity")).to_contain_text(money(total["cash"]))
    expect(header.get_by_test_id("kpi-total")).to_contain_text(money(total["total_pnl"]))
    expect(header.get_by_test_id("kpi-open")).to_contain_text(money(total["open_pnl"]))
    # 0.125 BTC bought at 30,123.45, marked at the tick: (31000 - 30123.45) x 0.125.
    assert total["open_pnl"] == "109.56875"
    expect(header.get_by_test_id("kpi-open")).to_contain_text("109.56875")
    expect(header.get_by_test_id("kpi-closed")).to_contain_text(money(total["closed_pnl"]))
    expect(header.get_by_test_id("kpi-winrate")).to_contain_text("1 lost")
    expect(header.get_by_test_id("kpi-drawdown")).to_contain_text(money(total["max_drawdown"]))

    balances = page.get_by_test_id("balances-table")
    btc = balances.locator("tbody tr", has_text="BTC")
    expect(btc).to_contain_text("3,875.00")  # 0.125 x 31,000
    (asset,) = [a for a in book["assets"] if a["asset"] == "BTC"]
    expect(btc).to_contain_text(f"{Decimal(asset['exposure_pct']):.2f}%")
    expect(page.get_by_test_id("daily-profit").get_by_test_id("day-bar")).to_have_count(
        len(book["daily"])
    )
    accounts = page.get_by_test_id("accounts-table").locator("tbody tr")
    expect(accounts).to_have_count(len(book["accounts"]))
    shot(page, tmp_path, "profit-header")


def test_candle_chart_with_indicators_fill_markers_and_volume(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    last = server.seeded.eth_last_bar
    with session_scope(server.app.sessions) as session:
        for cid, side, minutes, price in (
            ("e2e-chart-buy", "buy", 12, "2050.25"),
            ("e2e-chart-sell", "sell", 4, "2080"),
        ):
            session.add(
                OrderRecord(
                    client_order_id=cid, mode="paper", symbol="ETH", side=side,
                    qty=Decimal("0.5"), status="filled", strategy="sma_cross",
                    filled_qty=Decimal("0.5"), created_at=last - timedelta(minutes=minutes),
                )
            )  # fmt: skip
            session.add(
                FillRecord(
                    client_order_id=cid, qty=Decimal("0.5"), price=Decimal(price),
                    ts=last - timedelta(minutes=minutes, seconds=-20),
                )
            )  # fmt: skip
    login(page, "viewer")
    page.get_by_role("link", name="Markets").click()
    page.get_by_label("Symbol").fill("ETH")
    page.get_by_label("Strategy").select_option("sma_cross")
    chart = page.get_by_test_id("candle-chart")
    expect(chart.get_by_test_id("candle")).to_have_count(len(ETH_CLOSES))
    expect(chart.get_by_test_id("volume-bar")).to_have_count(len(ETH_CLOSES))
    for line in ("fast_ma", "slow_ma"):
        expect(chart.get_by_test_id(f"indicator-{line}")).to_have_attribute(
            "d", re.compile(r"^M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+$")
        )
    markers = chart.get_by_test_id("trade-marker")
    expect(markers).to_have_count(2)
    expect(markers.first).to_have_attribute("data-side", "buy")
    expect(markers.nth(1)).to_have_attribute("data-side", "sell")
    expect(page.get_by_test_id("chart-params")).to_contain_text("fast=10, slow=20")
    expect(page.get_by_test_id("chart-params")).to_contain_text("2 fills marked")
    shot(page, tmp_path, "candle-chart")
    # Without a strategy: no lines, the fills of every strategy.
    page.get_by_label("Strategy").select_option("-")
    expect(chart.locator("path.indicator")).to_have_count(0)
    expect(chart.get_by_test_id("trade-marker")).to_have_count(2)


def test_alerts_repeating_are_one_row_with_their_count(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    with session_scope(server.app.sessions) as session:
        for i in range(3):
            record_alert(
                session, ts=start + timedelta(minutes=i), severity="error", source="feed",
                message=f"E2E feed BTC stale for {60 * (i + 1)}s", dedupe_key="e2e:stale:BTC",
            )  # fmt: skip
    login(page, "viewer")
    page.get_by_role("link", name="Alerts & actions").click()
    rows = page.get_by_test_id("alerts-table").locator("tbody tr", has_text="E2E feed BTC")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("stale for 180s")  # the latest occurrence's message
    expect(rows.get_by_test_id("alert-count")).to_have_text("×3")
    shot(page, tmp_path, "alerts-grouped")


def test_admin_reads_and_filters_the_process_log(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    path = log_file(server.app.settings.process.var_dir, "up")
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        ("INFO", "sigma.actions", "order_sent sma_cross BTC buy 0.125 @ 30123.45"),
        ("WARNING", "sigma.feeds", "feed ETH quiet for 30s"),
        ("ERROR", "sigma.execution", "fill for e2e-x failed: venue timeout"),
        ("INFO", "sigma.actions", "fill sma_cross BTC buy 0.125 @ 30123.45"),
    ]
    path.write_text(
        "".join(
            json.dumps({"ts": "2026-12-07T02:00:00.000Z", "level": level, "logger": logger,
                        "msg": msg, "pid": 42}) + "\n"
            for level, logger, msg in records
        )
    )  # fmt: skip
    login(page, "admin")
    page.get_by_role("link", name="Logs").click()
    lines = page.get_by_test_id("log-table").get_by_test_id("log-line")
    expect(lines).to_have_count(4)
    expect(lines.first).to_contain_text("order_sent sma_cross BTC buy 0.125 @ 30123.45")
    page.get_by_label("Level").select_option("WARNING")
    expect(lines).to_have_count(2)
    page.get_by_label("Contains").fill("venue")
    expect(lines).to_have_count(1)
    expect(lines).to_contain_text("fill for e2e-x failed")
    shot(page, tmp_path, "log-view")


def test_viewer_has_no_log_view(page: Page, server: LiveServer) -> None:
    login(page, "viewer")
    expect(page.get_by_role("link", name="Logs")).to_have_count(0)


def test_status_panel_shows_the_scheduler_and_the_components(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    login(page, "viewer")
    panel = page.get_by_test_id("status-panel")
    expect(panel.get_by_test_id("scheduler-alive")).to_have_attribute("data-alive", "true")
    expect(panel).to_contain_text("reports no supervised components")

    # An API that reports its supervised components (the health of `sigma up`).
    def with_components(route: Route) -> None:
        health = route.fetch().json()
        health["status"] = "degraded"
        health["components"] = [
            {"name": "bot", "state": "running", "restarts": 0, "last_error": None,
             "since": "2026-12-07T01:00:00Z"},
            {"name": "feed", "state": "restarting", "restarts": 3,
             "last_error": "ConnectionResetError: peer went away", "since": None},
            {"name": "recorder", "state": "down", "restarts": 5, "last_error": "disk full",
             "since": None},
        ]  # fmt: skip
        route.fulfill(json=health)

    page.route("**/api/health", with_components)
    page.get_by_role("link", name="System").click()
    panel = page.get_by_test_id("status-panel")
    expect(panel.get_by_test_id("component-bot")).to_have_attribute("data-state", "running")
    expect(panel.get_by_test_id("component-feed")).to_contain_text("3 restarts")
    expect(panel.get_by_test_id("component-feed")).to_contain_text("peer went away")
    expect(panel.get_by_test_id("component-recorder")).to_contain_text("down")
    shot(page, tmp_path, "status-panel")


def test_overview_on_a_phone_cuts_no_column(
    browser: Browser, server: LiveServer, tmp_path: Path
) -> None:
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        login(page, "viewer")
        expect(page.get_by_test_id("profit-header")).to_be_visible()
        position = page.get_by_test_id("positions-table").locator("tbody tr").first
        expect(position).to_contain_text("30,123.45")
        # Every cell is labelled and inside the screen: nothing scrolls sideways.
        last_cell = position.locator("td").last
        last_cell.scroll_into_view_if_needed()
        expect(last_cell).to_be_in_viewport()
        box = last_cell.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert last_cell.get_attribute("data-label") == "Unrealized PnL"
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert max(page.evaluate(TABLE_OVERFLOW)) <= 0, "a table scrolls sideways"
        shot(page, tmp_path, "overview-390px")
    finally:
        context.close()


def test_system_tables_show_every_column_without_scrolling(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with session_scope(server.app.sessions) as session:
        session.add(
            JobRun(job_id="nightly-e2e", started_at=now - timedelta(hours=1),
                   ended_at=now - timedelta(minutes=59), outcome="success")
        )  # fmt: skip
    login(page, "admin")
    page.get_by_role("link", name="System").click()
    jobs = page.get_by_test_id("jobs-schedule-table")
    expect(jobs.locator("tbody tr")).to_have_count(2)
    nightly = jobs.locator("tbody tr", has_text="nightly-e2e")
    expect(nightly.locator("td").nth(4)).to_contain_text("success")
    expect(nightly.get_by_role("button", name="Run now")).to_be_in_viewport()
    expect(page.get_by_test_id("metrics-table").locator("tbody tr").first).to_be_visible()
    # The jobs' buttons and the metrics' values are inside their cards, not scrolled away.
    overflow = page.evaluate(TABLE_OVERFLOW)
    assert max(overflow) <= 0, f"a table scrolls sideways by {max(overflow)} px"
    card = page.get_by_test_id("scheduled-jobs").bounding_box()
    run_now = jobs.get_by_role("button", name="Run now").first.bounding_box()
    assert card and run_now and run_now["x"] + run_now["width"] <= card["x"] + card["width"]
    shot(page, tmp_path, "system")
