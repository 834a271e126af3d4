"""Shared by the ML tests: a market with an edge to learn, a model with a fixed call, and a
validation verdict given by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def trending_bars(n: int = 900, seed: int = 0, freq: str = "1h") -> pd.DataFrame:
    """Strongly autocorrelated returns: the last move's sign predicts the next, so a model
    has an edge."""
    rng = np.random.default_rng(seed)
    returns = np.zeros(n)
    for i in range(1, n):
        returns[i] = 0.8 * returns[i - 1] + rng.normal(0, 0.01)
    close = 100 * np.exp(np.cumsum(returns))
    index = pd.date_range("2026-01-01", periods=n, freq=freq, tz="UTC", name="ts")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.uniform(900, 1100, n),
        },
        index=index,
    )


@dataclass(frozen=True)
class FixedModel:
    """A classifier whose P(up) is always `p_up` (picklable, so it can be stored)."""

    p_up: float

    def predict_proba(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.tile([1 - self.p_up, self.p_up], (len(rows), 1))


@dataclass(frozen=True)
class Verdict:
    """A validation outcome given by hand (`ml_validate` computes real ones)."""

    wins: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"beats_ungated": self.wins}


WON, LOST = Verdict(True), Verdict(False)
