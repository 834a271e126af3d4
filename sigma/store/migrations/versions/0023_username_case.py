"""`users`: a unique index on lower(username), so no two users' names differ only in case,
whatever writes them (the API's check alone let two concurrent creations, or a direct write,
add "Admin" beside "admin").

An installation that already holds such names is refused with their list: which of them to
rename is the operator's choice.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_users_lower_username"


def upgrade() -> None:
    clashes = op.get_bind().execute(
        sa.text(
            "SELECT username FROM users WHERE lower(username) IN "
            "(SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1)"
        )
    )
    names = sorted(row[0] for row in clashes)
    if names:
        raise RuntimeError(
            "users: these names differ only in case, rename all but one of each before "
            f"upgrading (sigma users): {', '.join(repr(n) for n in names)}"
        )
    op.create_index(_INDEX, "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="users")
