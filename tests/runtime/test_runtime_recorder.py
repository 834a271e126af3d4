"""The recorder component under the live pipeline, on SQLite and PostgreSQL: every tick the
feed published and every bar the bot closed is stored; it runs alone on Redis (`sigma
recorder`); stopping writes what it still holds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sigma.bootstrap import App, make_pubsub
from sigma.bus.base import CHANNEL_PRICE_UPDATE
from sigma.cli import live
from sigma.cli.main import app as cli
from sigma.config import load_settings
from sigma.engine.bar_builder import BarBuilder
from sigma.feeds.ticks import encode_tick
from sigma.feeds.ws_server import bar_ticks
from sigma.runtime.recorder import policies
from sigma.runtime.services import COMPONENTS, Services
from sigma.store.bars import read_bars
from sigma.store.models import BarRecord, TickRecord
from sigma.store.timescale import Policy
from tests.runtime.pipeline_helpers import STRATEGIES, SYMBOL, bars, running, wait_for


def make_app(database_url: str, **overrides: Any) -> App:
    settings = load_settings(
        database_url=database_url,
        symbols=[SYMBOL],
        live_strategies=[s.name for s in STRATEGIES],
        adaptive=False,
        max_drawdown=None,
        max_open_orders=None,
        **overrides,
    )
    return App(settings)


def stored(app: App) -> tuple[int, dict[str, int]]:
    with app.sessions() as s:
        ticks = s.scalar(select(func.count()).select_from(TickRecord))
        grouped = select(BarRecord.timeframe, func.count()).group_by(BarRecord.timeframe)
        per_timeframe = {timeframe: int(n) for timeframe, n in s.execute(grouped)}
    return int(ticks or 0), per_timeframe


async def test_the_recorder_keeps_every_tick_and_every_bar_the_bot_closed(db_url: str) -> None:
    assert "recorder" in COMPONENTS  # on in `sigma up` by default
    # The bot trades 2-minute bars; the recorder keeps those and the 1-minute ones.
    app = make_app(db_url, bar_seconds=120, recorder_batch_rows=64)
    frame = bars(240)
    feed = list(bar_ticks(SYMBOL, frame))
    async with running(Services(app, ("bot", "worker", "recorder"))) as system:
        bot, service = system.bot, system.recorder
        assert bot is not None and service is not None
        for tick in feed:
            await system.pubsub.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
            await asyncio.sleep(0)
        await wait_for(lambda: service.recorder.ticks == bot.counters.ticks == len(feed))
        closed = bot.counters.bars
        metric = system.metrics.registry.get_sample_value
        assert metric("sigma_recorder_ticks_total") == len(feed)
    # Stopped: everything held was written.
    ticks, per_timeframe = stored(app)
    assert ticks == len(feed)
    assert per_timeframe == {"1m": len(frame) - 1, "2m": closed} and closed == 119
    builder = BarBuilder(SYMBOL, timedelta(minutes=2))
    decided = [bar for t in feed if (bar := builder.on_tick(t)) is not None]
    with app.sessions() as s:
        kept = read_bars(s, SYMBOL, "2m")
    assert kept["close"].tolist() == [float(b.close) for b in decided]
    assert service.recorder.totals()["rows_dropped"] == 0
    app.close()


async def test_the_recorder_alone_on_redis_writes_what_it_holds_when_stopped(
    tmp_path: Path, redis_url: str, bus_prefix: str
) -> None:
    # Nothing is written before the stop: a batch this large and an interval this long.
    app = make_app(
        f"sqlite:///{tmp_path / 'sigma.db'}",
        redis_url=redis_url,
        bus_prefix=bus_prefix,
        recorder_batch_rows=100_000,
        recorder_flush_ms=600_000,
    )
    feed = list(bar_ticks(SYMBOL, bars(20)))
    publisher = make_pubsub(redis_url, bus_prefix)
    try:
        async with running(Services(app, ("recorder",))) as system:
            service = system.recorder
            assert service is not None and system.bot is None
            for tick in feed:
                await publisher.publish(CHANNEL_PRICE_UPDATE, encode_tick(tick))
            await publisher.publish(CHANNEL_PRICE_UPDATE, b"not a tick")  # skipped
            await wait_for(lambda: service.recorder.ticks == len(feed), what="ticks")
            assert service.recorder.writer.written == 0
        assert stored(app) == (len(feed), {"1m": 19})
    finally:
        await publisher.close()
        app.close()


def test_policies_follow_the_retention_settings(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}", tick_retention_days=10)
    week = timedelta(days=7)
    assert policies(app.settings) == {
        "ticks": Policy(week, timedelta(days=10)),
        "bars": Policy(week, None),
    }
    app.settings.retention.bar_retention_days = 400
    assert policies(app.settings)["bars"] == Policy(week, timedelta(days=400))


def test_sigma_recorder_runs_the_recorder_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[list[str]] = []
    monkeypatch.setattr(live, "_serve", lambda components, announce=True: served.append(components))
    result = CliRunner().invoke(cli, ["recorder"])
    assert result.exit_code == 0, result.output
    assert served == [["recorder"]]


async def test_stored_prices_are_exact(tmp_path: Path) -> None:
    """Decimal in, the same Decimal out: ticks are money."""
    app = make_app(f"sqlite:///{tmp_path / 'sigma.db'}")
    async with running(Services(app, ("recorder",))) as system:
        assert system.recorder is not None
        for raw in (
            b'{"symbol":"XYZ","ts":"2024-01-01T00:00:00Z","price":"0.1","volume":"3"}',
            b'{"symbol":"XYZ","ts":"2024-01-01T00:00:00Z","price":"0.3","volume":"1"}',
        ):
            await system.pubsub.publish(CHANNEL_PRICE_UPDATE, raw)
        await wait_for(lambda: system.recorder is not None and system.recorder.recorder.ticks == 2)
    with app.sessions() as s:
        rows = s.execute(select(TickRecord.seq, TickRecord.price)).all()
    assert sorted(rows) == [(0, Decimal("0.1")), (1, Decimal("0.3"))]
    app.close()
