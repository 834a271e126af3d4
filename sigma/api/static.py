"""The built dashboard (`dashboard/dist`) served at `/`, with the single-page-app fallback:
any GET path that is not a file and not an API path returns `index.html`, so client-side
routes such as `/backtests/3` survive a reload."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "dashboard" / "dist"
# Paths the SPA must never shadow: a wrong API URL should be a JSON 404, not the HTML page.
_RESERVED = ("api/", "ws", "metrics", "docs", "redoc", "openapi.json")
# A build holds no dotfile, yet one copied in by hand (`.env`, `.git/`, `.htpasswd`) is the
# classic leak; only `.well-known` (RFC 8615: security.txt) is public by design. A source map
# gives out the dashboard's source with its comments, and a build made with maps on has them.
_PUBLIC_DOT_FOLDERS = frozenset({".well-known"})
_PRIVATE_SUFFIXES = (".map",)


def _hidden(path: str) -> bool:
    """True when the URL path `path` (relative to the dashboard's folder) names something the
    dashboard never serves: a segment starting with a dot (`.env`, `..`, `.git/config`)
    other than `.well-known`, or a source map."""
    segments = path.split("/")
    if any(s.startswith(".") and s not in _PUBLIC_DOT_FOLDERS for s in segments):
        return True
    return path.lower().endswith(_PRIVATE_SUFFIXES)


def mount_dashboard(api: FastAPI, dist: Path) -> bool:
    """Serve `dist` when it holds an `index.html`; True if it was mounted."""
    root = dist.resolve()
    index = root / "index.html"
    if not index.is_file():
        return False

    @api.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> FileResponse:
        if path.startswith(_RESERVED):
            raise HTTPException(404, detail=f"no such route: GET /{path}")
        if "\x00" in path:  # no file has one, and the file system refuses it with a ValueError
            raise HTTPException(404, detail="no such file: the path holds a NUL character")
        if _hidden(path):
            raise HTTPException(404, detail=f"no such file: /{path}")
        candidate = (root / path).resolve()
        # resolve() folds "..", so a path escaping the folder is simply not served.
        if path and candidate.is_file() and candidate.is_relative_to(root):
            return FileResponse(candidate)
        return FileResponse(index)

    return True
