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

Flagged ticks do not update the reference price, so one bad print cannot drag it. A genuine
level shift would then be flagged forever, so once ``rebase_after`` consecutive flagged ticks
agree with each other the newest price becomes the reference (verdict ``"rebased"``, ok).

The scale must not blind the detector (issue 23): learnt only from accepted ticks, a calm
stretch shrank it so far that normal volatility was then rejected for thousands of ticks. So
every move, accepted or flagged, enters the scale *winsorised* to ``z_threshold`` slow scales
from the centre (a 100x print counts as one threshold-sized move, never as 100x), and the scale
used is the larger of the slow one (the MAD over ``window`` moves) and a fast one (a low order
statistic of the last ``fast_window`` moves, which only rises when most recent moves are large:
a new volatility regime, not a bad print or a hostile minority). Growth is bounded: the fast
scale is at most about ``1.5 * z_threshold`` slow scales, and the slow one needs most of its
window to move.

The first tick of a symbol is judged against ``reference(symbol)`` (the last stored tick or
bar, the venue's price) when the caller gives one; without a reference it is held back until
``rebase_after`` consecutive ticks agree (verdict ``"unconfirmed"``, not ok, then
``"confirmed"``), so a lone bad first print never reaches the strategies.
Everything is deterministic: same ticks, same verdicts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist, median

from sigma.domain import Tick
from sigma.risk.cleaner import DEFAULT_MAX_SYMBOLS, SymbolMap

__all__ = ["AnomalyDetector", "Verdict"]

# MAD * 1.4826 estimates the standard deviation of normally distributed returns.
_MAD_TO_SIGMA = 1.4826

ReferencePrice = Callable[[str], Decimal | None]
"""The caller's price for a symbol before its first tick (None: unknown)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's answer for one tick: ``ok`` False means drop it; ``reason`` is ``"ok"``,
    ``"warmup"``, ``"stale"`` (ok, informational), ``"rebased"`` (ok, a confirmed new price
    level), ``"confirmed"`` (ok, a first price confirmed by the next ticks), ``"unconfirmed"``
    (a first price without a reference, held back), ``"crossed"``, ``"jump"`` or ``"zscore"``;
    ``score`` is the robust z-score (or the jump in percent for ``"jump"``, the unchanged tick
    count for ``"stale"``)."""

    ok: bool
    reason: str
    score: float


@dataclass(slots=True)
class _Baseline:
    last_price: float
    returns: deque[float]
    # The last few moves, for the fast scale (see the module docstring).
    recent: deque[float]
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
        fast_window: int = 8,
        reference: ReferencePrice | None = None,
    ) -> None:
        if window < min_returns or min_returns < 2:
            raise ValueError(f"need window >= min_returns >= 2, got {window}, {min_returns}")
        if z_threshold <= 0 or max_jump_pct <= 0:
            raise ValueError("z_threshold and max_jump_pct must be positive")
        if fast_window < 3:
            raise ValueError(f"fast_window must be at least 3, got {fast_window}")
        self.window = window
        self.z_threshold = z_threshold
        self.max_jump = max_jump_pct / 100.0
        self.min_returns = min_returns
        self.stale_ticks = stale_ticks
        self.rebase_after = rebase_after
        # Floor on the return scale: after a run of identical prices the MAD is zero and any
        # move, however tiny, would have an infinite z-score.
        self.min_scale = min_scale
        self.fast_window = fast_window
        # The fast scale is the k-th smallest of the recent |moves|, k = 3/8 of the window: a
        # bad print or a hostile minority (under 5 of 8) cannot raise it; a new regime does.
        self._fast_rank = max(1, (3 * fast_window) // 8)
        self._fast_norm = _normal_abs_quantile((self._fast_rank - 0.5) / fast_window)
        self.reference = reference
        self._state: SymbolMap[str, _Baseline] = SymbolMap(max_symbols)

    def check(self, tick: Tick) -> Verdict:
        """Judge ``tick`` and, when it is ok, add it to its symbol's baseline."""
        if tick.bid is not None and tick.ask is not None and tick.bid > tick.ask:
            return Verdict(False, "crossed", 0.0)
        price = float(tick.price)
        state = self._state.get(tick.symbol)
        if state is None:
            first = self._first(tick.symbol, price)
            if isinstance(first, Verdict):
                return first
            state = first
        self._state.move_to_end(tick.symbol)
        if state.last_price <= 0.0:
            # No confirmed price yet (no reference): wait for agreeing ticks.
            return self._level_shift(state, price, Verdict(False, "unconfirmed", 0.0))
        ret = math.log(price / state.last_price)
        verdict = self._judge(state, ret)
        # Flagged moves count too, winsorised: this is what lets the scale follow a genuine
        # rise in volatility instead of rejecting it forever.
        self._learn(state, ret)
        if verdict.ok:
            state.candidate, state.run = None, 0
            state.unchanged = state.unchanged + 1 if ret == 0.0 else 0
            state.last_price = price
            if self.stale_ticks and state.unchanged >= self.stale_ticks:
                return Verdict(True, "stale", float(state.unchanged))
            return verdict
        return self._level_shift(state, price, verdict)

    def scale(self, symbol: str) -> float | None:
        """The return scale ``symbol``'s next move is judged with (None: still warming up)."""
        state = self._state.get(symbol)
        if state is None:
            return None
        moves = [r for r in state.returns if r != 0.0]
        if len(moves) < self.min_returns:
            return None
        mid, slow = _centre_and_scale(moves)
        return max(slow, self._fast(state, mid), self.min_scale)

    def _first(self, symbol: str, price: float) -> _Baseline | Verdict:
        """Start ``symbol``'s baseline: from the caller's reference when there is one (the
        tick is then judged against it like any other), else hold the tick back until the
        next ones agree: a lone bad first print must not reach the strategies."""
        ref = self.reference(symbol) if self.reference is not None else None
        state = _Baseline(
            float(ref) if ref is not None and ref > 0 else 0.0,
            deque(maxlen=self.window),
            deque(maxlen=self.fast_window),
        )
        self._state.touch(symbol, state)
        if state.last_price > 0.0:
            return state
        state.candidate, state.run = price, 1
        if self.rebase_after <= 1:
            state.last_price, state.candidate, state.run = price, None, 0
            return Verdict(True, "confirmed", 0.0)
        return Verdict(False, "unconfirmed", 0.0)

    def _learn(self, state: _Baseline, ret: float) -> None:
        """Add a move to the scale windows, winsorised to ``z_threshold`` slow scales."""
        if ret == 0.0:
            state.returns.append(ret)
            return
        moves = [r for r in state.returns if r != 0.0]
        if len(moves) >= self.min_returns:
            mid, slow = _centre_and_scale(moves)
            bound = self.z_threshold * max(slow, self.min_scale)
        else:  # no scale yet: only the jump limit bounds a move
            mid, bound = 0.0, math.log1p(self.max_jump)
        ret = min(max(ret, mid - bound), mid + bound)
        state.returns.append(ret)
        state.recent.append(ret)

    def _fast(self, state: _Baseline, mid: float) -> float:
        """The fast scale: a low order statistic of the recent moves (0 until enough)."""
        if len(state.recent) < self.fast_window:
            return 0.0
        sizes = sorted(abs(r - mid) for r in state.recent)
        return sizes[self._fast_rank - 1] / self._fast_norm

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
        first = state.last_price <= 0.0
        state.last_price, state.candidate, state.run, state.unchanged = price, None, 0, 0
        if first:
            return Verdict(True, "confirmed", 0.0)
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
        mid, slow = _centre_and_scale(moves)
        z = abs(ret - mid) / max(slow, self._fast(state, mid), self.min_scale)
        if z > self.z_threshold:
            return Verdict(False, "zscore", z)
        return Verdict(True, "ok", z)


def _centre_and_scale(moves: list[float]) -> tuple[float, float]:
    """The median of ``moves`` and their robust standard deviation (1.4826 * MAD)."""
    mid = median(moves)
    return mid, _MAD_TO_SIGMA * median([abs(r - mid) for r in moves])


def _normal_abs_quantile(q: float) -> float:
    """The ``q`` quantile of ``|N(0, 1)|``: turns an order statistic of sizes into a sigma."""
    return NormalDist().inv_cdf(0.5 + q / 2.0)
