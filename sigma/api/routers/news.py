"""The news webhook: pushes items into the running NewsHandler (sentiment, risk windows)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from sigma.api.context import Ctx, Instant, Trader, Viewer
from sigma.api.errors import error_responses
from sigma.api.numbers import ASCII_DIGITS
from sigma.regime.news import NewsEvent, NewsHandler, NewsItem

router = APIRouter(prefix="/api/news", tags=["news"], responses=error_responses(503))


class NewsIn(BaseModel):
    """A headline published at `ts`; `symbols` tag it explicitly (keywords also match)."""

    model_config = ConfigDict(extra="forbid")

    ts: Instant
    headline: str = Field(min_length=1, max_length=1000)
    body: str = Field(default="", max_length=20_000)
    source: str = Field(default="", max_length=200)
    symbols: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, max_length=50
    )


class NewsOut(BaseModel):
    """How the item scored and what it means for risk."""

    ts: datetime
    headline: str
    source: str
    symbols: list[str]
    sentiment: float
    matched: list[str]
    high_risk: bool
    halt_entries: bool
    risk_until: datetime | None


def _out(event: NewsEvent) -> NewsOut:
    return NewsOut(
        ts=event.item.ts,
        headline=event.item.headline,
        source=event.item.source,
        symbols=list(event.symbols),
        sentiment=event.sentiment,
        matched=list(event.matched),
        high_risk=event.high_risk,
        halt_entries=event.halt_entries,
        risk_until=event.risk_until,
    )


def _handler(ctx: Ctx) -> NewsHandler:
    if ctx.news is None:
        raise HTTPException(
            503, detail="no news handler runs in this process; start the bot with `sigma up`"
        )
    return ctx.news


# Async on purpose: the handler belongs to the event loop's adaptive layer and is not
# thread-safe, so it is only touched from the loop.
@router.post("", response_model=NewsOut, status_code=201)
async def push_news(body: NewsIn, ctx: Ctx, _: Trader) -> NewsOut:
    """Score a news item; a strongly negative one opens a high-risk window for its symbols."""
    item = NewsItem(
        ts=body.ts,
        headline=body.headline,
        body=body.body,
        source=body.source,
        symbols=tuple(s.strip().upper() for s in body.symbols),
    )
    return _out(_handler(ctx).ingest(item))


@router.get("", response_model=list[NewsOut])
async def news(
    ctx: Ctx,
    _: Viewer,
    symbol: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS] = 100,
) -> list[NewsOut]:
    """Scored items the handler remembers, newest first."""
    events = [
        e for e in reversed(_handler(ctx).events) if symbol is None or symbol.upper() in e.symbols
    ]
    return [_out(e) for e in events[:limit]]
