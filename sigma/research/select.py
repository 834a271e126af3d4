"""StrategySelector: pick each symbol's strategy and parameters by walk-forward, out-of-sample.

For every symbol the recent bars are read from the database, every candidate strategy is
optimised and validated with `walk_forward`, and the one with the best out-of-sample score
wins. Its refit parameters are written to `strategy_param` (who: ``strategy_selector``, why:
the scores), and the whole ranking is kept as a ``selection`` row in `performance_reports`
(one per symbol and bar window: selecting again on the same bars replaces it). When no
candidate has a defined out-of-sample score nothing is changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from sigma.research.objectives import NO_SCORE
from sigma.research.walk_forward import WalkForwardResult, best_of, walk_forward
from sigma.store.bars import read_bars
from sigma.store.handles import Session
from sigma.store.params import set_params
from sigma.store.selections import lookback_start, replace_selection
from sigma.strategies.base import Strategy

SELECTOR = "strategy_selector"
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Selection:
    """The outcome for one symbol. `version` is the new strategy_param version (None when
    nothing was written) and `reason` says why."""

    symbol: str
    strategy: str | None
    params: dict[str, Any]
    version: int | None
    reason: str
    ranking: list[tuple[str, float]] = field(default_factory=list)


def rank(results: Sequence[WalkForwardResult]) -> list[tuple[str, float]]:
    """Strategies by out-of-sample score, best first."""
    return sorted(((r.strategy, r.oos_score) for r in results), key=lambda p: -p[1])


def explain(winner: WalkForwardResult, results: Sequence[WalkForwardResult]) -> str:
    """One sentence: why `winner` was chosen, against its defaults and the runner-up."""
    text = (
        f"walk-forward out-of-sample Sharpe {winner.oos_score:.2f} over {len(winner.folds)} "
        f"folds ({winner.oos_trades} trades) vs {winner.default_oos_score:.2f} with defaults"
    )
    others = [r for r in rank(results) if r[0] != winner.strategy]
    if others:
        text += f"; next: {others[0][0]} {others[0][1]:.2f}"
    return text


def recent_bars(
    session: Session, symbol: str, timeframe: str, lookback: int, until: datetime
) -> pd.DataFrame:
    """The newest `lookback` bars before `until` (older first)."""
    start = lookback_start(session, symbol, timeframe, lookback, until)
    return read_bars(session, symbol, timeframe, start=start, end=until)


def select_for_symbol(
    session: Session,
    symbol: str,
    bars: pd.DataFrame,
    candidates: Sequence[type[Strategy]],
    *,
    now: datetime,
    cancel: threading.Event | None = None,
    progress: ProgressFn | None = None,
    **search: Any,
) -> Selection:
    """Walk-forward every candidate on `bars`, write the winner (see the module docstring).

    `search` goes to `walk_forward` (folds, n_trials, seed, method, fill_model, ...)."""
    results: list[WalkForwardResult] = []
    for i, cls in enumerate(candidates):
        if progress is not None:
            progress(i, len(candidates))
        # A study per symbol, strategy and run: in shared storage names must not collide.
        name = f"select-{symbol}-{cls.name}-{now:%Y%m%dT%H%M%S}"
        results.append(walk_forward(cls, bars, cancel=cancel, study_name=name, **search))
    winner = best_of(results)
    ranking = rank(results)
    period = (bars.index[0].to_pydatetime(), bars.index[-1].to_pydatetime())
    if winner.oos_score <= NO_SCORE:
        reason = "no candidate traded enough out of sample to be scored; parameters unchanged"
        selection = Selection(symbol, None, {}, None, reason, ranking)
    else:
        reason = explain(winner, results)
        version = set_params(
            session, winner.strategy, symbol, winner.params, reason=reason, changed_by=SELECTOR
        )
        selection = Selection(symbol, winner.strategy, winner.params, version, reason, ranking)
    replace_selection(
        session,
        symbol,
        *period,
        selection.strategy,
        {
            "selected_at": now.isoformat(),
            "params": selection.params,
            "version": selection.version,
            "reason": selection.reason,
            "ranking": [[name, score] for name, score in ranking],
        },
    )
    if progress is not None:
        progress(len(candidates), len(candidates))
    return selection
