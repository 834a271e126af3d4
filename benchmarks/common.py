"""Shared pieces of the benchmarks: synthetic minute bars and the competitors' strategies.

Every implementation trades the same SMA crossover (fast 10 / slow 20 unless told otherwise):
decide on bar i's close, close the position and reverse at bar i+1's open with all the cash in
whole units, commission a fraction of notional. The competitors get the *same* SMA values as
SIGMA (its `sma` function): the benchmark compares engines, and identical indicator floats make
"same trades" a meaningful check (float-different rolling means can flip a crossover on an
exact tie of cent prices).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import psycopg

from sigma.strategies.indicators import sma

T = TypeVar("T")

# The servers the service benchmarks use (defaults: this machine's).
PG_ADMIN = os.environ.get("SIGMA_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SIGMA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("SIGMA_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<random>` on PG_ADMIN's server for one run, as a SQLAlchemy
    URL; dropped afterwards whatever happened, so no run leaves state behind."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    server = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def minute_bars(n: int, seed: int = 20240101) -> pd.DataFrame:
    """`n` one-minute bars of a seeded random walk, prices rounded to cents (index `ts`, UTC)."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.001, n))), 2)
    open_ = np.round(np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 2e-4, n)), 2)
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.05, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.05, n), 2)
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="ts")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1_000.0}, index=idx
    )


def capitalised(bars: pd.DataFrame) -> pd.DataFrame:
    """The frame with backtesting.py's column names and a naive index."""
    out = bars.rename(columns=str.capitalize)
    out.index = pd.DatetimeIndex(out.index).tz_localize(None)
    return out


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(fn(), seconds)."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def emit(row: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Print one JSON line and keep it."""
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()
    }
    print(json.dumps(clean), flush=True)
    rows.append(clean)


def note(message: str) -> None:
    """Human progress on stderr (stdout carries only JSON lines)."""
    print(message, file=sys.stderr, flush=True)


# --- backtesting.py -------------------------------------------------------------------------
from backtesting import Strategy as _BtStrategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402


class BtSmaCross(_BtStrategy):  # type: ignore[misc]
    """SmaCross in backtesting.py: the README example with SIGMA's `sma` and SIGMA's target
    semantics (a signal in the direction already held does nothing; the README version would
    close and re-open, which differs after a tie of the two averages breaks the alternation
    of up and down crosses). Module-level so `Backtest.optimize` can pickle it."""

    n1 = 10
    n2 = 20

    def init(self) -> None:
        self.ma1 = self.I(sma, self.data.Close, self.n1)
        self.ma2 = self.I(sma, self.data.Close, self.n2)

    def next(self) -> None:
        if crossover(self.ma1, self.ma2):
            if not self.position.is_long:
                self.position.close()
                self.buy()
        elif crossover(self.ma2, self.ma1) and not self.position.is_short:
            self.position.close()
            self.sell()


def backtesting_py_strategy() -> type:
    """The backtesting.py strategy class."""
    return BtSmaCross


# --- backtrader -----------------------------------------------------------------------------
def run_backtrader(
    bars: pd.DataFrame, fast: int, slow: int, cash: float, commission: float
) -> tuple[int, float]:
    """Run the crossover in backtrader; returns (closed trades, final value).

    Orders are placed at bar i's close and fill at bar i+1's open (cheat-on-open off). The
    entry is sized like SIGMA's: floor((cash after the close − 0) / (open·(1 + commission))),
    which needs the next bar's open, read with backtrader's preloaded `open[1]`."""
    import backtrader as bt

    class SmaFeed(bt.feeds.PandasData):  # type: ignore[misc]
        lines = ("fma", "sma")
        params = (("fma", -1), ("sma", -1))

    class BtrSmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.cash = cash  # SIGMA-style cash: moves by the full notional of every fill
            self.closed = 0
            self.last = len(bars) - 1

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                ex = order.executed
                self.cash -= ex.size * ex.price + ex.comm

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.closed += 1

        def next(self) -> None:
            d = self.data
            if len(self) - 1 >= self.last:
                return
            if d.fma[-1] < d.sma[-1] and d.fma[0] > d.sma[0]:
                want = 1
            elif d.sma[-1] < d.fma[-1] and d.sma[0] > d.fma[0]:
                want = -1
            else:
                return
            held = self.position.size
            if held * want > 0:
                return
            price = d.open[1]  # the fill price of both orders below
            budget = self.cash
            if held:
                budget += held * price - abs(held) * price * commission
                self.close()
            size = math.floor(budget / (price * (1 + commission)))
            if size > 0:
                (self.buy if want > 0 else self.sell)(size=size)

    frame = bars.copy()
    frame.index = pd.DatetimeIndex(frame.index).tz_localize(None)
    close = frame["close"].to_numpy()
    frame["fma"] = sma(close, fast)
    frame["sma"] = sma(close, slow)
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False)
    cerebro.adddata(SmaFeed(dataname=frame))
    cerebro.addstrategy(BtrSmaCross)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    cerebro.broker.set_checksubmit(False)
    (strategy,) = cerebro.run()
    return strategy.closed, float(cerebro.broker.getvalue())
