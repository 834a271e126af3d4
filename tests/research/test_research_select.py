"""StrategySelector: the winner by out-of-sample score goes to strategy_param with who and
why, the ranking is kept, nothing is written without evidence; recent bars from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.feeds.synthetic import generate_bars
from sigma.research.select import SELECTOR, recent_bars, select_for_symbol
from sigma.store.bars import upsert_bars
from sigma.store.models import PerformanceReport
from sigma.store.params import get_active_params, param_history
from sigma.strategies.builtin import BollingerBreakout, SmaCross

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    frame, _ = generate_bars(600, seed=11, freq="1h", start="2026-01-01")
    return frame


def test_recent_bars_reads_the_newest_before_until(session: Session, bars: pd.DataFrame) -> None:
    upsert_bars(session, "BTC", "1h", bars)
    until = bars.index[500].to_pydatetime()
    recent = recent_bars(session, "BTC", "1h", 100, until)
    assert len(recent) == 100
    assert recent.index[-1] == bars.index[499]
    assert recent_bars(session, "BTC", "1h", 10_000, until).index[0] == bars.index[0]
    assert recent_bars(session, "ETH", "1h", 100, until).empty


def test_winner_is_written_with_who_and_why(session: Session, bars: pd.DataFrame) -> None:
    steps: list[tuple[int, int]] = []
    selection = select_for_symbol(
        session,
        "BTC",
        bars,
        [SmaCross, BollingerBreakout],
        now=NOW,
        folds=2,
        n_trials=4,
        seed=0,
        min_trades=1,
        bounds=None,
        progress=lambda done, total: steps.append((done, total)),
    )
    assert steps == [(0, 2), (1, 2), (2, 2)]
    assert selection.strategy == selection.ranking[0][0]
    assert selection.version == 1
    assert get_active_params(session, selection.strategy, "BTC") == selection.params
    [change] = param_history(session, selection.strategy, "BTC")
    assert change.changed_by == SELECTOR
    assert change.reason == selection.reason
    assert "walk-forward out-of-sample Sharpe" in selection.reason
    assert "next:" in selection.reason
    report = session.scalar(select(PerformanceReport).where(PerformanceReport.kind == "selection"))
    assert report is not None
    assert report.stats["ranking"] == [list(r) for r in selection.ranking]
    assert report.stats["version"] == 1
    assert report.period_end == bars.index[-1].to_pydatetime()


def test_nothing_is_written_without_out_of_sample_evidence(
    session: Session, bars: pd.DataFrame
) -> None:
    selection = select_for_symbol(
        session, "ETH", bars, [SmaCross], now=NOW + timedelta(days=1), folds=2, n_trials=2,
        min_trades=10_000,
    )  # fmt: skip
    assert selection.strategy is None and selection.version is None
    assert "parameters unchanged" in selection.reason
    assert get_active_params(session, "sma_cross", "ETH") is None
    assert session.scalar(select(PerformanceReport.strategy)) is None


def test_selecting_again_on_the_same_bars_replaces_the_ranking(
    session: Session, bars: pd.DataFrame
) -> None:
    def run(symbol: str, now: datetime) -> None:
        select_for_symbol(
            session, symbol, bars, [SmaCross], now=now, folds=2, n_trials=2, min_trades=1
        )

    run("BTC", NOW)
    run("ETH", NOW)
    run("BTC", NOW + timedelta(hours=1))
    rows = session.scalars(select(PerformanceReport).where(PerformanceReport.kind == "selection"))
    by_symbol = sorted((r.stats["symbol"], r.stats["selected_at"]) for r in rows)
    # One row per symbol and bar window; the same window for another symbol is another row.
    assert by_symbol == [
        ("BTC", (NOW + timedelta(hours=1)).isoformat()),
        ("ETH", NOW.isoformat()),
    ]
    assert [v.version for v in param_history(session, "sma_cross", "BTC")] == [1]
