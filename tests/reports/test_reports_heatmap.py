"""The optimisation heatmap: one cell per grid value or a bin, the best score per cell."""

from __future__ import annotations

import re

from sigma.reports.heatmap import MAX_CELLS, Point, heatmap_svg


def _cells(svg: str) -> list[str]:
    return re.findall(r"<rect [^>]*><title>([^<]*)</title>", svg)


def test_grid_values_are_cells_and_each_shows_its_best_score() -> None:
    points = [
        Point(2, 10, 0.5),
        Point(2, 10, 1.5),  # same cell, better
        Point(2, 20, None),  # excluded: grey, no number
        Point(4, 10, -1.0),
        Point(4, 20, 2.0),
    ]
    svg = heatmap_svg(points, "fast", "slow", title="best <score>")
    assert svg.startswith("<svg") and "best &lt;score&gt;" in svg
    assert sorted(_cells(svg)) == [
        "fast=2, slow=10: 1.500",
        "fast=2, slow=20: no score",
        "fast=4, slow=10: -1.000",
        "fast=4, slow=20: 2.000",
    ]
    assert 'fill="#d1d5db"' in svg  # the cell without a score
    assert "rgb(22,163,74)" in svg and "rgb(220,38,38)" in svg  # best green, worst red


def test_many_distinct_values_are_binned() -> None:
    points = [Point(x / 10, x % 7, float(x)) for x in range(100)]
    svg = heatmap_svg(points, "a", "b", title="t")
    columns = {c.split(",")[0] for c in _cells(svg)}
    assert len(columns) == MAX_CELLS


def test_a_single_score_and_no_trials() -> None:
    assert "rgb(" in heatmap_svg([Point(1, 1, 0.3)], "a", "b", title="t")
    assert heatmap_svg([], "a", "b", title="t") == '<p class="meta">t: no trials</p>'
