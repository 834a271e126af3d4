"""The paper account each simulation run ended with (`sim_runs.account`: cash, fees paid and
the position), so the next start carries it on instead of opening at the initial cash; and one
clock per order column: `orders.created_at` is when the order was recorded (wall clock),
the new `orders.decided_at` the market time of the bar it was decided on (what `created_at`
held before, copied over).

Revision ID: 0016
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET decided_at = created_at")
    with op.batch_alter_table("sim_runs") as batch:
        batch.add_column(
            sa.Column(
                "account", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sim_runs") as batch:
        batch.drop_column("account")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("decided_at")
