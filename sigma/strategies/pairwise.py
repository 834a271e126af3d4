"""numpy's pairwise summation, compiled: the same float as `np.add.reduce`, one window at a
time, for code that must reproduce numpy's window sums exactly without summing every window.
"""

from __future__ import annotations

import numba
import numpy as np

from sigma.strategies.series import FloatArray


@numba.njit(cache=True, inline="always")
def _leaf(x: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - numba-compiled
    # numpy's pairwise_sum for n <= 128: plain below 8, else eight interleaved partial sums.
    res: float
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += x[i]
        return res
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += x[lo + i]
        r1 += x[lo + i + 1]
        r2 += x[lo + i + 2]
        r3 += x[lo + i + 3]
        r4 += x[lo + i + 4]
        r5 += x[lo + i + 5]
        r6 += x[lo + i + 6]
        r7 += x[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[lo + i]
        i += 1
    return res


@numba.njit(cache=True, inline="always")
def pairwise_sum(x: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - numba
    """numpy's pairwise sum of `x[lo : lo + n]` (`np.add.reduce`), operation for operation,
    so the result is the same float. Above 128 values numpy sums each half (cut at a multiple
    of 8) and adds the two; the halving runs here on an explicit stack (numba's cache does
    not keep recursive functions callable from other modules)."""
    if n <= 128:
        return _leaf(x, lo, n)
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    stage = np.empty(64, dtype=np.int64)  # 0: not split, 1: left half running, 2: right
    left = np.empty(64)
    depth = 0
    los[0], ns[0], stage[0] = lo, n, 0
    while True:
        m = ns[depth]
        if m > 128 and stage[depth] == 0:
            half = m // 2 - (m // 2) % 8
            stage[depth] = 1
            depth += 1
            los[depth], ns[depth], stage[depth] = los[depth - 1], half, 0
            continue
        r = _leaf(x, los[depth], m)
        while True:  # hand the finished sum to the halves waiting for it
            depth -= 1
            if depth < 0:
                return r
            if stage[depth] == 1:
                left[depth] = r
                stage[depth] = 2
                m = ns[depth]
                half = m // 2 - (m // 2) % 8
                depth += 1
                los[depth], ns[depth], stage[depth] = los[depth - 1] + half, m - half, 0
                break
            r = left[depth] + r


@numba.njit(cache=True, inline="always")
def window_sum(x: FloatArray, i: int, period: int) -> float:  # pragma: no cover - numba
    """The textbook sum of the `period` values ending at `i`, as `sma` computes it."""
    return 0.0 + pairwise_sum(x, i - period + 1, period)  # type: ignore[no-any-return]


@numba.njit(cache=True, inline="always")
def window_std(x: FloatArray, i: int, period: int, work: FloatArray) -> float:  # pragma: no cover
    """`np.std` of the `period` values ending at `i`, operation for operation (mean, squared
    deviations, their mean, square root); `work` holds at least `period` floats."""
    lo = i - period + 1
    mean = (0.0 + pairwise_sum(x, lo, period)) / period
    for j in range(period):
        d = x[lo + j] - mean
        work[j] = d * d
    return float(np.sqrt((0.0 + pairwise_sum(work, 0, period)) / period))


__all__ = ["pairwise_sum", "window_std", "window_sum"]
