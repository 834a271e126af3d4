"""Strict JSON request bodies: what Python's parser takes silently is refused with a 422.

`json.loads`, which FastAPI parses bodies with, accepts `NaN` and `Infinity` (not JSON),
reads `1e400` as infinity, keeps the last of duplicate keys (a proxy or an audit log reading
the first one sees another request than the API acts on), takes `"\ud800"` (half of a
UTF-16 pair, which no encoder writes back) and fails with a RecursionError on a deeply nested
document. A stored `NaN` then comes back as `null`, or PostgreSQL refuses it: the client never
learns its value was changed. This middleware checks a JSON body before
any route sees it and passes the untouched bytes on; a body of another media type than JSON
or a form is answered 415 (FastAPI would only say the body "should be a valid dictionary").
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The deepest legitimate body (a preference holding a small table) nests a few levels.
MAX_BODY_DEPTH = 32
# Checking a body costs about what parsing it costs again (a megabyte: tenths of a second);
# past this size it runs in a worker thread, so the event loop keeps serving meanwhile.
INLINE_CHECK_BYTES = 16 * 1024
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class BodyError(ValueError):
    """What is wrong with a JSON body (the 422's detail)."""


def _is_json(media_type: str) -> bool:
    # What FastAPI parses as JSON (with its strict content type: never a body without one).
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _no_constant(name: str) -> Any:
    raise BodyError(f"body: {name} is not a JSON number (numbers must be finite)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"body: number {text} is out of range (numbers must be finite)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BodyError(f"body: key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def check_json_body(body: bytes) -> None:
    """Raise BodyError (its message the detail) unless `body` is strict JSON: UTF-8 (or
    another encoding JSON allows), finite numbers only, no duplicate keys, nested at most
    `MAX_BODY_DEPTH` levels deep, no string escaping half of a UTF-16 surrogate pair. An
    empty body passes (the route says what is missing)."""
    if not body:
        return
    try:
        text = body.decode(json.detect_encoding(body))
    except UnicodeDecodeError as exc:
        raise BodyError(
            f"body: not valid {exc.encoding.upper()} text at byte {exc.start}"
        ) from None
    try:
        parsed = json.loads(
            text,
            parse_constant=_no_constant,
            parse_float=_finite,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        # Located as FastAPI locates it: "body.<character offset>".
        raise BodyError(
            f"body.{exc.pos}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise BodyError(f"body: JSON nested more than {MAX_BODY_DEPTH} levels deep") from None
    if _too_deep(text):
        raise BodyError(f"body: JSON nested more than {MAX_BODY_DEPTH} levels deep")
    try:
        json.dumps(parsed, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        # An escape such as "\ud800" alone: valid JSON syntax, but no text. Stored, it made
        # every later answer holding it a 500 (no encoder writes it).
        lone = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise BodyError(f"body: a string holds {lone}, half of a UTF-16 pair: not text") from None


_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+')
_INNERMOST = re.compile(r"\[\]|\{\}")


def _too_deep(text: str) -> bool:
    """True when the valid JSON `text` nests deeper than `MAX_BODY_DEPTH`: its brackets
    outside strings, innermost pairs peeled off once per level (regular expressions, so a
    megabyte costs milliseconds rather than a Python loop over every character)."""
    brackets = _NOT_BRACKETS.sub("", text)
    for _ in range(MAX_BODY_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


class StrictJsonMiddleware:
    """Checks request bodies with `check_json_body` (422) and their media type (415) before
    the route reads them; pure ASGI, requests without a body pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer a request's body, check it, then hand the same bytes to the route."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone (or cut off by the body limit)
                await self.app(scope, _replay(chunks, message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if _is_json(media_type):
            try:
                if len(body) > INLINE_CHECK_BYTES:
                    await run_in_threadpool(check_json_body, body)
                else:
                    check_json_body(body)
            except BodyError as exc:
                await JSONResponse({"detail": str(exc)}, 422)(scope, receive, send)
                return
        elif body and media_type not in _FORMS:
            given = f"media type {media_type!r}" if media_type else "no Content-Type"
            detail = f"body: {given} is not accepted; send application/json"
            await JSONResponse({"detail": detail}, 415)(scope, receive, send)
            return
        await self.app(scope, _replay([body], None, receive), send)


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A receive giving the buffered body as one message (then `last`, if any), and from
    then on whatever the server sends (a disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]
    if last is not None:
        pending[0]["more_body"] = True
        pending.append(last)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
