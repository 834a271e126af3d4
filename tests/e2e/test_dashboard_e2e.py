"""The dashboard in headless Chromium against the real API (see conftest): login, role-aware
pages showing the seeded figures exactly, backtests run and compared from the forms, parameter
edits with validation, ratings, preferences, reports, users, the kill switch, scheduled jobs,
and live prices and candles arriving over /ws. They run in file order on one xdist worker and
share one seeded server; a test that changes state says so or puts it back."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from e2e_support import (
    ALERT_MESSAGE,
    COMMENTARY,
    ETH_CLOSES,
    FILL_FEE,
    ORDER_ID,
    PASSWORD,
    REPORT_TITLE,
    LiveServer,
    login,
)
from playwright.sync_api import Page, expect

from sigma.api.users import create_user
from sigma.store.db import session_scope

# One xdist worker runs them all (`--dist loadgroup`): one server and one browser, not two.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_wrong_password_shows_an_error_and_stays_signed_out(page: Page, server: LiveServer) -> None:
    page.goto("/")
    page.get_by_label("Username").fill("viewer")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_test_id("login-error")).to_have_text("wrong username or password")
    expect(page.get_by_test_id("whoami")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('sigma.session')") is None


def test_viewer_sees_the_seeded_numbers_and_no_edit_controls(
    page: Page, server: LiveServer
) -> None:
    login(page, "viewer")
    expect(page.get_by_test_id("whoami")).to_contain_text("viewer")
    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)

    # Overview: kill switch state, positions and ledger exactly as stored.
    expect(page.get_by_test_id("kill-switch-state")).to_have_attribute("data-enabled", "false")
    positions = page.get_by_test_id("positions-table")
    position = positions.locator("tbody tr", has_text="sma_cross")
    expect(position).to_contain_text("BTC")
    expect(position.locator("td").nth(3)).to_have_text("0.125")
    expect(position.locator("td").nth(4)).to_have_text("30,123.45")
    expect(position.locator("td").nth(5)).to_have_text("-12.3456")
    ledger = page.get_by_test_id("ledger-table").locator("tbody tr", has_text="paper")
    expect(ledger.locator("td").nth(1)).to_have_text("-3,769.19685")
    expect(ledger.locator("td").nth(2)).to_have_text("3.7654312")
    expect(ledger.locator("td").nth(3)).to_have_text("-12.3456")
    expect(page.get_by_test_id("health")).to_contain_text("Database")

    # Orders and fills.
    page.get_by_role("link", name="Orders & fills").click()
    order = page.get_by_test_id("orders-table").locator("tbody tr", has_text=ORDER_ID)
    expect(order).to_contain_text("filled")
    expect(order.locator("td").nth(5)).to_have_text("0.125")
    expect(order.locator("td").nth(6)).to_have_text("30,123.45")
    fill = page.get_by_test_id("fills-table").locator("tbody tr", has_text=ORDER_ID)
    expect(fill.locator("td").nth(5)).to_have_text("30,123.45")
    expect(fill.locator("td").nth(6)).to_have_text(str(FILL_FEE))
    page.get_by_label("Group by").select_option("strategy")
    pnl = page.get_by_test_id("pnl-table").locator("tbody tr", has_text="sma_cross")
    expect(pnl.locator("td").nth(1)).to_have_text("-12.3456")

    # Strategies: active parameters readable, nothing editable.
    page.get_by_role("link", name="Strategies").click()
    params = page.get_by_test_id("params-table").locator("tbody tr", has_text="sma_cross")
    expect(params).to_contain_text("fast=10, slow=30")
    expect(page.get_by_test_id("strategy-sma_cross")).to_be_visible()
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Set parameters")).to_have_count(0)

    # Backtests: the stored run with its exact final equity and trades; no run form.
    page.get_by_role("link", name="Backtests").click()
    bt = server.seeded
    row = page.get_by_test_id("backtests-table").locator(
        "tbody tr", has=page.get_by_role("link", name=f"#{bt.backtest_id}", exact=True)
    )
    expect(row).to_contain_text("sma_cross")
    expect(page.get_by_test_id("toggle-run-backtest")).to_have_count(0)
    expect(page.get_by_test_id("toggle-compare-strategies")).to_have_count(0)
    row.get_by_role("link", name="sma_cross").click()
    expect(page).to_have_url(re.compile(rf"#/backtests/{bt.backtest_id}$"))
    kpis = page.get_by_test_id("backtest-kpis")
    whole, _, frac = bt.backtest_final_equity.partition(".")
    expect(kpis).to_contain_text(f"{int(whole):,}.{frac.ljust(2, '0')}")
    expect(page.get_by_test_id("trades-table").locator("tbody tr")).to_have_count(
        bt.backtest_trades
    )
    expect(page.get_by_test_id("equity-chart").locator("polyline.line")).to_have_count(1)
    expect(page.get_by_test_id("drawdown-chart")).to_be_visible()

    # Simulations: rating visible, no rating form; alerts and actions listed.
    page.get_by_role("link", name="Simulations").click()
    sim = page.get_by_test_id("sim-table").locator("tbody tr", has_text="ETH")
    expect(sim).to_contain_text("10,234.50")
    expect(sim).to_contain_text("unrated")
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    sim.get_by_role("button", name="Orders").click()
    sim_order = page.get_by_test_id("sim-orders-table").locator("tbody tr")
    expect(sim_order).to_have_count(1)
    expect(sim_order).to_contain_text("filled")
    expect(sim_order).to_contain_text("2,012.75")
    page.get_by_role("link", name="Alerts & actions").click()
    expect(page.get_by_test_id("alerts-table")).to_contain_text(ALERT_MESSAGE)
    expect(page.get_by_test_id("actions-table")).to_contain_text("order_accepted")
    # No bot runs in this API process: news scoring is reported as unavailable, not as an error.
    expect(page.get_by_test_id("news-unavailable")).to_contain_text("not running here")


def test_viewer_opens_a_performance_report(page: Page, server: LiveServer) -> None:
    login(page, "viewer")
    page.get_by_role("link", name="Reports").click()
    rows = page.get_by_test_id("reports-table").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("sma_cross")
    expect(rows.first).to_contain_text("Total return pct 1.25 · N trades 7")
    expect(rows.nth(1)).to_contain_text("no file")
    with page.expect_popup() as popup_info:
        rows.first.get_by_role("button", name="View").click()
    popup = popup_info.value
    expect(popup.get_by_role("heading", level=1)).to_have_text(REPORT_TITLE)
    popup.close()


def test_viewer_compares_two_backtests(page: Page, server: LiveServer) -> None:
    bt = server.seeded
    login(page, "viewer")
    page.get_by_role("link", name="Backtests").click()
    compare = page.get_by_test_id("compare-link")
    expect(compare).to_have_attribute("aria-disabled", "true")
    page.get_by_label(f"Compare #{bt.backtest_id}", exact=True).check()
    page.get_by_label(f"Compare #{bt.other_backtest_id}", exact=True).check()
    compare.click()

    ids = f"{bt.backtest_id},{bt.other_backtest_id}"
    expect(page).to_have_url(re.compile(rf"#/backtests/compare/{ids}$"))
    stats = page.get_by_test_id("compare-stats")
    expect(stats.locator("thead th")).to_have_count(3)
    expect(stats.locator("thead")).to_contain_text(f"#{bt.backtest_id} sma_cross")
    expect(stats.locator("thead")).to_contain_text(f"#{bt.other_backtest_id} rsi_reversion")
    runs = {r["id"]: r for r in server.get("/api/backtests", "viewer")}
    sharpe = [runs[i]["stats"]["sharpe"] for i in (bt.backtest_id, bt.other_backtest_id)]
    best = sharpe.index(max(sharpe))
    sharpe_row = stats.locator("tbody tr", has=page.get_by_role("rowheader", name="Sharpe"))
    expect(sharpe_row.locator("td").nth(best)).to_have_class(re.compile("best"))
    expect(sharpe_row.locator("td").nth(1 - best)).not_to_have_class(re.compile("best"))
    expect(page.get_by_test_id("compare-chart").locator("polyline")).to_have_count(2)


def test_viewer_sees_the_ml_gate_models_with_their_comparison(
    page: Page, server: LiveServer
) -> None:
    (model,) = server.get("/api/ml/models", "viewer")
    login(page, "viewer")
    page.get_by_role("link", name="Backtests").click()
    row = page.get_by_test_id("ml-models-table").locator("tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td[data-label=Symbol]")).to_have_text("BTC")
    expect(row.locator("td[data-label=Gating]")).to_have_text(
        "in use" if model["active"] else "not used"
    )
    expect(row.locator("td[data-label=Vetoes]")).to_have_text(str(model["gate"]["vetoes"]))
    sma = model["gate"]["strategies"]["sma_cross"]
    expect(row.locator("td[data-label='Per strategy']")).to_contain_text(
        f"({sma['gated']['trades']} vs {sma['ungated']['trades']} trades"
    )


def test_trader_runs_a_backtest_from_the_form_and_sees_it(page: Page, server: LiveServer) -> None:
    before = len(server.get("/api/backtests", "trader"))
    login(page, "trader")
    page.get_by_role("link", name="Backtests").click()
    page.get_by_test_id("toggle-run-backtest").click()
    form = page.get_by_test_id("run-backtest")
    form.get_by_label("Strategy").select_option("donchian_trend")
    form.get_by_label("Bars (synthetic)").fill("10")
    form.get_by_role("button", name="Run backtest").click()
    expect(form).to_contain_text("bars: a whole number from 50 to 200000")

    form.get_by_label("Symbol").fill("BTC")  # whatever the trader's saved defaults say
    form.get_by_label("Bars (synthetic)").fill("200")
    form.get_by_label("Seed").fill("5")
    form.locator("input[name=entry]").fill("15")
    form.get_by_role("button", name="Run backtest").click()

    done = page.get_by_test_id("backtest-done")
    expect(done).to_contain_text("finished")
    runs = server.get("/api/backtests", "trader")
    assert len(runs) == before + 1
    newest = runs[0]
    assert newest["strategy"] == "donchian_trend"
    assert newest["params"]["entry"] == 15
    first_row = page.get_by_test_id("backtests-table").locator("tbody tr").first
    expect(first_row).to_contain_text(f"#{newest['id']}")
    expect(first_row).to_contain_text("donchian_trend")
    job = page.get_by_test_id("jobs-table").locator("tbody tr").first
    expect(job).to_contain_text("donchian_trend")
    expect(job).to_contain_text("trader")
    expect(job).to_contain_text("done")
    expect(job.get_by_role("link")).to_have_text(f"#{newest['id']}")

    done.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Backtest #{newest['id']} — donchian_trend on BTC"
    )
    expect(page.get_by_test_id("backtest-stats")).to_contain_text("Sharpe")
    expect(page.get_by_test_id("equity-chart")).to_be_visible()


def test_trader_compares_strategies_and_sees_the_recommendation(
    page: Page, server: LiveServer
) -> None:
    login(page, "trader")
    page.get_by_role("link", name="Backtests").click()
    page.get_by_test_id("toggle-compare-strategies").click()
    form = page.get_by_test_id("compare-strategies")
    chosen = ("bollinger_breakout", "rsi_reversion", "sma_cross")
    for name in (*chosen, "donchian_trend"):
        form.get_by_label(name).set_checked(name in chosen)
    form.get_by_label("Bars (synthetic)").fill("150")
    form.get_by_role("button", name="Compare strategies").click()

    result = page.get_by_test_id("comparison-result")
    expect(result.get_by_test_id("recommendation")).to_contain_text("Use ")
    ranking = result.get_by_test_id("ranking-table").locator("tbody tr")
    expect(ranking).to_have_count(3)
    listed = {r["id"]: r for r in server.get("/api/backtests", "trader")}
    names = []
    for i in range(3):
        link = ranking.nth(i).get_by_role("link")
        backtest_id = int(link.get_attribute("href").rsplit("/", 1)[1])
        names.append(link.inner_text())
        assert listed[backtest_id]["strategy"] == names[-1]
    assert sorted(names) == list(chosen)
    recommendation = result.get_by_test_id("recommendation").inner_text()
    assert recommendation.startswith(f"Use {names[0]}")

    result.get_by_role("link", name="Side by side").click()
    expect(page.get_by_test_id("compare-stats").locator("thead th")).to_have_count(4)


def test_trader_edits_parameters_with_validation_messages(page: Page, server: LiveServer) -> None:
    login(page, "trader")
    page.get_by_role("link", name="Strategies").click()
    page.get_by_test_id("edit-sma_cross-BTC").click()
    editor = page.get_by_test_id("param-editor-sma_cross")

    # Out of bounds: refused in the browser with the parameter's name.
    editor.locator("input[name=fast]").fill("1")
    editor.get_by_role("button", name="Save parameters").click()
    expect(editor).to_contain_text("fast: must be ≥ 2")

    # Within bounds but fast >= slow: the server's 422 message is shown.
    editor.locator("input[name=fast]").fill("40")
    editor.get_by_role("button", name="Save parameters").click()
    expect(editor.get_by_role("alert")).to_contain_text("body.params")
    assert server.get("/api/params", "trader")[0]["params"]["fast"] == 10

    editor.locator("input[name=fast]").fill("12")
    editor.locator("input[name=reason]").fill("e2e: faster entries")
    editor.get_by_role("button", name="Save parameters").click()
    row = page.get_by_test_id("params-table").locator("tbody tr", has_text="sma_cross")
    expect(row).to_contain_text("fast=12, slow=30")
    expect(row).to_contain_text("trader")
    expect(row).to_contain_text("e2e: faster entries")
    active = next(p for p in server.get("/api/params", "viewer") if p["strategy"] == "sma_cross")
    assert active["params"]["fast"] == 12
    assert active["changed_by"] == "trader"


def test_trader_saves_backtest_defaults_used_by_the_run_form(
    page: Page, server: LiveServer
) -> None:
    login(page, "trader")
    page.get_by_test_id("whoami").click()
    form = page.get_by_test_id("prefs-form")
    form.get_by_label("Symbol").fill("ETH")
    form.get_by_label("Bars").fill("10")
    form.get_by_role("button", name="Save preferences").click()
    expect(form.get_by_role("alert")).to_have_text("bars: a whole number from 50 to 200000")

    form.get_by_label("Bars").fill("300")
    form.get_by_label("Bar interval").select_option("4h")
    form.get_by_role("button", name="Save preferences").click()
    expect(form.get_by_role("status")).to_have_text("Preferences saved.")
    defaults = server.get("/api/me/prefs", "trader")["backtest_defaults"]
    assert (defaults["symbol"], defaults["bars"], defaults["freq"]) == ("ETH", 300, "4h")

    page.get_by_role("link", name="Backtests").click()
    page.get_by_test_id("toggle-run-backtest").click()
    run = page.get_by_test_id("run-backtest")
    expect(run.get_by_label("Symbol")).to_have_value("ETH")
    expect(run.get_by_label("Bars (synthetic)")).to_have_value("300")
    expect(run.get_by_label("Bar interval")).to_have_value("4h")


def test_viewer_profile_and_system_pages_are_read_only(page: Page, server: LiveServer) -> None:
    login(page, "viewer")
    page.get_by_test_id("whoami").click()
    expect(page.get_by_test_id("profile")).to_contain_text("read only")
    expect(page.get_by_test_id("prefs-form")).to_have_count(0)

    page.get_by_role("link", name="System").click()
    jobs = page.get_by_test_id("jobs-schedule-table")
    expect(jobs.locator("tbody tr")).to_have_count(2)
    expect(jobs).to_contain_text("hourly-e2e")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.get_by_test_id("limit-max_drawdown")).to_have_text("25%")
    expect(page.get_by_test_id("limit-max_order_notional")).to_have_text("no limit")
    metrics = page.get_by_test_id("metrics-table")
    expect(metrics).to_contain_text("sigma_feed_stale")
    page.get_by_label("Filter metrics").fill("drawdown")
    expect(metrics.locator("tbody tr")).to_have_count(1)
    expect(metrics).to_contain_text("sigma_drawdown_pct")


def test_report_preferences_choose_what_the_reports_page_lists(
    page: Page, server: LiveServer
) -> None:
    login(page, "admin")
    page.get_by_test_id("whoami").click()
    form = page.get_by_test_id("report-prefs-form")
    form.get_by_label("Reports listed").select_option("daily")
    form.get_by_role("button", name="Save report preferences").click()
    expect(form.get_by_role("status")).to_have_text("Report preferences saved.")
    assert server.get("/api/me/prefs", "admin")["report_prefs"] == {
        "kind": "daily",
        "format": "html",
    }
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_label("Kind")).to_have_value("daily")
    expect(page.get_by_test_id("reports-table")).to_contain_text("No reports yet")
    page.get_by_label("Kind").select_option("")
    expect(page.get_by_test_id("reports-table").locator("tbody tr")).to_have_count(2)

    # Put the preference back (the page starts from it in later tests).
    page.get_by_test_id("whoami").click()
    form.get_by_label("Reports listed").select_option("")
    form.get_by_role("button", name="Save report preferences").click()
    expect(form.get_by_role("status")).to_have_text("Report preferences saved.")
    assert server.get("/api/me/prefs", "admin")["report_prefs"]["kind"] == ""


def test_trader_rates_a_simulation_run(page: Page, server: LiveServer) -> None:
    login(page, "trader")
    page.get_by_role("link", name="Simulations").click()
    row = page.get_by_test_id("sim-table").locator("tbody tr", has_text="ETH")
    expect(row).to_contain_text("unrated")
    row.get_by_label("Rating").select_option("4")
    row.get_by_label("Comment").fill("steady, few trades")
    row.get_by_role("button", name="Save").click()

    expect(row.get_by_label("4 of 5")).to_be_visible()
    expect(row.locator("td").nth(9)).to_have_text("steady, few trades")
    run = next(r for r in server.get("/api/sim/runs", "viewer") if r["symbol"] == "ETH")
    assert (run["rating"], run["comment"]) == (4, "steady, few trades")


def test_admin_toggles_the_kill_switch_and_the_api_reports_it(
    page: Page, server: LiveServer
) -> None:
    assert server.get("/api/risk/kill-switch", "viewer")["enabled"] is False
    login(page, "admin")
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_test_id("users-table")).to_contain_text("trader")
    card = page.get_by_test_id("kill-switch")
    expect(card.get_by_test_id("kill-switch-state")).to_have_attribute("data-enabled", "false")

    card.get_by_test_id("kill-switch-toggle").click()
    expect(card.get_by_role("alert")).to_contain_text("reason")
    assert server.get("/api/risk/kill-switch", "viewer")["enabled"] is False

    card.get_by_label("Reason").fill("e2e: exchange outage")
    card.get_by_test_id("kill-switch-toggle").click()
    expect(card.get_by_test_id("kill-switch-state")).to_have_attribute("data-enabled", "true")
    expect(card.get_by_test_id("kill-switch-state")).to_contain_text("e2e: exchange outage")
    state = server.get("/api/risk/kill-switch", "viewer")
    assert state["enabled"] is True
    assert state["reason"] == "e2e: exchange outage"
    assert state["changed_by"] == "admin"

    # And back off, so the state is as seeded for any other test.
    card.get_by_label("Reason").fill("e2e: outage over")
    card.get_by_test_id("kill-switch-toggle").click()
    expect(card.get_by_test_id("kill-switch-state")).to_have_attribute("data-enabled", "false")
    assert server.get("/api/risk/kill-switch", "viewer")["enabled"] is False


def test_admin_manages_users(page: Page, server: LiveServer) -> None:
    login(page, "admin")
    page.get_by_role("link", name="Admin", exact=True).click()
    users = page.get_by_test_id("users")
    users.get_by_label("New username").fill("ops-e2e")
    users.get_by_label("New password").fill("short")
    users.get_by_role("button", name="Add user").click()
    expect(users.get_by_role("alert")).to_have_text("password: at least 8 characters")

    users.get_by_label("New password").fill("long-enough-password")
    users.get_by_label("Role", exact=True).select_option("viewer")
    users.get_by_role("button", name="Add user").click()
    row = page.get_by_test_id("users-table").locator("tbody tr", has_text="ops-e2e")
    expect(row).to_contain_text("viewer")

    row.get_by_label("Role of ops-e2e").select_option("trader")
    expect(users.get_by_role("status")).to_have_text("Updated ops-e2e.")
    listed = {u["username"]: u for u in server.get("/api/users", "admin")}
    assert listed["ops-e2e"]["role"] == "trader"

    settings = page.get_by_test_id("settings-table")
    expect(settings.locator("tbody tr", has_text="jwt_secret")).to_contain_text("***")
    expect(settings.locator("tbody tr", has_text="database_url")).to_contain_text("sqlite:///")

    # The server's refusal is shown as it says it.
    admin_row = page.get_by_test_id("users-table").locator("tbody tr", has_text="admin").first
    admin_row.get_by_role("button", name="Disable").click()
    expect(users.get_by_role("alert")).to_contain_text("last active admin")


def test_admin_pauses_and_resumes_a_scheduled_job(page: Page, server: LiveServer) -> None:
    login(page, "admin")
    page.get_by_role("link", name="System").click()
    expect(page.get_by_test_id("system-health")).to_contain_text("Database")
    row = page.get_by_test_id("jobs-schedule-table").locator("tbody tr", has_text="hourly-e2e")
    expect(row).to_contain_text("every hour")

    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")
    jobs = {j["id"]: j for j in server.get("/api/jobs", "viewer")}
    assert jobs["hourly-e2e"]["paused"] is True
    assert jobs["nightly-e2e"]["paused"] is False

    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    assert server.get("/api/jobs", "viewer")[0]["paused"] is False

    row.get_by_role("button", name="Runs").click()
    expect(page.get_by_test_id("runs-hourly-e2e")).to_contain_text("Not run yet.")


def test_a_price_published_on_the_bus_appears_live(page: Page, server: LiveServer) -> None:
    login(page, "viewer")
    expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("live-prices")).to_be_visible()
    expect(page.get_by_test_id("price-BTC")).to_have_count(0)

    server.publish_tick("BTC", "43210.123456789")
    expect(page.get_by_test_id("price-BTC")).to_contain_text("43,210.123456789")

    server.publish_tick("BTC", "43199.5")
    expect(page.get_by_test_id("price-BTC").locator(".px")).to_have_text("43,199.5")
    expect(page.get_by_test_id("price-BTC").locator(".px")).to_have_class(re.compile("neg"))
    # The open position is valued at the live price, exactly: (43199.5 - 30123.45) * 0.125.
    position = page.get_by_test_id("positions-table").locator("tbody tr", has_text="sma_cross")
    expect(position.locator("td").nth(6)).to_have_text("43,199.5")
    expect(position.locator("td").nth(7)).to_have_text("1,634.50625")


def test_markets_show_stored_candles_extended_by_live_ticks(page: Page, server: LiveServer) -> None:
    login(page, "viewer")
    expect(page.get_by_test_id("ws-state")).to_have_attribute("data-state", "open")
    page.get_by_role("link", name="Markets").click()
    page.get_by_label("Symbol").fill("ETH")
    chart = page.get_by_test_id("candle-chart")
    expect(chart.get_by_test_id("candle")).to_have_count(len(ETH_CLOSES))
    expect(chart.get_by_test_id("last-candle")).to_contain_text("C 2,087.25")
    regimes = page.get_by_test_id("regimes-table")
    expect(regimes.locator("tbody tr").first).to_contain_text("ETH")  # strongest first
    expect(regimes.locator("tbody tr").first).to_contain_text("trend_up")
    expect(regimes.locator("tbody tr").first).to_contain_text(f"ETH: trend_up {COMMENTARY}")
    expect(page.get_by_test_id("regime-history")).to_contain_text(COMMENTARY)

    # Two ticks in the same minute, five minutes after the last stored bar: one new candle.
    minute = server.seeded.eth_last_bar + timedelta(minutes=5)
    server.publish_tick("ETH", "2101.5", ts=minute + timedelta(seconds=10))
    expect(chart.get_by_test_id("candle")).to_have_count(len(ETH_CLOSES) + 1)
    server.publish_tick("ETH", "2099.125", ts=minute + timedelta(seconds=40))
    last = chart.get_by_test_id("last-candle")
    expect(last).to_contain_text("C 2,099.125")
    expect(last).to_contain_text("O 2,101.5")
    expect(last).to_contain_text("H 2,101.5")
    expect(last).to_contain_text("L 2,099.125")
    expect(chart.get_by_test_id("candle")).to_have_count(len(ETH_CLOSES) + 1)


def test_signing_out_revokes_the_token_on_the_server(page: Page, server: LiveServer) -> None:
    # A user of its own: signing out revokes every token of the user, cached ones included.
    with session_scope(server.app.sessions) as session:
        create_user(
            session, "leaver", PASSWORD, "viewer", rounds=server.app.settings.api.bcrypt_rounds
        )
    login(page, "leaver")
    token = page.evaluate("JSON.parse(localStorage.getItem('sigma.session')).token")
    me = f"{server.url}/api/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.evaluate("localStorage.getItem('sigma.session')") is None
    assert httpx.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 401
