"""`sigma venue` as a server: admin routes, faults switched at run time, state across a
restart, the price path, the command and the `sigma up` component."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from venue_helpers import BINANCE_KEY, BINANCE_SECRET, venue_config

from sigma.venues.emulator.config import VenueConfig, build_config
from sigma.venues.emulator.model import OrderRequest, OrderStatus, OrderType, Side
from sigma.venues.emulator.server import VenueServer, ccxt_config


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, headers=headers) as reply,
    ):
        return reply.status, await reply.json()


async def test_health_names_each_venue_market_and_last_price(venue_server: VenueServer) -> None:
    status, body = await _call("GET", f"{venue_server.http_url}/sigma/health")
    assert status == 200
    assert body["venues"]["binance"]["BTCUSDT"] == str(venue_server.binance.last_price("BTCUSDT"))
    assert set(body["venues"]["upbit"]) == set(venue_server.upbit.markets)


async def test_faults_are_read_and_switched_while_the_venue_runs(
    venue_server: VenueServer,
) -> None:
    url = f"{venue_server.http_url}/sigma/faults"
    status, body = await _call("PATCH", url, {"latency_ms": 5, "stale_streams": True})
    assert status == 200 and body["latency_ms"] == 5 and body["stale_streams"] is True
    assert venue_server.faults.latency_ms == 5
    status, body = await _call("GET", url)
    assert body == venue_server.faults.as_dict()
    status, body = await _call("PATCH", url, {"latency_ms": 0, "stale_streams": False})
    assert venue_server.faults.latency_ms == 0 and not venue_server.faults.stale_streams


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"flood": 1}, "unknown fault 'flood'"),
        ({"latency_ms": "slow"}, "takes a float"),
        ({"stale_streams": 1}, "takes a bool"),
        ({"error_5xx": -1}, "must be >= 0"),
        ([1, 2], "JSON object"),
    ],
)
async def test_a_bad_fault_change_is_refused_with_the_reason(
    venue_server: VenueServer, body: Any, message: str
) -> None:
    before = venue_server.faults.as_dict()
    status, reply = await _call("PATCH", f"{venue_server.http_url}/sigma/faults", body)
    assert status == 400 and message in reply["error"]
    assert venue_server.faults.as_dict() == before


async def test_the_admin_token_guards_the_admin_routes(make_venue_server: Any) -> None:
    async with make_venue_server(admin_token="s3cret") as server:
        base = server.http_url
        for method, path in (("GET", "faults"), ("POST", "disconnect"), ("POST", "tick")):
            status, _ = await _call(method, f"{base}/sigma/{path}", {})
            assert status == 403, path
        status, body = await _call(
            "PATCH", f"{base}/sigma/faults", {"error_5xx": 1}, {"X-Sigma-Admin": "s3cret"}
        )
        assert status == 200 and body["error_5xx"] == 1


async def test_a_tick_moves_the_market_and_a_bad_one_is_refused(
    venue_server: VenueServer,
) -> None:
    url = f"{venue_server.http_url}/sigma/tick"
    tick = {"venue": "binance", "symbol": "BTCUSDT", "price": "91000.004", "qty": "0.5"}
    status, body = await _call("POST", url, tick)
    assert status == 200 and body["price"] == "91000.00"  # rounded to the market's tick
    assert venue_server.binance.last_price("BTCUSDT") == Decimal("91000.00")
    for bad in (
        {**tick, "venue": "kraken"},
        {**tick, "symbol": "DOGEUSDT"},
        {**tick, "price": "NaN"},
        {**tick, "price": "-1"},
        {"venue": "binance"},
    ):
        status, body = await _call("POST", url, bad)
        assert status == 400 and "tick needs" in body["error"], bad
    assert venue_server.binance.last_price("BTCUSDT") == Decimal("91000.00")


async def test_disconnect_closes_every_stream(venue_server: VenueServer) -> None:
    async with aiohttp.ClientSession() as http:
        sockets = [
            await http.ws_connect(f"{venue_server.ws_url}/ws"),
            await http.ws_connect(f"{venue_server.ws_url}/websocket/v1"),
        ]
        status, body = await _call("POST", f"{venue_server.http_url}/sigma/disconnect")
        assert status == 200 and body["closed"] == 2
        for ws in sockets:
            message = await asyncio.wait_for(ws.receive(), 5)
            assert message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            )


async def test_an_order_resting_at_a_restart_is_still_there_and_fills_after(
    tmp_path: Path,
) -> None:
    state = tmp_path / "venue-state.jsonl"

    def exchange(server: VenueServer) -> Any:
        config = server.ccxt_config("binance")
        return ccxt_async.binance({**config, "apiKey": BINANCE_KEY, "secret": BINANCE_SECRET})

    async with VenueServer(venue_config(state_file=state)).serve() as server:
        client = exchange(server)
        try:
            order = await client.create_order(
                "BTC/USDT", "limit", "buy", 0.02, 90000, {"clientOrderId": "rest-1"}
            )
        finally:
            await client.close()
    assert state.exists()

    async with VenueServer(venue_config(state_file=state)).serve() as server:
        usdt = server.binance.accounts[BINANCE_KEY].balance("USDT")
        assert usdt == (Decimal(100_000) - Decimal(1800), Decimal(1800))
        client = exchange(server)
        try:
            again = await client.fetch_order(order["id"], "BTC/USDT")
            assert again["status"] == "open" and again["clientOrderId"] == "rest-1"
            server.binance.tick("BTCUSDT", Decimal("89999.99"), Decimal("0.5"))
            filled = await client.fetch_order(order["id"], "BTC/USDT")
        finally:
            await client.close()
        assert filled["status"] == "closed" and filled["filled"] == 0.02
        assert server.binance.accounts[BINANCE_KEY].balance("USDT") == (
            Decimal(100_000) - Decimal(1800),
            Decimal(0),
        )
        # One order, booked once, whatever the restarts.
        assert [o.client_id for o in server.binance.orders(BINANCE_KEY)] == ["rest-1"]


async def test_the_synthetic_path_serves_history_then_moves_the_markets() -> None:
    config = venue_config(history_bars=30).model_copy(
        update={"source": "synthetic", "speed": 50_000.0}
    )
    async with VenueServer(config).serve() as server:
        for venue in server.venues.values():
            for symbol in venue.markets:
                assert len(venue.candles(symbol)) >= 30
        start = {s: server.binance.last_price(s) for s in server.binance.markets}
        await _until(lambda: server.prices.ticks > 40, "ticks from the path")
        assert any(server.binance.last_price(s) != p for s, p in start.items())
        assert server.binance.tape("BTCUSDT", 5)


def test_build_config_merges_file_options_accounts_and_demo_defaults(tmp_path: Path) -> None:
    path = tmp_path / "venue.yaml"
    path.write_text("port: 9100\nbinance:\n  maker_fee: '0.00075'\n  taker_fee: '0.00075'\n")
    config = build_config(
        path, ["upbit:k1:s1:KRW=5000000,BTC=0.5"], "binance,upbit", {"latency_ms": 3}, seed=4
    )
    assert config.port == 9100 and config.seed == 4 and config.faults == {"latency_ms": 3}
    assert config.binance.maker_fee == Decimal("0.00075")
    assert config.binance.accounts[0].api_key == "sigma-demo-key"
    assert config.upbit.accounts[0].balances == {"KRW": Decimal(5_000_000), "BTC": Decimal("0.5")}
    only = build_config(None, [], "upbit", {})
    assert (only.binance.enabled, only.upbit.enabled) == (False, True)


@pytest.mark.parametrize(
    ("accounts", "protocols", "faults", "message"),
    [
        (["kraken:k:s"], None, {}, "expected binance|upbit"),
        (["binance:k:s:USDT"], None, {}, "is not ASSET=AMOUNT"),
        (["binance:k:s:USDT=-5"], None, {}, "must be a finite amount"),
        ([], "binance,ftx", {}, "--protocols takes"),
        ([], None, {"bogus": 1}, "unknown fault"),
    ],
)
def test_build_config_says_which_option_is_wrong(
    accounts: list[str], protocols: str | None, faults: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_config(None, accounts, protocols, faults)


def test_no_protocol_enabled_is_refused() -> None:
    config = build_config(None, [], "binance", {})
    config.binance.enabled = False
    with pytest.raises(ValueError, match="no protocol enabled"):
        VenueServer(config)


def test_ccxt_config_knows_only_the_two_protocols() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'kraken'"):
        ccxt_config("kraken", "http://x", "ws://x")


@contextlib.contextmanager
def _sigma_venue(*options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``sigma venue --port 0 --source manual OPTIONS`` running, with its URL; interrupted
    after, and it must stop cleanly."""
    command = [sys.executable, "-m", "sigma.cli.main", "venue", "--port", "0"]
    command += ["--source", "manual", *options]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("sigma venue on http://127.0.0.1:"), first
        yield process, first.split(" on ")[1].split(" ")[0]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:  # pragma: no cover - only when the test already failed
            process.kill()
    assert process.returncode == 0, err
    assert "venue stopped" in out


def test_sigma_venue_serves_until_interrupted(tmp_path: Path) -> None:
    state = str(tmp_path / "state.jsonl")
    options = ("--history-bars", "5", "--state", state, "--latency-ms", "1")
    with _sigma_venue(*options) as (process, url):
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        assert any("to trade on binance: SIGMA_VENUE=binance" in line for line in lines), lines
        status, body = asyncio.run(_call("GET", f"{url}/sigma/faults"))
        assert status == 200 and body["latency_ms"] == 1


async def _first_answer(port: int, request: bytes) -> bytes:
    """The bytes a fresh connection to ``port`` gets for ``request`` until the venue closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        writer.close()


async def _connection_bounds_hold(port: int) -> None:
    # One connection from this address is all --max-connections-per-client 1 admits; it
    # sends nothing, so --head-seconds 0.5 cuts it with a 408 (the default is 10 s).
    idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
    try:
        refused = await _first_answer(port, b"GET /api/v3/ping HTTP/1.1\r\nHost: v\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 503"), refused
        started = asyncio.get_running_loop().time()
        cut = await asyncio.wait_for(idle_reader.read(), timeout=20)
        assert cut.startswith(b"HTTP/1.1 408"), cut
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        idle.close()


def test_sigma_venue_takes_its_connection_bounds_as_options() -> None:
    bounds = ("--max-connections", "4", "--max-connections-per-client", "1")
    bounds += ("--head-seconds", "0.5", "--body-seconds", "0.5")
    with _sigma_venue("--history-bars", "0", *bounds) as (_, url):
        asyncio.run(_connection_bounds_hold(int(url.rsplit(":", 1)[1])))


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--max-connections", "0", "max_connections"),
        ("--max-connections-per-client", "0", "max_connections_per_client"),
        ("--head-seconds", "0", "head_seconds"),
        ("--body-seconds", "-1", "body_seconds"),
    ],
)
def test_a_bad_connection_bound_is_refused_naming_it(option: str, value: str, field: str) -> None:
    from typer.testing import CliRunner

    from sigma.cli.main import app

    result = CliRunner().invoke(app, ["venue", option, value])
    assert result.exit_code == 2
    assert f"{field}: Input should be greater than" in result.output


def test_sigma_venue_refuses_a_bad_option_with_the_reason() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sigma.cli.main", "venue", "--account", "binance:k:s:USDT"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "is not ASSET=AMOUNT" in result.stderr


async def test_sigma_up_runs_the_venue_as_a_component(tmp_path: Path) -> None:
    from sigma.bootstrap import App
    from sigma.config import load_settings
    from sigma.runtime.services import Services

    path = tmp_path / "venue.yaml"
    path.write_text("port: 0\nsource: manual\nhistory_bars: 0\n")
    app = App(load_settings(database_url=f"sqlite:///{tmp_path / 'sigma.db'}", venue_config=path))
    system = Services(app, components=("venue",))
    stop = asyncio.Event()
    runner = asyncio.create_task(system.run(stop))
    try:
        await _until(system.ready.is_set, "the system ready", timeout=30)
        assert system.venue is not None
        status, body = await _call("GET", f"{system.venue.http_url}/sigma/health")
        assert status == 200 and "binance" in body["venues"]
        # The component trades like the command: a demo account is funded.
        order = system.venue.binance.place(
            "sigma-demo-key",
            OrderRequest("BTCUSDT", Side.BUY, OrderType.MARKET, qty=Decimal("0.001")),
        )
        assert order.status is OrderStatus.FILLED
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
        app.close()


def test_venue_config_is_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        VenueConfig.model_validate({"prot": 1})


async def test_protocol_settings_from_the_file_reach_both_front_ends(tmp_path: Path) -> None:
    # The YAML's binance.settings and upbit.settings, through build_config, are what the
    # running venue enforces, seen through real sockets.
    path = tmp_path / "venue.yaml"
    path.write_text(
        """
port: 0
source: manual
history_bars: 0
binance:
  maker_fee: 0.001
  taker_fee: 0.001
  settings: {weight_limit: 1200, weight_window_ms: 10000, orders_per_10s: 7}
upbit:
  maker_fee: 0.0005
  taker_fee: 0.0005
  settings: {min_order_total: "6000", rest_book_depth: 3}
""",
        encoding="utf-8",
    )
    config = build_config(path, ["upbit:uk:us:KRW=1000000"], None, {})
    async with VenueServer(config).serve() as server, aiohttp.ClientSession() as http:
        url = f"{server.http_url}/api/v3/exchangeInfo"
        async with http.get(url) as reply:
            info = await reply.json()
            assert reply.headers["X-MBX-USED-WEIGHT-10S"] == "20"
        limits = {(r["rateLimitType"], r["intervalNum"]): r["limit"] for r in info["rateLimits"]}
        assert limits[("REQUEST_WEIGHT", 10)] == 1200
        assert limits[("ORDERS", 10)] == 7
        async with http.get(f"{server.http_url}/v1/orderbook?markets=KRW-BTC") as reply:
            [book] = await reply.json()
        assert len(book["orderbook_units"]) == 3
        upbit = ccxt_async.upbit({**server.ccxt_config("upbit"), "apiKey": "uk", "secret": "us"})
        try:
            chance = await upbit.private_get_orders_chance({"market": "KRW-BTC"})
            assert chance["market"]["bid"]["min_total"] == "6000"
            # 5,500 KRW: above Upbit's 5,000 but under this venue's 6,000
            with pytest.raises(ccxt_async.ExchangeError, match="under_min_total_bid"):
                await upbit.create_order("BTC/KRW", "limit", "buy", 0.00005, 110_000_000)
            order = await upbit.create_order("BTC/KRW", "limit", "buy", 0.0001, 110_000_000)
            assert order["status"] == "open"
        finally:
            await upbit.close()
