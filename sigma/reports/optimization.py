"""The files of an optimisation run: every trial (``trials.csv``), the walk-forward folds
(``folds.csv``) and one self-contained page (``optimize.html``) with the summary, the per-fold
report, a heatmap of two parameters and the trial table.

Trials without a score keep an empty score and say why in ``excluded``; nothing averages them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sigma.reports.export import neutralise_cell
from sigma.reports.heatmap import Point, heatmap_svg
from sigma.reports.page import Cell, esc, key_value_table, note, page, table
from sigma.research.objectives import OBJECTIVES, shown
from sigma.research.optimize import OptimizationResult
from sigma.research.walk_forward import WalkForwardResult

METRICS = (*OBJECTIVES, "max_drawdown_pct")
"""Every objective's value and the drawdown, per trial."""

HTML_TRIALS = 300
"""Trials the page lists (the best first); ``trials.csv`` holds them all."""


@dataclass(frozen=True, slots=True)
class Fit:
    """One search of the run: ``fold 1/3``, ``final`` (the walk-forward refit) or
    ``in-sample`` (no walk-forward)."""

    label: str
    result: OptimizationResult


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def trial_rows(fits: Sequence[Fit]) -> list[dict[str, str]]:
    """One row per completed trial of every fit: parameters, score (empty when excluded, with
    the reason), trades, every objective's value, and the process that ran it."""
    names = sorted({k for fit in fits for r in fit.result.records for k in r.params})
    rows = []
    for fit in fits:
        for r in fit.result.records:
            rows.append(
                {
                    "fit": fit.label,
                    "trial": str(r.number),
                    **{k: _text(r.params.get(k)) for k in names},
                    "score": _text(r.score),
                    "excluded": r.excluded or "",
                    "n_trades": _text(r.n_trades),
                    **{m: _text(r.metrics.get(m)) for m in METRICS},
                    "worker": r.worker,
                }
            )
    return rows


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _stamp(index: pd.DatetimeIndex, position: int) -> str:
    return pd.Timestamp(index[position]).isoformat()


def fold_rows(wf: WalkForwardResult, index: pd.DatetimeIndex) -> list[dict[str, str]]:
    """Per walk-forward fold: its training and test windows (first and last bar), the
    parameters it chose, their in-sample and out-of-sample score, the defaults' out-of-sample
    score, and why a score is missing."""
    rows = []
    for number, fold in enumerate(wf.folds, 1):
        train, test = fold.fold.train, fold.fold.test
        rows.append(
            {
                "fold": str(number),
                "train_from": _stamp(index, train.start),
                "train_to": _stamp(index, train.stop - 1),
                "test_from": _stamp(index, test.start),
                "test_to": _stamp(index, test.stop - 1),
                "params": _params_text(fold.params),
                "in_sample": _text(fold.search.best_score),
                "out_of_sample": _text(fold.test.scored),
                "defaults_out_of_sample": _text(fold.default_test.scored),
                "test_trades": str(fold.test.n_trades),
                "excluded": fold.test.excluded or "",
            }
        )
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows({k: _safe(v) for k, v in row.items()} for row in rows)


def _safe(cell: str) -> str:
    """A text cell made safe for a spreadsheet; numbers keep their sign."""
    try:
        float(cell)
    except ValueError:
        return neutralise_cell(cell)
    return cell


def _heatmap(fit: Fit, axes: tuple[str, str] | None) -> str:
    if axes is None:
        return note("no heatmap: the search has fewer than two numeric parameters")
    x_name, y_name = axes
    points = [
        Point(float(r.params[x_name]), float(r.params[y_name]), r.score)
        for r in fit.result.records
        if x_name in r.params and y_name in r.params
    ]
    title = f"best score by {x_name} and {y_name} ({fit.label}, other parameters free)"
    return heatmap_svg(points, x_name, y_name, title=title)


def _trial_table(rows: list[dict[str, str]]) -> str:
    def best_first(row: dict[str, str]) -> tuple[bool, float]:
        return (row["score"] == "", -float(row["score"] or 0.0))

    shown_rows = sorted(rows, key=best_first)[:HTML_TRIALS]
    if not shown_rows:
        return note("no completed trials")
    headers = [h for h in shown_rows[0] if h != "worker"]
    numeric = {i for i, h in enumerate(headers) if h not in ("fit", "excluded")}
    cells: Iterable[list[Cell]] = ([row[h] for h in headers] for row in shown_rows)
    more = (
        note(f"the best {HTML_TRIALS} of {len(rows)} trials; trials.csv holds all")
        if len(rows) > HTML_TRIALS
        else ""
    )
    return more + f'<div class="scroll">{table(headers, cells, numeric=numeric)}</div>'


def write_optimization_report(
    folder: Path,
    *,
    title: str,
    summary: Mapping[str, Any],
    fits: Sequence[Fit],
    walk_forward: WalkForwardResult | None,
    index: pd.DatetimeIndex,
    axes: tuple[str, str] | None,
) -> Path:
    """Write ``trials.csv``, ``folds.csv`` (with a walk-forward) and ``optimize.html`` into
    `folder`; the page's path. The heatmap shows `axes` over the last fit (the one whose
    parameters are the result)."""
    folder.mkdir(parents=True, exist_ok=True)
    trials = trial_rows(fits)
    _write_csv(folder / "trials.csv", trials)
    body = [f"<h1>{esc(title)}</h1>", f"<section>{key_value_table(summary)}</section>"]
    if walk_forward is not None:
        folds = fold_rows(walk_forward, index)
        _write_csv(folder / "folds.csv", folds)
        headers = list(folds[0])
        numeric = {0, 6, 7, 8, 9}
        body += [
            "<h2>Walk-forward folds</h2>",
            f"<section>{table(headers, ([r[h] for h in headers] for r in folds), numeric=numeric)}"
            f'<p class="meta">out of sample, mean of the folds that scored: '
            f"{esc(shown(walk_forward.oos))} (defaults {esc(shown(walk_forward.default_oos))})"
            "</p></section>",
        ]
    body += [
        "<h2>Heatmap</h2>",
        f"<section>{_heatmap(fits[-1], axes)}</section>",
        "<h2>Trials</h2>",
        f"<section>{_trial_table(trials)}</section>",
    ]
    path = folder / "optimize.html"
    path.write_text(page(title, body), encoding="utf-8")
    return path
