"""The kernels' vector operations: 64 orders compared into masks, 32 bars' equity marked
at once, each the same as the scalar loop it replaces."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sigma.strategies.simd import MARK_RUN, mark_run, order_masks


@numba.njit
def _masks(orders: np.ndarray, lo: int) -> tuple[np.uint64, np.uint64]:  # pragma: no cover
    return order_masks(orders, lo)


@numba.njit
def _masks_of_floats(values: np.ndarray) -> tuple[np.uint64, np.uint64]:  # pragma: no cover
    return order_masks(values, 0)  # type: ignore[arg-type]


def test_order_masks_mark_each_crossing_and_each_unsettled_order_of_64() -> None:
    """Bit j: orders lo + j and lo + 1 + j are +1 and -1 (either way round); order lo + 1 + j
    is 0. Every pair of the orders a kernel writes (-1, 0, +1, 2 for none, 4 for equal)."""
    rng = np.random.default_rng(9)
    orders = rng.choice(np.array([-1, 0, 1, 2, 4]), 1_000).astype(np.int64)
    for lo in [0, 1, 63, 64, 500, len(orders) - 65]:
        flips, zeros = _masks(orders, lo)
        before, now = orders[lo : lo + 64], orders[lo + 1 : lo + 65]
        crossed = ((before == 1) & (now == -1)) | ((before == -1) & (now == 1))
        assert int(flips) == sum(1 << j for j in np.flatnonzero(crossed).tolist())
        assert int(zeros) == sum(1 << j for j in np.flatnonzero(now == 0).tolist())
    ones = np.ones(65, dtype=np.int64)
    assert _masks(ones, 0) == (0, 0)
    ones[1::2] = -1
    assert _masks(ones, 0) == (2**64 - 1, 0)
    with pytest.raises(numba.core.errors.TypingError):
        _masks_of_floats(np.ones(65))


@numba.njit
def _marked(
    close: np.ndarray, equity: np.ndarray, at: int, cash: float, held: float
) -> bool:  # pragma: no cover - numba-compiled
    return mark_run(close, equity, at, cash, held)


@numba.njit
def _marked_ints(values: np.ndarray) -> bool:  # pragma: no cover - numba-compiled
    return mark_run(values, values, 0, 1.0, 1.0)  # type: ignore[arg-type]


def test_a_run_of_marks_is_the_scalar_expression_and_flags_a_bar_at_or_below_zero() -> None:
    """`cash + held * close` bar by bar, to the bit (no fused multiply-add), only the 32
    bars from `at` written; the flag is set by a bar at or below zero (-0.0 included), not
    by a NaN, as `e <= 0.0` is."""
    rng = np.random.default_rng(11)
    close = rng.uniform(1, 200, 100)
    for cash, held in [(10_000.0, 0.0), (1e-3, 37.0), (20_000.0, -123.456), (0.1, 1 / 3)]:
        equity = np.full(100, -7.0)
        low = _marked(close, equity, 9, cash, held)
        want = np.array([cash + held * c for c in close[9 : 9 + MARK_RUN].tolist()])
        np.testing.assert_array_equal(equity[9 : 9 + MARK_RUN], want)
        assert (equity[:9] == -7.0).all() and (equity[9 + MARK_RUN :] == -7.0).all()
        assert low == bool((want <= 0.0).any())
    for value, flagged in [(0.0, True), (-0.0, True), (-1e-300, True), (np.nan, False)]:
        prices = np.ones(MARK_RUN)
        prices[17] = value
        assert _marked(prices, np.empty(MARK_RUN), 0, 0.0, 1.0) is flagged
    with pytest.raises(numba.core.errors.TypingError):
        _marked_ints(np.ones(MARK_RUN, dtype=np.int64))
