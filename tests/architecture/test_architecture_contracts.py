"""The import-linter contracts in pyproject.toml cover every package of SIGMA.

`lint-imports` (run by `make test`) checks the contracts as written; these tests make sure a
package added later cannot slip out of them unnoticed.
"""

import tomllib
from pathlib import Path

import sigma

ROOT = Path(sigma.__file__).parent
CONTRACTS = {
    contract["id"]: contract
    for contract in tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]["contracts"]
}


def _packages() -> set[str]:
    return {
        f"sigma.{path.stem if path.is_file() else path.name}"
        for path in ROOT.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem != "__init__")
    }


def test_every_package_but_the_store_is_kept_from_building_sql() -> None:
    sources = set(CONTRACTS["sql-in-store"]["source_modules"])
    assert sources == _packages() - {"sigma.store"}
    assert "sqlalchemy" in CONTRACTS["sql-in-store"]["forbidden_modules"]


def test_every_package_has_a_layer() -> None:
    layered = {
        f"sigma.{name.strip()}"
        for layer in CONTRACTS["layers"]["layers"]
        for name in layer.replace("|", ":").split(":")
    }
    assert layered == _packages()
