"""`sigma demo`: a self-contained tour on synthetic data, no files or services needed."""

from __future__ import annotations

from typing import Annotated

import typer

from sigma.cli.backtest import backtest
from sigma.config import load_settings
from sigma.feeds.synthetic import generate_bars, write_parquet


def demo(
    bars: Annotated[int, typer.Option(min=1, help="synthetic hourly bars to generate")] = 20_000,
    seed: Annotated[int, typer.Option(min=0, help="random seed of the synthetic market")] = 7,
) -> None:
    """Generate a regime-switching market, compare the built-in strategies, write reports."""
    settings = load_settings()
    frame, _ = generate_bars(bars, seed=seed, freq="1h")
    path = settings.process.var_dir / "data" / f"synthetic_{seed}_{bars}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(frame, path)
    typer.echo(f"synthetic market: {path} ({bars:,} bars)")
    backtest(
        data=[str(path)],
        symbol="SYNTH",
        timeframe="4h",
        compare="sma_cross,rsi_reversion,bollinger_breakout,donchian_trend",
    )
