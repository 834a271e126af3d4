"""AnomalyDetector: flags ticks whose price move does not fit the recent behaviour of the symbol.

Checks, per tick, against the symbol's baseline (the last accepted price and a rolling window
of accepted log returns):

* ``crossed`` - bid above ask;
* ``jump`` - the price moved more than ``max_jump_pct`` percent from the last accepted price;
* ``zscore`` - the robust z-score of the log return, ``|r - median| / (1.4826 * MAD)`` over the
  window's non-zero returns, exceeds ``z_threshold`` (only once the window holds ``min_returns``
  of them: before that the scale is unknown);
* ``stale`` - the price has not changed for ``stale_ticks`` ticks. Informational: ``ok`` stays
  True, because a quiet market is not a bad tick, but the caller may want to know.

Flagged ticks do not update the baseline, so one bad print cannot drag the reference price or
inflate the scale. A genuine level shift would then be flagged forever, so once
``rebase_after`` consecutive flagged ticks agree with each other the newest price becomes the
reference (verdict ``"rebased"``, ok; the return window, i.e. the volatility estimate, is
kept). Everything is deterministic: same ticks, same verdicts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from sigma.domain import Tick
from sigma.risk.cleaner import DEFAULT_MAX_SYMBOLS, SymbolMap

__all__ = ["AnomalyDetector", "Verdict"]

# MAD * 1.4826 estimates the standard deviation of normally distributed returns.
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's answer for one tick: ``ok`` False means drop it; ``reason`` is ``"ok"``,
    ``"warmup"``, ``"stale"`` (ok, informational), ``"rebased"`` (ok, a confirmed new price
    level), ``"crossed"``, ``"jump"`` or ``"zscore"``;
    ``score`` is the robust z-score (or the jump in percent for ``"jump"``, the unchanged tick
    count for ``"stale"``)."""

    ok: bool
    reason: str
    score: float


@dataclass(slots=True)
class _Baseline:
    last_price: float
    returns: deque[float]
    unchanged: int = 0
    # The last flagged price and how many consecutive flagged ticks agree with each other.
    candidate: float | None = None
    run: int = 0


class AnomalyDetector:
    """Per-symbol outlier detection on accepted prices (see the module docstring)."""

    def __init__(
        self,
        *,
        window: int = 100,
        z_threshold: float = 8.0,
        max_jump_pct: float = 20.0,
        min_returns: int = 30,
        stale_ticks: int = 50,
        rebase_after: int = 3,
        min_scale: float = 1e-6,
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        if window < min_returns or min_returns < 2:
            raise ValueError(f"need window >= min_returns >= 2, got {window}, {min_returns}")
        if z_threshold <= 0 or max_jump_pct <= 0:
            raise ValueError("z_threshold and max_jump_pct must be positive")
        self.window = window
        self.z_threshold = z_threshold
        self.max_jump = max_jump_pct / 100.0
        self.min_returns = min_returns
        self.stale_ticks = stale_ticks
        self.rebase_after = rebase_after
        # Floor on the return scale: after a run of identical prices the MAD is zero and any
        # move, however tiny, would have an infinite z-score.
        self.min_scale = min_scale
        self._state: SymbolMap[str, _Baseline] = SymbolMap(max_symbols)

    def check(self, tick: Tick) -> Verdict:
        """Judge ``tick`` and, when it is ok, add it to its symbol's baseline."""
        if tick.bid is not None and tick.ask is not None and tick.bid > tick.ask:
            return Verdict(False, "crossed", 0.0)
        price = float(tick.price)
        state = self._state.get(tick.symbol)
        if state is None:
            self._state.touch(tick.symbol, _Baseline(price, deque(maxlen=self.window)))
            return Verdict(True, "warmup", 0.0)
        self._state.move_to_end(tick.symbol)
        ret = math.log(price / state.last_price)
        verdict = self._judge(state, ret)
        if verdict.ok:
            state.candidate, state.run = None, 0
            state.returns.append(ret)
            state.unchanged = state.unchanged + 1 if ret == 0.0 else 0
            state.last_price = price
            if self.stale_ticks and state.unchanged >= self.stale_ticks:
                return Verdict(True, "stale", float(state.unchanged))
            return verdict
        return self._level_shift(state, price, verdict)

    def identify_outliers(self, ticks: Iterable[Tick]) -> list[Verdict]:
        """The seed's batch form: a verdict for each tick, in order."""
        return [self.check(tick) for tick in ticks]

    def reset(self, symbol: str | None = None) -> None:
        """Forget the baseline of ``symbol``, or of every symbol."""
        if symbol is None:
            self._state.clear()
        else:
            self._state.pop(symbol, None)

    def _level_shift(self, state: _Baseline, price: float, verdict: Verdict) -> Verdict:
        """Count flagged ticks that agree with each other; enough of them in a row are a new
        price level (a gap, a listing repricing), not a bad print, and become the baseline."""
        agrees = (
            state.candidate is not None and self._judge(state, math.log(price / state.candidate)).ok
        )
        state.run = state.run + 1 if agrees else 1
        state.candidate = price
        if state.run < self.rebase_after:
            return verdict
        state.last_price, state.candidate, state.run, state.unchanged = price, None, 0, 0
        return Verdict(True, "rebased", verdict.score)

    def _judge(self, state: _Baseline, ret: float) -> Verdict:
        change = math.expm1(ret)
        if abs(change) > self.max_jump:
            return Verdict(False, "jump", 100.0 * change)
        # Unchanged prices are left out of the scale: a quiet book between trades says
        # nothing about how big a move is, and with them the MAD collapses toward zero (on the
        # synthetic feed a quarter of tick returns are 0, and the false positives rise tenfold).
        moves = [r for r in state.returns if r != 0.0]
        if len(moves) < self.min_returns:
            return Verdict(True, "warmup", 0.0)
        mid = median(moves)
        mad = median([abs(r - mid) for r in moves])
        z = abs(ret - mid) / max(_MAD_TO_SIGMA * mad, self.min_scale)
        if z > self.z_threshold:
            return Verdict(False, "zscore", z)
        return Verdict(True, "ok", z)
