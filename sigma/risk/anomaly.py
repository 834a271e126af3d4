"""AnomalyDetector: the price filter. Flags ticks whose price move does not fit the recent
behaviour of the symbol, and says when an accepted price is not yet to be believed.

Checks, per tick, against the symbol's baseline (the last accepted price and a rolling window
of non-zero log moves):

* ``crossed`` - bid above ask;
* ``jump`` - the price moved more than ``max_jump_pct`` percent from the last accepted price;
* ``zscore`` - the robust z-score of the log move, ``|r - median| / scale``, exceeds
  ``z_threshold`` (only once the window holds ``min_returns`` moves: before that the scale is
  unknown);
* ``stale`` - the price has not changed for ``stale_ticks`` ticks. Informational: ``ok`` stays
  True, because a quiet market is not a bad tick, but the caller may want to know.

**The scale cannot blind the filter** (issue 23). Learnt only from accepted ticks, a calm
stretch shrank it so far that normal volatility was then rejected for thousands of ticks. So
every move, accepted or flagged, enters the scale *winsorised* to ``z_threshold`` slow scales
from the centre (a 100x print counts as one threshold-sized move, never as 100x). The scale
used is the slow one (1.4826 * MAD over ``window`` moves, computed again every few moves), or
the fast one (the median size of the last ``fast_window`` moves, scaled to a standard
deviation) when that is more than twice the slow one: a new volatility regime, which makes
most recent moves larger. A bad print or a hostile minority of prints cannot lift that median;
the winsorising bounds the fast scale at about ``1.6 * z_threshold`` slow scales, and the slow
one needs half its window to move, so a hostile feed widens the band by a bounded factor.

Flagged ticks never move the reference price, so one bad print cannot drag it. A genuine
level shift would then be flagged forever, so once ``rebase_after`` consecutive flagged ticks
agree with each other the newest price becomes the reference (verdict ``"rebased"``, ok).

**What is believed** (``Verdict.doubt``). Tick-to-tick checks cannot stop a *slow ramp*: a
feed that moves the price step by step, each step inside the band, or a rebase made of a few
agreeing bad prints. So the filter also keeps an *anchor*, the price it believes, which
follows the accepted price at a bounded speed: at most ``max_drift_pct`` percent per
``drift_seconds`` of tick time (the cleaner keeps tick time within seconds of the wall
clock). An accepted price more than ``max_drift_pct`` from the anchor is passed on (the
strategies keep seeing the market and can get flat; rejecting it would blind the bot again)
but carries ``doubt="drift"``: the caller stops opening positions on that symbol until the
anchor has caught up (to within half that distance: no flapping at the bound). A hostile ramp
therefore moves the believed price by at most ``max_drift_pct`` per ``drift_seconds``, and a
fast genuine move pauses new entries for a while (with an alert, see
:mod:`sigma.risk.feed_health`) instead of being traded blind.

**The first tick after a start** is judged against ``reference(symbol)`` (the last stored
price and its time) when the caller gives one, like any other tick; the anchor starts there,
free to have moved ``max_drift_pct`` per ``drift_seconds`` since that time (a price stored
hours ago says little about where the market is now). Without a reference there is nothing
to judge it by: it is accepted (the feed's tick counts stay exact, nothing is held back) with
``doubt="unconfirmed"`` until it and the ticks accepted after it (each within the band of the
one before) number ``rebase_after``; a bad first print is left behind by the rebase of the
ticks that disagree with it.

Everything is deterministic: same ticks, same verdicts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import NormalDist, median
from typing import Protocol

from sigma.domain import Tick
from sigma.risk.symbol_map import DEFAULT_MAX_SYMBOLS, SymbolMap

__all__ = ["AnomalyDetector", "Reference", "ReferencePrice", "Verdict"]

# MAD * 1.4826 estimates the standard deviation of normally distributed returns.
_MAD_TO_SIGMA = 1.4826
# How far above the slow scale the fast one must be to be taken as a new volatility regime.
_REGIME_CHANGE = 2.0
# The slow centre and scale are computed again after this many new moves, not on every tick:
# they move over half a window by design, and the two medians are most of a tick's cost.
_REFRESH = 8


class Reference(Protocol):
    """A price known before a symbol's first tick, and when it was the price."""

    @property
    def price(self) -> Decimal:
        """The price."""

    @property
    def ts(self) -> datetime:
        """When it was the price."""


ReferencePrice = Callable[[str], Reference | None]
"""The caller's price for a symbol before its first tick (None: unknown)."""

DOUBT_UNCONFIRMED = "unconfirmed"
DOUBT_DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The detector's answer for one tick: ``ok`` False means drop it; ``reason`` is ``"ok"``,
    ``"warmup"``, ``"stale"`` (ok, informational), ``"rebased"`` (ok, a confirmed new price
    level), ``"crossed"``, ``"jump"`` or ``"zscore"``;
    ``score`` is the robust z-score (or the jump in percent for ``"jump"``, the unchanged tick
    count for ``"stale"``). ``doubt`` is why an accepted price is not yet believed (``""``:
    it is): ``"unconfirmed"`` (a first price without a reference) or ``"drift"`` (more than
    ``max_drift_pct`` from the believed price); no new position should be opened on it."""

    ok: bool
    reason: str
    score: float
    doubt: str = ""


@dataclass(slots=True)
class _Baseline:
    last_price: float
    # Non-zero log moves, winsorised: the slow window and the last few for the fast scale.
    returns: deque[float]
    recent: deque[float]
    # The believed log price and the tick time it was last moved at.
    anchor: float
    anchor_ts: datetime
    # Whether the price is doubted for drift (the doubt ends at half the distance it began).
    drifting: bool = False
    # The slow centre and scale, and the moves learnt since they were computed.
    mid: float = 0.0
    slow: float = 0.0
    since: int = _REFRESH
    # Accepted ticks that agree with the first price so far (only counted while unconfirmed).
    agreeing: int = 0
    confirmed: bool = True
    unchanged: int = 0
    # The last flagged price and how many consecutive flagged ticks agree with each other.
    candidate: float | None = None
    run: int = 0


@dataclass(frozen=True, slots=True)
class _Scale:
    """The centre of the recent moves, their slow scale, and the scale a move is judged with."""

    mid: float
    slow: float
    used: float


class AnomalyDetector:
    """Per-symbol price filter (see the module docstring)."""

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
        fast_window: int = 12,
        max_drift_pct: float = 10.0,
        drift_seconds: float = 600.0,
        reference: ReferencePrice | None = None,
    ) -> None:
        if window < min_returns or min_returns < 2:
            raise ValueError(f"need window >= min_returns >= 2, got {window}, {min_returns}")
        if z_threshold <= 0 or max_jump_pct <= 0:
            raise ValueError("z_threshold and max_jump_pct must be positive")
        if fast_window < 3:
            raise ValueError(f"fast_window must be at least 3, got {fast_window}")
        if max_drift_pct <= 0 or drift_seconds <= 0:
            raise ValueError("max_drift_pct and drift_seconds must be positive")
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
        # The fast scale is the median of the recent |moves|: a bad print or a hostile
        # minority cannot raise it; a new regime, which makes most moves larger, does.
        self._fast_rank = fast_window // 2
        self._fast_norm = _normal_abs_quantile((self._fast_rank - 0.5) / fast_window)
        self.max_drift = math.log1p(max_drift_pct / 100.0)
        self._drift_per_second = self.max_drift / drift_seconds
        self.reference = reference
        self._state: SymbolMap[str, _Baseline] = SymbolMap(max_symbols)

    def check(self, tick: Tick) -> Verdict:
        """Judge ``tick``; every move feeds the scale, an accepted one moves the baseline."""
        if tick.bid is not None and tick.ask is not None and tick.bid > tick.ask:
            return Verdict(False, "crossed", 0.0)
        price = float(tick.price)
        state = self._state.get(tick.symbol)
        if state is None:
            state = self._start(tick, price)
            if not state.confirmed:
                return self._accept(state, tick, price, Verdict(True, "warmup", 0.0), moved=True)
        else:
            self._state.move_to_end(tick.symbol)
        ret = math.log(price / state.last_price)
        scale = self._scale(state)
        verdict = self._judge(ret, scale)
        if ret != 0.0:
            # Flagged moves count too, winsorised: this is what lets the scale follow a
            # genuine rise in volatility instead of rejecting it forever.
            self._learn(state, ret, scale)
        if verdict.ok:
            return self._accept(state, tick, price, verdict, moved=ret != 0.0)
        return self._level_shift(state, tick, price, verdict, scale)

    def scale(self, symbol: str) -> float | None:
        """The return scale ``symbol``'s next move is judged with (None: still warming up)."""
        state = self._state.get(symbol)
        scale = self._scale(state) if state is not None else None
        return scale.used if scale is not None else None

    def identify_outliers(self, ticks: Iterable[Tick]) -> list[Verdict]:
        """The seed's batch form: a verdict for each tick, in order."""
        return [self.check(tick) for tick in ticks]

    def reset(self, symbol: str | None = None) -> None:
        """Forget the baseline of ``symbol``, or of every symbol."""
        if symbol is None:
            self._state.clear()
        else:
            self._state.pop(symbol, None)

    def _start(self, tick: Tick, price: float) -> _Baseline:
        """A new baseline: from the caller's reference when there is one, else from this first
        tick itself, unconfirmed."""
        ref = self.reference(tick.symbol) if self.reference is not None else None
        if ref is not None and ref.price > 0:
            start, since, known = float(ref.price), min(ref.ts, tick.ts), True
        else:
            start, since, known = price, tick.ts, False
        state = _Baseline(
            start,
            deque(maxlen=self.window),
            deque(maxlen=self.fast_window),
            math.log(start),
            since,
            confirmed=known,
        )
        self._state.touch(tick.symbol, state)
        return state

    def _accept(
        self, state: _Baseline, tick: Tick, price: float, verdict: Verdict, *, moved: bool
    ) -> Verdict:
        """Move the baseline to an accepted price and say whether it is believed."""
        state.candidate, state.run = None, 0
        state.unchanged = 0 if moved else state.unchanged + 1
        state.last_price = price
        doubt = self._believe(state, tick, price)
        if self.stale_ticks and state.unchanged >= self.stale_ticks:
            return Verdict(True, "stale", float(state.unchanged), doubt)
        return Verdict(verdict.ok, verdict.reason, verdict.score, doubt)

    def _believe(self, state: _Baseline, tick: Tick, price: float) -> str:
        """Move the anchor toward ``price`` at its bounded speed; the doubt left over."""
        level = math.log(price)
        if not state.confirmed:
            # An unconfirmed first price: the anchor is provisional and follows freely.
            state.agreeing += 1
            state.anchor, state.anchor_ts = level, tick.ts
            state.confirmed = state.agreeing >= self.rebase_after
            return "" if state.confirmed else DOUBT_UNCONFIRMED
        seconds = max((tick.ts - state.anchor_ts).total_seconds(), 0.0)
        step = self._drift_per_second * seconds
        state.anchor += min(max(level - state.anchor, -step), step)
        state.anchor_ts = max(tick.ts, state.anchor_ts)
        gap = abs(level - state.anchor)
        if gap > self.max_drift:
            state.drifting = True
        elif gap <= self.max_drift / 2:
            # Not at once below the bound: a price hovering there would pause and resume
            # entries (and alert) on every other tick.
            state.drifting = False
        return DOUBT_DRIFT if state.drifting else ""

    def _scale(self, state: _Baseline) -> _Scale | None:
        """The centre and the scales of ``state``'s moves (None before ``min_returns``)."""
        moves = state.returns
        if len(moves) < self.min_returns:
            return None
        if state.since >= _REFRESH:
            state.mid = median(moves)
            state.slow = _MAD_TO_SIGMA * median([abs(r - state.mid) for r in moves])
            state.since = 0
        mid, slow = state.mid, state.slow
        fast = 0.0
        if len(state.recent) == self.fast_window:
            sizes = sorted([abs(r - mid) for r in state.recent])
            fast = sizes[self._fast_rank - 1] / self._fast_norm
        # Only a fast scale well above the slow one is a new regime; below that it is the
        # noise of a few samples, which would let bad prints through.
        used = fast if fast > _REGIME_CHANGE * slow else slow
        return _Scale(mid, slow, max(used, self.min_scale))

    def _learn(self, state: _Baseline, ret: float, scale: _Scale | None) -> None:
        """Add a non-zero move to the scale windows, winsorised to ``z_threshold`` slow
        scales (before there is a scale, to the jump limit)."""
        if scale is None:
            mid, bound = 0.0, math.log1p(self.max_jump)
        else:
            mid, bound = scale.mid, self.z_threshold * max(scale.slow, self.min_scale)
        ret = min(max(ret, mid - bound), mid + bound)
        state.since += 1
        state.returns.append(ret)
        state.recent.append(ret)

    def _level_shift(
        self, state: _Baseline, tick: Tick, price: float, verdict: Verdict, scale: _Scale | None
    ) -> Verdict:
        """Count flagged ticks that agree with each other; enough of them in a row are a new
        price level (a gap, a listing repricing), not a bad print, and become the baseline.
        The anchor does not jump with it: a level made of a few agreeing prints is believed
        only once the anchor has caught up (unless the old level was itself unconfirmed)."""
        agrees = (
            state.candidate is not None and self._judge(math.log(price / state.candidate), scale).ok
        )
        state.run = state.run + 1 if agrees else 1
        state.candidate = price
        if state.run < self.rebase_after:
            return verdict
        if not state.confirmed:
            state.agreeing = self.rebase_after - 1  # the agreeing run confirms the new level
        return self._accept(state, tick, price, Verdict(True, "rebased", verdict.score), moved=True)

    def _judge(self, ret: float, scale: _Scale | None) -> Verdict:
        change = math.expm1(ret)
        if abs(change) > self.max_jump:
            return Verdict(False, "jump", 100.0 * change)
        # Unchanged prices are left out of the scale: a quiet book between trades says
        # nothing about how big a move is, and with them the MAD collapses toward zero (on the
        # synthetic feed a quarter of tick returns are 0, and the false positives rise tenfold).
        if scale is None:
            return Verdict(True, "warmup", 0.0)
        z = abs(ret - scale.mid) / scale.used
        if z > self.z_threshold:
            return Verdict(False, "zscore", z)
        return Verdict(True, "ok", z)


def _normal_abs_quantile(q: float) -> float:
    """The ``q`` quantile of ``|N(0, 1)|``: turns an order statistic of sizes into a sigma."""
    return NormalDist().inv_cdf(0.5 + q / 2.0)
