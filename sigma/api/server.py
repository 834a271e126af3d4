"""Serving the API with uvicorn, also from inside an already running event loop (`sigma up`
runs the API next to the bot: `await api_server(app, api).serve()`, stop with
`server.should_exit = True`)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from sigma.app import App


def api_server(
    app: App, api: FastAPI, *, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    """A uvicorn server for `api` on the configured (or given) address. uvicorn's access log
    is off: the API logs each request itself, with the user and without query strings."""
    settings = app.settings
    config = uvicorn.Config(
        api,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return uvicorn.Server(config)
