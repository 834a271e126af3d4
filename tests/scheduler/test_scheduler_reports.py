"""PerformanceReporter: PnL, fees, trades, win rate, Sharpe and drawdown per strategy and
account from the ledger, regime breakdown, live vs backtest, stored (replacing the same
period) and rendered as self-contained HTML."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sigma.reports.pdf import render_pdf
from sigma.reports.performance import (
    build_report,
    pdf_path,
    period_ending,
    publish,
    render_html,
)
from sigma.store.models import (
    BtSummary,
    LedgerEntry,
    PerformanceReport,
    SimRun,
    TrendData,
)

NOW = datetime(2026, 3, 9, 4, 0, tzinfo=UTC)
START = datetime(2026, 3, 2, tzinfo=UTC)
CASH = Decimal(10_000)


def _entry(day: int, strategy: str, pnl: str, mode: str = "paper", hour: int = 12) -> LedgerEntry:
    return LedgerEntry(
        ts=START + timedelta(days=day, hours=hour),
        mode=mode,
        symbol="BTC",
        strategy=strategy,
        cash_delta=Decimal(pnl),
        fee=Decimal("0.5"),
        realized_pnl=Decimal(pnl),
        reason="fill",
    )


def _seed(session: Session) -> None:
    session.add_all(
        [
            _entry(0, "sma_cross", "0"),
            _entry(0, "sma_cross", "100"),
            _entry(1, "sma_cross", "-40"),
            _entry(3, "sma_cross", "60"),
            _entry(2, "rsi_reversion", "-10"),
            _entry(2, "rsi_reversion", "25", mode="live"),
            _entry(-1, "sma_cross", "999"),
            _entry(7, "sma_cross", "999"),
            TrendData(symbol="BTC", timeframe="1h", ts=START, trend="trend_up"),
            TrendData(symbol="BTC", timeframe="1h", ts=START + timedelta(days=2), trend="range"),
            BtSummary(
                run_id="bt1",
                strategy="sma_cross",
                symbol="BTC",
                params={},
                start_ts=START,
                end_ts=NOW,
                initial_cash=CASH,
                final_equity=CASH,
                stats={"total_return_pct": 3.5, "sharpe": 1.2},
            ),
            SimRun(
                strategy="sma_cross", symbol="BTC", initial_cash=CASH, started_at=START, rating=4
            ),
            SimRun(strategy="sma_cross", symbol="BTC", initial_cash=CASH, started_at=START),
        ]
    )
    session.flush()


def test_figures_per_strategy_and_account(session: Session) -> None:
    _seed(session)
    start, end = period_ending(NOW, 7)
    assert (start, end) == (START, START + timedelta(days=7))
    report = build_report(session, "weekly", start, end, CASH)
    by = {(s.strategy, s.mode): s for s in report.strategies}
    sma = by[("sma_cross", "paper")]
    assert sma.realized_pnl == Decimal(120)
    assert sma.fees == Decimal(2)
    assert (sma.fills, sma.trades, sma.wins) == (4, 3, 2)
    assert sma.win_rate_pct == 100 * 2 / 3
    assert sma.daily_pnl == {
        "2026-03-02": Decimal(100),
        "2026-03-03": Decimal(-40),
        "2026-03-05": Decimal(60),
    }
    assert sma.max_drawdown_pct < 0 and sma.sharpe is not None
    paper = report.accounts["paper"]
    assert paper.realized_pnl == Decimal(110) and paper.trades == 4
    assert report.accounts["live"].realized_pnl == Decimal(25)
    assert report.regimes == {"trend_up": Decimal(60), "range": Decimal(75)}
    live_vs_bt = {(r["strategy"], r["mode"]): r for r in report.live_vs_backtest}
    assert live_vs_bt[("sma_cross", "paper")]["backtest_sharpe"] == 1.2
    assert live_vs_bt[("sma_cross", "paper")]["live_return_pct"] == 1.2
    assert live_vs_bt[("rsi_reversion", "live")]["backtest_run"] is None
    assert (report.sim_runs, report.sim_avg_rating) == (2, 4.0)
    assert report.headline().startswith("weekly report 2026-03-02..2026-03-09: live PnL 25.00")
    assert Decimal(report.stats()["accounts"]["paper"]["realized_pnl"]) == 110


def test_publish_stores_renders_and_replaces(session: Session, tmp_path: Path) -> None:
    _seed(session)
    report, path = publish(session, "weekly", 7, NOW, tmp_path / "out", CASH)
    assert path == tmp_path / "out" / "weekly-2026-03-09.html"
    html = path.read_text()
    assert "<svg" in html and "sma_cross" in html and "trend_up" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    count = select(func.count()).select_from(PerformanceReport)
    assert session.scalar(count) == 1 + len(report.strategies)
    publish(session, "weekly", 7, NOW, tmp_path / "out", CASH)
    assert session.scalar(count) == 1 + len(report.strategies)
    account = session.scalar(select(PerformanceReport).where(PerformanceReport.strategy.is_(None)))
    assert account is not None and account.path == str(path)


def test_empty_period(session: Session) -> None:
    report = build_report(session, "daily", START, START + timedelta(days=1), CASH)
    assert report.strategies == [] and report.accounts == {}
    assert report.headline().endswith("no trading")
    assert "No fills were booked" in render_html(report)


def test_entries_without_a_symbol_count_as_unknown_regime(session: Session) -> None:
    adjustment = _entry(1, "", "5")
    adjustment.symbol = None
    adjustment.reason = "adjustment"
    session.add(adjustment)
    session.flush()
    report = build_report(session, "daily", START, START + timedelta(days=7), CASH)
    assert report.regimes == {"unknown": Decimal(5)}
    assert report.accounts["paper"].fills == 0


def _pdf_text(data: bytes) -> tuple[str, bytes]:
    """The text of every page and the raw drawing operators of the first (pypdf parses it:
    a PDF it cannot read fails here)."""
    reader = PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() for page in reader.pages)
    contents = reader.pages[0].get_contents()
    assert contents is not None
    return text, contents.get_data()


def test_pdf_next_to_the_html_has_the_figures_and_the_chart(
    session: Session, tmp_path: Path
) -> None:
    _seed(session)
    report, path = publish(session, "weekly", 7, NOW, tmp_path / "out", CASH, pdf=True)
    pdf = pdf_path(path)
    assert pdf == tmp_path / "out" / "weekly-2026-03-09.pdf"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    text, drawing = _pdf_text(data)
    assert "SIGMA weekly performance 2026-03-02 to 2026-03-09" in text
    assert report.headline() in text.replace("\n", " ")
    for figure in ("sma_cross", "rsi_reversion", "120.00", "-10.00", "25.00", "66.7", "1.20"):
        assert figure in text, figure
    assert "trend_up" in text and "60.00" in text and "range" in text and "75.00" in text
    assert "Cumulative realized PnL" in text and "paper PnL" in text and "live PnL" in text
    # The chart: a framed plot ("re") and one polyline per mode (a move then line segments).
    assert b" re" in drawing and drawing.count(b" l") >= 3
    # Re-publishing replaces the file; without pdf=True none is written.
    publish(session, "weekly", 7, NOW, tmp_path / "plain", CASH)
    assert not pdf_path(tmp_path / "plain" / "weekly-2026-03-09.html").exists()


def test_pdf_of_an_empty_period_and_unusual_names(session: Session) -> None:
    empty = build_report(session, "daily", START, START + timedelta(days=1), CASH)
    text, _ = _pdf_text(render_pdf(empty))
    assert "No fills were booked in this period." in text and "none" in text
    session.add(_entry(0, "momentum-€-😀", "7"))
    session.flush()
    odd = build_report(session, "daily", START, START + timedelta(days=1), CASH)
    text, _ = _pdf_text(render_pdf(odd))
    assert "momentum-?-?" in text and "7.00" in text  # Latin-1 core font


def test_reports_carry_the_newest_market_commentary(session: Session, tmp_path: Path) -> None:
    session.add_all(
        [
            TrendData(
                symbol="BTC", timeframe="1h", ts=START, trend="range",
                data={"commentary": "BTC is moving sideways (old)."},
            ),
            TrendData(
                symbol="BTC", timeframe="1h", ts=START + timedelta(days=6), trend="trend_up",
                data={"commentary": "BTC is trending up for 40 bars."},
            ),
            TrendData(
                symbol="BTC", timeframe="1h", ts=START + timedelta(days=8), trend="high_vol",
                data={"commentary": "after the period"},
            ),
            TrendData(symbol="ETH", timeframe="1h", ts=START, trend="unknown", data={}),
        ]
    )  # fmt: skip
    session.flush()
    report, path = publish(session, "weekly", 7, NOW, tmp_path, CASH, pdf=True)
    assert report.commentary == {"BTC": "BTC is trending up for 40 bars."}
    assert report.stats()["commentary"] == report.commentary
    assert "Market commentary" in path.read_text() and "trending up for 40 bars" in path.read_text()
    text, _ = _pdf_text(pdf_path(path).read_bytes())
    assert "Market commentary" in text and "BTC is trending up for 40 bars." in text
