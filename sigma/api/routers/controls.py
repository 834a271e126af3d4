"""A trader's controls of the running bot, per strategy and symbol: whether each is live or why
not, start and stop, the pin that keeps the regime loop off a manual parameter change, force a
long entry, close the position, cancel an open order.

Each command is stored first with its audit row (one transaction), then published on
`bot_control`; the answer says what the bot did (`delivered` false: no bot answered within
`ACK_TIMEOUT` seconds - a stored control still applies when the bot next reads the stored
state, an order was not placed). An order the bot could not place is a 409 with its reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from starlette.concurrency import run_in_threadpool

from sigma.api.context import ApiContext, Ctx, Principal, Trader, Viewer
from sigma.api.control_answers import SOURCE, CommandOut, author, order_answer, stored_answer
from sigma.api.errors import error_responses
from sigma.api.routers.strategies import SYMBOL, strategy_class
from sigma.api.serialize import Amount, dec, plain_decimal
from sigma.regime.state import AdaptiveStateStore
from sigma.runtime import operator
from sigma.runtime.commands import (
    BotCommand,
    CancelOrder,
    ClosePosition,
    ForceEntry,
    PinParams,
    SetEnabled,
)
from sigma.store.db import session_scope
from sigma.store.idempotency import (
    EarlierRequest,
    claim_key,
    keep_answer,
    mark_sent,
    reclaim_key,
)
from sigma.store.queries.params import current_authors, sets_by_pair
from sigma.store.queries.trading import held as held_by_pair
from sigma.store.queries.trading import order_owner
from sigma.store.strategy_control import ControlState, all_controls, audit

router = APIRouter(prefix="/api", tags=["controls"])
SymbolPath = Annotated[str, Path(pattern=SYMBOL)]
_OPEN = ("new", "partially_filled")
OrderKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9_-]{8,64}$",
        description="a key of the client's (8-64 letters, digits, _ -), one per request: the "
        "order is sent once per key and user; the same request again gets the first answer "
        "and sends nothing, another request with the key (other order or body) is a 409",
    ),
]
KEY_TTL = timedelta(hours=24)
"""How long an idempotency key is remembered: a retry comes within minutes, and a day covers
a client that was down overnight."""


@dataclass(frozen=True, slots=True)
class Keyed:
    """An order request sent with an idempotency `key` by `username`; `fingerprint` stands
    for what it asked (kind, strategy, symbol and body)."""

    username: str
    key: str
    fingerprint: str

    @classmethod
    def of(
        cls, user: Principal, key: str | None, command: BotCommand, body: BaseModel
    ) -> Keyed | None:
        """The keyed request, or None without a key."""
        if key is None:
            return None
        asked = [command.kind, command.strategy, command.symbol, body.model_dump(mode="json")]
        text = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return cls(user.username, key, hashlib.sha256(text.encode()).hexdigest())


class PairState(BaseModel):
    """One strategy on one symbol as the bot trades it.

    `state`: live; stopped (by an operator: opens no new position); disabled or throttled by
    the regime loop; `why` says by whom and why. `pinned`: the regime loop leaves the
    parameters alone (a manual change) until regime tuning is allowed again."""

    strategy: str
    symbol: str
    state: Literal["live", "stopped", "disabled", "throttled"]
    why: str
    enabled: bool
    stop_reason: str
    stopped_by: str
    regime_status: str
    regime_reason: str
    regime_until: datetime | None
    pinned: bool
    pin_reason: str
    pinned_by: str
    pinned_at: datetime | None
    params: dict[str, Any] | None
    version: int
    params_by: str
    position: str


class SwitchIn(BaseModel):
    """Turn a control on or off, saying why (recorded)."""

    model_config = ConfigDict(extra="forbid")

    on: StrictBool
    reason: str = Field(default="", max_length=2000)


class OrderIn(BaseModel):
    """An operator's order: why (recorded) and, for an entry, the quantity (default: all
    the strategy's free cash)."""

    model_config = ConfigDict(extra="forbid")

    qty: Amount | None = Field(default=None, gt=0)
    reason: str = Field(default="", max_length=2000)

    _plain = field_validator("qty", mode="before")(plain_decimal)


def traded(ctx: ApiContext, strategy: str, symbol: str) -> None:
    """404 unless the bot trades `strategy` on `symbol` (`SIGMA_LIVE_STRATEGIES` times
    `SIGMA_SYMBOLS`)."""
    strategy_class(ctx.deps.strategies, strategy)
    s = ctx.deps.settings
    if strategy not in s.trading.live_strategies or symbol not in s.trading.symbols:
        raise HTTPException(
            404,
            detail=f"{strategy} on {symbol} is not traded: the bot runs "
            f"{', '.join(s.trading.live_strategies) or 'no strategy'} on "
            f"{', '.join(s.trading.symbols) or 'no symbol'}",
        )


def _pairs(ctx: ApiContext) -> list[PairState]:
    s = ctx.deps.settings
    verdicts = AdaptiveStateStore(ctx.deps.sessions).verdicts()
    with ctx.deps.sessions() as session:
        controls = {(c.strategy, c.symbol): c for c in all_controls(session)}
        params = sets_by_pair(session)
        authors = current_authors(session)
        held = held_by_pair(session, s.trading.mode)
    out = []
    for strategy in s.trading.live_strategies:
        for symbol in s.trading.symbols:
            key = (strategy, symbol)
            control = controls.get(key, ControlState(strategy, symbol))
            verdict = verdicts.get(key)
            row = params.get(key)
            active = row is not None and row.active
            status = verdict.status if verdict is not None else "keep"
            regime_reason = verdict.reason if verdict is not None else ""
            state, why = _state(control, status, regime_reason)
            out.append(
                PairState(
                    strategy=strategy,
                    symbol=symbol,
                    state=state,
                    why=why,
                    enabled=control.enabled,
                    stop_reason=control.reason,
                    stopped_by=control.changed_by,
                    regime_status=status,
                    regime_reason=regime_reason,
                    regime_until=verdict.until if verdict is not None else None,
                    pinned=control.pinned,
                    pin_reason=control.pin_reason,
                    pinned_by=control.pinned_by,
                    pinned_at=control.pinned_at,
                    params=dict(row.params) if row is not None and active else None,
                    version=row.version if row is not None and active else 0,
                    params_by=authors.get(row.id, "") if row is not None and active else "",
                    position=dec(held.get(key, Decimal(0))),
                )
            )
    return out


def _state(
    control: ControlState, status: str, reason: str
) -> tuple[Literal["live", "stopped", "disabled", "throttled"], str]:
    """The pair's state and why: an operator's stop first, then the regime loop's verdict."""
    if not control.enabled:
        return "stopped", f"stopped by {control.changed_by}: {control.reason or 'no reason given'}"
    if status == "disable":
        return "disabled", f"disabled by the regime loop: {reason or 'no reason saved'}"
    if status == "throttle":
        return "throttled", f"throttled by the regime loop: {reason or 'no reason saved'}"
    return "live", "live"


@router.get("/controls", response_model=list[PairState])
async def pairs(ctx: Ctx, _: Viewer) -> list[PairState]:
    """Every strategy and symbol the bot trades: live or not and why, pinned or not, the
    parameters in force and the position."""
    return await run_in_threadpool(_pairs, ctx)


@router.put("/controls/{strategy}/{symbol}/enabled", response_model=CommandOut)
async def set_enabled(
    strategy: str, symbol: SymbolPath, body: SwitchIn, ctx: Ctx, user: Trader
) -> CommandOut:
    """Start (`on`) or stop `strategy` on `symbol`: a stopped strategy opens no new position
    (its exits and a trader's own orders still go)."""
    traded(ctx, strategy, symbol)
    command = SetEnabled(
        author=author(user), strategy=strategy, symbol=symbol, reason=body.reason, enabled=body.on
    )
    return await _switch(ctx, operator.store_enabled, command, body)


@router.put("/controls/{strategy}/{symbol}/pinned", response_model=CommandOut)
async def set_pinned(
    strategy: str, symbol: SymbolPath, body: SwitchIn, ctx: Ctx, user: Trader
) -> CommandOut:
    """Keep the regime loop off the parameters of `strategy` on `symbol` (`on`), or allow
    regime tuning again (`on: false`)."""
    traded(ctx, strategy, symbol)
    command = PinParams(
        author=author(user), strategy=strategy, symbol=symbol, reason=body.reason, pinned=body.on
    )
    return await _switch(ctx, operator.store_pin, command, body)


async def _switch(
    ctx: ApiContext, store: Callable[..., ControlState], command: BotCommand, body: SwitchIn
) -> CommandOut:
    """Store a pair's switch with `store` (audited), then tell the bot."""

    def stored() -> None:
        with session_scope(ctx.deps.sessions) as session:
            store(
                session,
                command.strategy,
                command.symbol,
                body.on,
                body.reason,
                command.author,
                source=SOURCE,
            )

    await run_in_threadpool(stored)
    return stored_answer(await operator.deliver(ctx.pubsub, command), command)


async def _order(ctx: ApiContext, command: BotCommand, keyed: Keyed | None = None) -> CommandOut:
    """Audit an order command, send it and answer with what the bot did. With a client's
    idempotency key the command is sent only by the request that claims the key; any later
    one gets the first answer (`_replay`)."""
    if keyed is not None:
        earlier = await run_in_threadpool(_claim, ctx, keyed, command)
        if earlier is not None:
            return _replay(earlier, keyed, command, _pending(ctx))
    if not await run_in_threadpool(_record_send, ctx, command, keyed):
        assert keyed is not None  # only a keyed request can lose its claim
        raise HTTPException(
            409,
            detail=f"Idempotency-Key {keyed.key!r}: this request was not sent within "
            f"{_pending(ctx).total_seconds():g}s and a retry took the key over: nothing sent "
            "by this request (the retry's answer says what became of the order)",
        )
    ack = await operator.deliver(ctx.pubsub, command)
    try:
        out = order_answer(ack, command)
    except HTTPException as refused:
        await _keep(ctx, keyed, refused.status_code, {"detail": refused.detail})
        raise
    await _keep(ctx, keyed, 200, out.model_dump(mode="json"))
    return out


def _pending(ctx: ApiContext) -> timedelta:
    """How long a keyed request may go unanswered before it is taken as lost."""
    return timedelta(seconds=ctx.deps.settings.api.api_idempotency_pending_seconds)


def _claim(ctx: ApiContext, keyed: Keyed, command: BotCommand) -> EarlierRequest | None:
    """Claim the key for `command`: None when claimed, else the earlier request holding it.
    An earlier claim of the same request that was never handed to the bot and is past
    `_pending` is taken over: its API process stopped before sending, so nothing was sent."""
    now = datetime.now(UTC)
    with session_scope(ctx.deps.sessions) as session:
        earlier = claim_key(
            session,
            keyed.username,
            keyed.key,
            keyed.fingerprint,
            command_id=command.command_id,
            now=now,
            ttl=KEY_TTL,
        )
        if (
            earlier is None
            or earlier.fingerprint != keyed.fingerprint
            or earlier.status is not None
            or earlier.sent_at is not None
            or now - earlier.created_at < _pending(ctx)
        ):
            return earlier
        taken = reclaim_key(
            session,
            keyed.username,
            keyed.key,
            earlier,
            command_id=command.command_id,
            now=now,
            ttl=KEY_TTL,
        )
        return None if taken else earlier


def _record_send(ctx: ApiContext, command: BotCommand, keyed: Keyed | None) -> bool:
    """Audit the command and, for a keyed one, mark its claim sent, in one transaction that
    commits before it is sent: a command is audited exactly when it is sent, and a claim
    marked sent is never taken over. False when a retry took the key over (send nothing)."""
    with session_scope(ctx.deps.sessions) as session:
        if keyed is not None and not mark_sent(
            session, keyed.username, keyed.key, command.command_id, now=datetime.now(UTC)
        ):
            return False
        audit(
            session,
            f"control_{command.kind}",
            source=SOURCE,
            strategy=command.strategy,
            symbol=command.symbol,
            mode=ctx.deps.settings.trading.mode,
            by=command.author,
            reason=command.reason,
            command_id=command.command_id,
            **command.model_dump(include={"qty", "client_order_id"}, mode="json"),
            **({} if keyed is None else {"idempotency_key": keyed.key}),
        )
    return True


async def _keep(
    ctx: ApiContext, keyed: Keyed | None, status: int, response: dict[str, Any]
) -> None:
    """Store the answer to a keyed request for its retries."""
    if keyed is None:
        return

    def store() -> None:
        with session_scope(ctx.deps.sessions) as session:
            keep_answer(session, keyed.username, keyed.key, status, response)

    await run_in_threadpool(store)


def _replay(
    earlier: EarlierRequest, keyed: Keyed, command: BotCommand, pending: timedelta
) -> CommandOut:
    """The answer to a request whose key an earlier one holds: that one's answer when it
    asked the same; 409 when it asked something else, or has no answer yet (being sent, or
    lost with its API process: then the client is told to look the order up)."""
    key, since = keyed.key, earlier.created_at.isoformat()
    if earlier.fingerprint != keyed.fingerprint:
        raise HTTPException(
            409,
            detail=f"Idempotency-Key {key!r} was used at {since} for another request (another "
            "order or body): nothing sent; a new request needs a new key",
        )
    if earlier.status is None or earlier.response is None:
        raise HTTPException(409, detail=_unanswered(earlier, keyed, command, pending))
    if earlier.status != 200:
        raise HTTPException(earlier.status, detail=earlier.response["detail"])
    return CommandOut.model_validate(earlier.response)


def _unanswered(
    earlier: EarlierRequest, keyed: Keyed, command: BotCommand, pending: timedelta
) -> str:
    """Why a retry of a request without an answer is not sent, and what to do about it."""
    what = f"Idempotency-Key {keyed.key!r}: this {command.kind} of {command.strategy} on "
    what += command.symbol
    lost = datetime.now(UTC) - earlier.created_at >= pending
    if not lost or (earlier.sent_at is None and earlier.command_id is not None):
        # Being served (or, unsent, just taken over by another retry): its answer is near.
        return (
            f"{what} was received at {earlier.created_at.isoformat()} and has no answer yet "
            "(it is being sent); not sent again: retry in a few seconds for its answer (one "
            f"its API process stopped before sending is sent by a retry {pending.total_seconds():g}"
            "s after it was received)"
        )
    if earlier.sent_at is None:  # a claim stored before sends were recorded
        handed = f"was received at {earlier.created_at.isoformat()}, may have been sent,"
    else:
        handed = (
            f"was handed to the bot at {earlier.sent_at.isoformat()} as command "
            f"{earlier.command_id}"
        )
    return (
        f"{what} {handed} and its answer was "
        f"lost (its API process stopped): it may have placed an order, so it is not sent "
        f"again. Look it up: GET /api/actions?action=control_{command.kind}"
        f"&strategy={command.strategy}&symbol={command.symbol} (the bot's row with that "
        f"command_id says what it did) and GET /api/orders?strategy={command.strategy}"
        f"&symbol={command.symbol}; send it again with a new key only if it placed nothing"
    )


@router.post(
    "/controls/{strategy}/{symbol}/entry",
    response_model=CommandOut,
    responses=error_responses(409),
)
async def force_entry(
    strategy: str, symbol: SymbolPath, body: OrderIn, ctx: Ctx, user: Trader, key: OrderKey = None
) -> CommandOut:
    """Buy at market for `strategy` on `symbol` now (`qty` units, default all its free cash),
    through the risk limits, past a stop or the regime loop's pause."""
    traded(ctx, strategy, symbol)
    command = ForceEntry(
        author=author(user), strategy=strategy, symbol=symbol, reason=body.reason, qty=body.qty
    )
    return await _order(ctx, command, Keyed.of(user, key, command, body))


@router.post(
    "/controls/{strategy}/{symbol}/close",
    response_model=CommandOut,
    responses=error_responses(409),
)
async def close_position(
    strategy: str, symbol: SymbolPath, body: OrderIn, ctx: Ctx, user: Trader, key: OrderKey = None
) -> CommandOut:
    """Flatten the position of `strategy` on `symbol` at market (and cancel its resting
    orders); 409 when it holds nothing."""
    traded(ctx, strategy, symbol)
    if body.qty is not None:
        raise HTTPException(422, detail="body.qty: a close takes the whole position")
    command = ClosePosition(
        author=author(user), strategy=strategy, symbol=symbol, reason=body.reason
    )
    return await _order(ctx, command, Keyed.of(user, key, command, body))


@router.post(
    "/orders/{client_order_id}/cancel",
    response_model=CommandOut,
    responses=error_responses(409),
)
async def cancel_order(
    client_order_id: Annotated[str, Path(min_length=8, max_length=64)],
    body: OrderIn,
    ctx: Ctx,
    user: Trader,
) -> CommandOut:
    """Cancel an open (resting) order; 404 for an unknown order, 409 for one already final
    or that does not rest with the bot."""

    def find() -> tuple[str, str, str] | None:
        with ctx.deps.sessions() as session:
            return order_owner(session, client_order_id)

    found = await run_in_threadpool(find)
    if found is None:
        raise HTTPException(404, detail=f"no order {client_order_id!r}")
    strategy, symbol, status = found
    if status not in _OPEN:
        raise HTTPException(409, detail=f"order {client_order_id} is {status}: nothing to cancel")
    command = CancelOrder(
        author=author(user),
        strategy=strategy,
        symbol=symbol,
        reason=body.reason,
        client_order_id=client_order_id,
    )
    return await _order(ctx, command)
