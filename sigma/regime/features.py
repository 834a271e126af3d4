"""Explainable market features, updated one bar at a time.

Every figure is something a trader can check on a chart:

* ``trend_t`` - the net log move over ``trend_window`` bars divided by the noise expected over
  that many bars (baseline per-bar sigma times sqrt of the window): a t-statistic of the drift;
* ``efficiency`` - Kaufman's efficiency ratio over the same window, ``|net move| / path length``
  (1 = a straight line, near 0 = back and forth, i.e. ranging);
* ``adx`` - Wilder's average directional index (trend strength regardless of direction);
* ``vol_ratio`` - short-window volatility over its long-run baseline;
* ``vol_percentile`` - where the short-window volatility ranks in the long-run history (0-1);
* ``volume_ratio`` - typical volume of the last ``volume_window`` bars over the long-run typical
  volume (None when the feed carries no volume).

The tracker also hands out the two raw per-bar observations the detector's filter uses: the
bar's log return and its log volume.

Baselines are medians (robust to a price gap or a volume spike) over ``baseline_window`` bars,
recomputed every ``baseline_every`` bars because a median over a thousand values each bar would
dominate the cost; windows are running sums over fixed-size ring buffers. Memory is bounded in a
24/7 process and the same bars always give the same numbers in a backtest and live.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureConfig", "FeatureTracker", "Features", "Observation"]

# median(|x|) of a normal variable is 0.6745 sigma; mean(|x|) is 0.7979 sigma.
_MEDIAN_ABS_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Window lengths, in bars."""

    trend_window: int = 60
    vol_window: int = 20
    volume_window: int = 20
    baseline_window: int = 1000
    baseline_every: int = 20
    adx_period: int = 14
    min_baseline: int = 200

    def __post_init__(self) -> None:
        for name in ("trend_window", "vol_window", "volume_window", "adx_period"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, got {getattr(self, name)}")
        if self.baseline_every < 1:
            raise ValueError(f"baseline_every must be at least 1, got {self.baseline_every}")
        longest = max(self.trend_window, self.vol_window, self.volume_window, self.adx_period)
        if not longest <= self.min_baseline <= self.baseline_window:
            raise ValueError("need every window <= min_baseline <= baseline_window")

    @property
    def warmup(self) -> int:
        """Bars that come before the first one with features (the first bar has no return)."""
        return self.min_baseline


@dataclass(frozen=True, slots=True)
class Features:
    """The features at one bar (see the module docstring)."""

    trend_t: float
    efficiency: float
    adx: float
    vol_ratio: float
    vol_percentile: float
    volume_ratio: float | None

    def as_dict(self) -> dict[str, float | None]:
        """Rounded values for logs, storage and commentary."""
        return {
            "trend_t": round(self.trend_t, 3),
            "efficiency": round(self.efficiency, 3),
            "adx": round(self.adx, 2),
            "vol_ratio": round(self.vol_ratio, 3),
            "vol_percentile": round(self.vol_percentile, 3),
            "volume_ratio": None if self.volume_ratio is None else round(self.volume_ratio, 3),
        }


@dataclass(frozen=True, slots=True)
class Observation:
    """One bar as the filter sees it: its log return, its ``log1p`` volume (None when the feed
    carries no volume) and, to seed the filter's own levels, the baselines at this bar."""

    ret: float
    log_volume: float | None
    base_sigma: float
    base_log_volume: float | None


class _Window:
    """The last ``size`` values with their running sum."""

    __slots__ = ("_items", "_size", "total")

    def __init__(self, size: int) -> None:
        self._items: deque[float] = deque()
        self._size = size
        self.total = 0.0

    def push(self, value: float) -> None:
        self._items.append(value)
        self.total += value
        if len(self._items) > self._size:
            self.total -= self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


class _Adx:
    """Wilder's ADX, incremental: smoothed +DM/-DM/TR, then DX smoothed again."""

    __slots__ = ("_dm_minus", "_dm_plus", "_n", "_period", "_prev", "_tr", "value")

    def __init__(self, period: int) -> None:
        self._period = period
        self._prev: tuple[float, float, float] | None = None
        self._tr = self._dm_plus = self._dm_minus = 0.0
        self.value = 0.0
        self._n = 0

    def update(self, high: float, low: float, close: float) -> None:
        if self._prev is None:
            self._prev = (high, low, close)
            return
        prev_high, prev_low, prev_close = self._prev
        self._prev = (high, low, close)
        up, down = high - prev_high, prev_low - low
        dm_plus = up if up > down and up > 0 else 0.0
        dm_minus = down if down > up and down > 0 else 0.0
        tr = max(high - low, abs(high - prev_close), abs(low - prev_close))
        self._n += 1
        # Wilder's smoothing is an EMA with alpha 1/period; a running mean over the first
        # `period` bars stands in for his initial simple sums.
        alpha = 1.0 / min(self._n, self._period)
        self._tr += alpha * (tr - self._tr)
        self._dm_plus += alpha * (dm_plus - self._dm_plus)
        self._dm_minus += alpha * (dm_minus - self._dm_minus)
        di_sum = self._dm_plus + self._dm_minus
        dx = 100.0 * abs(self._dm_plus - self._dm_minus) / di_sum if di_sum > 0 else 0.0
        self.value += alpha * (dx - self.value)


class FeatureTracker:
    """Features of one symbol, fed bar by bar."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = cfg = config or FeatureConfig()
        self.bars = 0
        self._last_log_close: float | None = None
        self._returns = _Window(cfg.trend_window)
        self._abs_trend = _Window(cfg.trend_window)
        self._abs_short = _Window(cfg.vol_window)
        self._volume = _Window(cfg.volume_window)
        self._ret_history: deque[float] = deque(maxlen=cfg.baseline_window)
        self._volume_history: deque[float] = deque(maxlen=cfg.baseline_window)
        self._sigma_history: deque[float] = deque(maxlen=cfg.baseline_window)
        self._adx = _Adx(cfg.adx_period)
        self._base_sigma = 0.0
        self._base_volume: float | None = None
        self._sorted_sigma = np.zeros(0)
        self._since_baseline = 0

    @property
    def warm(self) -> bool:
        """True once the baselines have ``min_baseline`` bars behind them."""
        return len(self._ret_history) >= self.config.min_baseline

    def update(
        self, high: float, low: float, close: float, volume: float
    ) -> tuple[Features, Observation] | None:
        """Add one bar; its features and observation once warmed up, else None."""
        self.bars += 1
        log_close = math.log(close)
        previous, self._last_log_close = self._last_log_close, log_close
        self._adx.update(high, low, close)
        log_volume = math.log1p(max(volume, 0.0))
        self._volume.push(log_volume)
        self._volume_history.append(log_volume)
        if previous is None:
            return None
        ret = log_close - previous
        self._returns.push(ret)
        self._abs_trend.push(abs(ret))
        self._abs_short.push(abs(ret))
        self._ret_history.append(ret)
        short_sigma = _MEAN_ABS_TO_SIGMA * self._abs_short.total / len(self._abs_short)
        self._sigma_history.append(short_sigma)
        if not self.warm:
            return None
        self._since_baseline -= 1
        if self._since_baseline <= 0:
            self._refresh_baseline()
        return self._features(short_sigma), self._observation(ret, log_volume)

    def history(self) -> tuple[list[float], list[float]]:
        """The log returns and ``log1p`` volumes held for the baselines, oldest first (the
        volumes include the first bar, which has no return)."""
        return list(self._ret_history), list(self._volume_history)

    def _refresh_baseline(self) -> None:
        self._since_baseline = self.config.baseline_every
        self._base_sigma = _MEDIAN_ABS_TO_SIGMA * float(np.median(np.abs(self._ret_history)))
        median_volume = float(np.median(self._volume_history))
        # log1p(0) = 0: a feed whose typical volume is zero carries no volume information.
        self._base_volume = median_volume if median_volume > 0 else None
        self._sorted_sigma = np.sort(np.asarray(self._sigma_history))

    def _observation(self, ret: float, log_volume: float) -> Observation:
        has_volume = self._base_volume is not None
        return Observation(
            ret, log_volume if has_volume else None, self._base_sigma, self._base_volume
        )

    def _features(self, short_sigma: float) -> Features:
        net = self._returns.total
        path = self._abs_trend.total
        noise = self._base_sigma * math.sqrt(len(self._returns))
        volume_ratio = None
        if self._base_volume is not None:
            volume_ratio = math.exp(self._volume.total / len(self._volume) - self._base_volume)
        rank = int(np.searchsorted(self._sorted_sigma, short_sigma, side="right"))
        return Features(
            trend_t=net / noise if noise > 0 else 0.0,
            efficiency=abs(net) / path if path > 0 else 0.0,
            adx=self._adx.value,
            vol_ratio=short_sigma / self._base_sigma if self._base_sigma > 0 else 1.0,
            vol_percentile=rank / max(len(self._sorted_sigma), 1),
            volume_ratio=volume_ratio,
        )
