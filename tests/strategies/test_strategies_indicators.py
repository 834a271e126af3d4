"""Rolling extremes in O(n) give the values of a max/min over each window, the compiled
rolling deviation numpy's `std` of each window to the bit; `choose` keeps the first rule that
holds."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from sigma.strategies.indicators import rolling_max, rolling_min, rolling_std, warm_up
from sigma.strategies.vectorised import choose


@pytest.mark.parametrize("seed", range(6))
def test_rolling_extremes_are_the_window_max_and_min(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, p = int(rng.integers(0, 300)), int(rng.integers(1, 40))
        x = np.round(rng.normal(0, 3, n))  # whole numbers: many equal values
        if n and seed % 2:
            x[rng.integers(0, n, 3)] = np.nan  # a NaN in the window makes it NaN
        for fn, reduce in ((rolling_max, np.max), (rolling_min, np.min)):
            want = np.full(n, np.nan)
            if n >= p:
                want[p - 1 :] = reduce(sliding_window_view(x, p), axis=1)
            assert np.array_equal(fn(x, p), want, equal_nan=True)
    with pytest.raises(ValueError, match="period"):
        rolling_max(np.ones(3), 0)
    warm_up()


@pytest.mark.parametrize("seed", range(4))
def test_rolling_std_is_numpys_std_of_each_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        n, p = int(rng.integers(0, 400)), int(rng.integers(1, 200))
        x = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
        if n and seed % 2:
            x[rng.integers(0, n)] = np.nan
        want = np.full(n, np.nan)
        if n >= p:
            want[p - 1 :] = sliding_window_view(x, p).std(axis=1)
        assert np.array_equal(rolling_std(x, p), want, equal_nan=True)


def test_choose_keeps_the_first_rule_that_holds() -> None:
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    assert np.array_equal(
        choose((a, 1.0), (b, -1.0), length=4), [1.0, 1.0, -1.0, np.nan], equal_nan=True
    )
