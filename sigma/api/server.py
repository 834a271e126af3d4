"""Serving the API with uvicorn, also from inside an already running event loop (`sigma up`
runs the API next to the bot: `serve_embedded`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

from sigma.api.app import create_api
from sigma.api.deps import api_deps
from sigma.api.headlimit import HeadLimitedHttpTools
from sigma.config import Settings
from sigma.runtime.services import Services

WS_MAX_MESSAGE_BYTES = 16 * 1024
"""The largest WebSocket message the server takes from a client; a larger one closes the
connection (1009). A client only sends commands of a few hundred bytes, and uvicorn's own
limit (16 MiB, with 32 messages queued per connection) let one viewer make the process hold
half a gigabyte."""


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for forwarded headers: believed only from the proxies listed in
    SIGMA_API_TRUSTED_PROXIES. uvicorn's own default trusts 127.0.0.1, which would let any
    local client (or a same-host proxy passing the header through) choose the address the
    login throttle counts."""
    trusted = settings.api.api_trusted_proxies
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": []}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}


def api_server(
    settings: Settings, api: FastAPI, *, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    """A uvicorn server for `api` on the address `settings` configure (or the one given).
    uvicorn's access log is off: the API logs each request itself, with the user and without
    query strings."""
    config = uvicorn.Config(
        api,
        host=host or settings.api.api_host,
        port=port or settings.api.api_port,
        log_level=settings.process.log_level.lower(),
        access_log=False,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        server_header=False,  # "Server: uvicorn" tells an attacker which flaws to try
        http=HeadLimitedHttpTools,
        **proxy_options(settings),
    )
    return uvicorn.Server(config)


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
    server = _EmbeddedServer(
        uvicorn.Config(
            api,
            host=s.api.api_host,
            port=s.api.api_port,
            log_level="warning",
            ws_max_size=WS_MAX_MESSAGE_BYTES,
            server_header=False,
            http=HeadLimitedHttpTools,
            **proxy_options(s),
        )
    )
    serving = asyncio.create_task(server.serve())
    system.api_url = f"http://{s.api.api_host}:{s.api.api_port}"
    await stop.wait()
    server.should_exit = True
    await serving
