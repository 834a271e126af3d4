"""Reports: self-contained HTML backtest/comparison reports, SVG charts, result exports."""

from sigma.reports.comparison import render_comparison_html
from sigma.reports.export import export_result
from sigma.reports.html_report import render_backtest_html, write_backtest_html

__all__ = [
    "export_result",
    "render_backtest_html",
    "render_comparison_html",
    "write_backtest_html",
]
