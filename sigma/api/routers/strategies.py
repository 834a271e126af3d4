"""Strategies, their parameter specs, and the active parameters per (strategy, symbol)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from anyio.from_thread import run as run_on_loop
from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from sigma.api.context import ApiContext, Ctx, Db, Trader, Viewer
from sigma.api.control_answers import SOURCE, CommandOut, author, stored_answer
from sigma.api.serialize import plain_decimal
from sigma.domain.text import clip
from sigma.regime.state import AdaptiveStateStore
from sigma.regime.tester import StrategyTester, WalkForwardConfig
from sigma.research.select import recent_bars
from sigma.runtime.commands import Reenable, SetParams
from sigma.runtime.operator import deliver, store_params
from sigma.store.jsonsafe import to_jsonable
from sigma.store.params import get_active_params, param_history
from sigma.store.queries.params import active_sets
from sigma.store.strategy_control import audit
from sigma.strategies import Strategy, StrategyRegistry

router = APIRouter(prefix="/api", tags=["strategies"])
SYMBOL = r"^[A-Za-z0-9._:/-]{1,32}$"


class ParamSpec(BaseModel):
    """One tunable parameter."""

    type: str
    default: Any
    low: float | None
    high: float | None
    step: float | None
    doc: str


class StrategyOut(BaseModel):
    """A strategy and its parameters."""

    name: str
    description: str
    params: dict[str, ParamSpec]


class ActiveParams(BaseModel):
    """The active parameter set of a strategy on a symbol, and its last change."""

    strategy: str
    symbol: str
    params: dict[str, Any]
    version: int
    changed_by: str
    reason: str
    updated_at: datetime


class ParamChangeResult(ActiveParams):
    """The active set after a change, with the StrategyTester's verdict on it and what the
    running bot did with it (`bot`); the change pins the set against the regime loop."""

    test: str
    bot: CommandOut


class ParamChangeIn(BaseModel):
    """A new parameter set (missing parameters take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any]
    reason: str = Field(default="", max_length=2000)


class ParamChangeOut(BaseModel):
    """One recorded change."""

    version: int
    old: dict[str, Any] | None
    new: dict[str, Any]
    reason: str
    changed_by: str
    ts: datetime


@router.get("/strategies", response_model=list[StrategyOut])
def strategies(ctx: Ctx, _: Viewer) -> list[StrategyOut]:
    """Every loadable strategy with its parameter bounds."""
    registry = ctx.deps.strategies
    out = []
    for name in registry.names:
        cls = registry.get(name)
        specs = {
            key: ParamSpec(
                type=spec.kind.__name__,
                default=to_jsonable(spec.default),
                low=spec.low,
                high=spec.high,
                step=spec.step,
                doc=spec.doc,
            )
            for key, spec in cls.param_specs().items()
        }
        out.append(StrategyOut(name=name, description=cls.description, params=specs))
    return out


def strategy_class(registry: StrategyRegistry, name: str) -> type[Strategy]:
    """The class of `name`; 404 listing the known names."""
    try:
        return registry.get(name)
    except KeyError as exc:
        raise HTTPException(404, detail=str(exc.args[0])) from None


#: per parameter kind, what JSON it takes and how the refusal names it. `Param.coerce` also
#: reads the command line's text ("yes" for a flag, "7" for a period); a JSON client sends the
#: value itself, so text passes only where exactness asks for it (a Decimal, as amounts do).
_JSON_KINDS: dict[type, tuple[tuple[type, ...], str]] = {
    bool: ((bool,), "true or false"),
    int: ((int,), "a whole number"),
    float: ((int, float), "a number"),
    Decimal: ((int, float, str), 'a number or a string of ASCII digits, e.g. "0.5"'),
}


def _json_kind_error(kind: type, value: Any) -> str | None:
    """Why `value` is no JSON value of a parameter of `kind`, or None."""
    types, wanted = _JSON_KINDS.get(kind, ((kind,), kind.__name__))
    # bool is an int to Python: `true` would pass for 1.
    fits = isinstance(value, types) and (kind is bool or not isinstance(value, bool))
    if fits and kind is Decimal and isinstance(value, str):
        try:
            plain_decimal(value)
        except ValueError:
            fits = False
    return None if fits else f"must be {wanted}, got {clip(repr(value))}"


def checked_params(cls: type[Strategy], params: dict[str, Any], where: str) -> dict[str, Any]:
    """`params` coerced and bounds-checked by the strategy; 422 naming the parameter (as
    `<where>.<name>`) or the broken relation."""
    specs = cls.param_specs()
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise HTTPException(
            422,
            detail=f"{where}.{unknown[0]}: strategy {cls.name!r} has no parameter "
            f"{unknown[0]!r}; known: {', '.join(specs) or 'none'}",
        )
    for key, value in params.items():
        wrong = _json_kind_error(specs[key].kind, value)
        if wrong is not None:
            raise HTTPException(422, detail=f"{where}.{key}: parameter {key!r} {wrong}")
        try:
            specs[key].coerce(key, value)
        except ValueError as exc:
            raise HTTPException(422, detail=f"{where}.{key}: {exc}") from None
    try:
        return cls(**params).params
    except ValueError as exc:  # a relation between parameters, e.g. fast < slow
        raise HTTPException(422, detail=f"{where}: {exc}") from None


def _active_rows(session: Db) -> list[ActiveParams]:
    return [
        ActiveParams(
            strategy=row.strategy,
            symbol=row.symbol,
            params=dict(row.params),
            version=row.version,
            changed_by=last.changed_by if last else "",
            reason=last.reason if last else "",
            updated_at=row.updated_at,
        )
        for row, last in active_sets(session)
    ]


@router.get("/params", response_model=list[ActiveParams])
def active_params(session: Db, _: Viewer) -> list[ActiveParams]:
    """Every active parameter set."""
    return _active_rows(session)


@router.put(
    "/params/{strategy}/{symbol}",
    response_model=ParamChangeResult,
    responses={409: {"description": "refused by the StrategyTester (the reason says why)"}},
)
def change_params(
    strategy: str,
    symbol: Annotated[str, Path(pattern=SYMBOL)],
    body: ParamChangeIn,
    ctx: Ctx,
    session: Db,
    user: Trader,
) -> ParamChangeResult:
    """Propose `params` for `strategy` on `symbol`: the StrategyTester walks the candidate
    forward against the set in force over the stored recent bars; a refusal is a 409 with the
    figures and stores nothing, a pass becomes the active set (recorded with the user),
    pinned against the regime loop, and goes to the running bot over the bus (applied within
    a second). A stored set the strategy no longer accepts is replaced, the candidate tested
    against the strategy's defaults."""
    cls = strategy_class(ctx.deps.strategies, strategy)
    params = checked_params(cls, body.params, "body.params")
    in_force, stale = _in_force(cls, get_active_params(session, strategy, symbol) or {})
    verdict = stale + _walk_forward(ctx, session, cls, symbol, in_force, params)
    version = store_params(
        session, strategy, symbol, params, body.reason, user.username, source=SOURCE
    )
    session.commit()
    command = SetParams(
        author=user.username,
        strategy=strategy,
        symbol=symbol,
        reason=body.reason,
        params=params,
        version=version,
        pin=True,
    )
    # This route runs in a worker thread: the bus belongs to the event loop.
    answer = stored_answer(run_on_loop(deliver, ctx.pubsub, command), command)
    row = next(r for r in _active_rows(session) if (r.strategy, r.symbol) == (strategy, symbol))
    return ParamChangeResult(**row.model_dump(), test=verdict, bot=answer)


def _in_force(cls: type[Strategy], stored: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The stored set to test a change against, and "" - or, when the strategy no longer
    accepts the stored set (its bounds or parameters changed since), its defaults and a note
    saying so: the change is how an operator repairs such a set, so it must not be refused
    for the set it replaces."""
    try:
        return cls(**stored).params, ""
    except ValueError as exc:  # Param.coerce reports type errors as ValueError too
        return (
            cls().params,
            f"the stored set is not valid for {cls.name} ({exc}); tested against the defaults: ",
        )


def _walk_forward(
    ctx: ApiContext,
    session: Db,
    cls: type[Strategy],
    symbol: str,
    current: dict[str, Any],
    candidate: dict[str, Any],
) -> str:
    """The tester's verdict on `candidate` (409 when it refuses), on the newest
    `SIGMA_ADAPTIVE_TEST_BARS` stored bars of the research timeframe, as the regime loop
    tests its own changes. With fewer bars stored the change is taken untested here and the
    verdict says so: the running bot tests it again on the bars it has seen before using it."""
    s = ctx.deps.settings
    lookback, timeframe = s.regime.adaptive_test_bars, s.research_bars_timeframe
    if not lookback:
        return "not tested: the StrategyTester is off (SIGMA_ADAPTIVE_TEST_BARS=0)"
    bars = recent_bars(session, symbol, timeframe, lookback, datetime.now(UTC))
    if len(bars) < lookback:
        return (
            f"not tested here: {len(bars)} of {lookback} {timeframe} bars of {symbol} stored; "
            "the running bot tests it on its own bars before using it"
        )
    tester = StrategyTester(WalkForwardConfig(lookback=lookback))
    refusal = tester.check(cls, current, candidate, bars, symbol=symbol)
    if refusal is not None:
        raise HTTPException(409, detail=f"{cls.name} on {symbol}: {refusal}")
    return f"passed the walk-forward test on the last {lookback} {timeframe} bars"


class EnableIn(BaseModel):
    """Why the operator lifts the regime loop's verdict (recorded)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class EnableOut(BaseModel):
    """The verdict the request lifts, and what the running bot did with it (`bot`; without
    an answer it applies the stored request on a bar within 5 s, or at its start)."""

    strategy: str
    symbol: str
    status: str
    reason: str
    bot: CommandOut


@router.post(
    "/strategies/{strategy}/{symbol}/enable",
    response_model=EnableOut,
    status_code=202,
    responses={409: {"description": "the strategy is neither throttled nor disabled"}},
)
def enable_strategy(
    strategy: str,
    symbol: Annotated[str, Path(pattern=SYMBOL)],
    body: EnableIn,
    ctx: Ctx,
    user: Trader,
) -> EnableOut:
    """Lift the regime loop's throttle or disable of `strategy` on `symbol` (as `sigma regime
    enable` does): stored, then sent to the running bot, which lifts it at once (without an
    answer it applies the stored request on a bar of `symbol` within 5 s, or at its next
    start), as an ``enable`` decision recorded with the user and the reason."""
    strategy_class(ctx.deps.strategies, strategy)
    by = author(user)
    saved = AdaptiveStateStore(ctx.deps.sessions).request_enable(
        strategy, symbol, by=by, reason=body.reason
    )
    if saved.status == "keep":
        raise HTTPException(409, detail=f"{strategy} on {symbol} is neither throttled nor disabled")
    command = Reenable(author=by, strategy=strategy, symbol=symbol, reason=body.reason)
    with ctx.deps.sessions.begin() as session:
        audit(
            session,
            "control_reenable",
            source=SOURCE,
            strategy=strategy,
            symbol=symbol,
            by=by,
            reason=body.reason,
            lifts=saved.status,
        )
    answer = stored_answer(run_on_loop(deliver, ctx.pubsub, command), command)
    return EnableOut(
        strategy=strategy, symbol=symbol, status=saved.status, reason=saved.reason, bot=answer
    )


@router.get("/params/{strategy}/{symbol}/history", response_model=list[ParamChangeOut])
def params_history(
    strategy: str, symbol: str, ctx: Ctx, session: Db, _: Viewer
) -> list[ParamChangeOut]:
    """Every change of the parameters of `strategy` on `symbol`, oldest first."""
    strategy_class(ctx.deps.strategies, strategy)
    return [
        ParamChangeOut(
            version=c.version,
            old=c.old,
            new=c.new,
            reason=c.reason,
            changed_by=c.changed_by,
            ts=c.ts,
        )
        for c in param_history(session, strategy, symbol)
    ]
