"""Health (no login: probes call it), Prometheus metrics (admins, or anyone when
SIGMA_API_PUBLIC_METRICS is on), and the metrics as JSON for the dashboard's system page."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

import sigma
from sigma.api.context import ApiContext, Ctx, Viewer, admin_unless, signed_in
from sigma.ops.components import ComponentState
from sigma.ops.metrics import CONTENT_TYPE
from sigma.store.queries.health import ping

router = APIRouter(tags=["system"])
log = logging.getLogger(__name__)
OK = "ok"
_CHECK_TIMEOUT = 2.0  # seconds; a hung dependency must not hang the probe


class Component(BaseModel):
    """A supervised component of this process: running, down (died; restarted after a
    backoff) or restarting (started again, not yet up for a healthy period)."""

    state: ComponentState
    since: datetime
    restarts: int
    last_error: str | None


class Health(BaseModel):
    """Overall status, and for a signed-in caller each check's outcome ("ok" or what is
    wrong), the state of each supervised component (none when the process supervises none,
    e.g. `sigma api`) and the version. "degraded" while a check fails or a component is
    down; the answer is 200 either way.

    A caller without a valid access token gets `status` alone: checks and errors name hosts,
    users, paths and SQL, and the version tells an attacker which known flaws to try."""

    status: Literal["ok", "degraded"]
    checks: dict[str, str] = {}
    components: dict[str, Component] = {}
    version: str | None = None


class MetricSample(BaseModel):
    """One sample of the process's Prometheus registry."""

    name: str
    labels: dict[str, str]
    value: float


# Per-bucket counts and creation times mean something to Prometheus queries, not to a reader.
_UNREAD_SUFFIXES = ("_bucket", "_created")


def _database(ctx: ApiContext) -> str:
    ping(ctx.deps.read_db)
    return OK


async def _bus(ctx: ApiContext) -> str:
    # Subscribing and closing proves the bus answers (a Redis round trip when remote).
    sub = await ctx.pubsub.subscribe("health")
    await sub.close()
    return OK


def _feed(ctx: ApiContext) -> str:
    stale = ctx.metrics.registry.get_sample_value("sigma_feed_stale")
    return "stale" if stale else OK


async def _run(name: str, check: asyncio.Future[str] | asyncio.Task[str]) -> str:
    try:
        return await asyncio.wait_for(check, _CHECK_TIMEOUT)
    except Exception as exc:
        log.warning("health check %s failed: %r", name, exc)
        return f"error: {type(exc).__name__}: {exc}"[:200]


# Unset fields stay out of the answer: an anonymous caller gets `{"status": ...}` alone.
@router.get("/api/health", response_model=Health, response_model_exclude_unset=True)
async def health(request: Request, ctx: Ctx) -> Health:
    """Database, bus and feed (plus any checks the process registered), and the supervised
    components; without a valid access token only whether all is well (for probes)."""
    checks = {
        "database": await _run(
            "database", asyncio.ensure_future(run_in_threadpool(_database, ctx))
        ),
        "bus": await _run("bus", asyncio.ensure_future(_bus(ctx))),
        "feed": _feed(ctx),
    }
    for name, check in ctx.health_checks.items():
        checks[name] = await _run(name, asyncio.ensure_future(check()))
    statuses = ctx.components() if ctx.components is not None else []
    healthy = all(v == OK for v in checks.values()) and all(c.up for c in statuses)
    status: Literal["ok", "degraded"] = "ok" if healthy else "degraded"
    if not await signed_in(request):
        return Health(status=status)
    components = {
        c.name: Component(
            state=c.state, since=c.since, restarts=c.restarts, last_error=c.last_error
        )
        for c in statuses
    }
    return Health(status=status, checks=checks, components=components, version=sigma.__version__)


@router.get(
    "/metrics",
    include_in_schema=False,
    dependencies=[Depends(admin_unless(lambda ctx: ctx.deps.settings.api.api_public_metrics))],
)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition of this process's metrics: for admins, or for anyone when
    SIGMA_API_PUBLIC_METRICS is on (a scraper without a token)."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/api/metrics", response_model=list[MetricSample])
def metric_samples(ctx: Ctx, _: Viewer) -> list[MetricSample]:
    """The samples `/metrics` exposes, by name: counters, gauges, histogram counts and sums
    (no buckets; NaN or infinite values, which JSON cannot carry, are left out)."""
    samples = [
        MetricSample(name=sample.name, labels=dict(sample.labels), value=sample.value)
        for family in ctx.metrics.registry.collect()
        for sample in family.samples
        if not sample.name.endswith(_UNREAD_SUFFIXES) and math.isfinite(sample.value)
    ]
    return sorted(samples, key=lambda s: (s.name, sorted(s.labels.items())))
