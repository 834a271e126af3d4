"""Inline SVG line/area charts with axes, date/value ticks, markers and a legend.

Pure Python string building so reports stay self-contained (no JavaScript, no CDN) and open
offline. Every series is min/max-decimated to about one point per pixel column first, which
keeps a million-bar chart to a few tens of kilobytes. All text and attribute values are
escaped, since labels and titles can come from user-named strategies.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.reports.axes import Tick, time_ticks, value_ticks
from sigma.reports.downsample import FloatArray, minmax_decimate

MarkerShape = Literal["up", "down", "circle"]

_MARGIN_LEFT = 72
_MARGIN_RIGHT = 16
_MARGIN_BOTTOM = 26
_TITLE_HEIGHT = 24
_LEGEND_ROW = 18
_TRIANGLE = 6.0  # half-height of a triangle marker, in pixels


@dataclass(frozen=True, slots=True)
class Line:
    """One series: `x` in epoch seconds on a time axis (see `time_x`), `y` the values.

    With `fill` the area between the line and the chart's baseline is shaded.
    """

    x: npt.ArrayLike
    y: npt.ArrayLike
    color: str = "#2563eb"
    label: str = ""
    fill: bool = False
    width: float = 1.5


@dataclass(frozen=True, slots=True)
class Marker:
    """A point symbol drawn over the lines; `title` becomes its hover tooltip."""

    x: float
    y: float
    shape: MarkerShape = "circle"
    color: str = "#111827"
    title: str = ""
    css_class: str = ""


def time_x(values: pd.Index | Sequence[datetime]) -> FloatArray:
    """Epoch seconds (float) for timestamps; naive ones are taken to be UTC.

    The index's nanoseconds over 10^9, as pandas divides the difference from the epoch by a
    second (in ns, whatever the index's own resolution): one array, where that difference as
    a TimedeltaIndex was a second one (8 MB each at a million bars).
    """
    index = pd.DatetimeIndex(values if isinstance(values, pd.Index) else list(values))
    if index.tz is not None:
        index = index.tz_convert("UTC")
    if index.unit != "ns":  # (as_unit copies even when the unit is already ns)
        index = index.as_unit("ns")
    seconds = index.asi8.astype(np.float64)
    np.divide(seconds, 10**9, out=seconds)
    return seconds


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    # One decimal is sub-pixel precision; more only bloats the file.
    return f"{value:.1f}"


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps data coordinates to pixels inside the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    left: float
    top: float
    width: float
    height: float

    def px(self, x: FloatArray | float) -> FloatArray | float:
        return self.left + (x - self.x0) / (self.x1 - self.x0) * self.width

    def py(self, y: FloatArray | float) -> FloatArray | float:
        return self.top + (self.y1 - y) / (self.y1 - self.y0) * self.height


def _padded_range(lo: float, hi: float, pad: float = 0.05) -> tuple[float, float]:
    if hi > lo:
        margin = (hi - lo) * pad
        return lo - margin, hi + margin
    spread = abs(lo) * 0.01 or 1.0  # flat series: give it a band so it is drawn mid-height
    return lo - spread, hi + spread


def _legend_rows(labels: Sequence[str], width: float) -> list[list[tuple[float, int]]]:
    """Greedy left-to-right layout of legend entries: rows of (x offset, entry index)."""
    rows: list[list[tuple[float, int]]] = [[]]
    cursor = 0.0
    for i, label in enumerate(labels):
        item = 26 + 6.5 * len(label)  # swatch + estimated text width at 11px
        if rows[-1] and cursor + item > width:
            rows.append([])
            cursor = 0.0
        rows[-1].append((cursor, i))
        cursor += item
    return rows


def _marker_svg(marker: Marker, frame: _Frame) -> str:
    x, y = float(frame.px(marker.x)), float(frame.py(marker.y))
    cls = _attr(f"mk {marker.css_class}".strip())
    tip = f"<title>{html.escape(marker.title)}</title>" if marker.title else ""
    color = _attr(marker.color)
    if marker.shape == "circle":
        return (
            f'<circle class="{cls}" cx="{_num(x)}" cy="{_num(y)}" r="4" fill="#fff" '
            f'stroke="{color}" stroke-width="1.5">{tip}</circle>'
        )
    h = _TRIANGLE if marker.shape == "up" else -_TRIANGLE
    d = (
        f"M{_num(x)},{_num(y - h)}L{_num(x + 5)},{_num(y + h * 0.7)}"
        f"L{_num(x - 5)},{_num(y + h * 0.7)}Z"
    )
    return f'<path class="{cls}" d="{d}" fill="{color}">{tip}</path>'


def _axes_svg(
    frame: _Frame, x_ticks: list[Tick], y_ticks: list[Tick], chart_width: float
) -> list[str]:
    parts = ['<g class="axes" font-size="11" fill="#4b5563">']
    right = frame.left + frame.width
    bottom = frame.top + frame.height
    for value, label in y_ticks:
        y = _num(float(frame.py(value)))
        parts.append(
            f'<line x1="{_num(frame.left)}" x2="{_num(right)}" y1="{y}" y2="{y}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{_num(frame.left - 6)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{html.escape(label)}</text>'
        )
    for value, label in x_ticks:  # the tick helpers only return positions inside the range
        x = float(frame.px(value))
        anchor = "start" if x < frame.left + 30 else "end" if x > chart_width - 40 else "middle"
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(bottom)}" y2="{_num(bottom + 4)}" '
            'stroke="#9ca3af"/>'
            f'<text x="{_num(x)}" y="{_num(bottom + 16)}" text-anchor="{anchor}">'
            f"{html.escape(label)}</text>"
        )
    parts.append(
        f'<rect x="{_num(frame.left)}" y="{_num(frame.top)}" width="{_num(frame.width)}" '
        f'height="{_num(frame.height)}" fill="none" stroke="#d1d5db"/></g>'
    )
    return parts


def _line_svg(line: Line, xs: FloatArray, ys: FloatArray, frame: _Frame, base: float) -> str:
    px = np.asarray(frame.px(xs))
    py = np.asarray(frame.py(ys))
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    color = _attr(line.color)
    parts = []
    if line.fill:
        y_base = _num(float(frame.py(base)))
        area = f"{_num(px[0])},{y_base} {points} {_num(px[-1])},{y_base}"
        parts.append(f'<polygon points="{area}" fill="{color}" fill-opacity="0.25" stroke="none"/>')
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{color}" '
        f'stroke-width="{line.width:g}" stroke-linejoin="round"/>'
    )
    return "".join(parts)


def line_chart(
    lines: Sequence[Line],
    *,
    markers: Sequence[Marker] = (),
    title: str = "",
    width: int = 960,
    height: int = 280,
    time_axis: bool = True,
    y_format: Callable[[float], str] | None = None,
    baseline: float | None = None,
    max_points: int = 1500,
    legend: bool | None = None,
    standalone: bool = False,
) -> str:
    """Render lines (optionally filled to `baseline`) and markers as one ``<svg>`` element.

    `time_axis` labels x ticks as UTC dates (x in epoch seconds); otherwise as numbers.
    `legend` defaults to on when more than one line is labelled. `standalone` adds the SVG
    namespace needed in a separate ``.svg`` file (inline HTML5 SVG does without it, which
    keeps reports free of any URL).
    """
    series = [(line, *minmax_decimate(line.x, line.y, max_points)) for line in lines]
    series = [(line, xs, ys) for line, xs, ys in series if len(xs)]
    show_legend = legend if legend is not None else sum(bool(s[0].label) for s in series) > 1
    plot_width = width - _MARGIN_LEFT - _MARGIN_RIGHT
    legend_rows = _legend_rows([s[0].label for s in series], plot_width) if show_legend else []
    top = _TITLE_HEIGHT + _LEGEND_ROW * len(legend_rows) + 6
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    parts = [
        f'<svg{ns} class="chart" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{_attr(title)}" '
        'font-family="system-ui,-apple-system,Segoe UI,Roboto,sans-serif">',
        f"<title>{html.escape(title)}</title>" if title else "",
        f'<text x="{_MARGIN_LEFT}" y="16" font-size="13" font-weight="600" fill="#111827">'
        f"{html.escape(title)}</text>",
    ]
    finite_markers = [m for m in markers if np.isfinite(m.x) and np.isfinite(m.y)]
    all_x = [a for _, xs, _ in series for a in (xs.min(), xs.max())]
    all_x += [m.x for m in finite_markers]
    if not all_x:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
            'font-size="13" fill="#6b7280">no data</text></svg>'
        )
        return "".join(parts)
    all_y = [a for _, _, ys in series for a in (ys.min(), ys.max())]
    all_y += [m.y for m in finite_markers]
    if baseline is not None and any(s[0].fill for s in series):
        all_y.append(baseline)
    x0, x1 = (
        (min(all_x), max(all_x)) if max(all_x) > min(all_x) else _padded_range(all_x[0], all_x[0])
    )
    y0, y1 = _padded_range(min(all_y), max(all_y))
    frame = _Frame(x0, x1, y0, y1, _MARGIN_LEFT, top, plot_width, height - top - _MARGIN_BOTTOM)
    x_ticks = time_ticks(x0, x1) if time_axis else value_ticks(x0, x1, 6)
    y_ticks = value_ticks(y0, y1, max(2, int(frame.height // 45)), y_format)
    parts.extend(_axes_svg(frame, x_ticks, y_ticks, width))
    base = baseline if baseline is not None else y0
    parts.extend(_line_svg(line, xs, ys, frame, base) for line, xs, ys in series)
    parts.extend(_marker_svg(m, frame) for m in finite_markers)
    for r, row in enumerate(legend_rows):
        y = _TITLE_HEIGHT + _LEGEND_ROW * r + 8
        for offset, i in row:
            line = series[i][0]
            x = _MARGIN_LEFT + offset
            parts.append(
                f'<g class="legend-item"><rect x="{_num(x)}" y="{y}" width="14" height="4" '
                f'fill="{_attr(line.color)}"/><text x="{_num(x + 19)}" y="{y + 5}" '
                f'font-size="11" fill="#374151">{html.escape(line.label)}</text></g>'
            )
    parts.append("</svg>")
    return "".join(parts)
