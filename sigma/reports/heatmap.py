"""An inline SVG heatmap of a score over two parameters, for optimisation reports.

Each cell is the best score of the trials whose two values fall in it (the other parameters
free); a cell whose trials have no score is grey, one without trials is left blank. Values of
a grid search are cells of their own; a continuous search is binned. Self-contained like
every report chart: no scripts, every label escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigma.reports.page import esc

MAX_CELLS = 12
"""Cells per axis when a parameter has more distinct values than this (they are binned)."""

_CELL = 40
_LEFT = 90
_TOP = 30
_BOTTOM = 46
_NO_SCORE = "#d1d5db"


@dataclass(frozen=True, slots=True)
class Point:
    """One trial: its two parameter values and its score (None: excluded)."""

    x: float
    y: float
    score: float | None


def _edges(values: Sequence[float]) -> list[float]:
    """Cell boundaries of an axis: one cell per distinct value, or `MAX_CELLS` even bins."""
    distinct = sorted(set(values))
    if len(distinct) <= MAX_CELLS:
        return distinct
    lo, hi = distinct[0], distinct[-1]
    return [lo + (hi - lo) * i / MAX_CELLS for i in range(MAX_CELLS)]


def _cell(value: float, edges: Sequence[float]) -> int:
    # The last edge at or below the value: exact for distinct values, a bin otherwise.
    return max(i for i, edge in enumerate(edges) if edge <= value)


def _label(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.3g}"


def _colour(score: float, lo: float, hi: float) -> str:
    """Red (worst) through white to green (best)."""
    t = 0.5 if hi == lo else (score - lo) / (hi - lo)
    if t < 0.5:
        k = t / 0.5
        return f"rgb(220,{int(38 + k * 217)},{int(38 + k * 217)})"
    k = (t - 0.5) / 0.5
    return f"rgb({int(255 - k * 233)},{int(255 - k * 92)},{int(255 - k * 181)})"


def heatmap_svg(points: Sequence[Point], x_name: str, y_name: str, *, title: str) -> str:
    """The heatmap of `points` over `x_name` (columns) and `y_name` (rows) as an SVG element."""
    if not points:
        return f'<p class="meta">{esc(title)}: no trials</p>'
    xs, ys = _edges([p.x for p in points]), _edges([p.y for p in points])
    best: dict[tuple[int, int], float | None] = {}
    for p in points:
        key = (_cell(p.x, xs), _cell(p.y, ys))
        current = best.get(key)
        if key not in best or (p.score is not None and (current is None or p.score > current)):
            best[key] = p.score
    scores = [s for s in best.values() if s is not None]
    lo, hi = (min(scores), max(scores)) if scores else (0.0, 0.0)
    width = _LEFT + _CELL * len(xs) + 16
    height = _TOP + _CELL * len(ys) + _BOTTOM
    parts: list[str] = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{esc(title)}">',
        f'<text x="4" y="18" font-size="13" font-weight="600">{esc(title)}</text>',
    ]
    for (i, j), score in sorted(best.items()):
        x, y = _LEFT + i * _CELL, _TOP + (len(ys) - 1 - j) * _CELL
        fill = _NO_SCORE if score is None else _colour(score, lo, hi)
        tip = f"{x_name}={_label(xs[i])}, {y_name}={_label(ys[j])}: " + (
            "no score" if score is None else f"{score:.3f}"
        )
        parts.append(
            f'<rect x="{x}" y="{y}" width="{_CELL}" height="{_CELL}" fill="{fill}" '
            f'stroke="#fff"><title>{esc(tip)}</title></rect>'
        )
        if score is not None:
            parts.append(
                f'<text x="{x + _CELL / 2}" y="{y + _CELL / 2 + 4}" font-size="10" '
                f'text-anchor="middle">{score:.2f}</text>'
            )
    axis_y = _TOP + _CELL * len(ys)
    for i, edge in enumerate(xs):
        parts.append(
            f'<text x="{_LEFT + i * _CELL + _CELL / 2}" y="{axis_y + 14}" font-size="10" '
            f'text-anchor="middle">{esc(_label(edge))}</text>'
        )
    for j, edge in enumerate(ys):
        parts.append(
            f'<text x="{_LEFT - 6}" y="{_TOP + (len(ys) - 1 - j) * _CELL + _CELL / 2 + 4}" '
            f'font-size="10" text-anchor="end">{esc(_label(edge))}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + _CELL * len(xs) / 2}" y="{axis_y + 34}" font-size="12" '
        f'text-anchor="middle">{esc(x_name)}</text>'
        f'<text x="12" y="{_TOP + _CELL * len(ys) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {_TOP + _CELL * len(ys) / 2})">{esc(y_name)}</text></svg>'
    )
    return "".join(parts)
