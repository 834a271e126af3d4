"""A seeded synthetic market: OHLCV bars that move through labelled regimes.

Used by tests, demos and benchmarks wherever real data would be slow, large or licensed. The
price is a geometric random walk whose drift and volatility switch between regimes; every step
is vectorised, so a million bars take a fraction of a second.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.feeds.frame import TS, make_bar_frame
from sigma.feeds.resample import normalise_rule
from sigma.feeds.writers import write_csv, write_parquet

__all__ = ["REGIMES", "generate_bars", "write_csv", "write_parquet"]

REGIMES: tuple[str, ...] = ("trend_up", "trend_down", "range", "high_vol")
RANDOM_WALK = "random_walk"
_UP, _DOWN, _RANGE, _HIGH_VOL = range(4)

# Per-bar log-return parameters. A trend's drift is a fifth of its noise: over a typical regime
# (~300 bars) it moves the price about 6% against ~2% of noise, visible but not trivial.
_VOL = np.array([0.001, 0.001, 0.001, 0.003])
_DRIFT = np.array([0.0002, -0.0002, 0.0, 0.0])
_VOLUME_SCALE = np.array([1.0, 1.0, 0.7, 2.5])
_BASE_PICK = np.array([0.3, 0.3, 0.25, 0.15])
# "range" is an AR(1) deviation from the level where the regime began: phi 0.98 pulls back about
# 2% of the gap per bar, the innovation is sized for ~0.5% stationary spread.
_RANGE_PHI = 0.98
_RANGE_SPREAD = 0.005
# Gaps: a jump between one close and the next open, about once every 2000 bars.
_GAP_RATE = 0.0005
_GAP_SIZE = 0.01
# How hard trends lean back toward the start price (per unit of log distance), so a long series
# stays in a realistic price band instead of drifting to cents or to millions.
_LEAN = 2.0
_MIN_PRICE = 0.01


def generate_bars(
    n: int,
    *,
    seed: int = 0,
    start: str | datetime | pd.Timestamp = "2024-01-01",
    freq: str = "1min",
    start_price: float = 100.0,
    regimes: bool = True,
    mean_regime_bars: int = 300,
) -> tuple[pd.DataFrame, npt.NDArray[np.str_]]:
    """``n`` bars from ``start`` every ``freq`` (UTC), and the regime label of each bar.

    With ``regimes=True`` the market switches between ``trend_up``, ``trend_down``, ``range``
    (mean-reverting) and ``high_vol``; regime lengths are 30 bars plus a geometric draw with mean
    ``mean_regime_bars``, a regime never follows itself, and occasional price gaps (close to next
    open) occur in any regime. With ``regimes=False`` it is a plain driftless geometric random
    walk labelled ``random_walk``, without gaps.

    Prices are rounded to cents so Decimal arithmetic downstream is exact; high >= max(open,
    close), low <= min(open, close) and every price >= 0.01. The same arguments always give the
    same bars.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if start_price <= 0:
        raise ValueError(f"start_price must be positive, got {start_price}")
    if mean_regime_bars < 31:
        raise ValueError(f"mean_regime_bars must be more than 30, got {mean_regime_bars}")
    rng = np.random.default_rng(seed)
    if regimes:
        regime, returns, gaps = _regime_path(rng, n, mean_regime_bars)
        labels = np.asarray(REGIMES)[regime]
    else:
        regime = np.zeros(n, dtype=np.intp)
        returns = _VOL[_UP] * rng.standard_normal(n)
        gaps = np.zeros(n)
        labels = np.full(n, RANDOM_WALK)
    sigma = _VOL[regime]
    log_close = np.log(start_price) + np.cumsum(gaps + returns)
    close = np.exp(log_close)
    open_ = np.exp(log_close - returns)
    wick_up = np.exp(0.7 * sigma * np.abs(rng.standard_normal(n)))
    wick_down = np.exp(-0.7 * sigma * np.abs(rng.standard_normal(n)))
    volume = np.round(
        1000.0
        * _VOLUME_SCALE[regime]
        * np.exp(0.5 * rng.standard_normal(n))
        * (1.0 + np.abs(returns) / sigma)
    )
    # Round open/close first, then widen high/low so rounding can never break the OHLC bounds.
    open_c = np.maximum(np.round(open_, 2), _MIN_PRICE)
    close_c = np.maximum(np.round(close, 2), _MIN_PRICE)
    high = np.maximum(np.round(np.maximum(open_, close) * wick_up, 2), np.maximum(open_c, close_c))
    low = np.minimum(np.round(np.minimum(open_, close) * wick_down, 2), np.minimum(open_c, close_c))
    low = np.maximum(low, _MIN_PRICE)
    ts = _timestamps(start, freq, n)
    return make_bar_frame(ts, open_c, high, low, close_c, volume), labels


def _timestamps(start: str | datetime | pd.Timestamp, freq: str, n: int) -> pd.DatetimeIndex:
    first = pd.Timestamp(start)
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    offset = normalise_rule(freq)
    # Fixed-length by construction (normalise_rule rejects weeks and months).
    step = pd.Timedelta(offset.nanos).value
    stamps = first.as_unit("ns").value + np.arange(n, dtype=np.int64) * step
    return pd.DatetimeIndex(pd.to_datetime(stamps, unit="ns", utc=True), name=TS)


def _regime_path(
    rng: np.random.Generator, n: int, mean_bars: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-bar regime index, intrabar log return and gap (log jump before the open)."""
    min_bars = 30
    lengths = min_bars + rng.geometric(1.0 / (mean_bars - min_bars), size=n // min_bars + 1)
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, n)) + 1
    ends = np.minimum(ends[:count], n)
    starts = np.concatenate(([0], ends[:-1]))
    z = rng.standard_normal(n)
    ou_noise = _RANGE_SPREAD * np.sqrt(1.0 - _RANGE_PHI**2) * rng.standard_normal(n)
    deviation = _ar1(ou_noise, _RANGE_PHI)
    range_returns = np.diff(deviation, prepend=0.0)
    gaps = np.where(rng.random(n) < _GAP_RATE, _GAP_SIZE * rng.standard_normal(n), 0.0)
    gaps[0] = 0.0  # the first open is the start price
    picks = rng.random(count)
    seg_regime = _choose_regimes(starts, ends, picks, z, deviation, gaps)
    regime = np.repeat(seg_regime, ends - starts)
    returns = np.where(regime == _RANGE, range_returns, _DRIFT[regime] + _VOL[regime] * z)
    return regime, returns, gaps


def _choose_regimes(
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    picks: npt.NDArray[np.float64],
    z: npt.NDArray[np.float64],
    deviation: npt.NDArray[np.float64],
    gaps: npt.NDArray[np.float64],
) -> npt.NDArray[np.intp]:
    """One regime per segment. A loop over segments (a few thousand for a million bars), since
    each choice leans on where the previous segments left the price."""
    z_sum = np.concatenate(([0.0], np.cumsum(z)))
    gap_sum = np.concatenate(([0.0], np.cumsum(gaps)))
    dev = np.concatenate(([0.0], deviation))
    chosen = np.empty(len(starts), dtype=np.intp)
    level, previous = 0.0, -1
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        weights = _BASE_PICK * np.exp([-_LEAN * level, _LEAN * level, 0.0, 0.0])
        if previous >= 0:
            weights[previous] = 0.0
        cumulative = np.cumsum(weights)
        pick = int(np.searchsorted(cumulative, picks[i] * cumulative[-1], side="right"))
        pick = min(pick, len(REGIMES) - 1)
        chosen[i] = previous = pick
        if pick == _RANGE:
            level += dev[b] - dev[a]
        else:
            level += _DRIFT[pick] * (b - a) + _VOL[pick] * (z_sum[b] - z_sum[a])
        level += gap_sum[b] - gap_sum[a]
    return chosen


def _ar1(noise: npt.NDArray[np.float64], phi: float, block: int = 256) -> npt.NDArray[np.float64]:
    """x[t] = phi * x[t-1] + noise[t] from x[-1] = 0, vectorised in blocks.

    Inside a block x[j] = phi**j * cumsum(noise[s] / phi**s): one numpy pass over all blocks at
    once. The block is short enough that phi**-block stays small (about 170 for phi=0.98), so
    no precision is lost; only the carry between blocks needs a (short) Python loop.
    """
    n = len(noise)
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = noise
    grid = padded.reshape(blocks, block)
    powers = phi ** np.arange(block)
    within = np.cumsum(grid / powers, axis=1) * powers
    carry = np.empty(blocks)
    state, decay = 0.0, phi**block
    for b, end in enumerate(within[:, -1].tolist()):
        carry[b] = state
        state = end + decay * state
    result: npt.NDArray[np.float64] = (within + carry[:, None] * (powers * phi)).ravel()[:n]
    return result
