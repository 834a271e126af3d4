"""A bounded, deterministic fuzz of every operation in the OpenAPI schema: random path values,
query parameters and JSON bodies (shaped after the schema's fields) must never produce a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Headers = Callable[[str], dict[str, str]]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
path_values = st.integers(min_value=-5, max_value=2**40).map(str) | st.text(min_size=1, max_size=20)


def _fields(schema: dict[str, Any], op: dict[str, Any]) -> list[str]:
    """Property names of the operation's request body (resolving one $ref)."""
    content = op.get("requestBody", {}).get("content", {})
    body = next(iter(content.values()), {}).get("schema", {})
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return list(body.get("properties", {}))


def test_no_operation_answers_5xx(client: TestClient, auth: Headers) -> None:
    schema = client.get("/openapi.json").json()
    operations = [
        (method, path, op) for path, item in schema["paths"].items() for method, op in item.items()
    ]
    headers = auth("admin")

    @settings(
        max_examples=400,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def call(data: st.DataObject) -> None:
        method, template, op = data.draw(st.sampled_from(operations))
        path = template
        query: dict[str, Any] = {}
        for param in op.get("parameters", []):
            if param["in"] == "path":
                path = path.replace(
                    "{" + param["name"] + "}", quote(data.draw(path_values), safe="")
                )
            elif data.draw(st.booleans()):
                query[param["name"]] = data.draw(scalars.filter(lambda v: v is not None))
        kwargs: dict[str, Any] = {"params": query}
        if "requestBody" in op:
            fields = _fields(schema, op)
            shaped = st.fixed_dictionaries({}, optional={f: json_values for f in fields})
            body = data.draw(shaped | json_values)
            if "application/x-www-form-urlencoded" in op["requestBody"]["content"]:
                kwargs["data"] = (
                    {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
                )
            else:
                kwargs["json"] = body
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code < 500, (method, path, kwargs, response.text)

    call()
