"""`create_api`: the FastAPI application of one SIGMA process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

import sigma
from sigma.api.auth import LoginThrottle, TokenService, load_jwt_secret
from sigma.api.bodylimit import MAX_BODY_BYTES, BodyLimitMiddleware
from sigma.api.context import ApiContext, HealthCheck, require
from sigma.api.deps import ApiDeps
from sigma.api.errors import install_error_handlers
from sigma.api.headers import SecurityHeadersMiddleware
from sigma.api.jsonbody import StrictJsonMiddleware
from sigma.api.methods import HeadMiddleware
from sigma.api.requestlog import RequestLogMiddleware, mask_tokens_in_server_logs
from sigma.api.routers import ROUTERS
from sigma.api.static import DEFAULT_DIST, mount_dashboard
from sigma.api.ws import Hub
from sigma.api.ws import router as ws_router
from sigma.bus.base import PubSub
from sigma.ops.components import ComponentBoard
from sigma.ops.metrics import Metrics
from sigma.regime.news import NewsHandler
from sigma.scheduler.service import SchedulerService
from sigma.store.reader import Reader


def create_api(
    deps: ApiDeps,
    pubsub: PubSub | None = None,
    *,
    metrics: Metrics | None = None,
    static_dir: Path | None = DEFAULT_DIST,
    health_checks: dict[str, HealthCheck] | None = None,
    news: NewsHandler | None = None,
    scheduler: SchedulerService | None = None,
    components: ComponentBoard | None = None,
    ws_queue_size: int = 1000,
    clock: Callable[[], float] = time.monotonic,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The REST API under `/api`, `/ws`, `/metrics`, the OpenAPI schema at `/openapi.json`
    and the dashboard at `/` (when `static_dir` holds a build). With SIGMA_API_PUBLIC_DOCS
    the schema is public and `/docs` and `/redoc` are served; without, only admins get the
    schema and there are no documentation pages.

    `deps` are the handles the routes work with (`api_deps` takes them from the composition
    root's App). `pubsub` is the bus to relay to WebSocket clients; without one, the bus named
    by the settings is opened (`deps.open_bus`) and closed with the API. `health_checks` add
    named async checks (returning "ok" or a problem) to `/api/health`, e.g. the feed's
    freshness. `clock` drives the login throttle. `news` is the bot's NewsHandler, fed by
    `POST /api/news`; `scheduler` the SchedulerService behind `/api/jobs`; `components` the
    state of the process's supervised components, which `/api/health` reports. A request body
    beyond `max_body_bytes` is answered 413.
    """
    settings = deps.settings
    owned_bus = pubsub is None
    bus = deps.open_bus() if pubsub is None else pubsub
    ctx = ApiContext(
        deps=deps,
        pubsub=bus,
        metrics=metrics or Metrics(),
        tokens=TokenService(
            secret=load_jwt_secret(settings),
            access_ttl=timedelta(minutes=settings.api.jwt_expire_minutes),
            refresh_ttl=timedelta(days=settings.api.jwt_refresh_days),
        ),
        throttle=LoginThrottle(clock=clock),
        reader=Reader(lambda: deps.read_db),
        health_checks=dict(health_checks or {}),
        news=news,
        scheduler=scheduler,
        components=components,
    )
    hub = Hub(bus, queue_size=ws_queue_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        await ctx.reader.warm()
        try:
            yield
        finally:
            await hub.stop()
            await ctx.reader.close()
            await run_in_threadpool(ctx.jobs.shutdown)
            if owned_bus:
                await bus.close()

    public_docs = settings.api.api_public_docs
    docs: dict[str, Any] = {} if public_docs else {"docs_url": None, "redoc_url": None}
    api = FastAPI(
        title="SIGMA",
        version=sigma.__version__,
        description="Automated trading system: REST API and live WebSocket feed.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if public_docs else None,
        # Starlette's redirect of `/path/` to `/path` builds its Location from the Host
        # header, which the client picks: a wrong path is a 404 instead.
        redirect_slashes=False,
        **docs,
    )
    api.state.ctx = ctx
    api.state.hub = hub
    install_error_handlers(api)
    if not public_docs:

        @api.get(
            "/openapi.json",
            include_in_schema=False,
            dependencies=[Depends(require("admin"))],
        )
        async def openapi_for_admins() -> dict[str, Any]:
            return api.openapi()

    # Innermost, so everything outside it (the request log) sees the HEAD it answers.
    api.add_middleware(HeadMiddleware)
    # It buffers bodies the size limit (outside it) has already bounded.
    api.add_middleware(StrictJsonMiddleware)
    # Added early, so it runs inside the request log, which then records the 413.
    api.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    api.add_middleware(SecurityHeadersMiddleware)
    api.add_middleware(RequestLogMiddleware)
    mask_tokens_in_server_logs()
    for router in ROUTERS:
        api.include_router(router)
    api.include_router(ws_router)
    if static_dir is not None:
        mount_dashboard(api, static_dir)
    return api
