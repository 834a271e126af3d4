"""Adaptive-layer state kept across restarts (feedback trades, quality verdicts, blocked regimes,
tuned detector thresholds), news items taken in from feeds, and versioned settings (ConfigSync).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "regime_trades",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("return_pct", sa.Float(), nullable=False),
        sa.Column("entry_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exit_ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regime_trades")),
    )
    op.create_index(
        op.f("ix_regime_trades_strategy_symbol_exit_ts"),
        "regime_trades",
        ["strategy", "symbol", "exit_ts"],
    )
    op.create_table(
        "regime_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regime_state")),
        sa.UniqueConstraint(
            "kind", "strategy", "symbol", name=op.f("uq_regime_state_kind_strategy_symbol")
        ),
    )
    op.create_table(
        "news_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("symbols", _json(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_news_items")),
        sa.UniqueConstraint("key", name=op.f("uq_news_items_key")),
    )
    op.create_index(op.f("ix_news_items_ts"), "news_items", ["ts"])
    op.create_table(
        "config_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_config_settings")),
    )


def downgrade() -> None:
    op.drop_table("config_settings")
    op.drop_index(op.f("ix_news_items_ts"), table_name="news_items")
    op.drop_table("news_items")
    op.drop_table("regime_state")
    op.drop_index(op.f("ix_regime_trades_strategy_symbol_exit_ts"), table_name="regime_trades")
    op.drop_table("regime_trades")
