"""One error body everywhere: `{"detail": "<what is wrong and where>"}`."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    # Starlette's own 404/405 say only "Not Found"; say which route was asked for.
    if detail == HTTPStatus(exc.status_code).phrase:
        if exc.status_code == 404:
            detail = f"no such route: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"method {request.method} is not allowed on {request.url.path}"
    return JSONResponse(
        status_code=exc.status_code, content={"detail": detail}, headers=exc.headers
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return JSONResponse(
        status_code=500,
        content={
            "detail": f"internal error in {request.method} {request.url.path} "
            f"({type(exc).__name__}); see the server log"
        },
    )


def install_error_handlers(api: FastAPI) -> None:
    """Register the handlers on `api`."""
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
