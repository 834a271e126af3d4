"""RegimeDetector: which kind of market each symbol is in, and why.

Per bar it updates the symbol's explainable features (`sigma.regime.features`) and runs a
four-state Gaussian hidden-Markov filter (forward recursion only, so it never looks ahead) on
two per-bar observations measured against the symbol's own long-run baseline:

* the log return in baseline sigmas - trends drift (+/-``drift`` sigma per bar), ``high_vol``
  swings ``wild_sigma`` times wider than the calm regimes;
* the log volume relative to normal - ranging markets are quiet (``quiet_volume`` times normal
  volume), volatile ones busy (``busy_volume``).

The regimes are sticky (expected ``mean_dwell`` bars each), which is what lets weak evidence
(a drift of a fifth of the noise) add up over many bars. On top of the filter, hysteresis keeps
the answer from flapping: a new regime must be the most likely one for ``confirm_bars`` bars in
a row and the current one must have lasted ``min_dwell`` bars. Until the baselines are warm the
regime is ``unknown``.

The default model parameters are calibrated on `sigma.feeds.synthetic` (seeds outside the
tests); for a real market, set them from labelled or optimised history. Every state carries the
features and the regime probability, so each decision can be explained.

The feedback loop can `tighten` a symbol's hysteresis when regime-driven changes did not pay.
An outside signal (news) can force ``high_vol`` for a while with `force_high_vol`; the reason
is kept so the commentary and the audit trail can say so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import numpy as np
import pandas as pd

from sigma.domain import Bar
from sigma.regime.features import FeatureConfig, Features, FeatureTracker, Observation

__all__ = [
    "KNOWN_REGIMES",
    "DetectorConfig",
    "Regime",
    "RegimeDetector",
    "RegimeModel",
    "RegimeState",
    "balanced_accuracy",
    "confusion_matrix",
    "detect_frame",
    "frame_bars",
]


class Regime(StrEnum):
    """The market regimes SIGMA tells apart (names match the synthetic feed's labels)."""

    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    RANGE = "range"
    HIGH_VOL = "high_vol"
    UNKNOWN = "unknown"


KNOWN_REGIMES: tuple[Regime, ...] = (
    Regime.TREND_UP,
    Regime.TREND_DOWN,
    Regime.RANGE,
    Regime.HIGH_VOL,
)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# mean(|x|) of a normal variable is sigma * sqrt(2 / pi).
_MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)
# Expectation-maximisation rounds when the normal levels are first fitted (they settle in a few).
_FIT_ROUNDS = 8
# `tighten` raises a symbol's confirmation to at most this many times the configured value.
_TIGHTEN_CAP = 4


@dataclass(frozen=True, slots=True)
class RegimeModel:
    """What each regime looks like relative to the symbol's "normal" (calm, trending) market.

    Returns are measured in calm sigmas: trends drift ``drift`` per bar, ``high_vol`` swings
    ``wild_sigma`` times wider. Volume is relative to normal: ranges trade ``quiet_volume``
    times it, volatile markets ``busy_volume`` times; ``volume_noise`` is the per-bar spread of
    log volume. ``outlier`` is the weight of a very wide return component, so one price gap is
    read as a gap and not as proof of a volatile regime. The normal levels themselves are
    re-estimated as the market goes, over about ``adapt_bars`` bars, from every bar weighted by
    how likely each regime is: a long range or a volatile month does not become the new
    "normal" the way a plain moving median would.
    """

    wild_sigma: float = 2.9
    drift: float = 0.2
    quiet_volume: float = 0.70
    busy_volume: float = 2.5
    volume_noise: float = 0.6
    mean_dwell: float = 300.0
    outlier: float = 0.01
    adapt_bars: float = 1000.0

    def __post_init__(self) -> None:
        positive = ("wild_sigma", "quiet_volume", "busy_volume", "volume_noise")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.mean_dwell <= 1 or self.adapt_bars < 1 or not 0 <= self.outlier < 1:
            raise ValueError("need mean_dwell > 1, adapt_bars >= 1 and 0 <= outlier < 1")

    @property
    def sigma_scales(self) -> tuple[float, ...]:
        """Per-bar sigma of each of `KNOWN_REGIMES`, in calm sigmas."""
        return (1.0, 1.0, 1.0, self.wild_sigma)

    @property
    def volume_offsets(self) -> tuple[float, ...]:
        """Mean log volume of each of `KNOWN_REGIMES` relative to normal."""
        return (0.0, 0.0, math.log(self.quiet_volume), math.log(self.busy_volume))

    def log_likelihoods(self, z: float, volume: float | None) -> list[float]:
        """log p(bar | regime) for each of `KNOWN_REGIMES`; `z` is the return in calm sigmas,
        `volume` the log volume relative to normal (None when unknown)."""
        means = (self.drift, -self.drift, 0.0, 0.0)
        gap = self.outlier * _normal_pdf(z, 0.0, 10.0 * self.wild_sigma)
        keep = 1.0 - self.outlier
        result = []
        for mean, sigma, offset in zip(means, self.sigma_scales, self.volume_offsets, strict=True):
            value = math.log(keep * _normal_pdf(z, mean, sigma) + gap)
            if volume is not None:
                value += _normal_logpdf(volume, offset, self.volume_noise)
            result.append(value)
        return result


def _normal_logpdf(x: float, mean: float, sigma: float) -> float:
    u = (x - mean) / sigma
    return -0.5 * u * u - math.log(sigma) - _LOG_SQRT_2PI


def _normal_pdf(x: float, mean: float, sigma: float) -> float:
    return math.exp(_normal_logpdf(x, mean, sigma))


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Features, regime model and hysteresis (bars)."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: RegimeModel = field(default_factory=RegimeModel)
    confirm_bars: int = 3
    min_dwell: int = 10

    def __post_init__(self) -> None:
        if self.confirm_bars < 1 or self.min_dwell < 1:
            raise ValueError("confirm_bars and min_dwell must be at least 1")


@dataclass(frozen=True, slots=True)
class RegimeState:
    """The detector's answer for one symbol after one bar.

    ``raw`` is the filter's most likely regime on this bar (before hysteresis), ``probability``
    the filter's probability of the reported ``regime`` (1 when ``forced`` by an outside
    signal, whose ``reason`` then names it)."""

    symbol: str
    ts: datetime
    regime: Regime
    raw: Regime
    probability: float
    bars_in_regime: int
    changed: bool
    reason: str
    features: Features | None
    forced: bool = False

    @property
    def trend_strength(self) -> float:
        """|trend_t|, 0 while warming up (a sortable strength for scanners)."""
        return 0.0 if self.features is None else abs(self.features.trend_t)


@dataclass(slots=True)
class _SymbolState:
    tracker: FeatureTracker
    probs: list[float]
    confirm_bars: int
    calm_abs: float = 0.0  # mean |log return| of the calm regimes
    normal_volume: float | None = None  # mean log1p(volume) of the calm, trending regimes
    levels_set: bool = False
    regime: Regime = Regime.UNKNOWN
    bars_in_regime: int = 0
    candidate: Regime = Regime.UNKNOWN
    candidate_bars: int = 0
    forced_until: datetime | None = None
    forced_reason: str = ""


class RegimeDetector:
    """Classifies every symbol it is fed; one instance serves many symbols."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        model = self.config.model
        stay = 1.0 - 1.0 / model.mean_dwell
        self._stay = stay
        # Moving to any one other regime; the chance of leaving is split evenly.
        self._move = (1.0 - stay) / (len(KNOWN_REGIMES) - 1)
        self._symbols: dict[str, _SymbolState] = {}

    def regime(self, symbol: str) -> Regime:
        """The current regime of `symbol` (``unknown`` before its first bars)."""
        known = self._symbols.get(symbol)
        return Regime.UNKNOWN if known is None else known.regime

    def force_high_vol(self, symbol: str, until: datetime, reason: str) -> None:
        """Report `symbol` as ``high_vol`` for bars that open before `until` (a news shock)."""
        entry = self._entry(symbol)
        if entry.forced_until is None or until > entry.forced_until:
            entry.forced_until, entry.forced_reason = until, reason

    def confirm_bars(self, symbol: str) -> int:
        """Bars a new regime of `symbol` must lead before it is reported."""
        return self._entry(symbol).confirm_bars

    def tighten(self, symbol: str, *, factor: int = 2, cap: int = _TIGHTEN_CAP) -> int:
        """Demand `factor` times more confirmation before `symbol` changes regime, up to `cap`
        times the configured value; returns the new requirement. The feedback loop calls this
        when regime-driven changes did not pay: the regime signal is then trusted less."""
        entry = self._entry(symbol)
        entry.confirm_bars = min(entry.confirm_bars * factor, self.config.confirm_bars * cap)
        return entry.confirm_bars

    def restore_confirm_bars(self, symbol: str, bars: int) -> None:
        """Set the confirmation `symbol` needs (a tuned value saved before a restart), kept
        within 1 and the `tighten` cap."""
        cap = self.config.confirm_bars * _TIGHTEN_CAP
        self._entry(symbol).confirm_bars = max(1, min(int(bars), cap))

    def update(self, bar: Bar) -> RegimeState:
        """Add one closed bar of `bar.symbol` and return the regime after it."""
        entry = self._entry(bar.symbol)
        measured = entry.tracker.update(
            float(bar.high), float(bar.low), float(bar.close), float(bar.volume)
        )
        features: Features | None = None
        if measured is None:
            raw, why = Regime.UNKNOWN, "warming up"
        else:
            features, obs = measured
            raw = self._filter(entry, obs)
            why = _explain(raw, features)
        forced = entry.forced_until is not None and bar.ts < entry.forced_until
        if forced:
            raw, why = Regime.HIGH_VOL, entry.forced_reason
        previous = entry.regime
        self._advance(entry, raw, immediate=forced or previous is Regime.UNKNOWN)
        reason = why if entry.regime is raw else f"holding {entry.regime.value}; now {why}"
        # A forced regime is certain by rule; `reason` says who forced it.
        probability = 1.0 if forced else self._probability(entry)
        return RegimeState(
            bar.symbol,
            bar.ts,
            entry.regime,
            raw,
            probability,
            entry.bars_in_regime,
            entry.regime is not previous,
            reason,
            features,
            forced,
        )

    def _filter(self, entry: _SymbolState, obs: Observation) -> Regime:
        """One forward step, then move the normal levels toward this bar's evidence."""
        if not entry.levels_set:
            self._fit_levels(entry, obs)
        weights = self._forward(entry, obs.ret, obs.log_volume)
        rate = 1.0 / self.config.model.adapt_bars
        calm_abs, normal_volume = self._level_evidence(weights, obs.ret, obs.log_volume)
        entry.calm_abs += rate * (calm_abs - entry.calm_abs)
        if entry.normal_volume is not None and normal_volume is not None:
            entry.normal_volume += rate * (normal_volume - entry.normal_volume)
        return KNOWN_REGIMES[max(range(len(weights)), key=weights.__getitem__)]

    def _forward(self, entry: _SymbolState, ret: float, log_volume: float | None) -> list[float]:
        """Predict with the sticky transitions, weigh by the likelihoods; the probabilities."""
        calm_sigma = entry.calm_abs * _MEAN_ABS_TO_SIGMA
        z = ret / calm_sigma if calm_sigma > 0 else 0.0
        volume = None
        if log_volume is not None and entry.normal_volume is not None:
            volume = log_volume - entry.normal_volume
        # Probabilities stay normalised each step and the transitions leak at least
        # 1/mean_dwell into every regime, so plain (not log) arithmetic cannot underflow.
        stay, move = self._stay, self._move
        predicted = [stay * p + move * (1.0 - p) for p in entry.probs]
        likelihoods = self.config.model.log_likelihoods(z, volume)
        top = max(likelihoods)
        posterior = [p * math.exp(ll - top) for p, ll in zip(predicted, likelihoods, strict=True)]
        norm = sum(posterior)
        entry.probs = [p / norm for p in posterior]
        return entry.probs

    def _level_evidence(
        self, weights: list[float], ret: float, log_volume: float | None
    ) -> tuple[float, float | None]:
        """What one bar says the calm |return| and the normal log volume are, weighing each
        regime's reading by its probability."""
        model = self.config.model
        calm_abs = sum(w * abs(ret) / s for w, s in zip(weights, model.sigma_scales, strict=True))
        if log_volume is None:
            return calm_abs, None
        offsets = model.volume_offsets
        return calm_abs, sum(w * (log_volume - o) for w, o in zip(weights, offsets, strict=True))

    def _fit_levels(self, entry: _SymbolState, obs: Observation) -> None:
        """Estimate the normal levels from the warm-up history before the first live step.

        Plain medians are wrong when the warm-up window is mostly one unusual regime (a
        volatile start would make volatility "normal" and everything after look quiet), so a
        few expectation-maximisation rounds run the filter over the window and re-estimate the
        levels from the regime probabilities, as the filter then keeps doing bar by bar."""
        entry.calm_abs = obs.base_sigma / _MEAN_ABS_TO_SIGMA
        entry.normal_volume = obs.base_log_volume
        entry.levels_set = True
        rets, log_volumes = entry.tracker.history()
        # The volume history starts one bar earlier (the first bar has no return).
        volumes: list[float | None] = (
            list(log_volumes[-len(rets) :]) if obs.log_volume is not None else [None] * len(rets)
        )
        start = entry.probs
        for _ in range(_FIT_ROUNDS):
            entry.probs = start
            abs_total, volume_total = 0.0, 0.0
            for ret, log_volume in zip(rets, volumes, strict=True):
                weights = self._forward(entry, ret, log_volume)
                calm_abs, normal_volume = self._level_evidence(weights, ret, log_volume)
                abs_total += calm_abs
                volume_total += normal_volume or 0.0
            entry.calm_abs = abs_total / len(rets)
            if entry.normal_volume is not None:
                entry.normal_volume = volume_total / len(rets)

    def _probability(self, entry: _SymbolState) -> float:
        if entry.regime is Regime.UNKNOWN:
            return 0.0
        return entry.probs[KNOWN_REGIMES.index(entry.regime)]

    def _entry(self, symbol: str) -> _SymbolState:
        entry = self._symbols.get(symbol)
        if entry is None:
            uniform = [1.0 / len(KNOWN_REGIMES)] * len(KNOWN_REGIMES)
            tracker = FeatureTracker(self.config.features)
            entry = self._symbols[symbol] = _SymbolState(tracker, uniform, self.config.confirm_bars)
        return entry

    def _advance(self, entry: _SymbolState, raw: Regime, *, immediate: bool) -> None:
        cfg = self.config
        entry.bars_in_regime += 1
        if raw is entry.regime:
            entry.candidate, entry.candidate_bars = raw, 0
            return
        if raw is entry.candidate:
            entry.candidate_bars += 1
        else:
            entry.candidate, entry.candidate_bars = raw, 1
        settled = (
            entry.candidate_bars >= entry.confirm_bars and entry.bars_in_regime > cfg.min_dwell
        )
        if immediate or settled:
            entry.regime, entry.bars_in_regime, entry.candidate_bars = raw, 1, 0


def _explain(regime: Regime, f: Features) -> str:
    """The facts behind a regime, in the terms a trader uses."""
    volume = "" if f.volume_ratio is None else f", volume {f.volume_ratio:.2f}x normal"
    facts = (
        f"drift t={f.trend_t:+.1f}, efficiency {f.efficiency:.2f}, "
        f"volatility {f.vol_ratio:.2f}x normal{volume}"
    )
    return f"{regime.value}: {facts}"


def detect_frame(
    bars: pd.DataFrame, *, symbol: str = "SYM", config: DetectorConfig | None = None
) -> list[RegimeState]:
    """Run a fresh detector over a bar frame (index ``ts``; high, low, close, volume), bar by
    bar exactly as live would; one state per bar."""
    detector = RegimeDetector(config)
    return [detector.update(bar) for bar in frame_bars(bars, symbol)]


def frame_bars(bars: pd.DataFrame, symbol: str) -> Iterator[Bar]:
    """The rows of a bar frame as domain `Bar`s (exact Decimal prices via repr)."""
    index = pd.DatetimeIndex(bars.index)
    columns = [bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")]
    volume = bars["volume"].to_numpy(dtype=np.float64)
    for i, ts in enumerate(index):
        o, h, lo, c = (Decimal(repr(float(col[i]))) for col in columns)
        yield Bar(symbol, ts.to_pydatetime(), o, h, lo, c, Decimal(repr(float(volume[i]))))


def confusion_matrix(
    truth: Iterable[str], predicted: Iterable[str], labels: Iterable[str] = KNOWN_REGIMES
) -> pd.DataFrame:
    """Counts of (true label, predicted label); rows are truth, columns predictions.

    Predictions outside `labels` (``unknown``) get their own column so nothing is hidden."""
    names = [str(x) for x in labels]
    frame = pd.crosstab(
        pd.Series(list(truth), name="truth"), pd.Series(list(predicted), name="predicted")
    )
    columns = names + sorted(set(frame.columns) - set(names))
    return frame.reindex(index=names, columns=columns, fill_value=0)


def balanced_accuracy(matrix: pd.DataFrame) -> float:
    """Mean per-class recall over the rows of a confusion matrix that have any samples."""
    recalls: list[float] = []
    for label in matrix.index:
        total = float(matrix.loc[label].sum())
        if total > 0:
            hit = float(matrix.loc[label, label]) if label in matrix.columns else 0.0
            recalls.append(hit / total)
    return float(np.mean(recalls)) if recalls else 0.0
