"""The research jobs: they read the recorded bars of the live bar size and write what the
bot trades with (the selected parameters, the entry gate model) or shows (trend readings)."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd

from sigma.regime.news import NewsHandler
from sigma.regime.news_feed import NewsStore
from sigma.regime.trend import save_trends
from sigma.research.ml_validate import tune_symbol
from sigma.research.select import recent_bars, select_for_symbol
from sigma.scheduler.tasks import JobContext
from sigma.store.db import session_scope
from sigma.store.handles import Session
from sigma.store.params import get_active_params

if TYPE_CHECKING:  # the runtime registers these jobs: a type-only import back
    from sigma.scheduler.jobs import JobRuntime

__all__ = ["MIN_RESEARCH_BARS", "ml_tune", "strategy_selection", "trend_scan"]

log = logging.getLogger(__name__)

MIN_RESEARCH_BARS = 300
"""Fewer bars than this cannot be split into walk-forward folds or train/test sets."""


def _bars(
    rt: JobRuntime, session: Session, symbol: str, ctx: JobContext, lookback: int
) -> pd.DataFrame:
    return recent_bars(session, symbol, rt.settings.research_bars_timeframe, lookback, ctx.now)


def strategy_selection(rt: JobRuntime, ctx: JobContext) -> dict[str, Any]:
    """StrategySelector: walk-forward every live strategy per symbol, write the winners."""
    s = rt.settings
    candidates = [rt.strategies.get(name) for name in s.trading.live_strategies]
    storage = s.research.optuna_storage
    chosen: dict[str, Any] = {}
    for i, symbol in enumerate(s.trading.symbols):
        ctx.report(i, len(s.trading.symbols))
        with rt.sessions() as session:
            bars = _bars(rt, session, symbol, ctx, s.research.research_lookback_bars)
        if len(bars) < MIN_RESEARCH_BARS:
            chosen[symbol] = f"skipped: {len(bars)} bars"
            continue
        # A session of its own, first used for the winner's writes after the walk-forward:
        # on SQLite a transaction holds the write lock, which must not last a search.
        with session_scope(rt.sessions) as session:
            selection = select_for_symbol(
                session,
                symbol,
                bars,
                candidates,
                now=ctx.now,
                cancel=ctx.cancel,
                n_trials=s.research.optimize_trials,
                initial_cash=s.trading.initial_cash,
                fill_model=rt.fill_model,
                storage=storage,
                workers=s.research.optimize_workers,
            )
        chosen[symbol] = selection.strategy
    ctx.report(len(s.trading.symbols), len(s.trading.symbols))
    return chosen


def ml_tune(rt: JobRuntime, ctx: JobContext) -> dict[str, Any]:
    """MLModule: per symbol, train the gate model on the recorded bars, backtest the live
    strategies (with their active parameters) on its test window with and without the
    gate, and store the version; it trades only when it won (`sigma.research.ml_validate`)."""
    s = rt.settings
    out: dict[str, Any] = {}
    for i, symbol in enumerate(s.trading.symbols):
        ctx.report(i, len(s.trading.symbols))
        with session_scope(rt.sessions) as session:
            bars = _bars(rt, session, symbol, ctx, s.research.research_lookback_bars)
            if len(bars) < MIN_RESEARCH_BARS:
                out[symbol] = (
                    f"skipped: {len(bars)} recorded {s.research_bars_timeframe} bars, "
                    f"{MIN_RESEARCH_BARS} needed"
                )
                log.info("ml_tune %s %s", symbol, out[symbol])
                continue
            strategies = [
                partial(
                    rt.strategies.get(name),
                    **(get_active_params(session, name, symbol) or {}),
                )
                for name in s.trading.live_strategies
            ]
            try:
                tuned = tune_symbol(
                    session,
                    symbol,
                    bars,
                    strategies,
                    config=rt.ml_config,
                    threshold=s.regime.ml_gate_threshold,
                    initial_cash=s.trading.initial_cash,
                    fill_model=rt.fill_model,
                    cancel=ctx.cancel,
                )
            except ValueError as exc:  # e.g. a market that never moved: one class only
                out[symbol] = f"not trained: {exc}"
                log.warning("ml_tune %s %s", symbol, out[symbol])
                continue
            version, active = tuned.row.version, tuned.row.active
        m, c = tuned.result.metrics, tuned.comparison
        out[symbol] = {"version": version, "active": active}
        rt.alerter.send(
            "info",
            "ml_tune",
            f"{symbol} model v{version}: out-of-sample accuracy {m['accuracy']:.3f} vs "
            f"baseline {m['baseline_accuracy']:.3f}; live strategies on the test window "
            f"net {c.gated_pnl:.2f} gated vs {c.ungated_pnl:.2f} ungated"
            + ("; now gating entries" if active else "; not better, not used"),
        )
    ctx.report(len(s.trading.symbols), len(s.trading.symbols))
    return out


def trend_scan(rt: JobRuntime, ctx: JobContext) -> int:
    """TrendScanner: update regimes from new bars and store them in trend_data."""
    s = rt.settings
    # The notes mention the news still in its risk window, as the bot's handler holds it
    # (stored items scored again: the scheduler may run in a process of its own).
    news = NewsHandler(symbol_keywords=s.regime.news_keywords)
    NewsStore(rt.sessions).restore(news, ctx.now)
    rt.scanner.news = news
    with session_scope(rt.sessions) as session:
        frames = {sym: _bars(rt, session, sym, ctx, 500) for sym in s.trading.symbols}
        frames = {sym: f for sym, f in frames.items() if not f.empty}
        readings = rt.scanner.scan(frames)
        return save_trends(session, readings, s.research_bars_timeframe)
