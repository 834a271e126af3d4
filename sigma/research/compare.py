"""Ranking strategies run on the same data, and saying which to use and why."""

from __future__ import annotations

from dataclasses import dataclass

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


def compare_results(results: list[BacktestResult]) -> Comparison:
    """Rank by Sharpe ratio (strategies with fewer than MIN_TRADES trades last) and explain."""
    if not results:
        raise ValueError("nothing to compare")
    ordered = sorted(results, key=_score, reverse=True)
    ranking = [(r.strategy, _score(r)) for r in ordered]
    best = ordered[0]
    s = best.stats
    if _score(best) == float("-inf"):
        return Comparison(
            ranking,
            f"No recommendation: no strategy made {MIN_TRADES} or more trades with a defined "
            "Sharpe ratio on this data.",
        )
    reason = (
        f"Use {best.strategy}: best risk-adjusted return (Sharpe {s['sharpe']:.2f}), "
        f"return {s['total_return_pct']:.1f}% vs buy-and-hold {s['buy_hold_return_pct']:.1f}%, "
        f"max drawdown {s['max_drawdown_pct']:.1f}% over {s['n_trades']} trades"
    )
    if len(ordered) > 1:
        runner = ordered[1]
        runner_sharpe = runner.stats.get("sharpe")
        shown = "n/a" if runner_sharpe is None else f"{runner_sharpe:.2f}"
        reason += f"; next is {runner.strategy} (Sharpe {shown})"
    if s["total_return_pct"] < s["buy_hold_return_pct"]:
        reason += ". Note: it trails buy-and-hold on this data"
    return Comparison(ranking, reason + ".")
