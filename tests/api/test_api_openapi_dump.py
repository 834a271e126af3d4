"""The dashboard's API types come from `dashboard/openapi.json`: it must be the schema the API
serves, so a route change that the dashboard was not regenerated for fails here (and then
`tsc` in the dashboard's build fails on a page using a field the schema no longer has)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sigma.api.openapi_dump import main, openapi_schema, render

COMMITTED = Path(__file__).resolve().parents[2] / "dashboard" / "openapi.json"


def test_the_dashboards_schema_is_the_one_the_api_serves() -> None:
    assert render(openapi_schema()) == COMMITTED.read_text(encoding="utf-8"), (
        "dashboard/openapi.json is stale: run `npm run api` in dashboard/ and commit the result"
    )


def test_the_dump_goes_to_a_file_or_to_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "openapi.json"
    main([str(target)])
    main([])
    written = target.read_text(encoding="utf-8")
    assert capsys.readouterr().out == written
    assert "/api/orders" in json.loads(written)["paths"]
