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
    keep = np.isfinite(xs)
    keep &= np.isfinite(ys)
    if keep.all():  # the usual case: no copies (16 MB at a million points)
        return xs, ys
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
    # The full buckets as a view of `ys`; a shorter last one on its own (no padded copy).
    full = n // size
    body = ys[: full * size].reshape(full, size)
    base = np.arange(full) * size
    lo, hi = base + body.argmin(axis=1), base + body.argmax(axis=1)
    if full * size < n:
        tail = ys[full * size :]
        lo = np.append(lo, full * size + tail.argmin())
        hi = np.append(hi, full * size + tail.argmax())
    keep = np.unique(np.concatenate(([0, n - 1], lo, hi)))
    return xs[keep], ys[keep]
