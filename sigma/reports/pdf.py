"""The performance report as PDF (fpdf2: pure Python, built-in fonts, works offline).

Same content as the HTML page: the headline, the cumulative realized PnL chart per mode, the
strategy table, PnL by regime, live against backtest, the simulation figures and the market
commentary. Text is
set in the PDF core font Helvetica, which covers Latin-1; other characters print as ``?``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from fpdf import FPDF
from fpdf.fonts import FontFace

from sigma.reports.performance import (
    LIVE_VS_BACKTEST_COLUMNS,
    STRATEGY_COLUMNS,
    PerformanceSummary,
    figure,
    live_vs_backtest_rows,
    money,
    strategy_rows,
)

__all__ = ["render_pdf"]

_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))
_HEADER = FontFace(emphasis="BOLD", fill_color=(235, 238, 242))


def _latin1(text: object) -> str:
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)


def _table(pdf: FPDF, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    if not rows:
        pdf.cell(0, 6, "none", new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(headings_style=_HEADER, line_height=5.5, text_align="LEFT") as table:
        head = table.row()
        for name in headers:
            head.cell(_latin1(name))
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(_latin1(value))


def _chart(pdf: FPDF, report: PerformanceSummary) -> None:
    """Cumulative realized PnL per mode over the days of the period: a framed line chart with
    its range and dates labelled."""
    days = [
        f"{report.start + timedelta(days=k):%Y-%m-%d}"
        for k in range(max((report.end - report.start).days, 1))
    ]
    series: list[tuple[str, list[float]]] = []
    for mode, account in sorted(report.accounts.items()):
        total, points = 0.0, [0.0]
        for day in days:  # the balance at the end of each day of the period
            total += float(account.daily_pnl.get(day, 0))
            points.append(total)
        series.append((mode, points))
    if not series:
        return
    _heading(pdf, "Cumulative realized PnL")
    x0, y0, width, height = pdf.l_margin + 14, pdf.get_y() + 2, pdf.epw - 14, 55.0
    values = [v for _, points in series for v in points] + [0.0]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    pdf.set_draw_color(160, 160, 160)
    pdf.rect(x0, y0, width, height)
    pdf.set_font("Helvetica", "", 7)
    pdf.text(pdf.l_margin, y0 + 3, money(Decimal(repr(high))))
    pdf.text(pdf.l_margin, y0 + height, money(Decimal(repr(low))))
    pdf.text(x0, y0 + height + 3, f"{report.start:%Y-%m-%d}")
    pdf.text(x0 + width - 14, y0 + height + 3, f"{report.end:%Y-%m-%d}")
    zero = y0 + height * (high - 0.0) / span
    pdf.set_dash_pattern(dash=1, gap=1)
    pdf.line(x0, zero, x0 + width, zero)
    pdf.set_dash_pattern()
    for i, (mode, points) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        pdf.set_draw_color(*colour)
        pdf.set_line_width(0.5)
        step = width / max(len(points) - 1, 1)
        xy = [(x0 + k * step, y0 + height * (high - v) / span) for k, v in enumerate(points)]
        pdf.polyline(xy)
        pdf.set_text_color(*colour)
        pdf.text(x0 + 30 + 30 * i, y0 + height + 3, _latin1(f"{mode} PnL"))
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_y(y0 + height + 8)
    pdf.set_font("Helvetica", "", 9)


def render_pdf(report: PerformanceSummary) -> bytes:
    """The report as a PDF document."""
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(_latin1(f"SIGMA {report.kind} performance"))
    pdf.set_creator("SIGMA")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    title = f"SIGMA {report.kind} performance {report.start:%Y-%m-%d} to {report.end:%Y-%m-%d}"
    pdf.multi_cell(0, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, _latin1(report.headline()), new_x="LMARGIN", new_y="NEXT")
    if not report.strategies:
        pdf.multi_cell(0, 6, "No fills were booked in this period.", new_x="LMARGIN", new_y="NEXT")
    _chart(pdf, report)
    _heading(pdf, "Strategies")
    _table(pdf, STRATEGY_COLUMNS, strategy_rows(report))
    _heading(pdf, "PnL by regime")
    _table(pdf, ["regime", "PnL"], [[k, money(v)] for k, v in sorted(report.regimes.items())])
    _heading(pdf, "Live vs backtest")
    _table(pdf, LIVE_VS_BACKTEST_COLUMNS, live_vs_backtest_rows(report))
    _heading(pdf, "Simulation")
    _table(
        pdf,
        ["runs", "average rating"],
        [[str(report.sim_runs), figure(report.sim_avg_rating)]],
    )
    if report.commentary:
        _heading(pdf, "Market commentary")
        for _symbol, text in sorted(report.commentary.items()):
            pdf.multi_cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
    return bytes(pdf.output())
