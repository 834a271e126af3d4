"""The report's monthly returns: a year-by-month grid of percent returns with each year's
compounded total, from `sigma.engine.trade_analytics.monthly_returns`."""

from __future__ import annotations

import math

import pandas as pd

from sigma.engine.trade_analytics import monthly_returns
from sigma.reports.formatting import format_float
from sigma.reports.page import Cell, table

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _cell(value: float | None) -> Cell:
    if value is None:
        return ""
    outcome = "pos" if value > 0 else "neg" if value < 0 else ""
    return format_float(value, pct=True), outcome


def monthly_grid(months: pd.DataFrame) -> list[list[Cell]]:
    """Rows of year, the twelve monthly returns (blank without bars) and the year's total."""
    by_year: dict[int, list[float | None]] = {}
    for label, ret in zip(months["month"], months["return_pct"], strict=True):
        year, month = int(label[:4]), int(label[5:7])
        by_year.setdefault(year, [None] * 12)[month - 1] = float(ret)
    rows: list[list[Cell]] = []
    for year, values in by_year.items():
        growth = math.prod(1 + v / 100 for v in values if v is not None)
        rows.append([str(year), *map(_cell, values), _cell((growth - 1) * 100)])
    return rows


def monthly_section(equity: pd.Series, initial: float) -> str:
    """The monthly returns section of the report."""
    rows = monthly_grid(monthly_returns(equity, initial))
    parts = ["<section><h2>Monthly returns (%)</h2>"]
    if rows:
        headers = ("Year", *_MONTHS, "Year total")
        parts.append(f'<div class="scroll">{table(headers, rows, numeric=set(range(1, 14)))}</div>')
    else:
        parts.append('<p class="meta">No bars.</p>')
    parts.append("</section>")
    return "".join(parts)
