"""Bollinger breakout's fused run: the bands, the breakout rules, fills and equity in one
compiled pass over the bars (`BollingerBreakout.fused`), a block of bars at a time.

Each bar's average and deviation are those of `indicators.sma` and `indicators.rolling_std`
(numpy's sums of the window, `pairwise.window_sum` and `window_std`) and the bands are
`indicators.bands`' operations, so the decisions are those of `BollingerBreakout.targets`
and the run is the one the fast path makes of its targets.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies import next_open
from sigma.strategies.pairwise import window_std, window_sum
from sigma.strategies.series import FloatArray
from sigma.strategies.vectorised import FusedRun, Terms


@numba.njit(cache=True)
def _breakout_run(  # pragma: no cover - numba-compiled
    open_: FloatArray,
    x: FloatArray,
    period: int,
    k_std: float,
    allow_short: bool,
    terms: Terms,
    room: next_open.Room,
) -> FusedRun:
    # `BollingerBreakout.targets` executed as `sigma.engine.fast` executes them, a block at a
    # time: a block's targets stay in the first-level cache, nothing else is stored.
    n = len(x)
    a, equity, lots, money = next_open.started(room, terms)
    flat, long, short = next_open.block_rows()
    work = np.empty(period)
    end = next_open.GO_ON
    for c0 in range(0, n, next_open.BLOCK):
        m = min(next_open.BLOCK, n - c0)
        for k in range(m):
            i = c0 + k
            if i < period - 1:  # no average yet
                flat[k] = long[k] = short[k] = np.nan
                continue
            mid = window_sum(x, i, period) / period
            width = k_std * window_std(x, i, period, work)
            c = x[i]
            # `BollingerBreakout.on_bar` for each position it may hold at this close.
            if c > mid + width:
                enter = 1.0
            elif c < mid - width and allow_short:
                enter = -1.0
            else:
                enter = np.nan
            flat[k] = enter
            long[k] = 0.0 if enter != enter and c < mid else enter
            short[k] = 0.0 if enter != enter and c > mid else enter
        rows = (flat, long, short)
        a, end = next_open.execute(a, rows, c0, m, open_, x, equity, terms, lots, money)
        if end != next_open.GO_ON:
            break
    return next_open.finished(end, equity, a, lots, money)


def bollinger_breakout_run(
    open_: FloatArray,
    close: FloatArray,
    period: int,
    k_std: float,
    allow_short: bool,
    terms: Terms,
) -> FusedRun:
    """The fast path's run of Bollinger breakout on the account `terms`: long on a close
    above the upper band (`k_std` deviations over the `period`-bar average), short below the
    lower (when `allow_short`), flat back at the average, filled at the next open."""
    o, x = next_open.columns(open_, close)
    return next_open.run_with_room(
        lambda room: _breakout_run(o, x, period, k_std, allow_short, terms, room), len(x)
    )


__all__ = ["bollinger_breakout_run"]
