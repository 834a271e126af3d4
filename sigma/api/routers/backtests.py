"""Backtests: start one on a seeded synthetic market, list, detail, HTML report."""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from sigma.api.auth import role_allows
from sigma.api.context import ApiContext, Ctx, Db, RowId, Trader, Viewer
from sigma.api.errors import error_responses
from sigma.api.jobs import Job, JobLimitError, JobStateError, JobStatus, ProgressFn
from sigma.api.numbers import ASCII_DIGITS
from sigma.api.routers.strategies import SYMBOL, checked_params
from sigma.api.serialize import Amount, dec, plain_decimal
from sigma.engine.fill_model import FillModel
from sigma.engine.result import BacktestResult
from sigma.feeds.synthetic import generate_bars
from sigma.reports.export import export_result
from sigma.reports.html_report import write_backtest_html
from sigma.research.backtest import run_backtest
from sigma.research.compare import compare_results
from sigma.store.backtests import BacktestRecord, get_backtest, list_backtests, save_backtest
from sigma.store.db import session_scope
from sigma.strategies import Strategy

router = APIRouter(prefix="/api/backtests", tags=["backtests"])


class MarketIn(BaseModel):
    """The market and account of a run: `bars` synthetic bars generated from `seed`."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(pattern=SYMBOL)
    bars: StrictInt = Field(default=2000, ge=50, le=200_000)
    seed: StrictInt = Field(default=0, ge=0, le=2**31 - 1)
    freq: Literal["1min", "5min", "15min", "1h", "4h", "1d"] = "1h"
    cash: Amount | None = Field(default=None, gt=0, le=Decimal("1e12"))
    commission: Amount | None = Field(default=None, ge=0, lt=Decimal("0.1"))

    _plain = field_validator("cash", "commission", mode="before")(plain_decimal)


class BacktestIn(MarketIn):
    """One strategy on the market."""

    strategy: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class CompareIn(MarketIn):
    """Several strategies on the same market; `params` per strategy name."""

    strategies: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=2, max_length=8
    )
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)


class BacktestSummary(BaseModel):
    """A stored run: inputs, headline figures and the statistics."""

    id: int
    run_id: str
    strategy: str
    symbol: str
    params: dict[str, Any]
    start: datetime
    end: datetime
    initial_cash: str
    final_equity: str
    stats: dict[str, Any]
    created_at: datetime
    has_report: bool


class TradeOut(BaseModel):
    """A closed round trip; `qty` > 0 long, < 0 short."""

    qty: str
    entry_ts: datetime
    entry_price: str
    exit_ts: datetime
    exit_price: str
    fees: str
    pnl: str
    entry_bar: int
    exit_bar: int


class EquityPoint(BaseModel):
    """Equity at one bar's close."""

    ts: str
    equity: float | None


class BacktestDetail(BaseModel):
    """A run with its trades and (down-sampled) equity curve."""

    summary: BacktestSummary
    trades: list[TradeOut]
    equity: list[EquityPoint]


def _summary(rec: BacktestRecord) -> BacktestSummary:
    return BacktestSummary(
        id=rec.id,
        run_id=rec.run_id,
        strategy=rec.strategy,
        symbol=rec.symbol,
        params=rec.params,
        start=rec.start,
        end=rec.end,
        initial_cash=dec(rec.initial_cash),
        final_equity=dec(rec.final_equity),
        stats=rec.stats,
        created_at=rec.created_at,
        has_report=rec.report_path is not None and Path(rec.report_path).is_file(),
    )


def _equity(rec: BacktestRecord, points: int) -> list[EquityPoint]:
    """The curve exported next to the report (`equity.json`), thinned to about `points`."""
    if rec.report_path is None:
        return []
    path = Path(rec.report_path).with_name("equity.json")
    if not path.is_file():
        return []
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    step = max(1, -(-len(rows) // points))
    picked = rows[::step]
    if rows and picked[-1] is not rows[-1]:
        picked.append(rows[-1])  # always end on the final equity
    return [EquityPoint(ts=r["ts"], equity=r["equity"]) for r in picked]


def _strategy(ctx: ApiContext, name: str, where: str) -> type[Strategy]:
    """The class of `name`; 422 at `where` when unknown."""
    try:
        return ctx.deps.strategies.get(name)
    except KeyError as exc:
        raise HTTPException(422, detail=f"{where}: {exc.args[0]}") from None


def _prepared(ctx: ApiContext, body: BacktestIn) -> tuple[type[Strategy], dict[str, Any]]:
    """The strategy class and checked parameters; 422 naming the bad field."""
    cls = _strategy(ctx, body.strategy, "body.strategy")
    return cls, checked_params(cls, body.params, "body.params")


def _run(
    ctx: ApiContext,
    market: MarketIn,
    frame: pd.DataFrame,
    cls: type[Strategy],
    params: dict[str, Any],
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> BacktestResult:
    settings = ctx.deps.settings
    fill_model = FillModel(
        commission_pct=settings.trading.commission_pct
        if market.commission is None
        else market.commission,
        commission_fixed=settings.trading.commission_fixed,
        slippage_bps=settings.trading.slippage_bps,
    )
    result, _engine = run_backtest(
        cls(**params),
        frame,
        symbol=market.symbol,
        initial_cash=settings.trading.initial_cash if market.cash is None else market.cash,
        fill_model=fill_model,
        progress=progress,
        cancel=cancel,
    )
    return result


def _store(ctx: ApiContext, result: BacktestResult) -> int:
    """Write the report and equity export, store the run; the new backtest id."""
    run_id = uuid.uuid4().hex
    folder = Path(ctx.deps.settings.process.var_dir) / "reports" / "api" / run_id
    report = write_backtest_html(result, folder / "report.html")
    export_result(result, folder, formats="json")
    with session_scope(ctx.deps.sessions) as session:
        return save_backtest(session, result, report_path=str(report), run_id=run_id)


@contextmanager
def _limited() -> Iterator[None]:
    """JobLimitError as a 429: the client may try again once a backtest finished."""
    try:
        yield
    except JobLimitError as exc:
        raise HTTPException(429, detail=str(exc)) from None


def _frame(market: MarketIn) -> pd.DataFrame:
    frame, _regimes = generate_bars(market.bars, seed=market.seed, freq=market.freq)
    return frame


def _execute(
    ctx: ApiContext,
    body: BacktestIn,
    cls: type[Strategy],
    params: dict[str, Any],
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Generate the market, run, store; the new backtest id."""
    return _store(ctx, _run(ctx, body, _frame(body), cls, params, progress, cancel))


@router.post(
    "", response_model=BacktestSummary, status_code=201, responses=error_responses(404, 429)
)
def start_backtest(body: BacktestIn, ctx: Ctx, session: Db, _: Trader) -> BacktestSummary:
    """Run the backtest (in a worker thread, the event loop stays free), store it with its
    report and return the summary. For long runs use `POST /api/backtests/jobs`."""
    cls, params = _prepared(ctx, body)
    with _limited(), ctx.jobs.inline_slot():
        backtest_id = _execute(ctx, body, cls, params)
    stored = get_backtest(session, backtest_id)
    assert stored is not None  # just committed
    return _summary(stored.record)


class JobOut(BaseModel):
    """A background backtest: `progress` 0..1; `backtest_id` once done."""

    id: str
    strategy: str
    symbol: str
    user: str
    status: JobStatus
    progress: float
    backtest_id: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


def _job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        strategy=job.strategy,
        symbol=job.symbol,
        user=job.user,
        status=job.status,
        progress=job.progress,
        backtest_id=job.backtest_id,
        error=job.error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


@router.post("/jobs", response_model=JobOut, status_code=202, responses=error_responses(404, 429))
def start_job(body: BacktestIn, ctx: Ctx, user: Trader) -> JobOut:
    """Queue the backtest in the background; poll `GET /api/backtests/jobs/{id}`."""
    cls, params = _prepared(ctx, body)

    def work(progress: ProgressFn, cancel: threading.Event) -> int:
        return _execute(ctx, body, cls, params, progress, cancel)

    with _limited():
        job = ctx.jobs.submit(work, strategy=body.strategy, symbol=body.symbol, user=user.username)
    return _job_out(job)


@router.get("/jobs", response_model=list[JobOut])
def jobs(ctx: Ctx, _: Viewer) -> list[JobOut]:
    """Background backtests of this process, newest first."""
    return [_job_out(j) for j in ctx.jobs.list()]


@router.get("/jobs/{job_id}", response_model=JobOut)
def job(job_id: str, ctx: Ctx, _: Viewer) -> JobOut:
    """One background backtest."""
    found = ctx.jobs.get(job_id)
    if found is None:
        raise HTTPException(404, detail=f"backtest job {job_id} not found")
    return _job_out(found)


@router.delete("/jobs/{job_id}", response_model=JobOut, responses=error_responses(409))
def cancel_job(job_id: str, ctx: Ctx, user: Trader) -> JobOut:
    """Cancel a queued or running backtest (it stops at its next progress point)."""
    found = ctx.jobs.get(job_id)
    # Another trader's job is theirs to cancel (or an admin's).
    if found is not None and found.user != user.username and not role_allows(user.role, "admin"):
        raise HTTPException(
            403, detail=f"forbidden: backtest job {job_id} belongs to user {found.user!r}"
        )
    try:
        found = ctx.jobs.cancel(job_id)
    except JobStateError as exc:
        raise HTTPException(409, detail=str(exc)) from None
    if found is None:
        raise HTTPException(404, detail=f"backtest job {job_id} not found")
    return _job_out(found)


class RankedOut(BaseModel):
    """A strategy's place: `score` is its Sharpe ratio, null when it traded too little."""

    strategy: str
    score: float | None
    backtest_id: int


class ComparisonOut(BaseModel):
    """Strategies best first, the recommendation and the stored runs."""

    ranking: list[RankedOut]
    recommendation: str
    backtests: list[BacktestSummary]


@router.post(
    "/compare",
    response_model=ComparisonOut,
    status_code=201,
    responses=error_responses(404, 429),
)
def compare(body: CompareIn, ctx: Ctx, session: Db, _: Trader) -> ComparisonOut:
    """Backtest every strategy on the same market, store each run, rank them and say which to
    use and why."""
    twice = sorted({n for n in body.strategies if body.strategies.count(n) > 1})
    if twice:
        raise HTTPException(422, detail=f"body.strategies: listed twice: {', '.join(twice)}")
    stray = sorted(set(body.params) - set(body.strategies))
    if stray:
        raise HTTPException(
            422, detail=f"body.params.{stray[0]}: {stray[0]!r} is not in body.strategies"
        )
    plans = []
    for i, name in enumerate(body.strategies):
        cls = _strategy(ctx, name, f"body.strategies.{i}")
        plans.append((cls, checked_params(cls, body.params.get(name, {}), f"body.params.{name}")))
    with _limited(), ctx.jobs.inline_slot():
        frame = _frame(body)
        results = [_run(ctx, body, frame, cls, params) for cls, params in plans]
        ids = {r.strategy: _store(ctx, r) for r in results}
    outcome = compare_results(results)
    summaries = []
    for name in body.strategies:
        stored = get_backtest(session, ids[name])
        assert stored is not None  # just committed
        summaries.append(_summary(stored.record))
    return ComparisonOut(
        ranking=[
            RankedOut(
                strategy=name, score=score if math.isfinite(score) else None, backtest_id=ids[name]
            )
            for name, score in outcome.ranking
        ],
        recommendation=outcome.recommendation,
        backtests=summaries,
    )


@router.get("", response_model=list[BacktestSummary])
def backtests(
    session: Db,
    _: Viewer,
    strategy: str | None = None,
    symbol: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS] = 100,
) -> list[BacktestSummary]:
    """Stored runs, newest first."""
    return [
        _summary(r) for r in list_backtests(session, strategy=strategy, symbol=symbol, limit=limit)
    ]


def _stored(session: Db, backtest_id: int) -> Any:
    stored = get_backtest(session, backtest_id)
    if stored is None:
        raise HTTPException(404, detail=f"backtest {backtest_id} not found")
    return stored


@router.get("/{backtest_id}", response_model=BacktestDetail)
def backtest(
    backtest_id: RowId,
    session: Db,
    _: Viewer,
    points: Annotated[int, Query(ge=2, le=100_000), ASCII_DIGITS] = 2000,
) -> BacktestDetail:
    """One run: summary, trades, and the equity curve thinned to about `points` points."""
    stored = _stored(session, backtest_id)
    return BacktestDetail(
        summary=_summary(stored.record),
        trades=[
            TradeOut(
                qty=dec(t.qty),
                entry_ts=t.entry_ts,
                entry_price=dec(t.entry_price),
                exit_ts=t.exit_ts,
                exit_price=dec(t.exit_price),
                fees=dec(t.fees),
                pnl=dec(t.pnl),
                entry_bar=t.entry_bar,
                exit_bar=t.exit_bar,
            )
            for t in stored.trades
        ],
        equity=_equity(stored.record, points),
    )


@router.get("/{backtest_id}/report", response_class=FileResponse)
def backtest_report(backtest_id: RowId, session: Db, _: Viewer) -> FileResponse:
    """The self-contained HTML report of the run."""
    record: BacktestRecord = _stored(session, backtest_id).record
    if record.report_path is None or not Path(record.report_path).is_file():
        raise HTTPException(404, detail=f"backtest {backtest_id} has no report file")
    return FileResponse(record.report_path, media_type="text/html")
