"""The kernels' bit helpers: the lowest set bit of a mask, and +inf's bits above every finite
double's."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sigma.strategies.bits import INF_BITS, lowest_bit, order_masks


@numba.njit
def _lowest(mask: np.uint64) -> np.uint64:  # pragma: no cover - numba-compiled
    return lowest_bit(mask)


@numba.njit
def _lowest_of_a_float(value: float) -> np.uint64:  # pragma: no cover - numba-compiled
    return lowest_bit(value)  # type: ignore[arg-type]


def test_the_lowest_set_bit_of_every_single_bit_and_of_random_masks() -> None:
    for j in range(64):
        assert _lowest(np.uint64(1 << j)) == j
    rng = np.random.default_rng(7)
    for mask in rng.integers(1, 2**63, 1_000).tolist():
        mask <<= int(rng.integers(0, 8))
        expected = (mask & -mask).bit_length() - 1
        assert _lowest(np.uint64(mask % 2**64)) == expected


def test_lowest_bit_takes_only_uint64_masks() -> None:
    with pytest.raises(numba.core.errors.TypingError):
        _lowest_of_a_float(1.0)


def test_inf_bits_lie_above_every_finite_double_at_or_above_zero() -> None:
    values = np.array([0.0, 5e-324, 1.0, np.finfo(np.float64).max, np.inf, np.nan])
    bits = values.view(np.int64)
    assert list(bits < INF_BITS) == [True, True, True, True, False, False]
    assert (np.array([-0.0, -1.0]).view(np.int64) < 0).all()


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
