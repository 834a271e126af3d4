"""Risk limits and the kill switch: readable by everyone, the switch flipped by admins, every
flip alerted."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from sigma.api.context import Admin, ApiContext, Ctx, Viewer
from sigma.api.serialize import opt_dec
from sigma.bus.base import CHANNEL_ALERTS
from sigma.notify.alert import Alert
from sigma.risk.limits import RiskLimits
from sigma.store.alerts import record_alert
from sigma.store.control import KILL_SWITCH, FlagState, get_flag, set_flag
from sigma.store.db import session_scope

router = APIRouter(prefix="/api/risk", tags=["risk"])


class RiskLimitsOut(BaseModel):
    """The pre-trade limits each strategy on each symbol runs under (null: no limit).
    Amounts in the account currency; `max_drawdown` a fraction below the equity peak."""

    max_order_notional: str | None
    max_position_notional: str | None
    max_open_orders: int | None
    max_daily_loss: str | None
    max_drawdown: str | None


class KillSwitchIn(BaseModel):
    """Turn trading off (`enabled: true`) or back on, saying why."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool
    reason: str = Field(min_length=1, max_length=2000)


class KillSwitchOut(BaseModel):
    """The switch as last set (`updated_at` null: never set, trading allowed)."""

    enabled: bool
    reason: str
    changed_by: str
    updated_at: datetime | None


def _out(flag: FlagState) -> KillSwitchOut:
    return KillSwitchOut(
        enabled=flag.enabled,
        reason=flag.reason,
        changed_by=flag.changed_by,
        updated_at=flag.updated_at,
    )


def _read(ctx: ApiContext) -> FlagState:
    with ctx.deps.read_sessions() as session:
        return get_flag(session, KILL_SWITCH)


def _write(ctx: ApiContext, body: KillSwitchIn, alert: Alert, user: str) -> FlagState:
    # Flag and alert row in one transaction: an alert never claims a change that was lost.
    with session_scope(ctx.deps.sessions) as session:
        set_flag(session, KILL_SWITCH, body.enabled, reason=body.reason, changed_by=user)
        record_alert(
            session,
            ts=alert.ts,
            severity=alert.severity,
            source=alert.source,
            message=alert.message,
            dedupe_key=alert.dedupe_key,
        )
    with ctx.deps.sessions() as session:
        return get_flag(session, KILL_SWITCH)


@router.get("/limits", response_model=RiskLimitsOut)
def limits(ctx: Ctx, _: Viewer) -> RiskLimitsOut:
    """The configured risk limits (the settings the RiskManager is built from)."""
    # Each RiskLimits field has the setting of the same name (as `sigma up` builds them).
    settings = ctx.deps.settings.risk
    configured = RiskLimits(**{f.name: getattr(settings, f.name) for f in fields(RiskLimits)})
    return RiskLimitsOut(
        max_order_notional=opt_dec(configured.max_order_notional),
        max_position_notional=opt_dec(configured.max_position_notional),
        max_open_orders=configured.max_open_orders,
        max_daily_loss=opt_dec(configured.max_daily_loss),
        max_drawdown=opt_dec(configured.max_drawdown),
    )


@router.get("/kill-switch", response_model=KillSwitchOut)
async def kill_switch(ctx: Ctx, _: Viewer) -> KillSwitchOut:
    """The kill switch state."""
    return _out(await run_in_threadpool(_read, ctx))


@router.put("/kill-switch", response_model=KillSwitchOut)
async def set_kill_switch(body: KillSwitchIn, ctx: Ctx, user: Admin) -> KillSwitchOut:
    """Set the kill switch; recorded with the user, logged as an alert and broadcast on the
    `alerts` channel."""
    state = "ENGAGED - trading halted" if body.enabled else "released - trading allowed"
    alert = Alert(
        severity="critical" if body.enabled else "warning",
        source="api",
        message=f"kill switch {state} by {user.username}: {body.reason}",
        dedupe_key=None,
        details={"enabled": body.enabled, "changed_by": user.username},
    )
    flag = await run_in_threadpool(_write, ctx, body, alert, user.username)
    await ctx.pubsub.publish(CHANNEL_ALERTS, alert.to_json().encode())
    return _out(flag)
