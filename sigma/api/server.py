"""Serving the API with uvicorn, also from inside an already running event loop (`sigma up`
runs the API next to the bot: `serve_embedded`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from sigma.api.app import create_api
from sigma.api.connlimit import ConnectionGate, limited_protocols
from sigma.api.deps import api_deps
from sigma.config import Settings
from sigma.ops.connections import ConnectionLimits
from sigma.runtime.services import Services

WS_MAX_MESSAGE_BYTES = 16 * 1024
"""The largest WebSocket message the server takes from a client; a larger one closes the
connection (1009). A client only sends commands of a few hundred bytes, and uvicorn's own
limit (16 MiB, with 32 messages queued per connection) let one viewer make the process hold
half a gigabyte."""


def server_config(
    settings: Settings,
    api: FastAPI,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str | None = None,
) -> uvicorn.Config:
    """The uvicorn config serving `api` on the address and at the log level `settings`
    configure (or the ones given), with the API's bounds on connections, request heads and
    WebSocket messages.

    Forwarded headers are believed only from the proxies listed in SIGMA_API_TRUSTED_PROXIES
    (uvicorn's own default trusts 127.0.0.1, which would let any local client, or a same-host
    proxy passing the header through, choose the address the login throttle counts); their
    middleware sits inside the connection gate, which must see the TCP peer. uvicorn's access
    log is off: the API logs each request itself, with the user and without query strings."""
    trusted = settings.api.api_trusted_proxies
    limits = ConnectionLimits(
        settings.api.api_max_connections, settings.api.api_max_connections_per_client, trusted
    )
    app: Any = api
    if trusted:
        app = ProxyHeadersMiddleware(app, trusted_hosts=list(trusted))
    return uvicorn.Config(
        ConnectionGate(app, limits),
        host=host or settings.api.api_host,
        port=port or settings.api.api_port,
        log_level=(log_level or settings.process.log_level).lower(),
        access_log=False,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        server_header=False,  # "Server: uvicorn" tells an attacker which flaws to try
        proxy_headers=False,
        forwarded_allow_ips=[],
        **limited_protocols(limits),
    )


def api_server(
    settings: Settings, api: FastAPI, *, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    """A uvicorn server for `api` (`server_config`)."""
    return uvicorn.Server(server_config(settings, api, host=host, port=port))


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the system: Ctrl-C belongs to the system's orderly shutdown, not to
    uvicorn's own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_embedded(system: Services, stop: asyncio.Event) -> None:
    """Serve the API of the running `system` (its bus, metrics, scheduler, news and component
    states) on the configured address until `stop`."""
    s = system.app.settings
    news = system.adaptive.news if system.adaptive is not None else None
    api = create_api(
        api_deps(system.app),
        system.pubsub,
        metrics=system.metrics,
        scheduler=system.scheduler,
        news=news,
        components=system.supervisor.statuses,
    )
    server = _EmbeddedServer(server_config(s, api, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    system.api_url = f"http://{s.api.api_host}:{s.api.api_port}"
    await stop.wait()
    server.should_exit = True
    await serving
