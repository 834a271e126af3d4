"""Simulation (paper) runs with their statistics and the operator's rating."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from sigma.api.context import Db, RowId, Trader, Viewer
from sigma.api.serialize import dec, opt_dec
from sigma.store.models import SimRun

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


class RatingIn(BaseModel):
    """The operator's verdict on a run."""

    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
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
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SimRunOut]:
    """Runs, newest first."""
    query = select(SimRun).order_by(SimRun.started_at.desc(), SimRun.id.desc())
    if strategy is not None:
        query = query.where(SimRun.strategy == strategy)
    return [_out(r) for r in session.scalars(query.limit(limit))]


@router.post("/runs/{run_id}/rating", response_model=SimRunOut)
def rate(run_id: RowId, body: RatingIn, session: Db, _: Trader) -> SimRunOut:
    """Store a 1-5 rating and a comment on run `run_id`."""
    run = session.get(SimRun, run_id)
    if run is None:
        raise HTTPException(404, detail=f"simulation run {run_id} not found")
    run.rating, run.comment = body.rating, body.comment
    session.commit()
    return _out(run)
