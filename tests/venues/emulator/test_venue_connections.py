"""`sigma venue` bounds its connections as the API does: a head sent byte by byte, or a body
never finished, is answered 408 and closed (aiohttp held both for an hour), and a connection
beyond the limits is answered 503; each in the shape of the protocol whose path was asked
for, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from binance_helpers import binance
from conftest import MakeVenue
from venue_helpers import BINANCE_KEY, UPBIT_KEY

from sigma.venues.emulator.connections import RETRY_AFTER_SECONDS

Answer = tuple[int, dict[str, str], object]
DEADLINE = 10.0


async def _answer(reader: asyncio.StreamReader, read: bytes = b"") -> Answer:
    """(status, headers, JSON body) of the next answer on a connection, of which `read` was
    read already; then the connection must close."""
    head = read + await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=DEADLINE)
    status_line, *lines = head.decode().strip().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    assert await asyncio.wait_for(reader.read(), timeout=DEADLINE) == b""
    return int(status_line.split()[1]), headers, json.loads(body)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def test_a_head_sent_byte_by_byte_is_cut_with_408_in_binances_shape(
    make_venue_server: MakeVenue,
) -> None:
    async with make_venue_server(head_seconds=0.5) as server:
        reader, writer = await _connect(server.port)
        started = time.monotonic()
        for byte in b"GET /api/v3/time HTTP/1.1\r\nHost: v":
            writer.write(bytes([byte]))
            await writer.drain()
            # A byte every 50 ms, until the venue answers (writing on would meet a closed
            # socket).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.readuntil(b"HTTP/1.1 "), timeout=0.05)
                break
        status, headers, body = await _answer(reader, b"HTTP/1.1 ")
        assert time.monotonic() - started < DEADLINE
        assert (status, headers["content-type"]) == (408, "application/json")
        assert body == {"code": -1000, "msg": "request line and headers not received in time"}
        writer.close()


async def test_a_connection_that_sends_nothing_is_cut_too(make_venue_server: MakeVenue) -> None:
    async with make_venue_server(head_seconds=0.3) as server:
        reader, writer = await _connect(server.port)
        status, _, body = await _answer(reader)
        assert (status, body) == (408, {"error": "request line and headers not received in time"})
        writer.close()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            "POST /v1/orders HTTP/1.1\r\nContent-Type: application/json\r\n",
            {"error": {"name": "bad_request", "message": "request body not received in time"}},
        ),
        (
            "POST /api/v3/order HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
            {"code": -1000, "msg": "request body not received in time"},
        ),
    ],
)
async def test_a_body_never_finished_is_cut_with_408_and_nothing_is_placed(
    make_venue_server: MakeVenue, head: str, expected: object
) -> None:
    async with make_venue_server(body_seconds=0.5) as server:
        reader, writer = await _connect(server.port)
        writer.write(f"{head}Host: v\r\nContent-Length: 200\r\n\r\nsymbol=BTC".encode())
        await writer.drain()
        status, _, body = await _answer(reader)
        assert (status, body) == (408, expected)
        assert not server.binance.orders(BINANCE_KEY) and not server.upbit.orders(UPBIT_KEY)
        writer.close()


async def test_requests_on_time_are_served_on_one_connection(
    make_venue_server: MakeVenue,
) -> None:
    async with make_venue_server(head_seconds=0.5, body_seconds=0.5) as server:
        reader, writer = await _connect(server.port)
        for _ in range(3):
            writer.write(b"GET /api/v3/ping HTTP/1.1\r\nHost: v\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=DEADLINE)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            assert await reader.readexactly(length) == b"{}"
            # Idle between requests longer than a head may take: the clock starts again with
            # the next request's first byte.
            await asyncio.sleep(0.7)
        writer.close()


async def test_a_connection_beyond_the_per_client_limit_is_answered_503(
    make_venue_server: MakeVenue,
) -> None:
    async with make_venue_server(max_connections_per_client=1) as server:
        _, held = await _connect(server.port)
        await asyncio.sleep(0.1)  # the venue has counted it
        reader, writer = await _connect(server.port)
        writer.write(b"GET /v1/market/all HTTP/1.1\r\nHost: v\r\n\r\n")
        status, headers, body = await _answer(reader)
        assert (status, headers["retry-after"]) == (503, str(RETRY_AFTER_SECONDS))
        assert body == {
            "error": {"name": "server_error", "message": "too many connections: try again later"}
        }
        writer.close()
        held.close()
        # Once the held connection is gone, a client is served again (ccxt, its own pool).
        deadline = time.monotonic() + DEADLINE
        async with binance(server) as client:
            while True:
                try:
                    assert await client.fetch_time() > 0
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.1)
