"""The breakers' marks are reported as they change, so they can be kept for a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sigma.domain import Order, Side
from sigma.risk.limits import AccountState, BreakerMarks, RiskLimits, RiskManager

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def check(risk: RiskManager, equity: int, at: datetime = T0) -> str:
    order = Order("X", Side.BUY, qty=Decimal(1))
    return risk.check(
        order, Decimal(10), AccountState("s:X", Decimal(equity), Decimal(0), 0, at)
    ).reason


def test_changes_are_reported_and_unchanged_marks_are_not() -> None:
    seen: list[tuple[str, BreakerMarks | None]] = []
    risk = RiskManager(
        RiskLimits(max_drawdown=Decimal("0.1")), on_change=lambda k, m: seen.append((k, m))
    )
    check(risk, 1_000)
    check(risk, 1_000)  # nothing new
    check(risk, 1_100)  # a new peak
    assert "drawdown" in check(risk, 900)
    assert [m.peak if m else None for _, m in seen] == [1_000, 1_100, 1_100]
    assert seen[-1][1] is not None and seen[-1][1].tripped.startswith("drawdown")
    risk.reset("s:X")
    risk.reset("s:X")  # nothing left to forget: nothing reported
    assert seen[-1] == ("s:X", None) and len(seen) == 4


def test_restored_marks_are_a_copy_and_keep_the_breaker_tripped() -> None:
    kept = {"s:X": BreakerMarks(T0.date(), Decimal(1_000), Decimal(1_000), "drawdown 12%")}
    risk = RiskManager(RiskLimits(max_drawdown=Decimal("0.1")))
    risk.restore(kept)
    assert check(risk, 2_000, T0 + timedelta(days=2)) == "drawdown 12%"
    assert kept["s:X"].peak == 1_000
