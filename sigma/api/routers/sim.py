"""Simulation (paper) runs with their statistics, their orders and the operator's rating."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from sigma.api.context import Db, Instant, RowId, Trader, Viewer
from sigma.api.routers.trading import Limit, Offset
from sigma.api.serialize import dec, opt_dec
from sigma.store.models import SimRun
from sigma.store.queries import sim

router = APIRouter(prefix="/api/sim", tags=["simulation"])


class SimRunOut(BaseModel):
    """A simulation run."""

    id: int
    strategy: str
    symbol: str
    params: dict[str, Any]
    status: str
    started_at: datetime
    ended_at: datetime | None
    initial_cash: str
    final_equity: str | None
    stats: dict[str, Any]
    rating: int | None
    comment: str | None


class SimOrderOut(BaseModel):
    """An order placed during a simulation run, with its fill (if it filled)."""

    id: int
    client_order_id: str
    ts: datetime
    symbol: str
    side: str
    type: str
    qty: str
    limit_price: str | None
    status: str
    fill_price: str | None
    fee: str


class RatingIn(BaseModel):
    """The operator's verdict on a run."""

    model_config = ConfigDict(extra="forbid")

    rating: StrictInt = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


def _out(run: SimRun) -> SimRunOut:
    return SimRunOut(
        id=run.id,
        strategy=run.strategy,
        symbol=run.symbol,
        params=dict(run.params),
        status=run.status,
        started_at=run.started_at,
        ended_at=run.ended_at,
        initial_cash=dec(run.initial_cash),
        final_equity=opt_dec(run.final_equity),
        stats=dict(run.stats),
        rating=run.rating,
        comment=run.comment,
    )


@router.get("/runs", response_model=list[SimRunOut])
def runs(
    session: Db,
    _: Viewer,
    strategy: str | None = None,
    symbol: str | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[SimRunOut]:
    """Runs, newest first; `since`/`until` bound their start."""
    found = sim.runs(
        session,
        strategy=strategy,
        symbol=symbol,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [_out(r) for r in found]


@router.get("/runs/{run_id}/orders", response_model=list[SimOrderOut])
def run_orders(
    run_id: RowId, session: Db, _: Viewer, limit: Limit = 100, offset: Offset = 0
) -> list[SimOrderOut]:
    """The orders of run `run_id` in the order they were placed."""
    if sim.run(session, run_id) is None:
        raise HTTPException(404, detail=f"simulation run {run_id} not found")
    return [
        SimOrderOut(
            id=o.id,
            client_order_id=o.client_order_id,
            ts=o.ts,
            symbol=o.symbol,
            side=o.side,
            type=o.type,
            qty=dec(o.qty),
            limit_price=opt_dec(o.limit_price),
            status=o.status,
            fill_price=opt_dec(o.fill_price),
            fee=dec(o.fee),
        )
        for o in sim.run_orders(session, run_id, limit=limit, offset=offset)
    ]


@router.post("/runs/{run_id}/rating", response_model=SimRunOut)
def rate(run_id: RowId, body: RatingIn, session: Db, _: Trader) -> SimRunOut:
    """Store a 1-5 rating and a comment on run `run_id`."""
    run = sim.run(session, run_id)
    if run is None:
        raise HTTPException(404, detail=f"simulation run {run_id} not found")
    run.rating, run.comment = body.rating, body.comment
    session.commit()
    return _out(run)
