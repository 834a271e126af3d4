"""Each stored backtest trade says why it closed and carries its entry's tag
(`bt_trades.exit_reason`, `bt_trades.tag`): protective orders, liquidation and tagged entries.
Trades stored before were closed by the strategy's own signal and had no tag.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bt_trades") as batch:
        batch.add_column(
            sa.Column("exit_reason", sa.String(length=32), nullable=False, server_default="signal")
        )
        batch.add_column(
            sa.Column("tag", sa.String(length=64), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("bt_trades") as batch:
        batch.drop_column("tag")
        batch.drop_column("exit_reason")
