"""`sigma regime`: the adaptive layer from the command line.

sigma regime detect                       # accuracy on the synthetic regime market
sigma regime detect --data prices.csv --symbol BTC
sigma regime compare --strategy sma_cross # backtest with the adaptive layer off vs on
sigma regime scan --data a.csv --data b.csv [--store] [--news headlines.json]
sigma regime news headlines.json --keyword BTC=bitcoin
sigma regime enable --strategy sma_cross --symbol BTC --reason "checked the feed"
"""

from __future__ import annotations

import getpass
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from sigma.feeds.errors import DataError
from sigma.feeds.loaders import load_bars
from sigma.feeds.synthetic import generate_bars
from sigma.regime.backtest import compare_adaptive
from sigma.regime.commentary import CommentaryModule
from sigma.regime.detector import balanced_accuracy, confusion_matrix, detect_frame
from sigma.regime.news import NewsEvent, NewsHandler
from sigma.regime.presets import BUILTIN_PRESETS
from sigma.regime.trend import TrendScanner, save_trends

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

DataOpt = Annotated[str | None, typer.Option("--data", help="CSV/Parquet file or pg:TABLE")]
SymbolOpt = Annotated[str, typer.Option("--symbol", help="symbol to read and report")]
BarsOpt = Annotated[int, typer.Option("--bars", min=300, help="synthetic bars")]
SeedOpt = Annotated[int, typer.Option("--seed", help="synthetic market seed")]
KeywordOpt = Annotated[
    list[str] | None, typer.Option("--keyword", help="SYMBOL=word[,word] mapping")
]


def _bars(data: str | None, symbol: str, bars: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Bars from `data`, or a synthetic market with its true regime labels."""
    if data is None:
        frame, labels = generate_bars(bars, seed=seed)
        return frame, [str(x) for x in labels]
    try:
        return load_bars(data, symbol=symbol), []
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from None


@app.command()
def detect(
    data: DataOpt = None,
    symbol: SymbolOpt = "SYN",
    bars: BarsOpt = 20_000,
    seed: SeedOpt = 0,
) -> None:
    """Classify every bar; on the synthetic market also print the confusion matrix."""
    frame, labels = _bars(data, symbol, bars, seed)
    states = detect_frame(frame, symbol=symbol)
    predicted = [s.regime.value for s in states]
    counts = pd.Series(predicted).value_counts()
    table = Table("regime", "bars")
    for name, count in counts.items():
        table.add_row(str(name), str(count))
    console.print(table)
    if labels:
        warm = next((i for i, s in enumerate(states) if s.features is not None), len(states))
        matrix = confusion_matrix(labels[warm:], predicted[warm:])
        console.print(f"confusion matrix after {warm} warm-up bars (rows: truth)")
        console.print(matrix.to_string())
        console.print(f"balanced accuracy: {balanced_accuracy(matrix):.3f}")
    console.print(CommentaryModule().generate(states[-1]))


@app.command()
def compare(
    strategy: Annotated[str, typer.Option("--strategy", help="built-in strategy name")],
    data: DataOpt = None,
    symbol: SymbolOpt = "SYN",
    bars: BarsOpt = 20_000,
    seed: SeedOpt = 7,
    report: Annotated[Path | None, typer.Option("--report", help="write an HTML report")] = None,
) -> None:
    """Backtest `strategy` with the adaptive layer off and on (built-in presets)."""
    from sigma.strategies.builtin import BUILTIN_STRATEGIES

    classes = {cls.name: cls for cls in BUILTIN_STRATEGIES}
    if strategy not in classes:
        raise typer.BadParameter(
            f"unknown strategy {strategy!r}; built-ins: {', '.join(sorted(classes))}",
            param_hint="--strategy",
        )
    frame, _ = _bars(data, symbol, bars, seed)
    result = compare_adaptive(classes[strategy], frame, symbol=symbol, presets=BUILTIN_PRESETS)
    table = Table("metric", "adaptive off", "adaptive on")
    for label, off, on in result.rows:
        table.add_row(label, _fmt(off), _fmt(on))
    console.print(table)
    kinds = pd.Series([d.kind for d in result.on.decisions], dtype=object).value_counts()
    console.print("decisions: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
    held = result.on.held_by_reason()
    if held:
        console.print("entries held: " + ", ".join(f"{k} {v}" for k, v in held.items()))
    console.print(result.verdict())
    if report is not None:
        console.print(f"report: {result.write_html(report)}")


@app.command()
def scan(
    data: Annotated[
        list[str] | None, typer.Option("--data", help="one file per symbol (name = file stem)")
    ] = None,
    symbols: Annotated[int, typer.Option("--symbols", min=1, help="synthetic symbols")] = 5,
    bars: BarsOpt = 3_000,
    store: Annotated[bool, typer.Option("--store", help="save readings in trend_data")] = False,
    timeframe: Annotated[str, typer.Option("--timeframe", help="label stored")] = "1m",
    news: Annotated[
        Path | None, typer.Option("--news", help="news file for the notes", exists=True)
    ] = None,
    keyword: KeywordOpt = None,
) -> None:
    """Regime and trend strength of many symbols, strongest trend first; with --news, each
    symbol's market note with its recent news."""
    frames: dict[str, pd.DataFrame] = {}
    if data:
        for path in data:
            frames[Path(path).stem.upper()] = _bars(path, Path(path).stem.upper(), bars, 0)[0]
    else:
        for i in range(symbols):
            frames[f"SYN{i}"] = generate_bars(bars, seed=i)[0]
    handler = None
    if news is not None:
        handler = NewsHandler(symbol_keywords=_keywords(keyword))
        _read_news(handler, news)
    readings = TrendScanner(news=handler).scan(frames)
    table = Table("symbol", "regime", "strength", "bars in regime", "probability")
    for r in readings:
        table.add_row(
            r.symbol,
            r.regime.value,
            f"{r.strength:.2f}",
            str(r.state.bars_in_regime),
            f"{r.state.probability:.2f}",
        )
    console.print(table)
    if handler is not None:
        for r in readings:
            console.print(r.data()["commentary"])
    if store:
        from sigma.bootstrap import bootstrap
        from sigma.store.db import session_scope

        application = bootstrap()
        try:
            with session_scope(application.sessions) as session:
                written = save_trends(session, readings, timeframe)
        finally:
            application.close()
        console.print(f"stored {written} readings in trend_data")


@app.command()
def news(
    path: Annotated[Path, typer.Argument(help="JSON / JSON lines / RSS / Atom file", exists=True)],
    keyword: KeywordOpt = None,
) -> None:
    """Score a news file: sentiment, symbols and whether it opens a high-risk window."""
    events = _read_news(NewsHandler(symbol_keywords=_keywords(keyword)), path)
    table = Table("time", "symbols", "sentiment", "risk", "headline")
    for e in events:
        risk = "halt" if e.halt_entries else "high" if e.high_risk else ""
        table.add_row(
            e.item.ts.isoformat(), ",".join(e.symbols), f"{e.sentiment:+.2f}", risk, e.item.headline
        )
    console.print(table)


@app.command()
def enable(
    strategy: Annotated[str, typer.Option("--strategy", help="strategy name")],
    symbol: Annotated[str, typer.Option("--symbol", help="symbol it trades")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded)")] = "",
) -> None:
    """Lift the regime loop's throttle or disable of STRATEGY on SYMBOL: stored, then sent to
    the running bot over Redis (without an answer it applies the stored request on a bar of
    SYMBOL within 5 s, else at its next start), as an `enable` decision recorded with who and
    why (action log, alert, lasting state)."""
    from sigma.bootstrap import bootstrap
    from sigma.regime.state import AdaptiveStateStore
    from sigma.runtime.commands import Reenable
    from sigma.runtime.operator import describe, tell_bot

    application = bootstrap()
    by = f"cli:{getpass.getuser()}"
    try:
        saved = AdaptiveStateStore(application.sessions).request_enable(
            strategy, symbol, by=by, reason=reason
        )
        if saved.status == "keep":
            typer.echo(f"{strategy} on {symbol} is neither throttled nor disabled; nothing to do")
            raise typer.Exit(1)
        command = Reenable(author=by, strategy=strategy, symbol=symbol, reason=reason)
        answer = tell_bot(application.settings, command)
    finally:
        application.close()
    typer.echo(
        f"{strategy} on {symbol} ({saved.status}: {saved.reason or 'no reason saved'}) will be "
        f"enabled on its next bar"
    )
    typer.echo(describe(answer))


def _keywords(options: list[str] | None) -> dict[str, list[str]]:
    """``SYMBOL=word[,word]`` options as the handler's keyword map."""
    mapping: dict[str, list[str]] = {}
    for item in options or []:
        symbol, sep, words = item.partition("=")
        if not sep or not symbol.strip():
            raise typer.BadParameter(f"expected SYMBOL=word, got {item!r}", param_hint="--keyword")
        mapping[symbol.strip()] = [w.strip() for w in words.split(",") if w.strip()]
    return mapping


def _read_news(handler: NewsHandler, path: Path) -> list[NewsEvent]:
    """Score a JSON / JSON lines / RSS / Atom file into `handler`."""
    try:
        is_xml = path.read_text(encoding="utf-8").lstrip().startswith("<")
        return handler.load_feed(path) if is_xml else handler.load_json(path)
    except (ValueError, ET.ParseError) as exc:  # JSONDecodeError is a ValueError
        raise typer.BadParameter(str(exc), param_hint=str(path)) from None


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
