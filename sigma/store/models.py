"""SQLAlchemy models: every table SIGMA keeps.

Money, prices and quantities are `Decimal` (NUMERIC(28, 10)); timestamps are aware UTC. Both
come from `type_annotation_map`, so a `Mapped[Decimal]` or `Mapped[datetime]` column cannot
silently fall back to float or naive time. Enumerations are stored as short strings with CHECK
constraints rather than native enum types, so adding a value never needs a type migration.

Changing a model needs a new revision in `sigma/store/migrations/versions/`; the test suite
fails while the models and the migrations disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sigma.store.types import ExactDecimal, JsonDoc, UTCDateTime, utcnow

# Deterministic constraint names, so later migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

USERNAME_LOWER_INDEX = "uq_users_lower_username"
"""The unique index on lower(username) (migration 0023)."""

_SIDES = "side IN ('buy', 'sell')"
_MODES = "mode IN ('live', 'paper')"
_ORDER_TYPES = "type IN ('market', 'limit', 'stop')"
_ORDER_STATUSES = "status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected')"


class Base(DeclarativeBase):
    """Declarative base with the naming convention and the exact column types."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        Decimal: ExactDecimal(),
        datetime: UTCDateTime(),
        dict[str, Any]: JsonDoc,
    }


# --- market data -------------------------------------------------------------------------------


class Instrument(Base):
    """A tradable symbol and its exchange constraints."""

    __tablename__ = "instruments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), unique=True)
    exchange: Mapped[str] = mapped_column(String(32), default="")
    base: Mapped[str] = mapped_column(String(16), default="")
    quote: Mapped[str] = mapped_column(String(16), default="")
    tick_size: Mapped[Decimal | None]
    lot_size: Mapped[Decimal | None]
    min_notional: Mapped[Decimal | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TickRecord(Base):
    """One price observation. `seq` numbers ticks that share a timestamp.

    The primary key leads with (symbol, ts) - it is the (symbol, ts) index - and contains `ts`
    because TimescaleDB requires the partitioning column in every unique index.
    """

    __tablename__ = "ticks"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, autoincrement=False)
    price: Mapped[Decimal]
    volume: Mapped[Decimal] = mapped_column(default=Decimal(0))
    bid: Mapped[Decimal | None]
    ask: Mapped[Decimal | None]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(200))


class BarRecord(Base):
    """An OHLCV bar. The primary key (symbol, timeframe, ts) is both the uniqueness rule and the
    (symbol, ts) lookup index, and includes `ts` for TimescaleDB."""

    __tablename__ = "bars"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True)
    open: Mapped[Decimal]
    high: Mapped[Decimal]
    low: Mapped[Decimal]
    close: Mapped[Decimal]
    volume: Mapped[Decimal] = mapped_column(default=Decimal(0))


class TrendData(Base):
    """Output of the trend scanner / regime detector for one symbol and bar."""

    __tablename__ = "trend_data"
    __table_args__ = (UniqueConstraint("symbol", "timeframe", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    timeframe: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime]
    trend: Mapped[str] = mapped_column(String(16))
    strength: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- trading -----------------------------------------------------------------------------------


class OrderRecord(Base):
    """An order. `client_order_id` is the idempotency key shared with the worker and broker."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_SIDES, name="side"),
        CheckConstraint(_ORDER_TYPES, name="type"),
        CheckConstraint(_ORDER_STATUSES, name="status"),
        CheckConstraint(_MODES, name="mode"),
        Index(None, "status"),
        Index(None, "symbol", "created_at"),
        # The API lists orders newest first: (created_at, id) read backwards, no sort.
        Index(None, "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(8), default="market")
    qty: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16), default="new")
    strategy: Mapped[str] = mapped_column(String(64), default="")
    filled_qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_fill_price: Mapped[Decimal | None]
    # Two clocks, named: when the order was recorded (wall clock; lists sort by it) and the
    # market time of the bar it was decided on (a replay's market runs behind the wall clock).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When its order event was dead-lettered with the venue's answer unknown: no delivery of
    # it remains, so a venue that says it does not hold the order never will (the follower
    # then settles it rejected). None: an open order's event is still in the queue.
    dead_lettered_at: Mapped[datetime | None]

    fills: Mapped[list[FillRecord]] = relationship(back_populates="order")


class FillRecord(Base):
    """An execution of an order. `exchange_fill_id`, when known, makes replays idempotent."""

    __tablename__ = "fills"
    __table_args__ = (Index(None, "ts", "id"),)  # newest first in the API

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"), index=True)
    exchange_fill_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # The currency the fee was paid in ("" when the broker does not say: the quote currency).
    # A Binance buy pays in the asset bought, so the position gains qty - fee.
    fee_asset: Mapped[str] = mapped_column(String(16), default="", server_default=text("''"))
    ts: Mapped[datetime]

    order: Mapped[OrderRecord] = relationship(back_populates="fills")


class PositionRecord(Base):
    """Net holding per symbol, strategy and mode."""

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint("symbol", "strategy", "mode"),
        CheckConstraint(_MODES, name="mode"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    qty: Mapped[Decimal] = mapped_column(default=Decimal(0))
    avg_price: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LedgerEntry(Base):
    """A settlement entry: the cash effect of a fill (or deposit, fee, adjustment)."""

    __tablename__ = "ledger"
    __table_args__ = (
        CheckConstraint(_MODES, name="mode"),
        Index(None, "mode", "ts"),
        Index(None, "ts"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    mode: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str | None] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(64), default="")
    cash_delta: Mapped[Decimal]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))
    realized_pnl: Mapped[Decimal] = mapped_column(default=Decimal(0))
    reason: Mapped[str] = mapped_column(String(32))
    client_order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.client_order_id"), index=True
    )

    # The relationship (not just the FK) makes one flush insert the order before its entries.
    order: Mapped[OrderRecord | None] = relationship()


class VenueBalance(Base):
    """One asset of the venue account as the last reconciliation saw it.

    `outside` is what the account held beyond SIGMA's bookings when SIGMA first compared
    (funds deposited before trading, other holdings); afterwards the venue's total must equal
    `outside` plus what SIGMA booked, and any other figure is raised as an alert."""

    __tablename__ = "venue_balances"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset: Mapped[str] = mapped_column(String(16), primary_key=True)
    outside: Mapped[Decimal]
    venue_total: Mapped[Decimal]
    booked: Mapped[Decimal]
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class VenueCursor(Base):
    """Per venue and symbol, the time up to which the venue's trades were reconciled."""

    __tablename__ = "venue_cursors"

    venue: Mapped[str] = mapped_column(String(32), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    trades_until: Mapped[datetime]


class LedgerDaily(Base):
    """The ledger summed per UTC day, mode, strategy and symbol (NULL symbol as "").

    On PostgreSQL a trigger on `ledger` keeps it in step in the writer's own transaction
    (insert, update, delete, truncate), so realised-PnL and ledger totals read a few rows
    per day instead of every entry. On SQLite it stays empty and unused: the amounts there are
    text, which SQL cannot add up exactly.
    """

    __tablename__ = "ledger_daily"

    mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Unbounded NUMERIC: a sum can outgrow the NUMERIC(28, 10) of its entries.
    cash: Mapped[Decimal] = mapped_column(Numeric(asdecimal=True))
    fees: Mapped[Decimal] = mapped_column(Numeric(asdecimal=True))
    realized_pnl: Mapped[Decimal] = mapped_column(Numeric(asdecimal=True))
    entries: Mapped[int] = mapped_column(BigInteger)


# --- simulation and research -------------------------------------------------------------------


class SimRun(Base):
    """A paper/simulation session, with the operator's 1-5 rating and comment."""

    __tablename__ = "sim_runs"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    initial_cash: Mapped[Decimal]
    final_equity: Mapped[Decimal | None]
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The paper account at the end of the run (cash, fees paid, position; Decimal strings):
    # the next start of the same strategy and symbol carries it on.
    account: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str | None] = mapped_column(Text)

    orders: Mapped[list[SimOrder]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True
    )


class SimOrder(Base):
    """An order placed during a simulation run."""

    __tablename__ = "sim_orders"
    __table_args__ = (
        UniqueConstraint("sim_run_id", "client_order_id"),
        CheckConstraint(_SIDES, name="side"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sim_run_id: Mapped[int] = mapped_column(ForeignKey("sim_runs.id", ondelete="CASCADE"))
    client_order_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(8), default="market")
    qty: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16), default="new")
    fill_price: Mapped[Decimal | None]
    fee: Mapped[Decimal] = mapped_column(default=Decimal(0))

    run: Mapped[SimRun] = relationship(back_populates="orders")


class StrategyParam(Base):
    """The current parameters of a strategy on a symbol; `version` grows with each change."""

    __tablename__ = "strategy_param"
    __table_args__ = (UniqueConstraint("strategy", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    history: Mapped[list[StrategyParamHistory]] = relationship(
        back_populates="param",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="StrategyParamHistory.version",
    )


class StrategyParamHistory(Base):
    """One change of a strategy's parameters: old and new values, why and by whom."""

    __tablename__ = "strategy_param_history"
    __table_args__ = (UniqueConstraint("param_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    param_id: Mapped[int] = mapped_column(ForeignKey("strategy_param.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    old_params: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    new_params: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(default=utcnow)

    param: Mapped[StrategyParam] = relationship(back_populates="history")


class BtSummary(Base):
    """One backtest run: inputs, headline figures and the statistics dictionary."""

    __tablename__ = "bt_summary"
    __table_args__ = (Index(None, "strategy", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(32), unique=True)
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]]
    start_ts: Mapped[datetime]
    end_ts: Mapped[datetime]
    initial_cash: Mapped[Decimal]
    final_equity: Mapped[Decimal]
    stats: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    report_path: Mapped[str | None] = mapped_column(String(500))

    trades: Mapped[list[BtTrade]] = relationship(
        back_populates="summary",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="BtTrade.id",
    )


class BtTrade(Base):
    """A closed round trip of a backtest. `qty` is signed: > 0 long, < 0 short."""

    __tablename__ = "bt_trades"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    summary_id: Mapped[int] = mapped_column(
        ForeignKey("bt_summary.id", ondelete="CASCADE"), index=True
    )
    qty: Mapped[Decimal]
    entry_ts: Mapped[datetime]
    entry_price: Mapped[Decimal]
    exit_ts: Mapped[datetime]
    exit_price: Mapped[Decimal]
    fees: Mapped[Decimal]
    pnl: Mapped[Decimal]
    entry_bar: Mapped[int] = mapped_column(Integer, default=-1)
    exit_bar: Mapped[int] = mapped_column(Integer, default=-1)
    # Why the trade closed (signal, stop_loss, take_profit, trailing_stop, liquidation, ...)
    # and its entry order's tag.
    exit_reason: Mapped[str] = mapped_column(String(32), default="signal", server_default="signal")
    tag: Mapped[str] = mapped_column(String(64), default="", server_default=text("''"))

    summary: Mapped[BtSummary] = relationship(back_populates="trades")


class PerformanceReport(Base):
    """A periodic (e.g. weekly) performance report and where its file lives."""

    __tablename__ = "performance_reports"
    __table_args__ = (Index(None, "kind", "period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(8))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    stats: Mapped[dict[str, Any]]
    path: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MLModel(Base):
    """A trained model of the ML auto-tuning job: one row per version, with its out-of-sample
    metrics; `active` marks the version in use (only one that beat its naive baseline)."""

    __tablename__ = "ml_models"
    __table_args__ = (UniqueConstraint("name", "symbol", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    config: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    model: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=False)


# --- adaptive layer ----------------------------------------------------------------------------


class RegimeTrade(Base):
    """A closed round trip as the feedback loop saw it (`sigma.regime.feedback.TradeOutcome`):
    kept so the quality scores survive a restart."""

    __tablename__ = "regime_trades"
    __table_args__ = (Index(None, "strategy", "symbol", "exit_ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    regime: Mapped[str] = mapped_column(String(16))
    variant: Mapped[str] = mapped_column(String(16))
    return_pct: Mapped[float] = mapped_column(Float)
    entry_ts: Mapped[datetime]
    exit_ts: Mapped[datetime]
    slippage: Mapped[float | None] = mapped_column(Float)


class RegimeState(Base):
    """What the adaptive loop decided and must remember across restarts, one JSON document per
    (kind, strategy, symbol): a strategy's quality verdict and blocked regimes, a symbol's
    tuned detector thresholds. Empty strings stand for "not about one strategy/symbol"."""

    __tablename__ = "regime_state"
    __table_args__ = (UniqueConstraint("kind", "strategy", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(64), default="")
    symbol: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class NewsRecord(Base):
    """A news item taken in from a feed (RSS/Atom URL or file); `key` (from the item's guid or
    link) makes fetching the same item again harmless."""

    __tablename__ = "news_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    ts: Mapped[datetime] = mapped_column(index=True)
    headline: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(500), default="")
    symbols: Mapped[list[str]] = mapped_column(JsonDoc, default=list)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigSetting(Base):
    """A setting kept in the database as the source of truth for every running instance;
    `version` grows with each change (an edit made against an older version is refused)."""

    __tablename__ = "config_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDoc)
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- operations --------------------------------------------------------------------------------


def _first_seen(context: Any) -> datetime:
    """An alert stored without `last_seen` was last seen when it was first seen (`ts`)."""
    ts: datetime = context.get_current_parameters()["ts"]
    return ts


class AlertLog(Base):
    """A notification that was raised. An alert with a `dedupe_key` has one row however often
    it repeats: `ts` is when it was first seen, `last_seen` the latest, `seen` how many times
    (the message and severity are the latest's)."""

    __tablename__ = "alert_log"
    __table_args__ = (Index(None, "dedupe_key", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    severity: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    seen: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    last_seen: Mapped[datetime] = mapped_column(default=_first_seen, index=True)


class ActionLog(Base):
    """A decision the bot took (signal acted on, order skipped, kill switch, ...)."""

    __tablename__ = "action_log"
    __table_args__ = (Index(None, "strategy", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(8))
    strategy: Mapped[str | None] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ControlFlag(Base):
    """A switch every process reads (the risk kill switch): who set it, when and why."""

    __tablename__ = "control_flags"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StrategyControl(Base):
    """An operator's say over one strategy on one symbol: whether it may open positions
    (`enabled`; stopped with the reason) and whether the regime loop may retune its
    parameters (`pinned` after a manual change, until someone allows it again)."""

    __tablename__ = "strategy_controls"

    strategy: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    changed_by: Mapped[str] = mapped_column(String(64), default="")
    changed_at: Mapped[datetime | None]
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    pin_reason: Mapped[str] = mapped_column(Text, default="")
    pinned_by: Mapped[str] = mapped_column(String(64), default="")
    pinned_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RiskStateRecord(Base):
    """The circuit breakers' marks of one risk account (`strategy:symbol`) in one mode: the
    day and the equity it opened with, the highest equity seen and why a breaker tripped
    ("" while armed). Kept so a restart continues halted when it stopped halted."""

    __tablename__ = "risk_state"
    __table_args__ = (CheckConstraint(_MODES, name="mode"),)

    mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    account: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    day_start: Mapped[Decimal]
    peak: Mapped[Decimal]
    tripped: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ProtectiveStateRecord(Base):
    """The protective orders the live bot holds for one strategy on one symbol in one mode
    (stop-loss, take-profit, trailing stop with level and trail, OCO links, the entry a
    protection waits for, the bars left of expiring orders), as `sigma.runtime.protection`
    writes them (money as exact strings). Kept so a restart continues protected."""

    __tablename__ = "protective_orders"
    __table_args__ = (CheckConstraint(_MODES, name="mode"),)

    mode: Mapped[str] = mapped_column(String(8), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WorkerHeartbeat(Base):
    """The last sign of life of each order worker, whatever process it runs in: the
    scheduler's health check reads these, so a `sigma worker` on another machine that went
    silent is noticed too. A worker that stops in order removes its row."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """One execution of a scheduled job."""

    __tablename__ = "job_runs"
    __table_args__ = (Index(None, "job_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A dashboard/API user."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login: Mapped[datetime | None]
    # Every token carries the version it was issued under; raising it (a new password or
    # role, a logout) revokes all the user's earlier access and refresh tokens.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    prefs: Mapped[list[UserPref]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )


# Names differing only in case would pass for one another in the audit trail and the dashboard
# ("Admin" changing what "admin" set): the database holds one name in every case, whoever writes.
Index(USERNAME_LOWER_INDEX, func.lower(User.username), unique=True)


class AuthSession(Base):
    """One login's chain of refresh tokens (a token family). Each refresh replaces
    `refresh_jti`; presenting an older token of the chain (a reuse: it was stolen or
    replayed) revokes the whole family, and its access tokens with it."""

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    refresh_jti: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """A request a user sent with an `Idempotency-Key`: what it asked (`fingerprint`), the
    command it sends (`command_id`), when it was handed to the bot (`sent_at`, null before)
    and, once answered, the answer (`status`, `response`; null while it is being served). The
    primary key is the arbiter between API processes: of two requests with one key, the
    second's insert finds the first's row. Gone after `expires_at` (the retention job)."""

    __tablename__ = "idempotency_keys"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    response: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    command_id: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]


class UserPref(Base):
    """One preference of a user (a JSON value under a key)."""

    __tablename__ = "user_prefs"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JsonDoc)

    user: Mapped[User] = relationship(back_populates="prefs")
