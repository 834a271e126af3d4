"""Market data in the store (the `bars` table of SIGMA_DATABASE_URL): download it from a venue,
list it, import and export CSV/Parquet files, find and fill gaps.

\b
CSV format (import reads it, export writes it; Parquet has the same columns):
  ts,open,high,low,close,volume[,symbol]
  - ts: ISO 8601 (2024-01-01T00:00:00Z; an offset is converted, no offset means UTC) or
    epoch seconds/ms/us/ns (told apart by size: a date from 1973 to 2100, one unit per
    column); "timestamp", "datetime", "date", "time" are accepted names, as are separate
    date and time columns. Day/month orders like 01/02/2024 are refused, not guessed.
  - open, high, low, close: positive numbers with "." as the decimal point, no thousands
    separators; stored as decimals (10 places; 15 significant digits kept exactly).
    volume: >= 0, optional (0 when absent).
  - symbol: optional; a file with it is imported per symbol (or only --symbol), without it
    --symbol names the instrument.
  - header names are case-insensitive, extra columns are ignored, rows must be in time order.
  Example:
    ts,symbol,open,high,low,close,volume
    2024-01-01T00:00:00Z,BTC,42000.5,42100,41950.25,42050,12.5
    2024-01-01T00:01:00Z,BTC,42050,42080,42010,42011.75,3.1
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sigma.bootstrap import App, bootstrap
from sigma.cli.failures import BadValue, one_line_errors
from sigma.domain.text import clip
from sigma.feeds.gaps import timeframe_step
from sigma.feeds.limits import limits_of
from sigma.feeds.market_data import (
    SeriesReport,
    Sessions,
    Stored,
    export_file,
    import_file,
    report_series,
)
from sigma.feeds.resample import normalise_rule
from sigma.feeds.timestamps import parse_iso
from sigma.venues.history import (
    DownloadError,
    Exchange,
    Market,
    check_markets,
    download_to_store,
    fill_gaps,
    open_exchange,
    to_markets,
)

data_app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")

#: bars per request when the venue does not say (ccxt's ``features``)
_PAGE = 500
#: how far back a download reaches when nothing is stored and no --since is given
_DEFAULT_SINCE = "30d"

Venue = Annotated[
    str | None, typer.Option("--venue", help="binance or upbit (default: SIGMA_VENUE)")
]
Config = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="ccxt config as JSON (default: SIGMA_EXCHANGE_CONFIG when the venue is SIGMA_VENUE)",
    ),
]
Timeframe = Annotated[str, typer.Option("--timeframe", "-t", help="bar size: 1m, 5m, 1h, 1d")]
Since = Annotated[
    str | None, typer.Option("--since", help="from (inclusive): ISO 8601 UTC, or 30d/12h ago")
]
Until = Annotated[
    str | None, typer.Option("--until", help="up to (exclusive): ISO 8601 UTC, or 1d ago")
]
PageSize = Annotated[
    int | None, typer.Option("--page-size", min=1, help="bars per request (the venue's most)")
]


def when(text: str, now: pd.Timestamp, option: str = "--since") -> pd.Timestamp:
    """A --since/--until value: ISO 8601 (naive is UTC), or a span before ``now`` (``30d``)."""
    try:
        return now - pd.Timedelta(normalise_rule(text).nanos, unit="ns")
    except ValueError:
        pass
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise BadValue(
            option, f"{clip(repr(text))} is neither ISO 8601 nor a span like 30d"
        ) from exc


@contextmanager
def _failures() -> Iterator[None]:
    """Expected failures as one line on stderr (no traceback): exit status 2 for a value the
    command cannot use (an option, a file, a symbol), 1 for the venue failing."""
    import ccxt

    with one_line_errors(code=1, expected=(ccxt.BaseError,)), one_line_errors():
        yield


@contextmanager
def _app() -> Iterator[App]:
    application = bootstrap()
    try:
        yield application
    finally:
        application.close()


def _venue(
    app: App, venue: str | None, config: str | None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The venue to download from, its ccxt config and SIGMA symbol -> market map: the
    options where given, else the settings `sigma up` uses. Market data is public, so the
    keys are left out."""
    from sigma.config.venue import venue_settings

    configured = venue_settings(app.settings)
    name = venue or (configured.name if configured else None)
    if name is None:
        raise DownloadError("no venue: pass --venue binance|upbit or set SIGMA_VENUE")
    same = configured is not None and configured.name == name
    ccxt_config = dict(configured.public_config) if same and configured else {}
    if config is not None:
        try:
            ccxt_config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise DownloadError(f"--config is not JSON: {exc}") from exc
    markets = dict(configured.markets) if same and configured else {}
    return name, ccxt_config, markets


def _run_on_venue(name: str, config: dict[str, Any], work: Callable[[Exchange], Awaitable[T]]) -> T:
    """Run ``work`` with the venue's exchange, closed whatever happens. Ctrl-C stops it between
    two pages: each stored page is committed, so a stopped run is resumed by running it again."""

    async def main() -> T:
        exchange = open_exchange(name, config)
        try:
            return await work(exchange)
        finally:
            await exchange.close()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        errors.print("stopped: what was downloaded is stored; run the command again to resume")
        raise typer.Exit(130) from None


def _page_size(exchange: Exchange, given: int | None) -> int:
    if given is not None:
        return given
    features = (exchange.features or {}).get("spot") or {}
    return int((features.get("fetchOHLCV") or {}).get("limit") or _PAGE)


class _Bars:
    """The progress bar of a download: one line per series, in bars."""

    def __init__(self, progress: Progress, timeframe: str) -> None:
        self.progress = progress
        self.step_ms = int(timeframe_step(timeframe).total_seconds() * 1000)
        self.tasks: dict[str, Any] = {}

    def start(self, market: Market, since_ms: int, until_ms: int) -> None:
        now_ms = int(pd.Timestamp.now(tz="UTC").value // 1_000_000)
        total = max(0, (min(until_ms, now_ms) - since_ms) // self.step_ms)
        self.tasks[market.symbol] = self.progress.add_task(market.venue_symbol, total=total)

    def page(self, market: Market, frame: pd.DataFrame) -> None:
        self.progress.advance(self.tasks[market.symbol], len(frame))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _print_stored(stored: list[Stored], verb: str) -> None:
    for item in stored:
        span = f" ({item.first} .. {item.last})" if item.first is not None else ""
        console.print(f"{item.symbol} {item.timeframe}: {item.bars} bars {verb}{span}")


@data_app.command()
def download(
    symbols: Annotated[
        list[str] | None,
        typer.Argument(help="SIGMA symbols (BTC) or venue symbols (BTC/USDT); SIGMA_SYMBOLS"),
    ] = None,
    venue: Venue = None,
    timeframe: Timeframe = "1m",
    since: Since = None,
    until: Until = None,
    page_size: PageSize = None,
    config: Config = None,
) -> None:
    """Download bars from the venue (ccxt fetch_ohlcv) into the store, resuming after the
    newest stored bar of each series. Only closed bars are stored. Nothing stored and no
    --since: the last 30 days."""
    now = pd.Timestamp.now(tz="UTC")
    with _failures(), _app() as app:
        name, ccxt_config, configured = _venue(app, venue, config)
        markets = to_markets(name, symbols or app.settings.trading.symbols, configured)
        start = when(since or _DEFAULT_SINCE, now)
        end = when(until, now, "--until") if until else now

        async def work(exchange: Exchange) -> list[Stored]:
            await check_markets(exchange, markets, timeframe)
            with _progress() as progress:
                bars = _Bars(progress, timeframe)
                return await download_to_store(
                    app.sessions,
                    exchange,
                    markets,
                    timeframe,
                    since=start,
                    until=end,
                    page_size=_page_size(exchange, page_size),
                    resume=True,
                    on_start=bars.start,
                    on_page=bars.page,
                )

        _print_stored(_run_on_venue(name, ccxt_config, work), "stored")


@data_app.command("list")
def list_command(
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="only this symbol")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="only this")] = None,
) -> None:
    """What is stored, per symbol and bar size: first and last bar, count, missing bars."""
    with _failures(), _app() as app:
        reports = report_series(app.sessions, symbol=symbol, timeframe=timeframe)
    if not reports:
        console.print("no bars stored")
        return
    table = Table("symbol", "timeframe", "first", "last", "bars", "missing")
    for report in reports:
        s = report.series
        missing = "?" if report.missing is None else str(report.missing)
        table.add_row(s.symbol, s.timeframe, str(s.first), str(s.last), str(s.count), missing)
    console.print(table)


@data_app.command("import")
def import_command(
    path: Annotated[str, typer.Argument(help="a .csv, .csv.gz, .parquet or .pq file")],
    symbol: Annotated[
        str | None, typer.Option("--symbol", "-s", help="the file's symbol (or the one to take)")
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", "-t", help="bar size to store (default: the file's)"),
    ] = None,
) -> None:
    """Import bars from a file: every row checked first, then all stored in one transaction
    (a bad row imports nothing). Importing again replaces the same bars."""
    with _failures(), _app() as app:
        limits = limits_of(app.settings)
        stored = import_file(app.sessions, path, symbol=symbol, timeframe=timeframe, limits=limits)
        _print_stored(stored, "stored")


@data_app.command("export")
def export_command(
    path: Annotated[str, typer.Argument(help="a .csv, .csv.gz, .parquet or .pq file")],
    symbol: Annotated[str, typer.Option("--symbol", "-s", help="the symbol to export")],
    timeframe: Timeframe = "1m",
    since: Since = None,
    until: Until = None,
) -> None:
    """Export one stored series to a file that import and the backtest read back."""
    now = pd.Timestamp.now(tz="UTC")
    with _failures(), _app() as app:
        start = when(since, now) if since else None
        end = when(until, now, "--until") if until else None
        stored = export_file(app.sessions, path, symbol, timeframe, start=start, end=end)
        _print_stored([stored], f"written to {path}")


@data_app.command()
def gaps(
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="only this symbol")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", "-t", help="only this")] = None,
    since: Since = None,
    until: Until = None,
    fill: Annotated[bool, typer.Option("--fill", help="download the missing bars")] = False,
    venue: Venue = None,
    page_size: PageSize = None,
    config: Config = None,
) -> None:
    """Missing bars between the first and last stored bar of each series; --fill downloads
    them from the venue (a span the venue has no bars for stays a gap)."""
    now = pd.Timestamp.now(tz="UTC")
    with _failures(), _app() as app:
        start = when(since, now) if since else None
        end = when(until, now, "--until") if until else None
        found = _gap_reports(app.sessions, symbol, timeframe, start, end)
        if not fill or not found:
            return
        name, ccxt_config, configured = _venue(app, venue, config)
        symbols = [r.series.symbol for r in found]
        markets = {m.symbol: m for m in to_markets(name, symbols, configured)}

        async def work(exchange: Exchange) -> list[Stored]:
            timeframes = {r.series.timeframe for r in found}
            for size in sorted(timeframes):
                await check_markets(exchange, markets.values(), size)
            return await fill_gaps(
                app.sessions,
                exchange,
                found,
                markets,
                page_size=_page_size(exchange, page_size),
            )

        filled = _run_on_venue(name, ccxt_config, work)
        console.print(f"filled: {sum(s.bars for s in filled)} bars stored")
        _gap_reports(app.sessions, symbol, timeframe, start, end)


def _gap_reports(
    sessions: Sessions,
    symbol: str | None,
    timeframe: str | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> list[SeriesReport]:
    """Print the gaps of the stored series; the series that have some."""
    reports = report_series(
        sessions, symbol=symbol, timeframe=timeframe, with_gaps=True, start=start, end=end
    )
    found = [r for r in reports if r.gaps]
    if not found:
        console.print("no gaps")
        return found
    table = Table("symbol", "timeframe", "from", "to", "missing")
    for report in found:
        for gap in report.gaps:
            s = report.series
            table.add_row(s.symbol, s.timeframe, str(gap.first), str(gap.last), str(gap.missing))
    console.print(table)
    return found
