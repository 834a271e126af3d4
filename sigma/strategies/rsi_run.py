"""RSI mean reversion's fused run: Wilder's RSI, the entry and exit rules, fills and equity
in one compiled pass over the bars (`RsiReversion.fused`).

The RSI is `indicators.rsi`'s, operation for operation (the steps of `kernels.wilder_rsi`),
and the rules are those of `RsiReversion.targets` read for the position held at each close,
so the run is the one the fast path makes of those targets: same trades, same floats.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.kernels import rsi_of, rsi_seed, rsi_step
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, Terms


@numba.njit(cache=True, nogil=True)  # the fast path checks bars beside it
def _reversion_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    period: int,
    levels: tuple[float, float, float],
    allow_short: bool,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `RsiReversion.targets` executed as `sigma.engine.fast` executes them, a block at a time:
    # a block's decisions stay in the first-level cache, nothing else is stored in between.
    oversold, overbought, exit_level = levels
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    # The first RSI is at bar `period` (none at all for a history of `period` bars or
    # fewer, as `indicators.rsi`): the engine decides from the bar after it (backtesting.py's
    # start, see `Strategy.decision_start`).
    first = min(period + 1, n)
    # The bars before `first` decide nothing: one call, with a code (nothing) for each.
    codes = np.zeros(max(next_open.BLOCK, first), dtype=np.int64)
    a, end = next_open.execute_coded(a, codes, 0, first, open_, x, equity, terms, lots, money)
    avg_gain, avg_loss = rsi_seed(x, period) if n > period else (0.0, 0.0)
    for c0 in range(first, n if end == next_open.GO_ON else 0, next_open.BLOCK):
        m = min(next_open.BLOCK, n - c0)
        for k in range(m):
            avg_gain, avg_loss = rsi_step(x, c0 + k, period, avg_gain, avg_loss)
            value = rsi_of(avg_gain, avg_loss)
            # `RsiReversion.on_bar` for each position it may hold at this close, without
            # branches: Wilder's recursion is a chain of dependent divisions, and the
            # decisions run in its shadow (a NaN RSI decides nothing).
            short = next_open.SHORT * (allow_short & (value > overbought))
            enter = next_open.either(next_open.LONG * (value < oversold), short)
            codes[k] = next_open.code(
                enter,
                next_open.either(enter, next_open.FLAT * (value >= exit_level)),
                next_open.either(enter, next_open.FLAT * (value <= exit_level)),
            )
        a, end = next_open.execute_coded(a, codes, c0, m, open_, x, equity, terms, lots, money)
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def rsi_reversion_run(
    open_: FloatArray,
    close: FloatArray,
    period: int,
    levels: tuple[float, float, float],
    allow_short: bool,
    terms: Terms,
) -> FusedRun:
    """The fast path's run of RSI reversion on the account `terms`: long below
    `levels[0]` (oversold), short above `levels[1]` (overbought, when `allow_short`), flat
    when the RSI crosses back to `levels[2]` (exit), filled at the next open."""
    o, x = next_open.columns(open_, close)
    return next_open.run_with_room(
        lambda room: _reversion_run(o, x, period, levels, allow_short, terms, room), len(x)
    )


__all__ = ["rsi_reversion_run"]
