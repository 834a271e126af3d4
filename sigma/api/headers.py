"""Security headers on every HTTP response of the API and the dashboard.

The dashboard is a Vite build: its scripts and styles are files under `/assets`, and it talks
only to its own origin (fetch and `/ws`), so a strict policy fits; React sets `style`
attributes, hence `'unsafe-inline'` for styles only. FastAPI's `/docs` and `/redoc` pages load
Swagger UI / ReDoc from a CDN with an inline bootstrap script: they get a policy of their own
(they exist only when SIGMA_API_PUBLIC_DOCS is on).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
PRIVATE_PATHS = ("/api/", "/metrics", "/openapi.json")
COMMON_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds `COMMON_HEADERS` and a Content-Security-Policy to every HTTP response, and
    `Cache-Control: no-store` to those of `PRIVATE_PATHS` (pure ASGI: streamed responses and
    WebSockets pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else DASHBOARD_CSP
        # Tokens, orders and fills must not stay in a browser's or a proxy's cache (RFC 6749
        # requires it of the token response); the dashboard's own files may.
        private = scope["path"].startswith(PRIVATE_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS:
                    headers.setdefault(name, value)
                headers.setdefault("Content-Security-Policy", csp)
                if private:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)
