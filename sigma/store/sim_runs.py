"""The paper runs as the SimRunner writes them: a run opened, the orders it finished, the run
closed with its statistics and account, the account the next start carries on, and the
operator's rating. (What the API reads of them is `sigma.store.queries.sim`.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.domain import Fill, Order
from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import SimOrder, SimRun

__all__ = [
    "LastAccount",
    "add_orders",
    "finish_run",
    "last_account",
    "open_run",
    "rate_sim_run",
]


class LastAccount(NamedTuple):
    """The paper account a finished run ended with: as `sim_runs.account` keeps it (exact
    strings), its final equity, and when it ended."""

    account: dict[str, Any]
    equity: Decimal
    ended_at: datetime


def last_account(session: Session, strategy: str, symbol: str) -> LastAccount | None:
    """The account of the newest finished run of `strategy` on `symbol` that kept its account
    (None: there is none)."""
    row = session.execute(
        select(SimRun.account, SimRun.final_equity, SimRun.ended_at)
        .where(
            SimRun.strategy == strategy,
            SimRun.symbol == symbol,
            SimRun.status == "finished",
            SimRun.account.is_not(None),
        )
        .order_by(SimRun.id.desc())
        .limit(1)
    ).first()
    if row is None or row.final_equity is None:
        return None
    return LastAccount(row.account, row.final_equity, row.ended_at or datetime.now(UTC))


def open_run(
    session: Session,
    strategy: str,
    symbol: str,
    params: Mapping[str, Any],
    initial_cash: Decimal,
) -> int:
    """A new `running` row for `strategy` on `symbol`; returns its id."""
    run = SimRun(
        strategy=strategy,
        symbol=symbol,
        params=to_jsonable(params),
        initial_cash=initial_cash,
    )
    session.add(run)
    session.flush()
    return run.id


def add_orders(session: Session, orders: Iterable[tuple[int, Order, Fill | None]]) -> None:
    """Store finished orders, each as (its run's id, the order, its fill if it filled)."""
    session.add_all(_row(run_id, order, fill) for run_id, order, fill in orders)


def _row(run_id: int, order: Order, fill: Fill | None) -> SimOrder:
    return SimOrder(
        sim_run_id=run_id,
        client_order_id=order.client_order_id,
        ts=fill.ts if fill else (order.created_at or datetime.now(UTC)),
        symbol=order.symbol,
        side=order.side.value,
        type=order.type.value,
        qty=fill.qty if fill else (order.qty or Decimal(0)),
        limit_price=order.limit_price,
        status=order.status.value,
        fill_price=fill.price if fill else None,
        fee=fill.fee if fill else Decimal(0),
    )


def finish_run(
    session: Session,
    run_id: int,
    *,
    final_equity: Decimal,
    stats: Mapping[str, Any],
    account: dict[str, Any],
) -> None:
    """Mark run `run_id` finished now, with its final equity, statistics and the account it
    ended with."""
    run = session.get(SimRun, run_id)
    assert run is not None
    run.status = "finished"
    run.ended_at = datetime.now(UTC)
    run.final_equity = final_equity
    run.stats = to_jsonable(stats)
    run.account = account


def rate_sim_run(session: Session, run_id: int, rating: int, comment: str = "") -> None:
    """Store a user's 1-5 rating and comment on a simulation run."""
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1..5, got {rating}")
    run = session.get(SimRun, run_id)
    if run is None:
        raise KeyError(f"no simulation run {run_id}")
    run.rating = rating
    run.comment = comment[:2000]
