"""Hostile requests: oversized bodies, SQL and HTML injection strings, forged tokens and role
escalation. Each is refused (or taken as inert text) and the database is exactly as before."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from sigma.api import api_deps, create_api
from sigma.api.bodylimit import MAX_BODY_BYTES
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.regime.news import NewsHandler
from sigma.store.control import KILL_SWITCH, get_flag
from sigma.store.models import User, UserPref
from tests.api.conftest import PASSWORD

Headers = Callable[[str], dict[str, str]]

SQL = [
    "' OR '1'='1",
    "admin'--",
    "x'; DROP TABLE users; --",
    "1; DELETE FROM orders",
    "' UNION SELECT username, password_hash FROM users --",
]
HTML = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>']


def snapshot(app: App) -> dict[str, Any]:
    """Everything an attack could change: the tables, the users and their preferences."""
    with app.sessions() as session:
        users = [
            (u.username, u.role, u.active, u.password_hash)
            for u in session.scalars(select(User).order_by(User.username))
        ]
        prefs = [(p.user_id, p.key, p.value) for p in session.scalars(select(UserPref))]
        kill_switch = get_flag(session, KILL_SWITCH)
    return {
        "tables": sorted(inspect(app.db).get_table_names()),
        "users": users,
        "prefs": prefs,
        "kill_switch": kill_switch,
    }


@pytest.fixture
def before(sigma_app: App, auth: Headers) -> dict[str, Any]:
    """The state once every role has logged in (logging in records `last_login`)."""
    for role in ("viewer", "trader", "admin"):
        auth(role)
    return snapshot(sigma_app)


# --- oversized bodies -----------------------------------------------------------------------
def test_declared_oversized_body_is_413_before_it_is_read(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any], caplog: Any
) -> None:
    huge = {"theme": "x" * MAX_BODY_BYTES}
    with caplog.at_level(logging.WARNING, logger="sigma.api.bodylimit"):
        response = client.put("/api/me/prefs", json=huge, headers=auth("admin"))
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}
    assert "refused PUT /api/me/prefs: request body larger than" in caplog.text
    assert snapshot(sigma_app) == before


def test_streamed_oversized_body_is_cut_off_at_the_limit(sigma_app: App) -> None:
    # No Content-Length (chunked): the body is counted as it arrives.
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None, max_body_bytes=1000)
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b'{"username": "admin", "password": "'
        for _ in range(100):
            sent.append(1)
            yield b"p" * 100
        yield b'"}'

    with TestClient(api) as client:
        response = client.post(
            "/api/auth/token",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
        # The API still serves the next request normally.
        ok = client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD})
        assert ok.status_code == 200


def test_bodies_within_the_limit_pass(sigma_app: App) -> None:
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None, max_body_bytes=100)
    with TestClient(api) as client:
        form = {"username": "admin", "password": PASSWORD}
        assert client.post("/api/auth/token", data=form).status_code == 200
        body = {"username": "admin", "password": PASSWORD + "x" * 100}
        assert client.post("/api/auth/token", data=body).status_code == 413


# --- injection strings ----------------------------------------------------------------------
@pytest.mark.parametrize("text", SQL + HTML)
def test_injection_in_login_is_just_a_wrong_name(
    client: TestClient, sigma_app: App, before: dict[str, Any], text: str
) -> None:
    for form in ({"username": text, "password": PASSWORD}, {"username": "admin", "password": text}):
        response = client.post("/api/auth/token", data=form)
        assert response.status_code == 401, form
    assert snapshot(sigma_app) == before


@pytest.mark.parametrize("text", SQL + HTML)
def test_injection_in_queries_and_paths_matches_nothing(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any], text: str
) -> None:
    headers = auth("admin")
    for path in ("/api/orders", "/api/fills", "/api/positions", "/api/actions"):
        response = client.get(path, params={"symbol": text}, headers=headers)
        assert response.status_code in (200, 422), path
        if response.status_code == 200:
            assert response.json() == [], path
    response = client.get(f"/api/params/{text}/BTC/history", headers=headers)
    assert response.status_code in (404, 422)
    response = client.patch(f"/api/users/{text}", json={"active": False}, headers=headers)
    assert response.status_code in (404, 422)
    assert snapshot(sigma_app) == before


def test_injection_in_user_names_is_refused(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any]
) -> None:
    for name in SQL + HTML:
        body = {"username": name, "password": PASSWORD}
        response = client.post("/api/users", json=body, headers=auth("admin"))
        assert response.status_code == 422, name
        assert "body.username" in response.json()["detail"]
    assert snapshot(sigma_app) == before


def test_html_is_stored_and_returned_as_inert_text(
    sigma_app: App, auth: Headers, client: TestClient
) -> None:
    # The API returns JSON only; the dashboard renders text, never markup.
    headers = auth("viewer")
    saved = client.put("/api/me/prefs", json={"note": HTML[0], SQL[2]: SQL[0]}, headers=headers)
    assert saved.status_code == 200
    assert saved.headers["content-type"] == "application/json"
    assert client.get("/api/me/prefs", headers=headers).json() == {"note": HTML[0], SQL[2]: SQL[0]}
    assert "users" in inspect(sigma_app.db).get_table_names()


def test_news_with_injection_strings_is_scored_as_text(sigma_app: App) -> None:
    handler = NewsHandler()
    api = create_api(api_deps(sigma_app), InMemoryPubSub(), static_dir=None, news=handler)
    with TestClient(api) as client:
        token = client.post("/api/auth/token", data={"username": "trader", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        item = {
            "ts": datetime.now(UTC).isoformat(),
            "headline": HTML[0],
            "body": SQL[2],
            "symbols": [SQL[0][:32]],
        }
        response = client.post("/api/news", json=item, headers=headers)
        assert response.status_code == 201
        assert response.json()["headline"] == HTML[0]
    assert "users" in inspect(sigma_app.db).get_table_names()


# --- tokens ---------------------------------------------------------------------------------
def _claims(sub: str = "admin", role: str = "admin", **extra: Any) -> dict[str, Any]:
    exp = datetime.now(UTC) + timedelta(hours=1)
    return {"sub": sub, "role": role, "typ": "access", "exp": exp, **extra}


def _unsigned(claims: dict[str, Any]) -> str:
    """A token with ``alg: none`` and no signature (the classic JWT forgery)."""
    token: str = jwt.encode(claims, key=None, algorithm="none")
    return token


def _tampered(token: str, **changes: Any) -> str:
    """`token` with its payload rewritten and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims.update(changes)
    body = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{body}.{signature}"


def test_forged_tokens_are_401_and_change_nothing(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any]
) -> None:
    viewer = auth("viewer")["Authorization"].removeprefix("Bearer ")
    forged = [
        _unsigned(_claims()),
        _tampered(viewer, role="admin"),
        _tampered(viewer, sub="admin"),
        _tampered(viewer, exp=int((datetime.now(UTC) + timedelta(days=365)).timestamp())),
        jwt.encode(_claims(), "x" * 64, algorithm="HS512"),
        viewer[:-4] + ("AAAA" if not viewer.endswith("AAAA") else "BBBB"),
        "not.a.token",
        "",
    ]
    for token in forged:
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/users", headers=headers).status_code == 401, token
        response = client.patch("/api/users/viewer", json={"role": "admin"}, headers=headers)
        assert response.status_code == 401, token
    assert snapshot(sigma_app) == before


def test_expired_token_changes_nothing(
    client: TestClient, api: FastAPI, sigma_app: App, before: dict[str, Any]
) -> None:
    token, _ = api.state.ctx.tokens.issue(
        "admin", "admin", version=0, family="f", now=datetime.now(UTC) - timedelta(hours=2)
    )
    headers = {"Authorization": f"Bearer {token}"}
    response = client.patch("/api/users/viewer", json={"role": "admin"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired: log in again"
    assert snapshot(sigma_app) == before


# --- role escalation ------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["viewer", "trader"])
def test_escalation_attempts_are_403_and_change_nothing(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any], role: str
) -> None:
    headers = auth(role)
    attempts = [
        ("patch", f"/api/users/{role}", {"role": "admin"}),
        ("patch", "/api/users/admin", {"active": False}),
        ("patch", "/api/users/admin", {"password": "pwned-by-" + role}),
        ("post", "/api/users", {"username": "mallory", "password": PASSWORD, "role": "admin"}),
        ("put", "/api/risk/kill-switch", {"enabled": True}),
    ]
    for method, path, body in attempts:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path)
    assert snapshot(sigma_app) == before


def test_role_in_preferences_or_extra_fields_grants_nothing(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    headers = auth("viewer")
    assert client.put("/api/me/prefs", json={"role": "admin"}, headers=headers).status_code == 200
    assert client.get("/api/me", headers=headers).json()["role"] == "viewer"
    assert client.get("/api/users", headers=headers).status_code == 403
    # A login form with an extra role field is the same login.
    form = {"username": "viewer", "password": PASSWORD, "role": "admin", "scope": "admin"}
    token = client.post("/api/auth/token", data=form).json()
    assert token["role"] == "viewer"
    with sigma_app.sessions() as session:
        assert session.scalars(select(User.role).where(User.username == "viewer")).one() == "viewer"


# --- bodies Python's JSON parser takes but JSON does not ------------------------------------
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"a": NaN}', "body: NaN is not a JSON number (numbers must be finite)"),
        ('{"a": -Infinity}', "body: -Infinity is not a JSON number (numbers must be finite)"),
        ('{"a": 1e400}', "body: number 1e400 is out of range (numbers must be finite)"),
        ('{"a": 1, "a": 2}', "body: key 'a' appears twice in one object"),
        ('{"a": {"b": [1], "b": [2]}}', "body: key 'b' appears twice in one object"),
        ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "body: JSON nested more than 32 levels deep"),
        ('{"a": ' + "[" * 33 + "]" * 33 + "}", "body: JSON nested more than 32 levels deep"),
        # Past 16 KiB the check runs in a worker thread: the same answer.
        (
            '{"pad": "' + "[" * 20_000 + '", "a": 1, "a": 2}',
            "body: key 'a' appears twice in one object",
        ),
        ('{"a": 1', "body.7: not valid JSON: Expecting ',' delimiter (line 1, column 8)"),
        (b'{"a": "\xff"}', "body: not valid UTF-8 text at byte 7"),
        # Stored, this made every later GET /api/me/prefs of the user a 500.
        ('{"a": "x\\ud800"}', "body: a string holds \\ud800, half of a UTF-16 pair: not text"),
        ('{"\\udc00": 1}', "body: a string holds \\udc00, half of a UTF-16 pair: not text"),
    ],
)
def test_non_json_bodies_are_422_and_store_nothing(
    client: TestClient,
    auth: Headers,
    sigma_app: App,
    before: dict[str, Any],
    body: str | bytes,
    detail: str,
) -> None:
    # Before, a NaN or 1e400 preference was stored and read back as null, the last of two
    # duplicate keys won, and deep nesting was a bare 400.
    headers = {**auth("viewer"), "Content-Type": "application/json"}
    response = client.put("/api/me/prefs", content=body, headers=headers)
    assert (response.status_code, response.json()) == (422, {"detail": detail})
    assert snapshot(sigma_app) == before


def test_order_quantities_that_are_not_finite_numbers_place_nothing(
    client: TestClient, auth: Headers
) -> None:
    headers = {**auth("trader"), "Content-Type": "application/json"}
    for body in ('{"qty": NaN}', '{"qty": 1e400}', '{"qty": 1, "qty": 2}'):
        response = client.post("/api/controls/sma_cross/BTC/entry", content=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["detail"].startswith("body: "), body


def test_strict_json_passes_valid_bodies_untouched(client: TestClient, auth: Headers) -> None:
    headers = auth("viewer")
    # 31 levels inside the body's own object: at the limit, and brackets in strings do not count.
    deep: object = "[{"
    for _ in range(30):
        deep = [deep]
    prefs = {"layout": {"cols": [1, 2.5, -3e-5]}, "name": "é ✓ 💩", "on": True, "deep": deep}
    for content_type in ("application/json", "application/json; charset=utf-8"):
        sent = {**headers, "Content-Type": content_type}
        response = client.put("/api/me/prefs", content=json.dumps(prefs), headers=sent)
        assert (response.status_code, response.json()) == (200, prefs), content_type
    # Forms (the login) and body-less posts are not JSON and pass.
    assert client.post("/api/auth/logout", headers=headers).status_code == 204


@pytest.mark.parametrize(
    ("content_type", "given"),
    [("text/plain", "media type 'text/plain'"), (None, "no Content-Type")],
)
def test_a_body_of_another_media_type_is_415(
    client: TestClient, auth: Headers, content_type: str | None, given: str
) -> None:
    # Before: 422 "body: Input should be a valid dictionary", not saying what to send.
    headers = auth("viewer")
    sent = {**headers, "Content-Type": content_type} if content_type else headers
    response = client.put("/api/me/prefs", content=b'{"a": 1}', headers=sent)
    assert response.status_code == 415
    assert response.json()["detail"] == f"body: {given} is not accepted; send application/json"
    assert client.get("/api/me/prefs", headers=headers).json() == {}


def test_extra_fields_in_bodies_are_refused_and_change_nothing(
    client: TestClient, auth: Headers, sigma_app: App, before: dict[str, Any]
) -> None:
    # These bodies dropped unknown fields silently: a forged author or version looked taken.
    trader = auth("trader")
    refresh = client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORD})
    attempts = [
        (
            "put",
            "/api/params/sma_cross/BTC",
            {"params": {}, "changed_by": "admin", "version": 99},
            "body.changed_by: Extra inputs are not permitted; "
            "body.version: Extra inputs are not permitted",
        ),
        (
            "post",
            "/api/strategies/sma_cross/BTC/enable",
            {"reason": "x", "by": "admin"},
            "body.by: Extra inputs are not permitted",
        ),
        (
            "post",
            "/api/auth/refresh",
            {"refresh_token": refresh.json()["refresh_token"], "username": "admin"},
            "body.username: Extra inputs are not permitted",
        ),
    ]
    for method, path, body, detail in attempts:
        response = client.request(method, path, json=body, headers=trader)
        assert (response.status_code, response.json()) == (422, {"detail": detail}), path
    assert client.get("/api/params/sma_cross/BTC/history", headers=trader).json() == []
    assert snapshot(sigma_app) == before


def test_a_trailing_slash_is_a_404_never_a_redirect_to_the_host_header(
    client: TestClient, auth: Headers
) -> None:
    # Starlette redirected `/api/me/` (307) to a URL built from the Host header the client
    # sent: a forged Host put any site in Location (cache poisoning, an open redirect), and
    # a PATCH followed it with its body.
    for method, path in [("GET", "/api/me/"), ("PATCH", "/api/users/viewer/"), ("GET", "/api/")]:
        response = client.request(
            method,
            path,
            headers={**auth("admin"), "Host": "evil.example"},
            json={"role": "admin"} if method == "PATCH" else None,
            follow_redirects=False,
        )
        assert response.status_code == 404, path
        assert "location" not in response.headers, path
        assert response.json() == {"detail": f"no such route: {method} {path}"}, path


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_time_beyond_the_calendar_once_in_utc_is_422_naming_the_field(
    client: TestClient, auth: Headers, stamp: str
) -> None:
    # Valid as written, out of range in UTC: converting it for the database raised an
    # OverflowError, a 500 on every route taking a time.
    problem = f"Value error, {stamp} is outside the years 1-9999 in UTC"
    admin = auth("admin")
    for path in [
        "/api/orders",
        "/api/fills",
        "/api/pnl",
        "/api/sim/runs",
        "/api/alerts",
        "/api/actions",
        "/api/reports",
        "/api/bars?symbol=BTC",
        "/api/trends?symbol=BTC",
    ]:
        joiner = "&" if "?" in path else "?"
        response = client.get(f"{path}{joiner}since={quote(stamp)}", headers=admin)
        assert (response.status_code, response.json()) == (
            422,
            {"detail": f"query.since: {problem}"},
        ), path
    news = client.post("/api/news", json={"ts": stamp, "headline": "x"}, headers=auth("trader"))
    assert (news.status_code, news.json()) == (422, {"detail": f"body.ts: {problem}"})
