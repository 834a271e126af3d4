"""The slippage of each feedback trade (`regime_trades.slippage`), so the quality grade's
realised-against-expected slippage survives a restart. Trades recorded before it stay NULL:
their slippage was not measured.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot drop a column in place on downgrade.
    with op.batch_alter_table("regime_trades") as batch:
        batch.add_column(sa.Column("slippage", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("regime_trades") as batch:
        batch.drop_column("slippage")
