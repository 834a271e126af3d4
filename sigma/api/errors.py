"""One error body everywhere: `{"detail": "<what is wrong and where>"}`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sigma.api.methods import allowed_methods
from sigma.store.reader import refused_value_errors

log = logging.getLogger(__name__)


def _where(loc: tuple[int | str, ...]) -> str:
    # ("body", "params", "fast") -> "body.params.fast"; a missing body reads as "body".
    return ".".join(str(part) for part in loc) or "request"


def validation_detail(exc: RequestValidationError) -> str:
    """Every problem as `location: message`, joined by `; `."""
    parts = []
    for error in exc.errors():
        parts.append(f"{_where(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": validation_detail(exc)})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    # Starlette's own 404/405 say only "Not Found"; say which route was asked for.
    if detail == HTTPStatus(exc.status_code).phrase:
        if exc.status_code == 404:
            detail = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
    return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=headers)


async def _refused_value(request: Request, exc: Exception) -> JSONResponse:
    # PostgreSQL refuses some values SQLite takes: a NUL character in text, a number beyond
    # the column's range, a string longer than its VARCHAR. Such a value came with the request.
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0] if reason else type(exc).__name__
    log.warning("database refused a value in %s %s: %s", request.method, request.url.path, detail)
    return JSONResponse(
        status_code=422, content={"detail": f"a value was refused by the database: {detail}"}
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette answers this outside every middleware, HeadMiddleware included, so the
    # request is still the HEAD the client sent, and the GET it ran is reported.
    method = "GET" if request.method == "HEAD" else request.method
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    response = JSONResponse(
        status_code=500,
        content={
            "detail": f"internal error in {method} {request.url.path} "
            f"({type(exc).__name__}); see the server log"
        },
    )
    if request.method == "HEAD":
        # The GET's headers (Content-Length included), never a body (RFC 9110 9.3.2).
        response.body = b""
    return response


ERROR_BODY: dict[str, Any] = {
    "title": "HTTPValidationError",
    "description": "Every error: what is wrong and where (`location.field: message; ...`).",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}
"""The JSON schema of `{"detail": "..."}`."""

_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}
_WHY = {
    401: "no, an invalid, expired or revoked token (or wrong credentials)",
    403: "the user's role is too low",
    404: "what the path or query names does not exist",
    409: "the request conflicts with the current state (said in `detail`)",
    413: "the request body is larger than 1 MiB",
    415: "the request body is not JSON (Content-Type: application/json)",
    429: "too many requests: retry after `Retry-After` seconds, or once some finish",
    503: "the component the route needs does not run in this API's process",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for `statuses` a route answers besides the ones every route of its
    shape does (see `_documented`), each with the error body."""
    return {code: {"description": _WHY[code], "content": _ERROR_REF} for code in statuses}


def _errors_of(operation: dict[str, Any]) -> tuple[int, ...]:
    """The errors an operation answers by its shape: 401/403 behind a token, 404 for what
    its path names, 413/415 for a body."""
    statuses: list[int] = []
    if operation.get("security"):
        statuses += [401, 403]
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [413, 415]
    return tuple(statuses)


def _documented(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`openapi` with the 422 body FastAPI documents (a list of error objects) replaced by
    the one `_validation_error` really sends, and the errors every operation answers by its
    shape documented with that body."""

    def schema() -> dict[str, Any]:
        document = openapi()  # built once and cached by FastAPI; patched in place once
        components = document.setdefault("components", {}).setdefault("schemas", {})
        if components.get("HTTPValidationError") is ERROR_BODY:
            return document
        components["HTTPValidationError"] = ERROR_BODY
        components.pop("ValidationError", None)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, response in error_responses(*_errors_of(operation)).items():
                    responses.setdefault(str(code), response)
        return document

    return schema


def install_error_handlers(api: FastAPI) -> None:
    """Register the handlers on `api` and document their body in its OpenAPI schema."""
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    for refused in refused_value_errors():
        api.add_exception_handler(refused, _refused_value)
    api.add_exception_handler(Exception, _unexpected)
    api.openapi = _documented(api.openapi)  # type: ignore[method-assign]
