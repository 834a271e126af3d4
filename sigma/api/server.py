"""Serving the API with uvicorn, also from inside an already running event loop (`sigma up`
runs the API next to the bot: `await api_server(app, api).serve()`, stop with
`server.should_exit = True`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any

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


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop for serving: uvloop's when it is installed (its I/O and scheduling cost
    a fraction of asyncio's per request), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept optional
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def serve(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main()` to completion on a `new_event_loop`.

    What was loaded so far (FastAPI, SQLAlchemy, pydantic, the routes: some 250,000 objects)
    lives as long as the process, so it is moved out of the garbage collector's sight first:
    otherwise every full collection walks all of it, a 150 ms pause of every request in flight
    (the p99 of a busy API) a few times a minute."""
    gc.collect()
    gc.freeze()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
