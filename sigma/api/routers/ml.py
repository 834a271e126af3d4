"""ML gate models: every stored version per symbol with its out-of-sample validation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from sigma.api.context import Db, Viewer
from sigma.api.numbers import ASCII_DIGITS
from sigma.research.ml_tune import list_versions

router = APIRouter(prefix="/api/ml", tags=["ml"])


class RunFigures(BaseModel):
    """One backtest of the gate's validation; `net_pnl` exact text."""

    net_pnl: str
    return_pct: float
    sharpe: float | None
    trades: int
    vetoes: int


class GateRuns(BaseModel):
    """A strategy on the test window with the gate and without it."""

    gated: RunFigures
    ungated: RunFigures


class GateComparison(BaseModel):
    """The live strategies backtested on the model's test window with and without its entry
    gate (`sigma.research.ml_validate`); profits are exact text, `strategies` by name."""

    threshold: float
    start: str
    end: str
    bars: int
    gated_pnl: str
    ungated_pnl: str
    vetoes: int
    beats_ungated: bool
    strategies: dict[str, GateRuns]


class MLModelOut(BaseModel):
    """One version: whether it gates entries now, its accuracy against the naive baseline and
    `gate`, the live strategies backtested on its test window with and without it (absent
    for versions stored before that validation existed)."""

    symbol: str
    name: str
    version: int
    created_at: datetime
    active: bool
    accuracy: float
    baseline_accuracy: float
    baseline: str
    n_train: int
    n_test: int
    test_start: str
    config: dict[str, Any]
    gate: GateComparison | None


@router.get("/models", response_model=list[MLModelOut])
def ml_models(
    session: Db,
    _: Viewer,
    symbol: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS] = 50,
) -> list[MLModelOut]:
    """Versions newest first per symbol."""
    return [
        MLModelOut(
            symbol=row.symbol,
            name=row.name,
            version=row.version,
            created_at=row.created_at,
            active=row.active,
            accuracy=row.metrics["accuracy"],
            baseline_accuracy=row.metrics["baseline_accuracy"],
            baseline=row.metrics["baseline"],
            n_train=row.metrics["n_train"],
            n_test=row.metrics["n_test"],
            test_start=row.metrics["test_start"],
            config=row.config,
            gate=row.metrics.get("gate"),
        )
        for row in list_versions(session, symbol, limit)
    ]
