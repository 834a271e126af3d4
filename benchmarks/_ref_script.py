"""A plain backtesting.py script, as a user writes one: read a bar CSV, run the SMA crossover,
print the statistics. The other side of `backtest_speed.py`'s end-to-end figure (`sigma
backtest` on the same file), run in the reference environment under /usr/bin/time.

    .venv-ref/bin/python _ref_script.py BARS.csv CASH COMMISSION FAST SLOW

The averages are computed as SIGMA's `sma` does (a sum over each window), so both sides take
the same trades; the last line on stdout is JSON with the trade count and final equity.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from numpy.lib.stride_tricks import sliding_window_view


def sma(values: np.ndarray, period: int) -> np.ndarray:
    """Mean of the last `period` values (NaN before the first full window)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    out[period - 1 :] = sliding_window_view(x, period).sum(axis=1) / period
    return out


class SmaCross(Strategy):  # type: ignore[misc]
    """SIGMA's target semantics: a signal in the direction already held does nothing."""

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


def main() -> None:
    path, cash, commission, fast, slow = sys.argv[1:6]
    bars = pd.read_csv(path, index_col="ts", parse_dates=["ts"])
    bars.columns = [c.capitalize() for c in bars.columns]
    bt = Backtest(
        bars,
        SmaCross,
        cash=float(cash),
        commission=float(commission),
        exclusive_orders=True,
        finalize_trades=False,
    )
    stats = bt.run(n1=int(fast), n2=int(slow))
    print(stats)
    print(json.dumps({"trades": int(stats["# Trades"]), "final_equity": stats["Equity Final [$]"]}))


if __name__ == "__main__":
    main()
