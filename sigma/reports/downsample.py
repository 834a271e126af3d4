"""Shrinking long series for drawing without hiding their extremes.

A chart is at most a couple of thousand pixels wide, so a million-bar series is reduced to
the minimum and maximum of each pixel-sized bucket (in their original order). Plain striding
would drop the spikes and the deepest drawdown, which are exactly what a reader looks for.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def finite_xy(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Both arrays as float64 with every point where either is NaN/inf removed."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape:
        raise ValueError(f"x and y differ in length: {xs.shape} vs {ys.shape}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    return xs[keep], ys[keep]


def minmax_decimate(
    x: npt.ArrayLike, y: npt.ArrayLike, max_points: int = 1500
) -> tuple[FloatArray, FloatArray]:
    """At most `max_points` points keeping each bucket's min and max plus both ends.

    Non-finite points are dropped first (a chart draws across the gap). Order is kept, so
    the result is still a valid polyline.
    """
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    xs, ys = finite_xy(x, y)
    n = len(ys)
    if n <= max_points:
        return xs, ys
    # Two points per bucket, two more reserved for the first and last point.
    buckets = (max_points - 2) // 2
    size = -(-n // buckets)  # ceiling division
    rows = -(-n // size)
    # Edge padding repeats the last value, which cannot change any bucket's min or max.
    padded = np.pad(ys, (0, rows * size - n), mode="edge").reshape(rows, size)
    base = np.arange(rows) * size
    lo = np.minimum(base + padded.argmin(axis=1), n - 1)
    hi = np.minimum(base + padded.argmax(axis=1), n - 1)
    keep = np.unique(np.concatenate(([0, n - 1], lo, hi)))
    return xs[keep], ys[keep]
