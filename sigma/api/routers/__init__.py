"""REST routers, one per area; `ROUTERS` is the order they are mounted in."""

from fastapi import APIRouter

from sigma.api.routers import (
    auth,
    backtests,
    logs,
    market,
    news,
    reports,
    risk,
    schedule,
    sim,
    strategies,
    system,
    trading,
    users,
)

ROUTERS: tuple[APIRouter, ...] = (
    system.router,
    auth.router,
    strategies.router,
    backtests.router,
    trading.router,
    sim.router,
    logs.router,
    risk.router,
    users.router,
    market.router,
    reports.router,
    news.router,
    schedule.router,
)
