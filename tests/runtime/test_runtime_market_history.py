"""The built-in market's history in the store when the strategies trade bars under a minute."""

from __future__ import annotations

from pathlib import Path

from sigma.runtime.market import history_to_store
from sigma.store.bars import read_bars
from tests.runtime.pipeline_helpers import SYMBOL, bars, make_app


def test_bars_under_a_minute_are_not_made_of_minute_bars(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", bar_seconds=30)
    history = bars(10)
    try:
        history_to_store(app.sessions, {SYMBOL: history}, history.index[-1].to_pydatetime(), 30)
        with app.sessions() as session:
            assert len(read_bars(session, SYMBOL, "1m")) == 10
            assert read_bars(session, SYMBOL, "30s").empty
    finally:
        app.close()
