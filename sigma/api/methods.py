"""HEAD for every GET route, and a 405's `Allow` naming every method of the path.

FastAPI's routes accept only the methods they were declared with, so a HEAD to a GET route
(a monitor, a link checker, a cache revalidating the dashboard's files) was a 405. Declaring
HEAD on each route would be easy to forget on the next one and would add a second operation
per path to the OpenAPI schema; `HeadMiddleware` instead runs a HEAD as the GET it mirrors,
so the status and the headers (Content-Length included) are the GET's (RFC 9110 9.3.2), and
drops the body.

Starlette's own 405 lists only the methods of the first route it tried on the path (`GET` for
`/api/me/prefs`, whose PUT is another route); `allowed_methods` lists them all.
"""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts
from starlette._utils import get_route_path  # the path as the router matches it
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A FileResponse sends its file as one `pathsend` message where the server offers that.
_BODY_MESSAGES = ("http.response.body", "http.response.pathsend")


class HeadMiddleware:
    """Answer a HEAD request as the GET of the same URL without the body (pure ASGI: the
    outer middleware, the request log among them, still see the HEAD)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a GET on in place of a HEAD, sending its start message and an empty body."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] in _BODY_MESSAGES:
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def allowed_methods(conn: HTTPConnection) -> str:
    """The `Allow` value for the request's path: the methods of every route on it, with
    HEAD wherever GET is (see `HeadMiddleware`)."""
    path = get_route_path(conn.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(conn.app.routes):
        pattern: re.Pattern[str] | None = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods.update(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))
