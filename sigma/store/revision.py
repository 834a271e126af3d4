"""The schema revision SIGMA ships, read from the migration files without Alembic or
SQLAlchemy (a command that finds its database at head loads neither)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

_REVISION_LINE = re.compile(r"^(down_)?revision(?:: [^=]+)? = (?:[\"']([^\"']+)[\"']|None)", re.M)


@cache
def shipped_head() -> str:
    """`head_revision` read from the migration files' `revision`/`down_revision` lines alone.

    `migrate` compares it with the database's revision at every start: a database already at
    head then costs one query, not Alembic's import (~10 MB, a tenth of a second) and its
    script loading. A test keeps it equal to Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, name in _REVISION_LINE.findall(script.read_text()):
            if name:
                (parents if down else revisions).add(name)
    heads = revisions - parents
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {sorted(heads)}"
    return heads.pop()
