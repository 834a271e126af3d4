"""MLModule auto-tuning: a gradient-boosting model that predicts the sign of the next bars'
return, validated out of sample against a naive baseline, versioned in `ml_models`.

Features at bar t use closes and volumes up to t only; the label is the sign of the return
from t to t + horizon. The test window is the newest part of the history and starts
`horizon` bars after the last training label ends (a purge gap), so no training label overlaps
a test bar. The baseline predicts the training set's majority class. Training is
deterministic for a given seed.

The model does work in trading as an entry gate (`sigma.research.ml_gate`): it vetoes entries
against its call. A version is stored with its validation (`sigma.research.ml_validate`: the
live strategies backtested on the test window with and without the gate) and is made active,
so used by the bot and the simulations, only when its accuracy beats the baseline by
`min_edge` and the gated strategies beat the ungated ones; otherwise no version of the symbol
is active. The `ml_tune` job runs this daily on the recorded bars.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from sigma.store import ml_models
from sigma.store.handles import Session
from sigma.store.models import MLModel
from sigma.strategies.indicators import rolling_max, rolling_min, rolling_std, sma
from sigma.strategies.series import FloatArray

if TYPE_CHECKING:
    from sklearn.ensemble import GradientBoostingClassifier

# scikit-learn and joblib are imported where a model is trained or loaded: importing them
# takes seconds, and every `sigma` command (a backtest too) imports this module via the app.

MODEL_NAME = "next_return_sign"

FEATURES = (
    "ret_1",
    "ret_3",
    "ret_10",
    "vol_10",
    "vol_30",
    "sma_20_gap",
    "sma_50_gap",
    "rsi_14",
    "volume_z",
)


def _lagged_diff(values: FloatArray, lag: int) -> FloatArray:
    out = np.full(len(values), np.nan)
    out[lag:] = values[lag:] - values[:-lag]
    return out


def _smoothed(values: FloatArray, alpha: float) -> FloatArray:
    """pandas' ``ewm(alpha=alpha, adjust=False).mean()`` of a difference (NaN first): the
    recursion starts at the second value."""
    out = np.full(len(values), np.nan)
    if len(values) > 1:
        acc = float(values[1])
        out[1] = acc
        for t, x in enumerate(values[2:].tolist(), start=2):
            acc = (1 - alpha) * acc + alpha * x
            out[t] = acc
    return out


def _sample_std(values: FloatArray, period: int) -> FloatArray:
    # Of the last `period` values with n - 1 degrees of freedom (pandas' rolling std).
    scaled: FloatArray = rolling_std(values, period) * np.sqrt(period / (period - 1))
    return scaled


def feature_matrix(close: FloatArray, volume: FloatArray) -> FloatArray:
    """The `FEATURES` of each bar (one row per bar, oldest first), each computed from that
    bar and earlier ones only. Plain numpy: the live gate computes them on each entry
    decision, where pandas' per-operation overhead cost several times as much."""
    log_close = np.log(close)
    log_ret = _lagged_diff(log_close, 1)
    delta = _lagged_diff(close, 1)
    gain = _smoothed(np.maximum(delta, 0.0), 1 / 14)
    loss = _smoothed(np.maximum(-delta, 0.0), 1 / 14)
    volume_std = _sample_std(volume, 30)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 1 - 1 / (1 + gain / np.where(loss == 0, np.nan, loss))
        # A window of equal volumes has no spread: no z-score (not a rounding error's).
        flat = rolling_max(volume, 30) == rolling_min(volume, 30)
        volume_z = (volume - sma(volume, 30)) / np.where(flat, np.nan, volume_std)
    columns = {
        "ret_1": log_ret,
        "ret_3": _lagged_diff(log_close, 3),
        "ret_10": _lagged_diff(log_close, 10),
        "vol_10": _sample_std(log_ret, 10),
        "vol_30": _sample_std(log_ret, 30),
        "sma_20_gap": close / sma(close, 20) - 1,
        "sma_50_gap": close / sma(close, 50) - 1,
        # No losses to compare with (or none yet) reads as all gains.
        "rsi_14": np.where(np.isnan(rsi), 1.0, rsi),
        "volume_z": volume_z,
    }
    return np.column_stack([columns[name] for name in FEATURES])


def _arrays(bars: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    return bars["close"].to_numpy(dtype=np.float64), bars["volume"].to_numpy(dtype=np.float64)


def features(bars: pd.DataFrame) -> pd.DataFrame:
    """`feature_matrix` of a bar frame, on its index."""
    return pd.DataFrame(feature_matrix(*_arrays(bars)), index=bars.index, columns=list(FEATURES))


def labels(bars: pd.DataFrame, horizon: int = 1) -> pd.Series:
    """1 when the close `horizon` bars ahead is higher, else 0; NaN where it is unknown."""
    close = bars["close"].astype(float)
    ahead = close.shift(-horizon)
    return (ahead > close).astype(float).where(ahead.notna())


@dataclass(frozen=True, slots=True)
class TuneConfig:
    """Model and validation settings (stored with each version)."""

    horizon: int = 1
    test_fraction: float = 0.3
    n_estimators: int = 100
    max_depth: int = 2
    learning_rate: float = 0.05
    seed: int = 0
    min_edge: float = 0.01


@dataclass(frozen=True, slots=True)
class TuneResult:
    """A trained model and its honest out-of-sample report."""

    model: GradientBoostingClassifier
    config: TuneConfig
    metrics: dict[str, Any]

    @property
    def beats_baseline(self) -> bool:
        """True when out-of-sample accuracy exceeds the baseline by at least `min_edge`."""
        return bool(self.metrics["edge"] >= self.config.min_edge)


def train(bars: pd.DataFrame, config: TuneConfig | None = None) -> TuneResult:
    """Fit on the older part of `bars`, score on the newest part (see the module docstring)."""
    cfg = config or TuneConfig()
    if not 0 < cfg.test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {cfg.test_fraction}")
    x = features(bars)
    y = labels(bars, cfg.horizon)
    usable = x.notna().all(axis=1) & y.notna()
    x, y = x[usable], y[usable].astype(int)
    n_test = int(len(x) * cfg.test_fraction)
    n_train = len(x) - n_test - cfg.horizon
    if n_train < 50 or n_test < 20:
        raise ValueError(f"{len(bars)} bars are too few to train and validate a model")
    x_train, y_train = x.iloc[:n_train], y.iloc[:n_train]
    x_test, y_test = x.iloc[n_train + cfg.horizon :], y.iloc[n_train + cfg.horizon :]
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(
        n_estimators=cfg.n_estimators,
        max_depth=cfg.max_depth,
        learning_rate=cfg.learning_rate,
        random_state=cfg.seed,
    )
    model.fit(x_train.to_numpy(), y_train.to_numpy())
    predicted = model.predict(x_test.to_numpy())
    accuracy = float(np.mean(predicted == y_test.to_numpy()))
    majority = int(y_train.mean() >= 0.5)
    baseline = float(np.mean(y_test.to_numpy() == majority))
    close = bars["close"].astype(float)
    forward = (close.shift(-cfg.horizon) / close - 1).reindex(x_test.index)
    long_when_up = float(forward[predicted == 1].sum())
    metrics: dict[str, Any] = {
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "baseline": f"always {'up' if majority else 'down'} (training majority)",
        "edge": accuracy - baseline,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "train_end": x_train.index[-1].isoformat(),
        "test_start": x_test.index[0].isoformat(),
        "filtered_return_pct": 100.0 * long_when_up,
        "buy_hold_return_pct": 100.0 * float(forward.sum()),
    }
    return TuneResult(model, cfg, metrics)


def predict_up(model: Any, bars: pd.DataFrame) -> float | None:
    """Probability that the newest bar is followed by a rise (None while features warm up)."""
    return p_up_of(model, *_arrays(bars))


def p_up_of(model: Any, close: FloatArray, volume: FloatArray) -> float | None:
    """`predict_up` on the bars' closes and volumes (oldest first)."""
    row = feature_matrix(close, volume)[-1:]
    if np.isnan(row).any():
        return None
    return float(model.predict_proba(row)[0, 1])


def _dump(model: GradientBoostingClassifier) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


class Validation(Protocol):
    """What decides a version's live use beyond its accuracy (`ml_validate.GateComparison`)."""

    @property
    def wins(self) -> bool:
        """True when using the model did better than not using it, out of sample."""
        ...

    def as_json(self) -> dict[str, Any]:
        """The figures, stored in the version's metrics."""
        ...


def save_model(
    session: Session,
    symbol: str,
    result: TuneResult,
    validation: Validation,
    name: str = MODEL_NAME,
) -> MLModel:
    """Store `result` and its `validation` (under ``metrics["gate"]``) as the next version.
    It becomes the active one only if it beats the baseline and its validation wins; else
    no version of `symbol` stays active (an older one was judged on an older window). A
    result equal to the newest version's - same settings, same data window and figures, as
    training again on the same bars gives - is that version, not a new one."""
    newest = ml_models.newest_version(session, name, symbol)
    config = asdict(result.config)
    metrics = {**result.metrics, "gate": validation.as_json()}
    if newest is not None and newest.config == config and newest.metrics == metrics:
        return newest
    return ml_models.add_version(
        session,
        name,
        symbol,
        1 if newest is None else newest.version + 1,
        config=config,
        metrics=metrics,
        model=_dump(result.model),
        active=result.beats_baseline and validation.wins,
    )


def load_active(
    session: Session, symbol: str, name: str = MODEL_NAME
) -> tuple[MLModel, Any] | None:
    """The active version's row and its model, or None when no version won its validation.

    Models are unpickled: the `ml_models` table must only be writable by SIGMA itself."""
    row = ml_models.active_version(session, name, symbol)
    if row is None:
        return None
    import joblib

    return row, joblib.load(io.BytesIO(row.model))


def list_versions(
    session: Session, symbol: str | None = None, limit: int = 50, name: str = MODEL_NAME
) -> list[MLModel]:
    """Stored versions, newest first per symbol (all symbols when `symbol` is None)."""
    return ml_models.versions(session, name, symbol, limit)


__all__ = [
    "FEATURES",
    "MODEL_NAME",
    "TuneConfig",
    "TuneResult",
    "Validation",
    "feature_matrix",
    "features",
    "labels",
    "list_versions",
    "load_active",
    "p_up_of",
    "predict_up",
    "save_model",
    "train",
]
