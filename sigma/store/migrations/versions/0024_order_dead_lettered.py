"""`orders.dead_lettered_at`: when an order's event was dead-lettered while whether the venue
took the order was unknown. Such an order has no delivery left to place it, so once the
venue says it does not hold it, it is settled rejected instead of staying open for good.

Orders stored before have none: an open one is taken as still awaiting its redelivery.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("dead_lettered_at")
