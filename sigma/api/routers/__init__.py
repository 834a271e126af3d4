"""REST routers, one per area; `ROUTERS` is the order they are mounted in."""

from fastapi import APIRouter

from sigma.api.routers import (
    auth,
    backtests,
    chart,
    controls,
    logfiles,
    logs,
    market,
    ml,
    news,
    portfolio,
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
    portfolio.router,
    system.router,
    auth.router,
    strategies.router,
    controls.router,
    backtests.router,
    sim.router,
    logs.router,
    logfiles.router,
    risk.router,
    users.router,
    market.router,
    chart.router,
    reports.router,
    news.router,
    schedule.router,
    ml.router,
)
