"""The local exchange's Upbit front end: Upbit's public REST and WebSocket protocol on loopback,
so the unchanged ``ccxt.async_support.upbit`` and ``ccxt.pro.upbit`` trade with the venue once
their ``urls`` point here (:func:`ccxt_config`).

Routes: quotation and exchange REST under ``/v1`` (:mod:`upbit_rest`), streams at
``/websocket/v1`` and ``/websocket/v1/private`` (:mod:`upbit_ws`), JWT checks
(:mod:`upbit_auth`), wire shapes and error names (:mod:`upbit_wire`), settings and the KRW
markets (:mod:`upbit_settings`).

What is modelled, after Upbit's documentation (docs.upbit.com, KR) and the responses ccxt's
parsers quote, and what is not:

| Modelled | Upbit's documented behaviour it follows | Not modelled |
|---|---|---|
| JWT auth: ``access_key``, ``nonce``, ``query_hash`` (SHA512 of the unescaped query, or of the JSON body as ``k=v&...``), HS256/HS512 | 401 ``jwt_verification``, ``invalid_access_key``, ``invalid_query_payload``, ``nonce_used`` | ``expired_access_key`` (keys never expire), ``no_authorization_i_p``, ``out_of_scope`` (keys have every permission); tokens carry no time, so clock skew changes nothing |
| Rate limits per group: quotation 10/s per IP, ``default`` 30/s and ``order`` 8/s per account | ``Remaining-Req: group=...; min=...; sec=...``; 429 when exceeded, 418 (ban) when the client keeps going | Origin-header limits, growing ban times, pocket (sub-account) limits; 429/418 bodies are plain text (Upbit documents no JSON body for them; ccxt maps the status) |
| Orders ``limit`` (GTC, ``ioc``, ``fok``, ``post_only``), ``price`` (market bid spending KRW), ``market`` (market ask by volume), ``best`` (ioc/fok) | Upbit's order types and ``time_in_force`` | ``smp_type`` (self-trade prevention: participants never meet), ``orders/test``, ``cancel_and_new``, batch cancels |
| No stop orders: any other ``ord_type`` is refused with 400 ``validation_error`` | Upbit's public order API has no stop or trigger orders | reservation (``watch``) orders |
| Tick ladder, 0.00000001 volume step, 5,000 KRW minimum total, 1,000,000,000 maximum | 400 ``invalid_price_bid/ask``, ``invalid_volume``, ``under_min_total_bid/ask`` ("최소주문금액 이상으로 주문해주세요"), ``create_bid/ask_error`` | per-asset ladder exceptions (USDT, the 16 coins at 100-1,000 KRW) |
| Balances: a bid holds price x volume plus the fee (KRW), an ask its volume; fees in KRW on both sides | ``insufficient_funds_bid/ask``; ``reserved_fee``, ``remaining_fee``, ``paid_fee``, ``locked`` | ``avg_buy_price`` (always "0") |
| Order states ``wait``/``done``/``cancel``; a market bid that could not spend every won ends ``cancel`` | "시장가 매수 ... 주문 잔량이 발생하는 경우 ... cancel" | ``watch``, ``prevented`` |
| ``identifier``: unique per account forever | an identifier cannot be reused, even after its order ended | |
| ``DELETE /v1/order`` answers the order as it was when the cancel was accepted (``wait``) | Upbit's cancel is asynchronous | |
| Every refusal is an error object: an unknown path ``404 not_found``, a method a path does not take ``405 method_not_allowed``, a body over 64 KiB ``413 payload_too_large``, a request line over 8190 bytes ``414 uri_too_long``, a header over 8190 bytes or over 128 headers ``431 request_header_fields_too_large``, a malformed head ``400 bad_request``, a failure ``500 server_error``; times (``to``, ``start_time``) in epoch ms take ASCII digits only, numbers plain ASCII digits with a fraction or an exponent (``1_0``, `` 5 `` and ``٣`` are ``validation_error``, not 10, 5 and 3) | "404 Not Found 요청한 리소스를 찾을 수 없습니다."; errors as ``{"error": {"name", "message"}}`` | the names for 405/413/414/431/500 are the venue's (Upbit documents none) |
| Quotation: market/all, ticker, ticker/all, orderbook, trades/ticks, candles minutes/days/weeks/months/years (``to``, ``count``) | numbers printed as JSON numbers, newest first, Upbit's day from 00:00 UTC | candles/seconds, ``orderbook/instruments``, ``level`` aggregation, trade ``to``/``days_ago`` |
| Streams: ticker, trade, orderbook (SNAPSHOT, then REALTIME), myOrder (``wait``, ``trade``, ``done``, ``cancel``), myAsset; binary frames; ``PING`` -> ``{"status":"UP"}`` | Upbit's request list (ticket, type fields, format) replaces the subscriptions | SIMPLE and JSON_LIST formats (refused with ``WRONG_FORMAT``; ccxt uses DEFAULT), ``candle.*``, idle timeout |
| Stream limits: ``websocket-connect`` 5 connection requests a second per IP (per account on ``/private``), ``websocket-message`` 5 data requests a second and 100 a minute per connection | a connection request over the limit is refused like a REST request (429, then 418 with ``Remaining-Req: group=websocket-connect``) | the answer to a data request over the limit is the venue's (Upbit documents the limit, not the answer): ``TOO_MANY_REQUESTS``, then the connection closed with 1008 for a client that keeps sending |

Faults: latency on every REST reply and stream frame; ``error_5xx`` answers 503 (a gateway's
page, not an Upbit error, so ccxt raises ``ExchangeNotAvailable``); ``rate_limit_storm`` 429s;
``drop_after_accept`` books an order then closes the connection unanswered; ``stale_streams``
stops public market frames (private ones still flow).
"""  # noqa: E501 (a markdown table's rows cannot wrap)

from __future__ import annotations

from typing import Any

from aiohttp import web

from sigma.venues.emulator.faults import Faults
from sigma.venues.emulator.upbit_rest import UpbitRest
from sigma.venues.emulator.upbit_settings import UpbitSettings, default_markets
from sigma.venues.emulator.upbit_wire import UpbitError
from sigma.venues.emulator.upbit_ws import UpbitStreams
from sigma.venues.emulator.venue import Venue

__all__ = ["UpbitFrontEnd", "UpbitSettings", "ccxt_config", "default_markets"]


#: status -> (error name, message) of a request no route answered
_ERRORS = {
    404: ("not_found", "요청한 리소스를 찾을 수 없습니다."),
    405: ("method_not_allowed", ""),
    413: ("payload_too_large", ""),
    414: ("uri_too_long", ""),
    431: ("request_header_fields_too_large", ""),
}


class UpbitFrontEnd:
    """Upbit's protocol over one :class:`Venue`: REST routes and streams on an aiohttp app."""

    def __init__(self, venue: Venue, faults: Faults, settings: UpbitSettings | None = None) -> None:
        self.venue = venue
        self.faults = faults
        self.settings = settings or UpbitSettings()
        self.rest = UpbitRest(venue, faults, self.settings)
        self.streams = UpbitStreams(venue, faults, self.settings, self.rest.jwt)

    def install(self, app: web.Application) -> None:
        """Add Upbit's REST and WebSocket routes to ``app``."""
        self.rest.install(app)
        self.streams.install(app)

    async def close(self) -> None:
        """Close the front end's WebSocket connections cleanly."""
        await self.streams.close()

    def disconnect_streams(self) -> int:
        """Abort every WebSocket connection; returns how many were open."""
        return self.streams.disconnect()

    def error_reply(self, path: str, status: int, message: str) -> web.Response | None:
        """Upbit's error object for a request under ``/v1`` or ``/websocket`` that no route
        answered: Upbit documents 404 as "요청한 리소스를 찾을 수 없습니다." (the resource
        asked for was not found) and gives every error a ``name`` and a ``message``."""
        if not path.startswith(("/v1/", "/websocket")):
            return None
        name, text = _ERRORS.get(status, ("server_error" if status >= 500 else "bad_request", ""))
        return UpbitError(status, name, text or message).reply()


def ccxt_config(http_url: str, ws_url: str) -> dict[str, Any]:
    """The config for ``ccxt.async_support.upbit`` / ``ccxt.pro.upbit`` that sends them to a
    venue serving on ``http_url`` and ``ws_url``. ccxt appends ``/v1/<path>`` to the REST URLs
    and ``/private`` to the stream URL for private streams; the caller adds the keys."""
    return {
        "urls": {
            "api": {
                "public": http_url,
                "private": http_url,
                "ws": f"{ws_url}/websocket/v1",
            }
        }
    }
