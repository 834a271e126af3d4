"""Read paths of the API: indexes for listing orders, fills and ledger entries newest first,
and `ledger_daily`, the ledger summed per UTC day, mode, strategy and symbol.

On PostgreSQL a row trigger on `ledger` keeps `ledger_daily` in step inside the writer's
transaction (and a statement trigger empties it on TRUNCATE); existing entries are summed in
once here. On SQLite the table stays empty: the API sums the ledger itself there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY_OLD = (
    "mode = OLD.mode AND day = (OLD.ts AT TIME ZONE 'UTC')::date "
    "AND strategy = OLD.strategy AND symbol = coalesce(OLD.symbol, '')"
)

# SET search_path FROM CURRENT: the function finds `ledger_daily` in the schema it was made in,
# whatever the search path of the session that writes the ledger.
_APPLY = f"""
CREATE FUNCTION ledger_daily_apply() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE ledger_daily
           SET cash = cash - OLD.cash_delta, fees = fees - OLD.fee,
               realized_pnl = realized_pnl - OLD.realized_pnl, entries = entries - 1
         WHERE {_KEY_OLD};
        DELETE FROM ledger_daily WHERE {_KEY_OLD} AND entries = 0;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO ledger_daily AS d
               (mode, day, strategy, symbol, cash, fees, realized_pnl, entries)
        VALUES (NEW.mode, (NEW.ts AT TIME ZONE 'UTC')::date, NEW.strategy,
                coalesce(NEW.symbol, ''), NEW.cash_delta, NEW.fee, NEW.realized_pnl, 1)
        ON CONFLICT (mode, day, strategy, symbol) DO UPDATE
           SET cash = d.cash + EXCLUDED.cash, fees = d.fees + EXCLUDED.fees,
               realized_pnl = d.realized_pnl + EXCLUDED.realized_pnl,
               entries = d.entries + 1;
    END IF;
    RETURN NULL;
END $$
"""

_CLEAR = """
CREATE FUNCTION ledger_daily_clear() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    TRUNCATE ledger_daily;
    RETURN NULL;
END $$
"""

_BACKFILL = """
INSERT INTO ledger_daily (mode, day, strategy, symbol, cash, fees, realized_pnl, entries)
SELECT mode, (ts AT TIME ZONE 'UTC')::date, strategy, coalesce(symbol, ''),
       sum(cash_delta), sum(fee), sum(realized_pnl), count(*)
  FROM ledger
 GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    op.create_index(op.f("ix_orders_created_at_id"), "orders", ["created_at", "id"])
    op.create_index(op.f("ix_fills_ts_id"), "fills", ["ts", "id"])
    op.create_index(op.f("ix_ledger_ts"), "ledger", ["ts"])
    op.create_table(
        "ledger_daily",
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("cash", sa.Numeric(), nullable=False),
        sa.Column("fees", sa.Numeric(), nullable=False),
        sa.Column("realized_pnl", sa.Numeric(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("mode", "day", "strategy", "symbol", name=op.f("pk_ledger_daily")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_APPLY)
    op.execute(_CLEAR)
    # Creating the trigger locks out concurrent ledger writers until this transaction commits,
    # so the backfill below and the trigger together count every entry exactly once.
    op.execute(
        "CREATE TRIGGER ledger_daily_row AFTER INSERT OR UPDATE OR DELETE ON ledger "
        "FOR EACH ROW EXECUTE FUNCTION ledger_daily_apply()"
    )
    op.execute(
        "CREATE TRIGGER ledger_daily_truncate AFTER TRUNCATE ON ledger "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_daily_clear()"
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_daily_truncate ON ledger")
        op.execute("DROP TRIGGER ledger_daily_row ON ledger")
        op.execute("DROP FUNCTION ledger_daily_clear()")
        op.execute("DROP FUNCTION ledger_daily_apply()")
    op.drop_table("ledger_daily")
    op.drop_index(op.f("ix_ledger_ts"), table_name="ledger")
    op.drop_index(op.f("ix_fills_ts_id"), table_name="fills")
    op.drop_index(op.f("ix_orders_created_at_id"), table_name="orders")
