"""Initial schema: market data, trading, simulation/research and operations tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Self-contained on purpose: the column types are spelled out here rather than imported from
`sigma.store.types`, so later changes to the application code cannot alter this revision.
They match those types exactly (the test suite compares the migrated schema with the models).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[object]:
    # NUMERIC(28, 10); fixed-point text on SQLite, whose NUMERIC affinity would turn it into REAL.
    return sa.Numeric(28, 10).with_variant(sa.String(40), "sqlite")


def _ts() -> sa.types.TypeEngine[object]:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "action_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("strategy", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_log")),
    )
    op.create_index(op.f("ix_action_log_strategy_ts"), "action_log", ["strategy", "ts"])

    op.create_table(
        "alert_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_log")),
    )
    op.create_index(op.f("ix_alert_log_dedupe_key_ts"), "alert_log", ["dedupe_key", "ts"])
    op.create_index(op.f("ix_alert_log_ts"), "alert_log", ["ts"])

    op.create_table(
        "bars",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("open", _money(), nullable=False),
        sa.Column("high", _money(), nullable=False),
        sa.Column("low", _money(), nullable=False),
        sa.Column("close", _money(), nullable=False),
        sa.Column("volume", _money(), nullable=False),
        sa.PrimaryKeyConstraint("symbol", "timeframe", "ts", name=op.f("pk_bars")),
    )
    op.create_table(
        "bt_summary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("start_ts", _ts(), nullable=False),
        sa.Column("end_ts", _ts(), nullable=False),
        sa.Column("initial_cash", _money(), nullable=False),
        sa.Column("final_equity", _money(), nullable=False),
        sa.Column("stats", _json(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("report_path", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bt_summary")),
        sa.UniqueConstraint("run_id", name=op.f("uq_bt_summary_run_id")),
    )
    op.create_index(op.f("ix_bt_summary_strategy_symbol"), "bt_summary", ["strategy", "symbol"])

    op.create_table(
        "instruments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("base", sa.String(length=16), nullable=False),
        sa.Column("quote", sa.String(length=16), nullable=False),
        sa.Column("tick_size", _money(), nullable=True),
        sa.Column("lot_size", _money(), nullable=True),
        sa.Column("min_notional", _money(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instruments")),
        sa.UniqueConstraint("symbol", name=op.f("uq_instruments_symbol")),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=100), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index(op.f("ix_job_runs_job_id_started_at"), "job_runs", ["job_id", "started_at"])

    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("limit_price", _money(), nullable=True),
        sa.Column("stop_price", _money(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("filled_qty", _money(), nullable=False),
        sa.Column("avg_fill_price", _money(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.CheckConstraint("mode IN ('live', 'paper')", name=op.f("ck_orders_mode")),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint(
            "status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint("type IN ('market', 'limit', 'stop')", name=op.f("ck_orders_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_index(op.f("ix_orders_symbol_created_at"), "orders", ["symbol", "created_at"])

    op.create_table(
        "performance_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("period_start", _ts(), nullable=False),
        sa.Column("period_end", _ts(), nullable=False),
        sa.Column("stats", _json(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_performance_reports")),
    )
    op.create_index(
        op.f("ix_performance_reports_kind_period_end"),
        "performance_reports",
        ["kind", "period_end"],
    )

    op.create_table(
        "positions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("avg_price", _money(), nullable=False),
        sa.Column("realized_pnl", _money(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.CheckConstraint("mode IN ('live', 'paper')", name=op.f("ck_positions_mode")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint(
            "symbol", "strategy", "mode", name=op.f("uq_positions_symbol_strategy_mode")
        ),
    )
    op.create_table(
        "sim_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("initial_cash", _money(), nullable=False),
        sa.Column("final_equity", _money(), nullable=True),
        sa.Column("stats", _json(), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_sim_runs_rating")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sim_runs")),
    )
    op.create_table(
        "strategy_param",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_param")),
        sa.UniqueConstraint("strategy", "symbol", name=op.f("uq_strategy_param_strategy_symbol")),
    )
    op.create_table(
        "ticks",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("price", _money(), nullable=False),
        sa.Column("volume", _money(), nullable=False),
        sa.Column("bid", _money(), nullable=True),
        sa.Column("ask", _money(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flag_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("symbol", "ts", "seq", name=op.f("pk_ticks")),
    )
    op.create_table(
        "trend_data",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("trend", sa.String(length=16), nullable=False),
        sa.Column("strength", sa.Float(), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trend_data")),
        sa.UniqueConstraint(
            "symbol", "timeframe", "ts", name=op.f("uq_trend_data_symbol_timeframe_ts")
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("last_login", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "bt_trades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.Integer(), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("entry_ts", _ts(), nullable=False),
        sa.Column("entry_price", _money(), nullable=False),
        sa.Column("exit_ts", _ts(), nullable=False),
        sa.Column("exit_price", _money(), nullable=False),
        sa.Column("fees", _money(), nullable=False),
        sa.Column("pnl", _money(), nullable=False),
        sa.Column("entry_bar", sa.Integer(), nullable=False),
        sa.Column("exit_bar", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["bt_summary.id"],
            name=op.f("fk_bt_trades_summary_id_bt_summary"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bt_trades")),
    )
    op.create_index(op.f("ix_bt_trades_summary_id"), "bt_trades", ["summary_id"])

    op.create_table(
        "fills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_fill_id", sa.String(length=64), nullable=True),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("price", _money(), nullable=False),
        sa.Column("fee", _money(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_fills_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint("exchange_fill_id", name=op.f("uq_fills_exchange_fill_id")),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"])

    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("cash_delta", _money(), nullable=False),
        sa.Column("fee", _money(), nullable=False),
        sa.Column("realized_pnl", _money(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("mode IN ('live', 'paper')", name=op.f("ck_ledger_mode")),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_ledger_client_order_id_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
    )
    op.create_index(op.f("ix_ledger_client_order_id"), "ledger", ["client_order_id"])
    op.create_index(op.f("ix_ledger_mode_ts"), "ledger", ["mode", "ts"])

    op.create_table(
        "sim_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sim_run_id", sa.Integer(), nullable=False),
        sa.Column("client_order_id", sa.String(length=64), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("qty", _money(), nullable=False),
        sa.Column("limit_price", _money(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fill_price", _money(), nullable=True),
        sa.Column("fee", _money(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_sim_orders_side")),
        sa.ForeignKeyConstraint(
            ["sim_run_id"],
            ["sim_runs.id"],
            name=op.f("fk_sim_orders_sim_run_id_sim_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sim_orders")),
        sa.UniqueConstraint(
            "sim_run_id", "client_order_id", name=op.f("uq_sim_orders_sim_run_id_client_order_id")
        ),
    )
    op.create_table(
        "strategy_param_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("param_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("old_params", _json(), nullable=True),
        sa.Column("new_params", _json(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("ts", _ts(), nullable=False),
        sa.ForeignKeyConstraint(
            ["param_id"],
            ["strategy_param.id"],
            name=op.f("fk_strategy_param_history_param_id_strategy_param"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_param_history")),
        sa.UniqueConstraint(
            "param_id", "version", name=op.f("uq_strategy_param_history_param_id_version")
        ),
    )
    op.create_table(
        "user_prefs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_prefs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_prefs")),
        sa.UniqueConstraint("user_id", "key", name=op.f("uq_user_prefs_user_id_key")),
    )


def downgrade() -> None:
    op.drop_table("user_prefs")
    op.drop_table("strategy_param_history")
    op.drop_table("sim_orders")
    op.drop_index(op.f("ix_ledger_mode_ts"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_client_order_id"), table_name="ledger")

    op.drop_table("ledger")
    op.drop_index(op.f("ix_fills_client_order_id"), table_name="fills")

    op.drop_table("fills")
    op.drop_index(op.f("ix_bt_trades_summary_id"), table_name="bt_trades")

    op.drop_table("bt_trades")
    op.drop_table("users")
    op.drop_table("trend_data")
    op.drop_table("ticks")
    op.drop_table("strategy_param")
    op.drop_table("sim_runs")
    op.drop_table("positions")
    op.drop_index(op.f("ix_performance_reports_kind_period_end"), table_name="performance_reports")

    op.drop_table("performance_reports")
    op.drop_index(op.f("ix_orders_symbol_created_at"), table_name="orders")
    op.drop_index(op.f("ix_orders_status"), table_name="orders")

    op.drop_table("orders")
    op.drop_index(op.f("ix_job_runs_job_id_started_at"), table_name="job_runs")

    op.drop_table("job_runs")
    op.drop_table("instruments")
    op.drop_index(op.f("ix_bt_summary_strategy_symbol"), table_name="bt_summary")

    op.drop_table("bt_summary")
    op.drop_table("bars")
    op.drop_index(op.f("ix_alert_log_ts"), table_name="alert_log")
    op.drop_index(op.f("ix_alert_log_dedupe_key_ts"), table_name="alert_log")

    op.drop_table("alert_log")
    op.drop_index(op.f("ix_action_log_strategy_ts"), table_name="action_log")

    op.drop_table("action_log")
