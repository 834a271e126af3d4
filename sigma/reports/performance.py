"""PerformanceReporter: weekly (and daily summary) performance from the settlement ledger.

Per strategy and mode: realized PnL, fees, fills, closed trades and win rate, the Sharpe ratio
of daily PnL (annualised with 365 days: crypto trades every day) and the maximum drawdown of
the account curve `initial_cash + cumulative PnL`; a breakdown of PnL by the market regime the
trend scanner had recorded for the symbol at each fill; live against the newest backtest of
the same strategy; and the newest market commentary per symbol. Stored in
`performance_reports` (one account row plus one per strategy and mode, replaced when the same
period is reported again) and rendered as one HTML file and, optionally, a PDF next to it
(`sigma.reports.pdf`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sigma.reports.page import Cell, esc, key_value_table, note, page, table
from sigma.reports.svg import Line, line_chart, time_x
from sigma.store import performance as store
from sigma.store.backtests import list_backtests
from sigma.store.handles import Session
from sigma.store.jsonsafe import to_jsonable
from sigma.store.performance import ReportRow

_DAYS_PER_YEAR = 365.0


@dataclass(slots=True)
class StrategyPerformance:
    """Figures of one strategy in one mode over the period."""

    strategy: str
    mode: str
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    fills: int = 0
    trades: int = 0
    wins: int = 0
    sharpe: float | None = None
    max_drawdown_pct: float = 0.0
    daily_pnl: dict[str, Decimal] = field(default_factory=dict)

    @property
    def win_rate_pct(self) -> float | None:
        """Winning share of closed trades, None without trades."""
        return 100.0 * self.wins / self.trades if self.trades else None

    def stats(self) -> dict[str, Any]:
        """JSON-ready figures (money as exact strings)."""
        doc: dict[str, Any] = to_jsonable(
            {
                "realized_pnl": self.realized_pnl,
                "fees": self.fees,
                "fills": self.fills,
                "trades": self.trades,
                "win_rate_pct": self.win_rate_pct,
                "sharpe": self.sharpe,
                "max_drawdown_pct": self.max_drawdown_pct,
                "daily_pnl": self.daily_pnl,
            }
        )
        return doc


@dataclass(slots=True)
class PerformanceSummary:
    """A report for [start, end)."""

    kind: str
    start: datetime
    end: datetime
    strategies: list[StrategyPerformance]
    accounts: dict[str, StrategyPerformance]
    regimes: dict[str, Decimal]
    live_vs_backtest: list[dict[str, Any]]
    sim_runs: int
    sim_avg_rating: float | None
    commentary: dict[str, str] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        """The account-level row's JSON document."""
        doc: dict[str, Any] = to_jsonable(
            {
                "accounts": {mode: acc.stats() for mode, acc in self.accounts.items()},
                "strategies": [
                    {"strategy": s.strategy, "mode": s.mode, **s.stats()} for s in self.strategies
                ],
                "regimes": self.regimes,
                "live_vs_backtest": self.live_vs_backtest,
                "sim_runs": self.sim_runs,
                "sim_avg_rating": self.sim_avg_rating,
                "commentary": self.commentary,
            }
        )
        return doc

    def lines(self) -> dict[str, str]:
        """The figures as short labelled lines (the body of the summary e-mail)."""
        out = {f"{mode} account": _summary_line(acc) for mode, acc in sorted(self.accounts.items())}
        out.update({f"{s.strategy} ({s.mode})": _summary_line(s) for s in self.strategies})
        out.update({f"regime {k}": f"PnL {v:,.2f}" for k, v in sorted(self.regimes.items())})
        return out

    def headline(self) -> str:
        """One line for notifications."""
        parts = [
            f"{mode} PnL {acc.realized_pnl:.2f} ({acc.trades} trades)"
            for mode, acc in sorted(self.accounts.items())
        ]
        span = f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"
        return f"{self.kind} report {span}: " + ("; ".join(parts) or "no trading")


def _summary_line(perf: StrategyPerformance) -> str:
    sharpe = "n/a" if perf.sharpe is None else f"{perf.sharpe:.2f}"
    return (
        f"PnL {perf.realized_pnl:,.2f}, fees {perf.fees:,.2f}, {perf.trades} trades, "
        f"Sharpe {sharpe}, max drawdown {perf.max_drawdown_pct:.2f}%"
    )


def _curve_figures(perf: StrategyPerformance, days: list[str], initial_cash: Decimal) -> None:
    daily = np.array([float(perf.daily_pnl.get(d, Decimal(0))) for d in days])
    equity = float(initial_cash) + np.cumsum(daily)
    curve = np.concatenate([[float(initial_cash)], equity])
    peak = np.maximum.accumulate(curve)
    perf.max_drawdown_pct = float(100.0 * np.min(curve / peak - 1.0))
    returns = np.diff(curve) / curve[:-1]
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    if std > 0:
        perf.sharpe = float(returns.mean()) / std * math.sqrt(_DAYS_PER_YEAR)


def _regime_at(session: Session, symbol: str | None, ts: datetime) -> str:
    if symbol is None:
        return "unknown"
    return store.regime_at(session, symbol, ts) or "unknown"


def _commentary(session: Session, end: datetime) -> dict[str, str]:
    """The newest market note per symbol recorded by the trend scanner before `end`."""
    out: dict[str, str] = {}
    for symbol, data in store.newest_trend_data(session, end):
        text = (data or {}).get("commentary")
        if text:
            out[symbol] = str(text)
    return out


def _live_vs_backtest(
    session: Session, strategies: list[StrategyPerformance], initial_cash: Decimal
) -> list[dict[str, Any]]:
    rows = []
    for perf in strategies:
        newest = list_backtests(session, strategy=perf.strategy, limit=1)
        bt = newest[0] if newest else None
        rows.append(
            {
                "strategy": perf.strategy,
                "mode": perf.mode,
                "live_return_pct": float(100 * perf.realized_pnl / initial_cash),
                "live_sharpe": perf.sharpe,
                "backtest_run": None if bt is None else bt.run_id,
                "backtest_return_pct": None if bt is None else bt.stats.get("total_return_pct"),
                "backtest_sharpe": None if bt is None else bt.stats.get("sharpe"),
            }
        )
    return rows


def build_report(
    session: Session, kind: str, start: datetime, end: datetime, initial_cash: Decimal
) -> PerformanceSummary:
    """Compute the report for ledger entries with `start <= ts < end`."""
    entries = store.ledger_entries(session, start, end)
    days = [d.strftime("%Y-%m-%d") for d in pd.date_range(start, end, freq="D", inclusive="left")]
    per: dict[tuple[str, str], StrategyPerformance] = {}
    accounts: dict[str, StrategyPerformance] = {}
    regimes: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        day = entry.ts.strftime("%Y-%m-%d")
        key = (entry.strategy, entry.mode)
        targets = (
            per.setdefault(key, StrategyPerformance(entry.strategy, entry.mode)),
            accounts.setdefault(entry.mode, StrategyPerformance("account", entry.mode)),
        )
        for perf in targets:
            perf.realized_pnl += entry.realized_pnl
            perf.fees += entry.fee
            perf.daily_pnl[day] = perf.daily_pnl.get(day, Decimal(0)) + entry.realized_pnl
            if entry.reason == "fill":
                perf.fills += 1
            if entry.realized_pnl != 0:
                perf.trades += 1
                perf.wins += entry.realized_pnl > 0
        if entry.realized_pnl != 0:
            regimes[_regime_at(session, entry.symbol, entry.ts)] += entry.realized_pnl
    for perf in [*per.values(), *accounts.values()]:
        _curve_figures(perf, days, initial_cash)
    strategies = sorted(per.values(), key=lambda p: (p.mode, p.strategy))
    ratings = store.sim_ratings(session, start, end)
    rated = [r for r in ratings if r is not None]
    return PerformanceSummary(
        kind=kind,
        start=start,
        end=end,
        strategies=strategies,
        accounts=accounts,
        regimes=dict(regimes),
        live_vs_backtest=_live_vs_backtest(session, strategies, initial_cash),
        sim_runs=len(ratings),
        sim_avg_rating=float(np.mean(rated)) if rated else None,
        commentary=_commentary(session, end),
    )


def _pnl_cell(value: Decimal) -> tuple[str, str]:
    return money(value), "pos" if value > 0 else "neg" if value < 0 else ""


def money(value: Decimal) -> str:
    """An amount as the reports print it: thousands separated, to the cent."""
    return f"{value:,.2f}"


def figure(value: float | None, digits: int = 2) -> str:
    """A statistic as the reports print it; "n/a" where there is none."""
    return "n/a" if value is None else f"{value:.{digits}f}"


STRATEGY_COLUMNS = ["strategy", "mode", "PnL", "fees", "trades", "win %", "Sharpe", "max DD %"]
LIVE_VS_BACKTEST_COLUMNS = [
    "strategy",
    "mode",
    "live return %",
    "backtest return %",
    "backtest Sharpe",
]


def strategy_rows(
    report: PerformanceSummary, pnl: Callable[[Decimal], Cell] = money
) -> list[list[Cell]]:
    """The "Strategies" table under STRATEGY_COLUMNS, the PnL cell drawn by `pnl` (the HTML
    page colours it), for every renderer of the report."""
    return [
        [
            s.strategy,
            s.mode,
            pnl(s.realized_pnl),
            money(s.fees),
            str(s.trades),
            figure(s.win_rate_pct, 1),
            figure(s.sharpe),
            figure(s.max_drawdown_pct),
        ]
        for s in report.strategies
    ]


def live_vs_backtest_rows(report: PerformanceSummary) -> list[list[Cell]]:
    """The "Live vs backtest" table under LIVE_VS_BACKTEST_COLUMNS."""
    return [
        [
            r["strategy"],
            r["mode"],
            figure(r["live_return_pct"]),
            figure(r["backtest_return_pct"]),
            figure(r["backtest_sharpe"]),
        ]
        for r in report.live_vs_backtest
    ]


def render_html(report: PerformanceSummary) -> str:
    """The report as one self-contained HTML page."""
    title = f"SIGMA {report.kind} performance {report.start:%Y-%m-%d} to {report.end:%Y-%m-%d}"
    body = [f"<h1>{esc(title)}</h1>", f'<p class="meta">{esc(report.headline())}</p>']
    if not report.strategies:
        body.append(note("No fills were booked in this period."))
    lines = []
    for mode, acc in sorted(report.accounts.items()):
        days = sorted(acc.daily_pnl)
        cum = np.cumsum([float(acc.daily_pnl[d]) for d in days])
        lines.append(Line(time_x(pd.DatetimeIndex(days, tz="UTC")), cum, label=f"{mode} PnL"))
    if lines:
        body.append(f"<section>{line_chart(lines, title='Cumulative realized PnL')}</section>")
    body.append("<h2>Strategies</h2><section>")
    body.append(
        table(STRATEGY_COLUMNS, strategy_rows(report, _pnl_cell), numeric={2, 3, 4, 5, 6, 7})
    )
    body.append("</section><h2>PnL by regime</h2><section>")
    body.append(key_value_table({k: money(v) for k, v in sorted(report.regimes.items())}))
    body.append("</section><h2>Live vs backtest</h2><section>")
    body.append(table(LIVE_VS_BACKTEST_COLUMNS, live_vs_backtest_rows(report), numeric={2, 3, 4}))
    body.append("</section><h2>Simulation</h2><section>")
    body.append(key_value_table({"runs": report.sim_runs, "average rating": report.sim_avg_rating}))
    body.append("</section>")
    if report.commentary:
        body.append("<h2>Market commentary</h2><section>")
        body.append(key_value_table(report.commentary))
        body.append("</section>")
    return page(title, body)


def store_report(session: Session, report: PerformanceSummary, path: Path | None) -> int:
    """Replace any stored report of the same kind and period; returns the rows written."""
    rows = [ReportRow(None, None, report.stats())]
    rows.extend(ReportRow(s.strategy, s.mode, s.stats()) for s in report.strategies)
    shown = None if path is None else str(path)
    return store.replace_report(session, report.kind, report.start, report.end, rows, shown)


def period_ending(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The `days` whole UTC days before the day `now` falls in."""
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


def pdf_path(html: Path) -> Path:
    """Where the PDF rendering of the report at `html` lives (next to it)."""
    return html.with_suffix(".pdf")


def publish(
    session: Session,
    kind: str,
    days: int,
    now: datetime,
    out_dir: Path,
    initial_cash: Decimal,
    *,
    pdf: bool = False,
) -> tuple[PerformanceSummary, Path]:
    """Build, render (``<out_dir>/<kind>-<end date>.html``, and with `pdf` the same name
    ``.pdf`` next to it) and store a report."""
    start, end = period_ending(now, days)
    report = build_report(session, kind, start, end, initial_cash)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{end:%Y-%m-%d}.html"
    path.write_text(render_html(report), encoding="utf-8")
    if pdf:
        from sigma.reports.pdf import render_pdf

        pdf_path(path).write_bytes(render_pdf(report))
    store_report(session, report, path)
    return report, path
