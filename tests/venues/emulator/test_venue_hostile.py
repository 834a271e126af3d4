"""Malformed and hostile requests, over real sockets: each gets the protocol's own JSON error
(never a 500, a plain-text page or a hang), and none changes a balance or an order."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from binance_helpers import (
    balance,
    binance,
    call,
    front,
    limit_order,
    request,
    signed_query,
    socket,
)
from conftest import MakeVenue
from upbit_helpers import call as upbit_call
from venue_helpers import BINANCE_KEY, UPBIT_KEY

from sigma.venues.emulator.server import VenueServer

D = Decimal
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KEYED = {"X-MBX-APIKEY": BINANCE_KEY}


def _books(server: VenueServer) -> tuple[Any, ...]:
    """Every balance and order of both test accounts that trade: what no refusal may change."""
    binance_account = server.binance.account(BINANCE_KEY)
    upbit_account = server.upbit.account(UPBIT_KEY)
    assert binance_account is not None and upbit_account is not None
    return (
        {a: binance_account.balance(a) for a in ("USDT", "BTC", "ETH")},
        {a: upbit_account.balance(a) for a in ("KRW", "BTC", "ETH")},
        [o.snapshot() for o in server.binance.orders(BINANCE_KEY, "BTCUSDT")],
        [o.snapshot() for o in server.upbit.orders(UPBIT_KEY, None)],
    )


async def _raw(server: VenueServer, method: str, path: str, **kwargs: Any) -> tuple[int, str, Any]:
    """(status, content type, JSON body) of a raw request, answered within five seconds."""
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.request(method, f"{server.http_url}{path}", **kwargs) as reply,
    ):
        return reply.status, reply.content_type, await reply.json(content_type=None)


# ---------------------------------------------------------------- Binance REST
@pytest.mark.parametrize(
    ("name", "value", "legal"),
    [
        # int(Decimal("1e99999999")) would have held the event loop, and every client, for
        # minutes; NaN was a 500.
        ("timestamp", "1e99999999", "^[0-9]{1,20}$"),
        ("timestamp", "NaN", "^[0-9]{1,20}$"),
        ("timestamp", "1.5", "^[0-9]{1,20}$"),
        ("recvWindow", "1e99999999", r"^[0-9]{1,20}(\.[0-9]{1,3})?$"),
        ("recvWindow", "NaN", r"^[0-9]{1,20}(\.[0-9]{1,3})?$"),
        ("recvWindow", "-5", r"^[0-9]{1,20}(\.[0-9]{1,3})?$"),
    ],
)
async def test_timing_parameters_outside_their_pattern_are_refused_at_once(
    venue_server: VenueServer, name: str, value: str, legal: str
) -> None:
    before = _books(venue_server)
    started = time.monotonic()
    status, body, _ = await asyncio.wait_for(
        call(venue_server, "POST", "order", {**limit_order(), name: value}, signed=True), 5
    )
    assert time.monotonic() - started < 2
    assert (status, body) == (
        400,
        {
            "code": -1100,
            "msg": f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.",
        },
    )
    assert _books(venue_server) == before
    # A recvWindow with up to three decimals is Binance's (rest-api.md "Timing security").
    status, _, _ = await call(
        venue_server, "GET", "account", {"recvWindow": "6000.346"}, signed=True
    )
    assert status == 200


async def test_a_body_that_is_not_utf8_is_refused_without_trading(
    venue_server: VenueServer,
) -> None:
    before = _books(venue_server)
    body = signed_query(limit_order()).encode() + b"&note=\xff\xfe"
    status, kind, reply = await _raw(
        venue_server, "POST", "/api/v3/order", data=body, headers={**KEYED, **FORM}
    )
    assert (status, kind) == (400, "application/json")
    assert reply == {"code": -1100, "msg": "Illegal characters found in a parameter."}
    assert _books(venue_server) == before


async def test_only_a_form_body_carries_parameters(venue_server: VenueServer) -> None:
    # "in the request body with content type application/x-www-form-urlencoded" (rest-api.md)
    before = _books(venue_server)
    body = signed_query(limit_order(newClientOrderId="plain"))
    for content_type in ("text/plain", "application/json"):
        status, _, reply = await _raw(
            venue_server,
            "POST",
            "/api/v3/order",
            data=body,
            headers={**KEYED, "Content-Type": content_type},
        )
        assert (status, reply["code"]) == (400, -1102), content_type
        assert "'signature'" in reply["msg"]
    assert _books(venue_server) == before
    status, _, reply = await _raw(
        venue_server, "POST", "/api/v3/order", data=body, headers={**KEYED, **FORM}
    )
    assert (status, reply["clientOrderId"]) == (200, "plain")


async def test_a_body_over_the_size_limit_is_a_json_413(venue_server: VenueServer) -> None:
    before = _books(venue_server)
    body = signed_query(limit_order()) + "&pad=" + "x" * 70_000
    status, kind, reply = await _raw(
        venue_server, "POST", "/api/v3/order", data=body, headers={**KEYED, **FORM}
    )
    assert (status, kind, reply["code"]) == (413, "application/json", -1000)
    assert "Maximum request body size" in reply["msg"]
    status, _, reply = await _raw(
        venue_server, "POST", "/v1/orders", data=b"{" + b" " * 70_000 + b"}"
    )
    assert (status, reply["error"]["name"]) == (413, "payload_too_large")
    assert _books(venue_server) == before


async def test_unknown_paths_and_methods_answer_binance_json(venue_server: VenueServer) -> None:
    unsupported = {"code": -1020, "msg": "This operation is not supported."}
    for method, path, status in (
        ("GET", "/api/v3/nope", 404),
        ("GET", "/sapi/v1/capital/config/getall", 404),
        ("PUT", "/api/v3/order", 405),
        ("PATCH", "/api/v3/time", 405),
    ):
        assert await _raw(venue_server, method, path) == (status, "application/json", unsupported)
    # A stream path asked without the WebSocket upgrade.
    status, kind, reply = await _raw(venue_server, "GET", "/ws")
    assert (status, kind, reply["code"]) == (400, "application/json", -1000)
    # ccxt raises its spot mapping of -1020.
    async with binance(venue_server) as ex:
        with pytest.raises(ccxt_async.BadRequest, match="-1020"):
            await ex.request("nope", ["public"])


async def test_a_symbol_listed_twice_is_refused(venue_server: VenueServer) -> None:
    status, body, _ = await call(
        venue_server, "GET", "ticker/price", {"symbols": '["BTCUSDT","BTCUSDT"]'}
    )
    assert (status, body) == (
        400,
        {"code": -1151, "msg": "Symbol is present multiple times in the list."},
    )


@pytest.mark.parametrize(
    "override",
    [
        {"quantity": "abc"},
        {"quantity": "1e400"},
        {"quantity": "NaN"},
        {"price": "-1"},
        {"quantity": "0.123456789"},  # -1111
        {"quantity": "0.000001"},  # LOT_SIZE
        {"price": "90000.001"},  # off the 0.01 tick: PRICE_FILTER
        {"symbol": "DOGEUSDT"},
        {"timeInForce": "NOPE"},
        {"newOrderRespType": "NOPE"},
        {"quantity": "1000"},  # more than the account holds
    ],
)
async def test_malformed_orders_change_nothing(
    venue_server: VenueServer, override: dict[str, str]
) -> None:
    before = _books(venue_server)
    async with binance(venue_server) as ex:
        with pytest.raises(ccxt_async.ExchangeError):
            await ex.private_post_order({**limit_order(), **override})
    assert _books(venue_server) == before
    assert balance(venue_server, "USDT") == (D(100_000), D(0))


async def test_a_handler_failure_is_a_json_500_in_the_protocols_shape(
    venue_server: VenueServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(venue_server.binance, "book", broken)
    monkeypatch.setattr(venue_server.upbit, "book", broken)
    status, kind, reply = await _raw(venue_server, "GET", "/api/v3/depth?symbol=BTCUSDT")
    assert (status, kind, reply["code"]) == (500, "application/json", -1000)
    status, kind, reply = await _raw(venue_server, "GET", "/v1/orderbook?markets=KRW-BTC")
    assert (status, kind, reply["error"]["name"]) == (500, "application/json", "server_error")
    # The venue goes on serving.
    assert (await _raw(venue_server, "GET", "/api/v3/ping"))[0] == 200


async def test_a_stream_handler_failure_closes_that_connection_only(
    venue_server: VenueServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the upgrade there is no reply to write: the connection is closed, and the venue
    # goes on serving.
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(front(venue_server).streams, "_subscribe", broken)
    async with socket(venue_server, "/ws/btcusdt@trade") as ws:
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert (await _raw(venue_server, "GET", "/api/v3/ping"))[0] == 200


# ---------------------------------------------------------------- Binance streams
async def test_a_stream_connection_over_five_messages_a_second_is_closed(
    venue_server: VenueServer,
) -> None:
    # "WebSocket connections have a limit of 5 incoming messages per second ... A connection
    # that goes beyond the limit will be disconnected" (web-socket-streams.md)
    async with socket(venue_server, "/ws") as ws:
        for rid in range(6):
            await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": rid})
        answered = []
        message = await ws.receive(timeout=5)
        while message.type is aiohttp.WSMsgType.TEXT:
            answered.append(message.json()["id"])
            message = await ws.receive(timeout=5)
        assert answered == [0, 1, 2, 3, 4]  # the five within the limit were answered
        # Clients of the real venue report "close 1008 (policy violation): Too many
        # requests" (binance/binance-connector-go#90, binance/binance-connector-js#530).
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (1008, "Too many requests")


async def test_five_messages_a_second_keep_a_stream_connection(venue_server: VenueServer) -> None:
    async with socket(venue_server, "/ws") as ws:
        for second in range(2):
            for n in range(5):
                rid = second * 5 + n
                reply = await request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": rid})
                assert reply == {"result": [], "id": rid}
            if second == 0:
                await asyncio.sleep(1.05)  # the next second of the rate limit
        assert not ws.closed


async def test_a_stream_request_without_a_method(venue_server: VenueServer) -> None:
    async with socket(venue_server, "/ws") as ws:
        reply = await request(ws, {"id": 7, "params": []})
    assert reply == {
        "error": {"code": 2, "msg": "Invalid request: missing field `method`"},
        "id": 7,
    }


# ---------------------------------------------------------------- Upbit
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/candles/minutes/1", {"market": "KRW-BTC", "to": "²"}, "to"),
        ("/v1/orders/closed", {"start_time": "²"}, "to"),
    ],
)
async def test_upbit_times_in_other_digits_are_a_validation_error(
    venue_server: VenueServer, path: str, params: dict[str, str], field: str
) -> None:
    # "²".isdigit() is true and int("²") raises: it was a 500.
    status, body, _ = await upbit_call(venue_server, "GET", path, params)
    assert status == 400
    assert body == {
        "error": {
            "name": "validation_error",
            "message": f"{field} is missing, {field} does not have a valid value",
        }
    }


async def test_upbit_unknown_paths_and_methods_answer_upbit_json(
    venue_server: VenueServer,
) -> None:
    status, kind, reply = await _raw(venue_server, "GET", "/v1/nope")
    assert (status, kind) == (404, "application/json")
    assert reply == {"error": {"name": "not_found", "message": "요청한 리소스를 찾을 수 없습니다."}}
    status, kind, reply = await _raw(venue_server, "PUT", "/v1/orders")
    assert (status, kind, reply["error"]["name"]) == (405, "application/json", "method_not_allowed")
    # The admin routes and any other path: the admin routes' shape.
    status, kind, reply = await _raw(venue_server, "GET", "/sigma/nope")
    assert (status, kind, reply) == (404, "application/json", {"error": "404: Not Found"})
    status, kind, reply = await _raw(venue_server, "GET", "/")
    assert (status, kind) == (404, "application/json")
    # Upbit's stream path asked without the WebSocket upgrade.
    status, kind, reply = await _raw(venue_server, "GET", "/websocket/v1")
    assert (status, kind, reply["error"]["name"]) == (400, "application/json", "bad_request")


async def test_upbit_malformed_orders_change_nothing(make_venue_server: MakeVenue) -> None:
    # More orders than Upbit's eight a second: the limit is not what this test is about.
    async with make_venue_server(upbit={"order_per_window": 100}) as venue_server:
        await _upbit_malformed_orders(venue_server)


async def _upbit_malformed_orders(venue_server: VenueServer) -> None:
    before = _books(venue_server)
    order = {"market": "KRW-BTC", "side": "bid", "ord_type": "limit", "price": "120000000"}
    # "1_0", " 0.01 " and "٣" were read by Decimal() as 10, 0.01 and 3: a typo made an order
    # of another size.
    for volume in ("abc", "-1", "NaN", "1e999999999", "0.000000001", "10", "1_0", " 0.01 ", "٣"):
        status, body, _ = await upbit_call(
            venue_server, "POST", "/v1/orders", body={**order, "volume": volume}
        )
        assert status == 400 and "name" in body["error"], volume
    async with aiohttp.ClientSession() as http:
        query = urlencode(order)
        async with http.post(f"{venue_server.http_url}/v1/orders?{query}", data=b"\xff") as r:
            assert r.status in (400, 401) and (await r.json())["error"]["name"]
    assert _books(venue_server) == before
    for name, value in (("count", "1_0"), ("count", " 5"), ("count", "٣")):
        status, body, _ = await upbit_call(
            venue_server, "GET", "/v1/trades/ticks", {"market": "KRW-BTC", name: value}, auth=None
        )
        assert (status, body["error"]["name"]) == (400, "validation_error"), value
    # A JSON number is a number: 0.01 BTC.
    status, body, _ = await upbit_call(
        venue_server, "POST", "/v1/orders", body={**order, "volume": 0.01}
    )
    assert (status, body["volume"]) == (201, "0.01")
