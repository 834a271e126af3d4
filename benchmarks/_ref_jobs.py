"""The competitors' side of the speed benchmarks, run inside the reference environment
(`benchmarks/.venv-ref`, see `_reference.py`), never in SIGMA's own: backtesting.py, vectorbt
and backtrader, each trading the SMA crossover of `common.py` on the bars and averages it is
given, so "same trades" compares engines and not float rounding of two rolling means.

    .venv-ref/bin/python _ref_jobs.py JOB INPUT.npz '{"cash": ..., "commission": ..., ...}'

`repeats` in the JSON (default 1) times a single run that many times and reports the fastest.
INPUT.npz holds `ts` (int64 ns, UTC), `open`, `high`, `low`, `close`, `volume` and one
`sma_<n>` per period needed. JOB is backtesting, backtesting_optimize, vectorbt,
vectorbt_sweep or backtrader. One JSON object is printed on stdout: `seconds` (the run alone,
after imports and any JIT warm-up) and what the job found: `trades` as [entry_bar, exit_bar,
signed size] of the closed round trips plus `final_equity`, or `combos` and `best`
([fast, slow, final equity]) for a sweep. Imports numpy, pandas, backtesting.py and the
job's library.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover

Trades = list[list[int]]


def _frame(data: Any) -> pd.DataFrame:
    index = pd.DatetimeIndex(data["ts"].astype("datetime64[ns]"))
    return pd.DataFrame(
        {name.capitalize(): data[name] for name in ("open", "high", "low", "close", "volume")},
        index=index,
    )


def _grid(spec: dict[str, Any]) -> list[tuple[int, int]]:
    return [(f, s) for f in range(*spec["fast"]) for s in range(*spec["slow"]) if f < s]


# --- backtesting.py -------------------------------------------------------------------------
_AVERAGES: dict[int, Any] = {}  # period -> SIGMA's SMA; set before a run, seen by forked workers


class BtSmaCross(Strategy):  # type: ignore[misc]
    """SIGMA's target semantics: a signal in the direction already held does nothing.
    Module-level so `Backtest.optimize` can send it to its workers."""

    n1 = 10
    n2 = 20

    def init(self) -> None:
        self.ma1 = self.I(lambda: _AVERAGES[self.n1], name="fast")
        self.ma2 = self.I(lambda: _AVERAGES[self.n2], name="slow")

    def next(self) -> None:
        if crossover(self.ma1, self.ma2):
            if not self.position.is_long:
                self.position.close()
                self.buy()
        elif crossover(self.ma2, self.ma1) and not self.position.is_short:
            self.position.close()
            self.sell()


def _backtest(data: Any, args: dict[str, Any]) -> Any:
    _AVERAGES.update({int(k[4:]): data[k] for k in data.files if k.startswith("sma_")})
    return Backtest(
        _frame(data),
        BtSmaCross,
        cash=args["cash"],
        commission=args["commission"],
        exclusive_orders=True,
        finalize_trades=False,
    )


def job_backtesting(data: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One run of backtesting.py."""
    bt = _backtest(data, args)
    seconds = math.inf
    for _ in range(args.get("repeats", 1)):  # the fastest of `repeats` runs
        start = time.perf_counter()
        stats = bt.run(n1=args["fast"], n2=args["slow"])
        seconds = min(seconds, time.perf_counter() - start)
    frame = stats["_trades"]
    trades = [
        [int(e), int(x), int(s)]
        for e, x, s in zip(frame["EntryBar"], frame["ExitBar"], frame["Size"], strict=True)
    ]
    return {"seconds": seconds, "trades": trades, "final_equity": float(stats["Equity Final [$]"])}


def job_backtesting_optimize(data: Any, args: dict[str, Any]) -> dict[str, Any]:
    """backtesting.py's `Backtest.optimize` over the grid (its own process pool)."""
    bt = _backtest(data, args)
    grid = args["grid"]
    start = time.perf_counter()
    stats, heatmap = bt.optimize(
        n1=range(*grid["fast"]),
        n2=range(*grid["slow"]),
        constraint=lambda p: p.n1 < p.n2,
        maximize="Equity Final [$]",
        return_heatmap=True,
    )
    seconds = time.perf_counter() - start
    strat = stats["_strategy"]
    best = [int(strat.n1), int(strat.n2), round(float(stats["Equity Final [$]"]), 2)]
    return {"seconds": seconds, "combos": int(heatmap.notna().sum()), "best": best}


# --- vectorbt -------------------------------------------------------------------------------
def _crosses(fast: Any, slow: Any) -> tuple[Any, Any]:
    """Entries on the bar after a strict cross (the order fills at that bar's open)."""
    up = np.zeros(fast.shape, dtype=bool)
    down = np.zeros(fast.shape, dtype=bool)
    up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
    down[1:] = (slow[:-1] < fast[:-1]) & (slow[1:] > fast[1:])
    long_entry = np.zeros(fast.shape, dtype=bool)
    short_entry = np.zeros(fast.shape, dtype=bool)
    long_entry[1:] = up[:-1]
    short_entry[1:] = down[:-1]
    return long_entry, short_entry


def _vbt_portfolio(data: Any, args: dict[str, Any], pairs: list[tuple[int, int]]) -> Any:
    import vectorbt as vbt

    longs, shorts = [], []
    for fast, slow in pairs:
        long_entry, short_entry = _crosses(data[f"sma_{fast}"], data[f"sma_{slow}"])
        longs.append(long_entry)
        shorts.append(short_entry)
    columns = pd.MultiIndex.from_tuples(pairs, names=["fast", "slow"])
    return vbt.Portfolio.from_signals(
        close=pd.Series(data["close"]),  # a Series broadcasts as a column, an array as a row
        entries=pd.DataFrame(np.column_stack(longs), columns=columns),
        short_entries=pd.DataFrame(np.column_stack(shorts), columns=columns),
        price=pd.Series(data["open"]),
        fees=args["commission"],
        size=np.inf,
        size_granularity=1.0,
        init_cash=args["cash"],
        upon_opposite_entry="reverse",
        accumulate=False,
        freq="1min",
    )


def _vbt_warm(data: Any, args: dict[str, Any], pairs: list[tuple[int, int]]) -> None:
    # vectorbt compiles its kernels on first use: compiled once on a short slice, not timed.
    short = {key: data[key][:2000] for key in data.files}
    _vbt_portfolio(_Arrays(short), args, pairs).final_value()


class _Arrays(dict[str, Any]):
    """An npz-like mapping (`files` plus item access) over plain arrays."""

    @property
    def files(self) -> list[str]:
        return list(self)


def job_vectorbt(data: Any, args: dict[str, Any]) -> dict[str, Any]:
    """One run of vectorbt's `Portfolio.from_signals` (whole units, reversing)."""
    pairs = [(args["fast"], args["slow"])]
    _vbt_warm(data, args, pairs)
    seconds = math.inf
    for _ in range(args.get("repeats", 1)):  # the fastest of `repeats` runs
        start = time.perf_counter()
        pf = _vbt_portfolio(data, args, pairs)
        final = float(np.asarray(pf.final_value()).ravel()[0])
        seconds = min(seconds, time.perf_counter() - start)
    records = pf.trades.values  # the structured array behind `records`
    closed = records[records["status"] == 1]
    trades = [
        [
            int(r["entry_idx"]),
            int(r["exit_idx"]),
            round(float(r["size"])) * (1 - 2 * int(r["direction"])),
        ]
        for r in closed
    ]
    return {"seconds": seconds, "trades": trades, "final_equity": final}


def job_vectorbt_sweep(data: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The grid as one vectorbt run over one column per combination (its usual sweep)."""
    pairs = _grid(args["grid"])
    _vbt_warm(data, args, pairs)
    start = time.perf_counter()
    finals = np.asarray(_vbt_portfolio(data, args, pairs).final_value(), dtype=np.float64)
    seconds = time.perf_counter() - start
    top = int(np.argmax(finals))
    best = [pairs[top][0], pairs[top][1], round(float(finals[top]), 2)]
    return {"seconds": seconds, "combos": len(pairs), "best": best}


# --- backtrader -----------------------------------------------------------------------------
def job_backtrader(data: Any, args: dict[str, Any]) -> dict[str, Any]:
    """The crossover in backtrader. Orders are placed at bar i's close and fill at bar i+1's
    open; the entry is sized like SIGMA's, floor(cash after the close / (open·(1 + fee))),
    which needs the next open, read with backtrader's preloaded `open[1]`."""
    import backtrader as bt

    cash, commission = float(args["cash"]), float(args["commission"])
    frame = _frame(data).rename(columns=str.lower)
    frame["fma"] = data[f"sma_{args['fast']}"]
    frame["sma"] = data[f"sma_{args['slow']}"]
    last = len(frame) - 1

    class SmaFeed(bt.feeds.PandasData):  # type: ignore[misc]
        lines = ("fma", "sma")
        params = (("fma", -1), ("sma", -1))

    class BtrSmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.cash = cash  # SIGMA-style cash: moves by the full notional of every fill
            self.closed: Trades = []
            self.sizes: dict[int, int] = {}  # the size each open trade was opened with

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                ex = order.executed
                self.cash -= ex.size * ex.price + ex.comm

        def notify_trade(self, trade: Any) -> None:
            if trade.justopened:
                self.sizes[trade.ref] = int(trade.size)
            elif trade.isclosed:
                size = self.sizes.pop(trade.ref)
                self.closed.append([trade.baropen - 1, trade.barclose - 1, size])

        def next(self) -> None:
            d = self.data
            if len(self) - 1 >= last:
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

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=False)
    cerebro.adddata(SmaFeed(dataname=frame))
    cerebro.addstrategy(BtrSmaCross)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    cerebro.broker.set_checksubmit(False)
    start = time.perf_counter()
    (strategy,) = cerebro.run()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "trades": strategy.closed,
        "final_equity": float(cerebro.broker.getvalue()),
    }


JOBS = {
    "backtesting": job_backtesting,
    "backtesting_optimize": job_backtesting_optimize,
    "vectorbt": job_vectorbt,
    "vectorbt_sweep": job_vectorbt_sweep,
    "backtrader": job_backtrader,
}


def main() -> None:
    job, path, raw = sys.argv[1:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.load(path) as npz:  # read once: an npz reads its file at every access
            data = _Arrays({key: npz[key] for key in npz.files})
        result = JOBS[job](data, json.loads(raw))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
