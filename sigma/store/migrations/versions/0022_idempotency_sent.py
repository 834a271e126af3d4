"""`idempotency_keys.command_id` and `sent_at`: which command a key's claim stands for and when
it was handed to the bot, so a claim whose API process stopped before sending can be taken
over by a retry (nothing was sent), and one that was sent never is.

Claims stored before have neither: they are treated as possibly sent.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("command_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("sent_at")
        batch.drop_column("command_id")
