"""Venue fees and reconciliation: each fill's fee currency (`fills.fee_asset`: a Binance buy
pays its fee in the asset bought), the venue balances as last reconciled (`venue_balances`)
and how far each symbol's venue trades were reconciled (`venue_cursors`). Fills booked before
keep "" (the quote currency, as they were booked).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[object]:
    # As 0001: NUMERIC(28, 10); fixed-point text on SQLite.
    return sa.Numeric(28, 10).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("fills") as batch:
        batch.add_column(
            sa.Column(
                "fee_asset", sa.String(length=16), server_default=sa.text("''"), nullable=False
            )
        )
    op.create_table(
        "venue_balances",
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("outside", _money(), nullable=False),
        sa.Column("venue_total", _money(), nullable=False),
        sa.Column("booked", _money(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("venue", "asset", name=op.f("pk_venue_balances")),
    )
    op.create_table(
        "venue_cursors",
        sa.Column("venue", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("trades_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("venue", "symbol", name=op.f("pk_venue_cursors")),
    )


def downgrade() -> None:
    op.drop_table("venue_cursors")
    op.drop_table("venue_balances")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("fee_asset")
