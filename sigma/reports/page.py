"""Shared HTML scaffolding for reports: one page shell with inline CSS, and tables.

Everything a report needs is inlined so the file can be mailed, archived or opened on an
air-gapped machine; no fonts, scripts or stylesheets are fetched.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sigma.reports.formatting import format_value

Cell = str | tuple[str, str]  # text, or (text, css class)

CSS = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
background:#f3f4f6;color:#111827;font-size:14px;line-height:1.4}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563;margin:0 0 16px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px;
margin:12px 0}
.chart{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600}
td.num{text-align:right;white-space:nowrap}
.kv{width:auto;min-width:50%}.kv th{width:40%}
.pos{color:#15803d}.neg{color:#b91c1c}
.note{color:#92400e;background:#fffbeb;border:1px solid #fde68a;border-radius:6px;
padding:6px 10px;margin:8px 0}
.scroll{max-height:640px;overflow:auto}
.recommendation{font-size:15px;white-space:pre-line}
footer{color:#6b7280;font-size:12px;margin-top:24px}
"""


def esc(value: object) -> str:
    """HTML-escape any value's text, quotes included (safe in attributes too)."""
    return html.escape(str(value), quote=True)


def page(title: str, body: Iterable[str]) -> str:
    """A complete HTML document with the report stylesheet inlined."""
    return "".join(page_parts(title, body))


def page_parts(title: str, body: Iterable[str]) -> Iterator[str]:
    """`page` a piece at a time, each piece of `body` taken as it is written: a document
    written to a file this way is never held whole, nor are its sections all at once."""
    yield (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
    )
    yield from body
    yield "</main></body></html>\n"


def note(text: str) -> str:
    """A highlighted remark, e.g. that a list was truncated."""
    return f'<p class="note">{esc(text)}</p>'


def key_value_table(items: Mapping[str, Any], *, empty: str = "none") -> str:
    """Two-column table of names and formatted values (see `format_value`)."""
    if not items:
        return f'<p class="meta">{esc(empty)}</p>'
    rows = "".join(
        f'<tr><th scope="row">{esc(key)}</th><td class="num">{esc(format_value(str(key), value))}'
        "</td></tr>"
        for key, value in items.items()
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]], *, numeric: set[int]) -> str:
    """A table of already-formatted text cells; columns in `numeric` are right-aligned.

    A cell may be a ``(text, css_class)`` pair to colour it (e.g. profit/loss).
    """
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text, extra = cell if isinstance(cell, tuple) else (cell, "")
            classes = " ".join(c for c in ("num" if i in numeric else "", extra) if c)
            attr = f' class="{esc(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
