"""One `alert_log` row per alert key: how many times it was seen (`seen`) and when last
(`last_seen`; `ts` is when first). Repeats within the notifier's dedupe window used to be stored
as "[suppressed: duplicate]" copies (194 of 223 rows in a 25-minute run); the copies already
stored are folded into their key's first row, then a unique index keeps it that way.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUPLICATE = "[suppressed: duplicate] "


def _fold(conn: sa.Connection) -> None:
    """Fold each key's rows into its first: seen = rows, last_seen = the newest's time, the
    newest's message (without the old suppression prefix) and severity."""
    log = sa.table(
        "alert_log",
        sa.column("id", sa.Integer),
        sa.column("ts", sa.DateTime(timezone=True)),
        sa.column("severity", sa.String),
        sa.column("message", sa.Text),
        sa.column("dedupe_key", sa.String),
        sa.column("seen", sa.Integer),
        sa.column("last_seen", sa.DateTime(timezone=True)),
    )
    conn.execute(sa.update(log).values(last_seen=log.c.ts))
    repeated = (
        sa.select(log.c.dedupe_key)
        .where(log.c.dedupe_key.is_not(None))
        .group_by(log.c.dedupe_key)
        .having(sa.func.count() > 1)
    )
    for (key,) in conn.execute(repeated).all():
        rows = conn.execute(
            sa.select(log.c.id, log.c.ts, log.c.severity, log.c.message)
            .where(log.c.dedupe_key == key)
            .order_by(log.c.ts, log.c.id)
        ).all()
        first, newest = rows[0], rows[-1]
        conn.execute(
            sa.update(log)
            .where(log.c.id == first.id)
            .values(
                seen=len(rows),
                last_seen=newest.ts,
                severity=newest.severity,
                message=newest.message.removeprefix(_DUPLICATE),
            )
        )
        conn.execute(sa.delete(log).where(log.c.id.in_([r.id for r in rows[1:]])))


def upgrade() -> None:
    with op.batch_alter_table("alert_log") as batch:
        batch.add_column(sa.Column("seen", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    _fold(op.get_bind())
    with op.batch_alter_table("alert_log") as batch:
        batch.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_alert_log_dedupe_key_ts")
        batch.create_index("ix_alert_log_dedupe_key", ["dedupe_key"], unique=True)
        batch.create_index("ix_alert_log_last_seen", ["last_seen"])


def downgrade() -> None:
    # The folded copies are not brought back: their count survives only as `seen`.
    with op.batch_alter_table("alert_log") as batch:
        batch.drop_index("ix_alert_log_last_seen")
        batch.drop_index("ix_alert_log_dedupe_key")
        batch.create_index("ix_alert_log_dedupe_key_ts", ["dedupe_key", "ts"])
        batch.drop_column("last_seen")
        batch.drop_column("seen")
