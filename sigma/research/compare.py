"""Ranking strategies run on the same data, and saying which to use and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigma.engine.result import BacktestResult

MIN_TRADES = 5


@dataclass(frozen=True, slots=True)
class Comparison:
    """Strategies best first, each with its score, and a recommendation sentence."""

    ranking: list[tuple[str, float]]
    recommendation: str


def _score(result: BacktestResult) -> float:
    # Risk-adjusted return ranks; a strategy that barely trades has no evidence behind it.
    sharpe = result.stats.get("sharpe")
    if sharpe is None or result.stats.get("n_trades", 0) < MIN_TRADES:
        return float("-inf")
    return float(sharpe)


def run_labels(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """A name per run (strategy name, parameters): the strategy's, followed by the
    parameters in which it differs from the other runs of the same strategy
    (``sma_cross:fast=5``) when there are some."""
    labels = []
    for name, params in runs:
        same = [other for other_name, other in runs if other_name == name]
        differing = [k for k in params if any(o.get(k) != params[k] for o in same)]
        labels.append(":".join([name, *(f"{k}={params[k]}" for k in differing)]))
    return labels


def compare_results(results: list[BacktestResult]) -> Comparison:
    """Rank by Sharpe ratio (strategies with fewer than MIN_TRADES trades last) and explain.
    Runs of one strategy with different parameters are told apart by `run_labels`."""
    if not results:
        raise ValueError("nothing to compare")
    names = run_labels([(r.strategy, r.params) for r in results])
    label = dict(zip(map(id, results), names, strict=True))
    ordered = sorted(results, key=_score, reverse=True)
    ranking = [(label[id(r)], _score(r)) for r in ordered]
    best = ordered[0]
    s = best.stats
    if _score(best) == float("-inf"):
        return Comparison(
            ranking,
            f"No recommendation: no strategy made {MIN_TRADES} or more trades with a defined "
            "Sharpe ratio on this data.",
        )
    reason = (
        f"Use {label[id(best)]}: best risk-adjusted return (Sharpe {s['sharpe']:.2f}), "
        f"return {s['total_return_pct']:.1f}% vs buy-and-hold {s['buy_hold_return_pct']:.1f}%, "
        f"max drawdown {s['max_drawdown_pct']:.1f}% over {s['n_trades']} trades"
    )
    if len(ordered) > 1:
        runner = ordered[1]
        runner_sharpe = runner.stats.get("sharpe")
        shown = "n/a" if runner_sharpe is None else f"{runner_sharpe:.2f}"
        reason += f"; next is {label[id(runner)]} (Sharpe {shown})"
    if s["total_return_pct"] < s["buy_hold_return_pct"]:
        reason += ". Note: it trails buy-and-hold on this data"
    return Comparison(ranking, reason + ".")
