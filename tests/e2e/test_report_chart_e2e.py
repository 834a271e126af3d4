"""The backtest report's interactive chart in headless Chromium, opened from a file with no
network: it draws its panes without a script error or a request, the wheel and a dragged range
zoom every pane together, the log switch changes the price axis, and reset shows everything."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from sigma.reports import write_backtest_html

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from reports_factories import make_bars, make_result, make_trade

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

_X_RANGES = "sigmaCharts().map(u => [u.scales.x.min, u.scales.x.max])"


@pytest.fixture
def report(browser: Browser, tmp_path: Path) -> Iterator[tuple[Page, list[str], list[str]]]:
    bars = make_bars(5000)
    trades = [make_trade(bars, i, i + 30, "1", "2") for i in range(0, 4900, 100)]
    result = make_result(bars, trades)
    close = bars["close"].to_numpy()
    result.indicators = [("fast_ma", close * 1.01), ("rsi", np.linspace(20, 80, len(close)))]
    path = write_backtest_html(result, tmp_path / "report.html")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    page.wait_for_selector("#sigma-chart .uplot")
    yield page, errors, requests
    context.close()


def test_report_chart_draws_zooms_and_switches_to_log(
    report: tuple[Page, list[str], list[str]],
) -> None:
    page, errors, requests = report
    titles = page.locator("#sigma-chart .u-title").all_inner_texts()
    assert titles == ["BTC/USDT price", "Volume", "Indicators"]
    full = page.evaluate(_X_RANGES)
    pane = page.locator("#sigma-chart .u-over").first
    pane.scroll_into_view_if_needed()
    over = pane.bounding_box()
    assert over is not None
    page.mouse.move(over["x"] + over["width"] / 2, over["y"] + over["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"{_X_RANGES}[0][1] < {full[0][1]}")
    wheeled = page.evaluate(_X_RANGES)
    assert all(r == wheeled[0] for r in wheeled)  # every pane shows the same stretch
    assert wheeled[0][0] > full[0][0] and wheeled[0][1] < full[0][1]

    page.click("#sigma-reset")
    assert page.evaluate(_X_RANGES) == full
    page.mouse.move(over["x"] + 100, over["y"] + 60)
    page.mouse.down()
    page.mouse.move(over["x"] + 300, over["y"] + 80)
    page.mouse.up()
    dragged = page.evaluate(_X_RANGES)
    assert dragged[0][1] - dragged[0][0] < (full[0][1] - full[0][0]) / 3
    assert all(r == dragged[0] for r in dragged)

    assert page.evaluate("sigmaCharts()[0].scales.y.distr") == 1
    page.check("#sigma-log")
    assert page.evaluate("sigmaCharts()[0].scales.y.distr") == 3
    assert page.evaluate(_X_RANGES) == dragged  # the zoom survives the switch
    assert errors == []
    assert [url for url in requests if not url.startswith("file:")] == []
