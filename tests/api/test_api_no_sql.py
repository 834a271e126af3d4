"""The API is no query layer of its own: its routers delegate to the store's query services,
so no module of `sigma.api` imports SQLAlchemy (the session it injects is typed as
`sigma.store.queries.Session`)."""

from __future__ import annotations

import ast
from pathlib import Path

import sigma.api

API = Path(sigma.api.__file__).parent


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_of_the_api_imports_sqlalchemy() -> None:
    imports = {str(path.relative_to(API)): _imported(path) for path in API.rglob("*.py")}
    assert "routers/trading.py" in imports  # the walk sees the routers
    offenders = {
        name: sorted(n for n in found if n.split(".")[0] == "sqlalchemy")
        for name, found in imports.items()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_of_the_api_imports_the_composition_root() -> None:
    """The API is handed its handles (`ApiDeps`); it never reaches for the `App` that built
    them."""
    offenders = {
        str(path.relative_to(API))
        for path in API.rglob("*.py")
        if any(n.split(".")[:2] == ["sigma", "bootstrap"] for n in _imported(path))
    }
    assert offenders == set()
