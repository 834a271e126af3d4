"""Requests the HTTP parser refuses (a request line or a header over 8190 bytes, too many
headers, a malformed header) answer in the protocol's JSON with a status that says why, over
real sockets and through real ccxt clients: aiohttp's plain-text 400 reached ccxt as an
anonymous ExchangeNotAvailable."""

from __future__ import annotations

import asyncio
import json

import ccxt.async_support as ccxt_async
import pytest
from binance_helpers import binance
from upbit_helpers import upbit

from sigma.venues.emulator.server import VenueServer

LONG = "A" * 9000
LINE = "request line over 8190 bytes"
HEADER = "request header over 8190 bytes"


Answer = tuple[int, str, object]


async def _answer(reader: asyncio.StreamReader) -> Answer:
    """(status, content type, JSON body) of the next answer on a connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status_line, *lines = head.decode().strip().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers["content-type"], json.loads(body)


async def _exchange(server: VenueServer, *rounds: list[bytes]) -> list[Answer]:
    """Per round, send its parts on one connection, each as its own write, and read one
    answer; then the venue must close the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    answers = []
    for parts in rounds:
        for part in parts:
            writer.write(part)
            await writer.drain()
        answers.append(await _answer(reader))
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    writer.close()
    return answers


def _get(path: str, *headers: str, close: bool = True) -> bytes:
    extra = [*headers, "Connection: close"] if close else list(headers)
    return "\r\n".join([f"GET {path} HTTP/1.1", "Host: venue", *extra, "", ""]).encode()


def _binance(status: int, msg: str) -> Answer:
    return status, "application/json", {"code": -1000, "msg": msg}


def _upbit(status: int, name: str, message: str) -> Answer:
    return status, "application/json", {"error": {"name": name, "message": message}}


@pytest.mark.parametrize(
    ("request_bytes", "answer"),
    [
        (_get(f"/api/v3/ticker/price?symbol={LONG}"), _binance(414, LINE)),
        (_get(f"/v1/ticker?markets={LONG}"), _upbit(414, "uri_too_long", LINE)),
        (_get(f"/sigma/health?x={LONG}"), (414, "application/json", {"error": LINE})),
        (
            _get("/api/v3/time", f"X-Big: {LONG}"),
            _binance(431, HEADER),
        ),
        (
            _get("/v1/market/all", f"X-{LONG}: 1"),
            _upbit(431, "request_header_fields_too_large", HEADER),
        ),
        (
            _get("/v1/market/all", *(f"X-H{i}: 1" for i in range(129))),
            _upbit(431, "request_header_fields_too_large", "more than 128 request headers"),
        ),
        (
            # After a kept-alive request in the same read: the refused one's path counts.
            _get("/api/v3/time", close=False) + _get("/v1/market/all", f"X-Big: {LONG}"),
            _upbit(431, "request_header_fields_too_large", HEADER),
        ),
        (
            _get("/api/v3/time", "no colon here"),
            _binance(400, "malformed request: Invalid header token"),
        ),
    ],
)
async def test_a_request_the_parser_refuses_answers_in_the_protocols_json(
    venue_server: VenueServer, request_bytes: bytes, answer: Answer
) -> None:
    assert await _exchange(venue_server, [request_bytes]) == [answer]


async def test_the_refused_request_is_named_by_its_own_line_not_the_ones_before(
    venue_server: VenueServer,
) -> None:
    # A Binance request served on a kept-alive connection, then an Upbit one whose line
    # arrives in pieces and is too long: Upbit's shape.
    served, refused = await _exchange(
        venue_server,
        [_get("/api/v3/time", close=False)],
        [b"GET /v1/ticker?markets=", LONG.encode(), b" HTTP/1.1\r\nHost: venue\r\n\r\n"],
    )
    assert served[0] == 200 and "serverTime" in served[2]  # type: ignore[operator]
    assert refused == _upbit(414, "uri_too_long", LINE)


async def test_ccxt_gets_the_venues_error_for_a_request_line_too_long(
    venue_server: VenueServer,
) -> None:
    async with binance(venue_server) as client:
        with pytest.raises(ccxt_async.OperationFailed, match=LINE):
            await client.public_get_ticker_price({"symbol": LONG})
    async with upbit(venue_server) as client:
        with pytest.raises(ccxt_async.ExchangeError, match="uri_too_long") as refused:
            await client.public_get_ticker({"markets": LONG})
        assert not isinstance(refused.value, ccxt_async.ExchangeNotAvailable)
