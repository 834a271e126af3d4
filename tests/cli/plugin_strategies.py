"""A strategy plugin file for the optimiser's tests: loaded from a folder, so another process
can only get it by loading the file again."""

from __future__ import annotations

from pathlib import Path

SLOW_CROSS = """
from sigma.strategies import Param, Strategy, crossed_above
from sigma.strategies.indicators import sma


class SlowCross(Strategy):
    name = "slow_cross"
    fast = Param(5, low=2, high=20)
    slow = Param(30, low=21, high=60)

    def init(self):
        self.f = self.indicator(sma, self.data.close, self.fast)
        self.s = self.indicator(sma, self.data.close, self.slow)

    def on_bar(self):
        if crossed_above(self.f, self.s):
            self.go_long()
        elif crossed_above(self.s, self.f):
            self.go_flat()
"""


def write_plugin(folder: Path) -> Path:
    """`folder` holding the plugin `slow_cross` (runs on the exact engine only)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slow_cross.py").write_text(SLOW_CROSS)
    return folder
