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


@numba.njit(cache=True)
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
    # a block's targets stay in the first-level cache, nothing else is stored in between.
    oversold, overbought, exit_level = levels
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    flat, long, short = next_open.block_rows()
    # No RSI at all for a history of `period` bars or fewer (as `indicators.rsi`).
    first = period if n > period else n
    avg_gain, avg_loss = rsi_seed(x, period) if n > period else (0.0, 0.0)
    end = next_open.GO_ON
    for c0 in range(0, n, next_open.BLOCK):
        m = min(next_open.BLOCK, n - c0)
        for k in range(m):
            i = c0 + k
            if i < first:
                flat[k] = long[k] = short[k] = np.nan
                continue
            if i > period:
                avg_gain, avg_loss = rsi_step(x, i, period, avg_gain, avg_loss)
            value = rsi_of(avg_gain, avg_loss)
            # `RsiReversion.on_bar` for each position it may hold at this close.
            if value < oversold:
                enter = 1.0
            elif value > overbought and allow_short:
                enter = -1.0
            else:
                enter = np.nan
            flat[k] = enter
            long[k] = 0.0 if enter != enter and value >= exit_level else enter
            short[k] = 0.0 if enter != enter and value <= exit_level else enter
        rows = (flat, long, short)
        a, end = next_open.execute(a, rows, c0, m, open_, x, equity, terms, lots, money)
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
