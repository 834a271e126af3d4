"""The API's OpenAPI schema as JSON, without a server: what the dashboard's API types are
generated from (`npm run api-types` in `dashboard/`).

    python -m sigma.api.openapi_dump [PATH]      # PATH, or standard output with none

The API is built on an unmigrated throwaway SQLite file, no strategies and an in-process bus
(no connection is opened: the schema comes from the routes alone), so the schema is the same
on every machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from sigma.api.app import create_api
from sigma.api.deps import ApiDeps
from sigma.bus.memory import InMemoryPubSub
from sigma.config import load_settings
from sigma.store.db import create_db_engine, session_factory
from sigma.strategies import StrategyRegistry


def openapi_schema() -> dict[str, Any]:
    """The schema `/openapi.json` serves."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite:///{tmp}/schema.db", var_dir=Path(tmp))
        db = create_db_engine(settings.database.database_url)
        sessions = session_factory(db)
        deps = ApiDeps(
            settings=settings,
            sessions=sessions,
            read_sessions=sessions,
            read_db=db,
            strategies=StrategyRegistry(),
            open_bus=InMemoryPubSub,
        )
        try:
            schema: dict[str, Any] = create_api(deps, InMemoryPubSub(), static_dir=None).openapi()
        finally:
            db.dispose()
    return schema


def render(schema: dict[str, Any]) -> str:
    """`schema` as the checked-in file holds it: indented JSON, one trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write the schema to the path in `argv` (standard output without one)."""
    args = sys.argv[1:] if argv is None else argv
    text = render(openapi_schema())
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":  # pragma: no cover - the command line
    main()
