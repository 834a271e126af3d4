"""Serving the API with uvicorn, also from inside an already running event loop (`sigma up`
runs the API next to the bot: `await api_server(app, api).serve()`, stop with
`server.should_exit = True`)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from sigma.app import App
from sigma.config import Settings


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for forwarded headers: believed only from the proxies listed in
    SIGMA_API_TRUSTED_PROXIES. uvicorn's own default trusts 127.0.0.1, which would let any
    local client (or a same-host proxy passing the header through) choose the address the
    login throttle counts."""
    trusted = settings.api_trusted_proxies
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}


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
        **proxy_options(settings),
    )
    return uvicorn.Server(config)
