"""Periodic performance reports and the running configuration."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus, urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from pydantic import BaseModel, SecretStr

from sigma.api.context import Admin, Ctx, Db, Instant, RowId, Viewer
from sigma.api.routers.trading import Limit, Offset
from sigma.ops.logging import REDACTED, is_secret_name, redact
from sigma.store.jsonsafe import to_jsonable
from sigma.store.queries import reports as stored

router = APIRouter(prefix="/api", tags=["reports"])
_MEDIA = {
    ".html": "text/html",
    ".json": "application/json",
    ".csv": "text/csv",
    ".pdf": "application/pdf",
}


class ReportOut(BaseModel):
    """A stored performance report; `has_file` when its file can be downloaded."""

    id: int
    kind: str
    strategy: str | None
    mode: str | None
    period_start: datetime
    period_end: datetime
    stats: dict[str, Any]
    created_at: datetime
    has_file: bool


@router.get("/reports", response_model=list[ReportOut])
def reports(
    session: Db,
    _: Viewer,
    kind: str | None = None,
    strategy: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ReportOut]:
    """Reports, newest period first; `since`/`until` bound the end of their period."""
    found = stored.reports(
        session, kind=kind, strategy=strategy, since=since, until=until, limit=limit, offset=offset
    )
    return [
        ReportOut(
            id=r.id,
            kind=r.kind,
            strategy=r.strategy,
            mode=r.mode,
            period_start=r.period_start,
            period_end=r.period_end,
            stats=dict(r.stats),
            created_at=r.created_at,
            has_file=r.path is not None and Path(r.path).is_file(),
        )
        for r in found
    ]


@router.get("/reports/{report_id}/file", response_class=FileResponse)
def report_file(
    report_id: RowId,
    session: Db,
    _: Viewer,
    download: bool = False,
    format: Literal["html", "pdf"] = "html",
) -> FileResponse:
    """The report's file, shown inline (or as an attachment with `?download=true`);
    `?format=pdf` gives the PDF rendered next to it."""
    row = stored.report(session, report_id)
    if row is None:
        raise HTTPException(404, detail=f"report {report_id} not found")
    path = None if row.path is None else Path(row.path)
    if path is not None and format == "pdf":
        path = path.with_suffix(".pdf")
    if path is None or not path.is_file():
        what = "PDF" if format == "pdf" else "file"
        raise HTTPException(404, detail=f"report {report_id} has no {what}")
    return FileResponse(
        path,
        media_type=_MEDIA.get(path.suffix, "application/octet-stream"),
        filename=path.name,
        content_disposition_type="attachment" if download else "inline",
    )


def _mask_url(url: str) -> str:
    """`url` with its password and the values of query parameters named like a secret
    (`api_key`, `token`, ...: feeds take their key that way) replaced by `***`; the rest of
    the text as it was (`urlunsplit` would turn `sqlite:////abs/path` into a relative one)."""
    parts = urlsplit(url)
    if parts.password is not None:
        url = url.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    query = "&".join(
        f"{pair.partition('=')[0]}={REDACTED}"
        if is_secret_name(unquote_plus(pair.partition("=")[0]))
        else pair
        for pair in parts.query.split("&")
    )
    if query != parts.query:
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url


def _mask_urls(value: Any) -> Any:
    """`value` (JSON-like) with every URL in it masked (`_mask_url`), however deep: a database
    URL is not only in settings named `*_url` (`optuna_storage`), nor only at the top (a proxy
    URL with a password in the exchange config)."""
    if isinstance(value, str):
        return _mask_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {key: _mask_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    return value


@router.get("/settings")
def settings(ctx: Ctx, _: Admin) -> dict[str, Any]:
    """The running settings with secrets masked: secret types, URL passwords, and any nested
    entry whose name looks secret (exchange keys, webhook URLs in the notifier config)."""
    # Every URL is masked wherever it stands (`_mask_urls`); this text is the schema's.
    out: dict[str, Any] = {}
    for name, value in ctx.deps.settings.flat().items():
        if isinstance(value, SecretStr):
            out[name] = "***"
        elif isinstance(value, Path):
            out[name] = str(value)
        else:
            out[name] = _mask_urls(to_jsonable(value))
    masked: dict[str, Any] = redact(out)
    return masked
