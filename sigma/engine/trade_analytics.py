"""Per-trade analytics and trade-list statistics: how long each trade was held, how far the
price went against it and in its favour while it was held (MAE/MFE), Van Tharp's SQN, and
the calendar-month returns of the equity curve. Every formula is in docs/statistics.md.

Trades are placed on the bars by their timestamps (a fill's time is the time of the bar it
filled on), not by their bar numbers, so a run that started from older bars (a simulation
holding warm-up bars) is read correctly too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import pandas as pd

from sigma.domain import Trade

_HUNDRED = Decimal(100)


def _dec(value: float) -> Decimal:
    # The engine reads bar prices the same way: the shortest text that round-trips the float.
    return Decimal(repr(float(value)))


def _percent_of(part: Decimal, whole: Decimal) -> Decimal | None:
    return _HUNDRED * part / whole if whole else None


@dataclass(frozen=True, slots=True)
class TradeAnalysis:
    """One trade (closed, or the position still open at the end marked at the last close)
    with what is measured from the bars it was held over.

    `mae_price` / `mfe_price` are the maximum adverse / favourable excursion: how far the
    price went against / in favour of the position from its entry price, in price units
    (quote currency per unit, >= 0). `bars_held` counts the bars whose whole range the
    position held (see `held_bars`)."""

    trade: Trade
    is_open: bool
    bars_held: int
    mae_price: Decimal
    mfe_price: Decimal

    @property
    def duration(self) -> timedelta:
        """Time from the entry fill to the exit fill (to the last bar for an open trade)."""
        return self.trade.exit_ts - self.trade.entry_ts

    @property
    def return_pct(self) -> Decimal | None:
        """Net return in percent of the entry notional (None when that notional is zero)."""
        return _percent_of(self.trade.pnl, abs(self.trade.qty) * self.trade.entry_price)

    @property
    def mae_pct(self) -> Decimal | None:
        """`mae_price` in percent of the entry price."""
        return _percent_of(self.mae_price, self.trade.entry_price)

    @property
    def mfe_pct(self) -> Decimal | None:
        """`mfe_price` in percent of the entry price."""
        return _percent_of(self.mfe_price, self.trade.entry_price)


def held_bars(entry: int, exit_: int, *, at_close: bool, is_open: bool) -> tuple[int, int]:
    """Bar positions ``[start, stop)`` whose whole high-low range the position held.

    `entry` / `exit_` are the positions of the bars the fills happened on. Filled at a bar's
    open (the default timing), a position holds its entry bar and leaves at the exit bar's
    open; filled at the close, it holds from the bar after its entry through its exit bar.
    A trade still open at the end holds through the last bar (`exit_`)."""
    shift = 1 if at_close else 0
    return entry + shift, exit_ + 1 if is_open else exit_ + shift


def analyse_trade(
    trade: Trade,
    entry: int,
    exit_: int,
    high: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    *,
    at_close: bool,
    is_open: bool = False,
) -> TradeAnalysis:
    """The analysis of one trade whose fills were on bars `entry` and `exit_` of the bars'
    `high` and `low`."""
    start, stop = held_bars(entry, exit_, at_close=at_close, is_open=is_open)
    stop = min(stop, len(high))
    top = max(trade.entry_price, trade.exit_price)
    bottom = min(trade.entry_price, trade.exit_price)
    if stop > start:
        # fmax/fmin skip a NaN bar instead of letting it poison the extreme.
        top = max(top, _dec(np.fmax.reduce(high[start:stop])))
        bottom = min(bottom, _dec(np.fmin.reduce(low[start:stop])))
    up, down = top - trade.entry_price, trade.entry_price - bottom
    return TradeAnalysis(
        trade=trade,
        is_open=is_open,
        bars_held=max(stop - start, 0),
        mae_price=down if trade.is_long else up,
        mfe_price=up if trade.is_long else down,
    )


def analyse_trades(
    trades: Sequence[Trade],
    bars: pd.DataFrame,
    *,
    at_close: bool,
    open_trade: Trade | None = None,
) -> list[TradeAnalysis]:
    """Every closed trade's analysis in order, then the open trade's (when there is one)."""
    listed = [*trades, *([open_trade] if open_trade is not None else [])]
    if not listed:
        return []
    index = pd.DatetimeIndex(bars.index)
    high = bars["high"].to_numpy(np.float64)
    low = bars["low"].to_numpy(np.float64)
    # One search for every fill's bar (a search per trade costs more than the rest).
    entries = index.searchsorted(pd.DatetimeIndex([t.entry_ts for t in listed])).tolist()
    exits = index.searchsorted(pd.DatetimeIndex([t.exit_ts for t in listed])).tolist()
    return [
        analyse_trade(t, entry, exit_, high, low, at_close=at_close, is_open=t is open_trade)
        for t, entry, exit_ in zip(listed, entries, exits, strict=True)
    ]


def sqn(returns: Sequence[float]) -> float | None:
    """Van Tharp's System Quality Number, ``sqrt(N) * mean(R) / std(R)`` (sample std).

    `returns` are the trades' R values; SQN is a ratio, so their unit (fraction or percent)
    does not matter. None with fewer than two trades or when every R is equal."""
    if len(returns) < 2:
        return None
    values = np.asarray(returns, dtype=np.float64)
    std = float(values.std(ddof=1))
    if std == 0 or not math.isfinite(std):
        return None
    return math.sqrt(len(values)) * float(values.mean()) / std


def monthly_returns(equity: pd.Series, initial: float) -> pd.DataFrame:
    """Return of every calendar month (UTC) that has bars, from the equity curve.

    A month's return is its last equity over the previous month's last equity (over
    `initial` for the first month), minus one, in percent: compounding the months gives the
    run's total return. Columns `month` ("2024-01"), `equity_end`, `return_pct`."""
    index = pd.DatetimeIndex(equity.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    values = np.asarray(equity, dtype=np.float64)
    months = index.year.to_numpy() * 12 + index.month.to_numpy() - 1
    # The last bar of each month: where the month number changes, and the last bar.
    changes = np.append(months[1:] != months[:-1], True) if len(months) else np.zeros(0, bool)
    last = np.flatnonzero(changes)
    ends = values[last]
    base = np.concatenate(([initial], ends[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(base != 0, (ends / base - 1.0) * 100.0, np.nan)
    labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in months[last].tolist()]
    return pd.DataFrame({"month": labels, "equity_end": ends, "return_pct": returns})
