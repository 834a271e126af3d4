"""`regime_trades`: the trades the adaptive loop's feedback recorded (`sigma.regime.state`
keeps its quality scores across restarts with them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from sigma.store.models import RegimeTrade

__all__ = ["add_trade", "delete_trades", "newest_trades"]


def _of(strategy: str, symbol: str, regime: str, variant: str) -> tuple[ColumnElement[bool], ...]:
    return (
        RegimeTrade.strategy == strategy,
        RegimeTrade.symbol == symbol,
        RegimeTrade.regime == regime,
        RegimeTrade.variant == variant,
    )


def add_trade(
    session: Session,
    strategy: str,
    symbol: str,
    regime: str,
    variant: str,
    *,
    return_pct: float,
    entry_ts: datetime,
    exit_ts: datetime,
    slippage: float | None,
) -> None:
    """One closed trade of `strategy` on `symbol`, in `regime`, of the feedback's `variant`."""
    session.add(
        RegimeTrade(
            strategy=strategy,
            symbol=symbol,
            regime=regime,
            variant=variant,
            return_pct=return_pct,
            entry_ts=entry_ts,
            exit_ts=exit_ts,
            slippage=slippage,
        )
    )


def delete_trades(session: Session, strategy: str, symbol: str, regime: str, variant: str) -> None:
    """Every trade of `strategy` on `symbol` in `regime` of `variant`."""
    session.execute(delete(RegimeTrade).where(*_of(strategy, symbol, regime, variant)))


def newest_trades(
    session: Session,
    strategy: str,
    symbol: str,
    groups: Iterable[tuple[str, str]],
    keep: int,
) -> list[RegimeTrade]:
    """The newest `keep` trades of each (regime, variant) of `groups`, oldest first; the older
    rows of a full group are deleted (nobody looks at them again)."""
    rows: list[RegimeTrade] = []
    for regime, variant in groups:
        match = _of(strategy, symbol, regime, variant)
        newest = list(
            session.scalars(
                select(RegimeTrade).where(*match).order_by(RegimeTrade.id.desc()).limit(keep)
            )
        )
        if len(newest) == keep:
            session.execute(delete(RegimeTrade).where(*match, RegimeTrade.id < newest[-1].id))
        rows.extend(newest)
    rows.sort(key=lambda r: r.id)
    return rows
