"""The circuit breakers' marks per risk account and mode (`risk_state`): the day and the
equity it opened with, the peak equity and why a breaker tripped, so a restart keeps a halted
bot halted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _money() -> sa.types.TypeEngine[object]:
    # As 0001: NUMERIC(28, 10); fixed-point text on SQLite.
    return sa.Numeric(28, 10).with_variant(sa.String(40), "sqlite")


def upgrade() -> None:
    op.create_table(
        "risk_state",
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("day_start", _money(), nullable=False),
        sa.Column("peak", _money(), nullable=False),
        sa.Column("tripped", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('live', 'paper')", name=op.f("ck_risk_state_mode")),
        sa.PrimaryKeyConstraint("mode", "account", name=op.f("pk_risk_state")),
    )


def downgrade() -> None:
    op.drop_table("risk_state")
