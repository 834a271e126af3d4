"""The pieces of the API's fast read path without a database: decimal text, orjson responses,
the verified-token cache, the OpenAPI error body, the serving loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from sigma.api.auth import AuthError, TokenService, VerifiedTokens
from sigma.api.routers.trading import OrderOut
from sigma.api.serialize import JsonBytes, dec, dec_text


def reference_dec(value: Decimal) -> str:
    """The former implementation, kept as the specification (exact up to 28 digits, where
    `normalize()` starts rounding)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def decimals(max_digits: int) -> st.SearchStrategy[Decimal]:
    return st.builds(
        lambda digits, exp, neg: Decimal((neg, tuple(digits), exp)),
        st.lists(st.integers(0, 9), min_size=1, max_size=max_digits),
        st.integers(-30, 30),
        st.integers(0, 1),
    )


NUMERIC_28_10 = Decimal("999999999999999999.9999999999")  # the stored columns' range


@given(
    decimals(28)
    | st.decimals(min_value=-NUMERIC_28_10, max_value=NUMERIC_28_10, places=10, allow_nan=False)
)
def test_dec_is_the_plain_text_the_former_implementation_gave(value: Decimal) -> None:
    assert dec(value) == reference_dec(value)


@given(decimals(60))
def test_dec_is_exact_and_plain_for_any_decimal(value: Decimal) -> None:
    text = dec(value)
    assert Decimal(text) == value and "E" not in text
    assert not text.startswith("-0") or text.startswith("-0.")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1.5000000000", "1.5"),
        ("100.0000000000", "100"),
        ("0E-10", "0"),
        ("-0E-10", "0"),
        ("-0.00", "0"),
        ("-0", "0"),
        ("1E-7", "0.0000001"),
        ("1.000E+5", "100000"),
        ("-12.3400", "-12.34"),
    ],
)
def test_dec_examples(value: str, text: str) -> None:
    assert dec(Decimal(value)) == text


@given(
    st.decimals(
        min_value=Decimal("-1e17"),
        max_value=Decimal("1e17"),
        places=10,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_dec_text_of_stored_fixed_point_text_equals_dec(value: Decimal) -> None:
    # What PostgreSQL's NUMERIC(28, 10) output and SQLite's stored text look like.
    stored = format(value.quantize(Decimal("1E-10")), "f")
    assert dec_text(stored) == dec(value)


def test_dec_text_passes_none_and_integers() -> None:
    assert dec_text(None) is None
    assert dec_text("42") == "42"
    assert dec_text("-0.0000000000") == "0"


def test_json_bytes_renders_what_the_response_model_would() -> None:
    row: dict[str, Any] = {
        "id": 7,
        "client_order_id": "c-1",
        "exchange_order_id": None,
        "mode": "paper",
        "symbol": "BTC",
        "strategy": "sma_cross",
        "side": "buy",
        "type": "limit",
        "qty": "0.5",
        "limit_price": "100.25",
        "stop_price": None,
        "status": "new",
        "filled_qty": "0",
        "avg_fill_price": None,
        "created_at": datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        "decided_at": datetime(2024, 3, 1, 11, 59, tzinfo=UTC),
        "updated_at": datetime(2024, 3, 1, 12, 0, 0, 1500, tzinfo=UTC),
    }
    app = FastAPI()

    @app.get("/validated", response_model=list[OrderOut])
    def validated() -> Any:
        return [row]

    @app.get("/fast", response_model=list[OrderOut])
    def fast() -> JsonBytes:
        return JsonBytes([row])

    with TestClient(app) as client:
        body = client.get("/fast").content
        assert body == client.get("/validated").content
    assert json.loads(body)[0]["created_at"] == "2024-03-01T12:00:00Z"
    assert json.loads(body)[0]["updated_at"] == "2024-03-01T12:00:00.001500Z"
    response = JsonBytes({"a": 1}, status_code=201, headers={"X-Test": "1"})
    assert (response.status_code, response.headers["x-test"]) == (201, "1")
    assert response.headers["content-type"] == "application/json"


def test_verified_tokens_check_a_token_once_until_it_expires() -> None:
    calls: list[str] = []

    class Counting(TokenService):
        def verify(self, token: str, kind: Any = "access") -> Any:
            calls.append(token)
            return super().verify(token, kind)

    tokens = Counting("k" * 40, timedelta(minutes=5), timedelta(days=1))
    now = [datetime.now(UTC).timestamp()]
    cache = VerifiedTokens(tokens, max_size=2, clock=lambda: now[0])
    token, _ = tokens.issue("ann", "viewer", version=0, family="f")
    assert cache.verify(token).username == "ann"
    assert cache.verify(token).username == "ann"
    assert calls == [token]  # the signature was checked once

    now[0] += 301  # past the token's expiry: refused even though it is cached
    with pytest.raises(AuthError, match="token expired"):
        cache.verify(token)
    assert token not in cache._claims

    with pytest.raises(AuthError, match="invalid token"):
        cache.verify("not.a.jwt")
    assert "not.a.jwt" not in cache._claims  # refusals are not remembered
    refresh, _ = tokens.issue("ann", "viewer", "refresh", version=0, family="f")
    with pytest.raises(AuthError, match="expected access"):
        cache.verify(refresh)


def test_verified_tokens_forget_the_oldest_past_max_size() -> None:
    tokens = TokenService("k" * 40, timedelta(minutes=5), timedelta(days=1))
    cache = VerifiedTokens(tokens, max_size=2)
    issued = [tokens.issue(name, "viewer", version=0, family="f")[0] for name in ("a", "b", "c")]
    for token in issued:
        cache.verify(token)
    assert list(cache._claims) == issued[1:]


def test_openapi_documents_the_error_body_really_sent(
    client: TestClient, auth: Callable[[str], dict[str, str]]
) -> None:
    schema = client.get("/openapi.json", headers=auth("admin")).json()
    body = schema["components"]["schemas"]["HTTPValidationError"]
    assert body["properties"] == {"detail": {"type": "string", "title": "Detail"}}
    assert "ValidationError" not in schema["components"]["schemas"]
    invalid = schema["paths"]["/api/orders"]["get"]["responses"]["422"]["content"]
    ref = invalid["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/HTTPValidationError"
    # Patched once, served the same.
    assert client.get("/openapi.json", headers=auth("admin")).json() == schema
