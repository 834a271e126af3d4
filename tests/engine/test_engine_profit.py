"""The profit summary's arithmetic on a known set of fills, settled as the worker books them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from sigma.domain import Side
from sigma.engine.profit import Booking, Mark, pct, profit
from sigma.execution.settlement import Holding, settle

DAY1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
CAPITAL = D(10_000)
# side, qty, price, fee, time
FILLS = [
    (Side.BUY, D(2), D(100), D("0.2"), DAY1),
    (Side.BUY, D(1), D(130), D("0.13"), DAY1 + timedelta(minutes=1)),
    (Side.SELL, D(2), D(120), D("0.24"), DAY1 + timedelta(minutes=2)),  # +20 realised
    (Side.SELL, D(1), D(105), D("0.105"), DAY2),  # -5 realised
    (Side.BUY, D(1), D(100), D("0.1"), DAY2 + timedelta(minutes=1)),
]


def booked() -> tuple[list[Booking], Holding]:
    """The fills through the settlement: the ledger entries and the final position."""
    holding = Holding()
    entries = []
    for side, qty, price, fee, ts in FILLS:
        result = settle(holding, side, qty, price, fee)
        holding = result.holding
        entries.append(Booking(ts, result.cash_delta, result.fee, result.realized_pnl))
    return entries, holding


def test_equity_is_cash_plus_position_value_and_pnl_splits_exactly() -> None:
    entries, holding = booked()
    assert (holding.qty, holding.avg_price) == (D(1), D(100))
    p = profit(CAPITAL, entries, [Mark("BTC", holding.qty, holding.avg_price, D(90))])
    assert p.cash == D("9914.225")
    assert p.position_value == D(90)
    assert p.equity == p.cash + p.position_value == D("10004.225")
    assert p.fees == D("0.775")
    assert p.closed_pnl == D(15) - D("0.775")  # realised gross, less every fee
    assert p.open_pnl == D(-10)
    assert p.total_pnl == p.closed_pnl + p.open_pnl == p.equity - CAPITAL == D("4.225")
    assert (p.trades, p.wins, p.losses, p.win_rate_pct) == (2, 1, 1, D("50.0000"))
    # Closed-profit curve peaks at 10019.43 after the winning sale, ends at the equity.
    assert p.max_drawdown == D("10019.43") - D("10004.225")
    assert p.max_drawdown_pct == pct(D("15.205"), D("10019.43")) == D("0.1518")
    day1, day2 = p.daily
    assert (day1.day, day1.realized_pnl, day1.fees, day1.trades) == (
        date(2026, 12, 1),
        D(20),
        D("0.57"),
        1,
    )
    assert (day1.net, day1.cumulative) == (D("19.43"), D("19.43"))
    assert (day2.day, day2.net, day2.trades, day2.cumulative) == (
        date(2026, 12, 2),
        D("-5.205"),
        1,
        D("14.225"),
    )


def test_several_accounts_sum_and_a_short_is_worth_less_than_nothing() -> None:
    entries, holding = booked()
    short = settle(Holding(), Side.SELL, D(3), D(50), D(0))
    short_entry = Booking(DAY1, short.cash_delta, short.fee, short.realized_pnl)
    marks = [
        Mark("BTC", holding.qty, holding.avg_price, D(90)),
        Mark("ETH", short.holding.qty, short.holding.avg_price, D(40)),
    ]
    p = profit(2 * CAPITAL, sorted([*entries, short_entry], key=lambda e: e.ts), marks)
    assert marks[1].value == D(-120) and marks[1].open_pnl == D(30)
    assert p.cash == D("9914.225") + CAPITAL + D(150)
    assert p.equity == p.cash + p.position_value == D("20034.225")
    assert p.total_pnl == p.closed_pnl + p.open_pnl == D("34.225")


def test_an_account_that_never_traded() -> None:
    p = profit(CAPITAL, [], [])
    assert (p.equity, p.total_pnl, p.trades, p.win_rate_pct) == (CAPITAL, 0, 0, None)
    assert (p.max_drawdown, p.max_drawdown_pct, p.daily) == (0, D("0.0000"), ())
    assert pct(D(1), D(0)) is None


def test_a_curve_that_never_rose_above_zero_has_no_drawdown_percentage() -> None:
    p = profit(D(0), [Booking(DAY1, D(-5), D(0), D(-5))], [])
    assert (p.max_drawdown, p.max_drawdown_pct) == (D(5), None)
