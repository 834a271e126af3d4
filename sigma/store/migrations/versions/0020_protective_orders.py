"""The live bot's protective orders per strategy, symbol and mode (`protective_orders`): armed
stop-loss, take-profit and trailing stop with their levels, OCO links, protection waiting
for its entry and the bars left of expiring orders, so a restart continues protected.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "protective_orders",
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column(
            "state", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('live', 'paper')", name=op.f("ck_protective_orders_mode")),
        sa.PrimaryKeyConstraint("mode", "strategy", "symbol", name=op.f("pk_protective_orders")),
    )


def downgrade() -> None:
    op.drop_table("protective_orders")
