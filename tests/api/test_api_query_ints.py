"""Whole numbers in query strings and paths take ASCII digits only: Python's int() also read
"1_0", "+5", " 5" and full-width "５" (and the API passed them on as 10, 5, 5 and 5)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient

Headers = Callable[[str], dict[str, str]]
LAX = ["1_0", "+5", " 5", "5 ", "\uff15", "\u0665", "0x10", "1e3", "-5", "", "5" * 30]


def _int_params(api: FastAPI) -> list[tuple[str, str, str, str]]:
    """(method, path, "query" or "path", name) of every whole-number parameter the API
    documents."""
    found = []
    for path, operations in api.openapi()["paths"].items():
        for method, operation in operations.items():
            for param in operation.get("parameters", []):
                if param["in"] in ("query", "path") and param["schema"].get("type") == "integer":
                    found.append((method.upper(), path, param["in"], param["name"]))
    return found


def test_every_whole_number_parameter_takes_ascii_digits_only(
    api: FastAPI, client: TestClient, auth: Headers
) -> None:
    params = _int_params(api)
    # Guards against checking nothing: the list is the API's own.
    assert {("query", "limit"), ("query", "offset"), ("path", "report_id")} <= {
        (where, name) for _, _, where, name in params
    }
    admin = auth("admin")
    lax = []
    for method, path, where, name in params:
        for text in LAX:
            if where == "path" and text in ("", " 5", "5 "):
                continue  # an empty (or blank-trimmed) segment is another route
            url, query = path, ""
            if where == "query":
                query = f"?{name}={quote(text)}"
            else:
                url = url.replace(f"{{{name}}}", quote(text))
            url = url.replace("{", "").replace("}", "")  # other path parameters: their names
            response = client.request(method, url + query, headers=admin)
            detail = str(response.json())
            if response.status_code != 422 or f"{where}.{name}: " not in detail:
                lax.append((method, path, name, text, response.status_code))
    assert lax == [], sorted({(m, p, n) for m, p, n, _, _ in lax})


def test_whole_numbers_in_ascii_digits_pass(client: TestClient, auth: Headers) -> None:
    response = client.get("/api/orders?limit=10&offset=0", headers=auth("viewer"))
    assert response.status_code == 200, response.text
    refused = client.get("/api/orders?limit=0", headers=auth("viewer"))
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("query.limit: Input should be greater than")


def test_the_refusal_names_the_parameter_and_what_it_takes(
    client: TestClient, auth: Headers
) -> None:
    response = client.get("/api/orders?limit=1_0", headers=auth("viewer"))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "query.limit: Input should be a whole number of 1-18 ASCII digits, got '1_0'"
    )
