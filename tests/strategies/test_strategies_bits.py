"""The kernels' bit helpers: the lowest set bit of a mask, and +inf's bits above every finite
double's."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from sigma.strategies.bits import INF_BITS, lowest_bit


@numba.njit
def _lowest(mask: np.uint64) -> np.uint64:  # pragma: no cover - numba-compiled
    return lowest_bit(mask)


@numba.njit
def _lowest_of_a_float(value: float) -> np.uint64:  # pragma: no cover - numba-compiled
    return lowest_bit(value)  # type: ignore[arg-type]


def test_the_lowest_set_bit_of_every_single_bit_of_none_and_of_random_masks() -> None:
    for j in range(64):
        assert _lowest(np.uint64(1 << j)) == j
    assert _lowest(np.uint64(0)) == 64  # none set
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
