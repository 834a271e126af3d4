"""`sigma data download` and `gaps --fill` through real ccxt against `sigma venue`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import MakeVenue
from sqlalchemy import delete
from typer.testing import CliRunner

from sigma.cli.main import app
from sigma.feeds.market_data import report_series
from sigma.store import init_db, session_factory, session_scope
from sigma.store.bar_catalog import stored_series
from sigma.store.models import BarRecord
from sigma.venues.emulator.server import VenueServer
from sigma.venues.history import (
    DownloadError,
    check_markets,
    download_to_store,
    fill_gaps,
    open_exchange,
    to_markets,
)

HISTORY = 3000
VENUES = ["binance", "upbit"]


@pytest.fixture
async def server(make_venue_server: MakeVenue) -> AsyncIterator[VenueServer]:
    async with make_venue_server(history_bars=HISTORY) as running:
        yield running


@pytest.fixture
def sessions(db_url: str) -> Any:
    engine = init_db(db_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Any:
    engine = init_db(f"sqlite:///{tmp_path / 'bars.db'}")
    yield session_factory(engine)
    engine.dispose()


def _count(sessions: Any, symbol: str = "BTC") -> int:
    with session_scope(sessions) as session:
        found = stored_series(session, symbol, "1m")
    return found[0].count if found else 0


async def _download(
    sessions: Any, server: VenueServer, venue: str, symbols: list[str], **kwargs: Any
) -> list[Any]:
    markets = to_markets(venue, symbols)
    exchange = open_exchange(venue, server.ccxt_config(venue))
    try:
        await check_markets(exchange, markets, "1m")
        now = pd.Timestamp.now(tz="UTC")
        return await download_to_store(
            sessions,
            exchange,
            markets,
            "1m",
            since=kwargs.pop("since", now - pd.Timedelta(days=3)),
            until=kwargs.pop("until", now),
            page_size=kwargs.pop("page_size", 200),
            **kwargs,
        )
    finally:
        await exchange.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_download_pages_then_resumes_with_only_new_bars(
    server: VenueServer, sessions: Any, venue: str
) -> None:
    now = pd.Timestamp.now(tz="UTC")
    pages: list[int] = []
    first = await _download(
        sessions,
        server,
        venue,
        ["BTC"],
        until=now - pd.Timedelta(minutes=1000),
        page_size=500 if venue == "binance" else 200,
        on_page=lambda _m, frame: pages.append(len(frame)),
    )
    assert len(pages) > 3  # more bars than one page
    assert first[0].bars == sum(pages) == _count(sessions) >= HISTORY - 1000 - 2
    assert first[0].last < now - pd.Timedelta(minutes=1000)

    second = await _download(sessions, server, venue, ["BTC"])
    # Only what came after the first run's last bar: nothing fetched twice.
    assert second[0].first == first[0].last + pd.Timedelta(minutes=1)
    assert _count(sessions) == first[0].bars + second[0].bars >= HISTORY - 2
    (report,) = report_series(sessions, symbol="BTC", timeframe="1m")
    assert report.missing == 0

    third = await _download(sessions, server, venue, ["BTC"])
    assert third[0].bars <= 1  # at most the minute that closed meanwhile


@pytest.mark.parametrize("venue", VENUES)
async def test_download_survives_a_rate_limit_storm(
    server: VenueServer, sqlite_sessions: Any, venue: str
) -> None:
    server.faults.update({"rate_limit_storm": 2})
    now = pd.Timestamp.now(tz="UTC")
    result = await _download(
        sqlite_sessions, server, venue, ["BTC"], since=now - pd.Timedelta(minutes=300)
    )
    assert server.faults.rate_limit_storm == 0
    assert result[0].bars >= 298
    assert _count(sqlite_sessions) == result[0].bars


@pytest.mark.parametrize("venue", VENUES)
async def test_unknown_symbol_is_a_clear_error(
    server: VenueServer, sqlite_sessions: Any, venue: str
) -> None:
    with pytest.raises(DownloadError, match=r"does not list 'DOGE/.*' \(for DOGE\); it lists BTC/"):
        await _download(sqlite_sessions, server, venue, ["BTC", "DOGE"])
    assert _count(sqlite_sessions) == 0
    exchange = open_exchange(venue, server.ccxt_config(venue))
    try:
        with pytest.raises(DownloadError, match="has no '7m' bars"):
            await check_markets(exchange, to_markets(venue, ["BTC"]), "7m")
    finally:
        await exchange.close()


@pytest.mark.parametrize("venue", VENUES)
async def test_gaps_are_found_and_filled_from_the_venue(
    server: VenueServer, sqlite_sessions: Any, venue: str
) -> None:
    now = pd.Timestamp.now(tz="UTC")
    await _download(sqlite_sessions, server, venue, ["BTC"], since=now - pd.Timedelta(hours=6))
    total = _count(sqlite_sessions)
    with session_scope(sqlite_sessions) as session:
        (series,) = stored_series(session, "BTC", "1m")
        hole = pd.Timestamp(series.first) + pd.Timedelta(minutes=100)
        session.execute(
            delete(BarRecord).where(
                BarRecord.ts >= hole, BarRecord.ts < hole + pd.Timedelta(minutes=7)
            )
        )
    (report,) = report_series(sqlite_sessions, with_gaps=True)
    assert report.missing == 7 and len(report.gaps) == 1 and report.gaps[0].first == hole
    markets = {m.symbol: m for m in to_markets(venue, ["BTC"])}
    exchange = open_exchange(venue, server.ccxt_config(venue))
    try:
        filled = await fill_gaps(sqlite_sessions, exchange, [report], markets, page_size=200)
    finally:
        await exchange.close()
    assert [f.bars for f in filled] == [7]
    assert _count(sqlite_sessions) == total
    assert report_series(sqlite_sessions)[0].missing == 0


async def test_a_stopped_download_keeps_the_pages_it_stored(
    server: VenueServer, sqlite_sessions: Any
) -> None:
    seen: list[int] = []

    def stop_after_two(_market: Any, frame: pd.DataFrame) -> None:
        seen.append(len(frame))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await _download(sqlite_sessions, server, "binance", ["BTC"], on_page=stop_after_two)
    assert _count(sqlite_sessions) == sum(seen) == 400
    resumed = await _download(sqlite_sessions, server, "binance", ["BTC"])
    assert _count(sqlite_sessions) == 400 + resumed[0].bars >= HISTORY - 2


async def test_cli_download_gaps_and_list(
    server: VenueServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SIGMA_VENUE", "upbit")
    monkeypatch.setenv("SIGMA_MODE", "paper")
    monkeypatch.setenv("SIGMA_EXCHANGE_CONFIG", json.dumps(server.ccxt_config("upbit")))
    monkeypatch.delenv("SIGMA_CONFIG_FILE", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        # In a thread: the command runs its own event loop while the venue serves on this one.
        return asyncio.to_thread(runner.invoke, app, ["data", *args])

    done = await invoke("download", "BTC", "ETH/KRW", "--since", "2h", "--page-size", "50")
    assert done.exit_code == 0, done.output
    assert "BTC 1m:" in done.output and "ETH 1m:" in done.output
    binance = json.dumps(server.ccxt_config("binance"))
    other = await invoke("download", "BTC/USDT", "--venue", "binance", "--config", binance)
    assert other.exit_code == 0, other.output  # nothing stored for it: the last 30 days
    listed = await invoke("list")
    assert listed.exit_code == 0 and "BTC/USDT" not in listed.output
    assert listed.output.count(" 1m ") >= 2
    gaps = await invoke("gaps", "--fill")
    assert gaps.exit_code == 0 and "no gaps" in gaps.output
    bad = await invoke("download", "NOPE")
    # A symbol the venue does not list is a bad value: one line, exit 2.
    assert bad.exit_code == 2 and "does not list 'NOPE/KRW'" in bad.output
