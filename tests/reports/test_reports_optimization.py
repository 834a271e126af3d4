"""The optimisation report's files when there is little to show."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sigma.feeds.synthetic import generate_bars
from sigma.reports.optimization import Fit, write_optimization_report
from sigma.research.optimize import OptimizationResult


def test_no_heatmap_without_two_parameters_and_no_trials(tmp_path: Path) -> None:
    frame, _ = generate_bars(50, seed=1, freq="1h")
    empty = OptimizationResult("x", {}, -99.0, -99.0, 0, "s")
    page = write_optimization_report(
        tmp_path, title="t", summary={"strategy": "x"}, fits=[Fit("in-sample", empty)],
        walk_forward=None, index=pd.DatetimeIndex(frame.index), axes=None,
    )  # fmt: skip
    text = page.read_text()
    assert "no heatmap: the search has fewer than two numeric parameters" in text
    assert "no completed trials" in text and not (tmp_path / "folds.csv").exists()
