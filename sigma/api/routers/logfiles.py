"""The process log files under `<var>/logs` (admins only): their names, and the end of one,
filtered by level and text. The client names a file only by one of the listed names, never
by a path."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sigma.api.context import Admin, Ctx
from sigma.api.numbers import ASCII_DIGITS
from sigma.ops.logging import log_folder
from sigma.ops.logtail import log_files, tail

router = APIRouter(prefix="/api/logs", tags=["logs"])
Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogFileOut(BaseModel):
    """A log file: its name (the command that writes it) and size in bytes."""

    name: str
    size: int


class LogLineOut(BaseModel):
    """One record (`extra`: pid, the record's own fields, a traceback)."""

    ts: str | None
    level: str | None
    logger: str | None
    msg: str
    extra: dict[str, Any]


@router.get("", response_model=list[LogFileOut])
def files(ctx: Ctx, _: Admin) -> list[LogFileOut]:
    """The log files there are, by name."""
    found = log_files(log_folder(ctx.deps.settings.process.var_dir))
    return [LogFileOut(name=name, size=path.stat().st_size) for name, path in found.items()]


@router.get("/{name}", response_model=list[LogLineOut])
async def lines(
    ctx: Ctx,
    _: Admin,
    name: str,
    level: Level | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=2000), ASCII_DIGITS] = 200,
) -> list[LogLineOut]:
    """The newest `limit` lines of log `name` at `level` or above containing `q`, oldest
    first (from the end of the file only: a filter that matches little looks back less)."""
    path = log_files(log_folder(ctx.deps.settings.process.var_dir)).get(name)
    if path is None:
        raise HTTPException(404, detail=f"no log file named {name!r}")
    found = await run_in_threadpool(tail, path, limit=limit, level=level, text=q)
    return [
        LogLineOut(ts=line.ts, level=line.level, logger=line.logger, msg=line.msg, extra=line.extra)
        for line in found
    ]
