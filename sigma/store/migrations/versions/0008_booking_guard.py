"""`sigma_expect_rows(matched, expected, what)` on PostgreSQL: fails the transaction with
SQLSTATE 40001 (serialization_failure) when a guarded write matched another number of rows.

The order worker books a batch in one network exchange when it knows the positions the batch
touches (as its own last bookings left them): the position updates are compare-and-set, and
this function turns a miss into an error inside the same exchange, so nothing of the batch
commits and the worker books it again from the rows as they stand (see
`sigma.execution.booking.book_new_orders`). SQLite has no server round trips to save and
never takes that path.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION sigma_expect_rows(matched bigint, expected bigint, what text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        BEGIN
            IF matched IS DISTINCT FROM expected THEN
                RAISE EXCEPTION '% (% rows matched, % expected)', what, matched, expected
                    USING ERRCODE = 'serialization_failure';
            END IF;
            RETURN matched;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION sigma_expect_rows(bigint, bigint, text)")
