"""SVG building blocks: decimation, ticks and the generic line chart."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from sigma.reports.axes import default_value_format, nice_step, time_ticks, value_ticks
from sigma.reports.downsample import finite_xy, minmax_decimate
from sigma.reports.svg import Line, Marker, line_chart, time_x


def _epoch(text: str) -> float:
    return pd.Timestamp(text, tz="UTC").timestamp()


def test_decimate_keeps_extremes_ends_and_order() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=1_000_003)
    y[123_456] = 50.0
    y[654_321] = -50.0
    x = np.arange(y.size, dtype=float)
    xs, ys = minmax_decimate(x, y, 1500)
    assert len(xs) <= 1500
    assert ys.max() == 50.0 and ys.min() == -50.0
    assert xs[0] == 0 and xs[-1] == y.size - 1
    assert np.all(np.diff(xs) > 0)


def test_decimate_small_input_unchanged_and_nan_dropped() -> None:
    xs, ys = minmax_decimate([1, 2, 3, 4], [1.0, float("nan"), 3.0, float("inf")])
    assert xs.tolist() == [1.0, 3.0] and ys.tolist() == [1.0, 3.0]


def test_decimate_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        minmax_decimate([1.0], [1.0], 3)
    with pytest.raises(ValueError, match="differ in length"):
        finite_xy([1.0, 2.0], [1.0])


def test_nice_steps_and_value_ticks() -> None:
    assert nice_step(10, 5) == 2
    assert nice_step(12.5, 5) == 2.5
    assert nice_step(40, 10) == 5
    assert nice_step(95, 10) == 10
    ticks = value_ticks(0.93, 1.27)
    assert [label for _, label in ticks] == ["1.0", "1.1", "1.2"]
    assert value_ticks(10_000, 250_000)[0][1] == "50,000"
    assert value_ticks(0, 5, fmt=lambda v: f"{v:.0f}%")[-1][1] == "5%"
    assert value_ticks(5, 5) == [(5, "5")]
    assert default_value_format(0.25)(0.5) == "0.50"
    assert default_value_format(0)(3.0) == "3"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-01-01", "2024-01-01 00:00:03", "00:00:01"),
        ("2024-01-01", "2024-01-01 01:00", "00:15"),
        ("2024-01-01", "2024-01-02", "01-01 06:00"),
        ("2024-01-01", "2024-01-20", "2024-01-08"),
        ("2024-01-01", "2024-03-01", "2024-02"),
        ("2000-01-01", "2024-01-01", "2005"),
        ("1900-01-01", "2200-01-01", "1950"),
    ],
)
def test_time_ticks_are_calendar_aligned(start: str, end: str, expected: str) -> None:
    ticks = time_ticks(_epoch(start), _epoch(end))
    assert expected in [label for _, label in ticks]
    assert all(_epoch(start) <= pos <= _epoch(end) for pos, _ in ticks)


def test_time_ticks_sub_second_span_labels_start() -> None:
    lo = _epoch("2024-01-01 00:00:00.1")
    assert time_ticks(lo, lo + 0.3) == [(lo, "2024-01-01 00:00:00")]


def test_time_x_handles_naive_aware_and_resolution() -> None:
    aware = pd.date_range("1970-01-01 00:00:01", periods=2, freq="s", tz="UTC").as_unit("ns")
    assert time_x(aware).tolist() == [1.0, 2.0]
    assert time_x([datetime(1970, 1, 1, 0, 1)]).tolist() == [60.0]


def test_line_chart_draws_ticks_markers_and_escapes() -> None:
    x = np.array([_epoch("2024-01-01"), _epoch("2024-01-05")])
    svg = line_chart(
        [Line(x, [1.0, 2.0], color='red"><b', label="<a>")],
        markers=[
            Marker(x[0], 1.0, "up", title="<tip>", css_class="mk-a"),
            Marker(x[1], 3.0, "down"),
            Marker(x[1], 2.0, "circle"),
            Marker(float("nan"), 2.0),
        ],
        title="T & <x>",
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "xmlns" not in svg
    assert "<b" not in svg and "<a>" not in svg and "<tip>" not in svg
    assert "T &amp; &lt;x&gt;" in svg
    assert svg.count('class="mk') == 3
    assert "2024-01-02" in svg  # date tick label
    assert 'dominant-baseline="middle">3<' in svg  # the marker at 3 widened the value range
    assert "legend-item" not in svg  # one labelled line: no legend by default


def test_line_chart_fill_baseline_legend_and_standalone() -> None:
    x = np.arange(5, dtype=float)
    svg = line_chart(
        [Line(x, [-1.0, -2, 0, -4, -1], fill=True, label="a"), Line(x, [0.0] * 5, label="b")],
        baseline=0.0,
        time_axis=False,
        standalone=True,
    )
    assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert svg.count("<polygon") == 1
    assert svg.count('class="legend-item"') == 2


def test_line_chart_flat_single_point_and_empty() -> None:
    single = line_chart([Line([_epoch("2024-01-01")], [5.0])])
    assert single.count("<polyline") == 1
    flat = line_chart([Line([0.0, 1.0], [0.0, 0.0])], time_axis=False)
    assert "<polyline" in flat
    assert "no data" in line_chart([Line([], [])])
    assert "no data" in line_chart([])


def test_legend_wraps_onto_rows() -> None:
    lines = [Line([0.0, 1.0], [i, i + 1.0], label="x" * 60) for i in range(6)]
    svg = line_chart(lines, time_axis=False, width=600)
    rows = {m for m in re.findall(r'<g class="legend-item"><rect x="[\d.]+" y="(\d+)"', svg)}
    assert len(rows) > 1
