"""REST routers, one per area; `ROUTERS` is the order they are mounted in."""

from fastapi import APIRouter

from sigma.api.routers import (
    auth,
    backtests,
    controls,
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

# Routes are matched in order, one by one: the ones a dashboard polls most come first.
ROUTERS: tuple[APIRouter, ...] = (
    trading.router,
    system.router,
    auth.router,
    strategies.router,
    controls.router,
    backtests.router,
    sim.router,
    logs.router,
    risk.router,
    users.router,
    market.router,
    reports.router,
    news.router,
    schedule.router,
)
