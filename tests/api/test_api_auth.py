"""Login, tokens (expiry, refresh, forgery), throttling, roles on every route, preferences."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from sigma.api.context import ApiContext
from sigma.api.routers import auth as auth_router
from sigma.api.users import authenticate
from sigma.bootstrap import App
from sigma.store.db import session_scope
from sigma.store.models import User
from sigma.store.queries import Session
from tests.api.conftest import PASSWORD, FakeClock, login, serving

Headers = Callable[[str], dict[str, str]]


def ctx_of(api: FastAPI) -> ApiContext:
    ctx: ApiContext = api.state.ctx
    return ctx


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_tokens_role_and_expiry(client: TestClient) -> None:
    before = datetime.now(UTC)
    body = client.post("/api/auth/token", data={"username": "trader", "password": PASSWORD}).json()
    assert body["token_type"] == "bearer"
    assert body["role"] == "trader"
    expires = datetime.fromisoformat(body["expires_at"])
    # Default lifetime: 60 minutes.
    assert timedelta(minutes=59) < expires - before <= timedelta(minutes=61)
    me = client.get("/api/me", headers=bearer(body["access_token"]))
    assert me.json() == {"username": "trader", "role": "trader"}


def test_login_records_last_login(client: TestClient, sigma_app: App) -> None:
    login(client, "viewer")
    with sigma_app.sessions() as session:
        user = session.query(User).filter_by(username="viewer").one()
        assert user.last_login is not None


@pytest.mark.parametrize(
    ("username", "password"), [("trader", "wrong-password"), ("nobody", PASSWORD)]
)
def test_wrong_credentials_are_401(client: TestClient, username: str, password: str) -> None:
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_login_without_form_fields_is_422_naming_them(client: TestClient) -> None:
    response = client.post("/api/auth/token", data={"username": "trader"})
    assert response.status_code == 422
    assert "body.password: Field required" in response.json()["detail"]


def test_disabled_user_cannot_log_in_nor_use_its_token(client: TestClient, sigma_app: App) -> None:
    headers = login(client, "viewer")
    with session_scope(sigma_app.sessions) as session:
        session.query(User).filter_by(username="viewer").one().active = False
    assert client.get("/api/me", headers=headers).status_code == 401
    response = client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORD})
    assert response.status_code == 401


def test_role_comes_from_the_database_not_the_token(client: TestClient, sigma_app: App) -> None:
    headers = login(client, "admin")
    with session_scope(sigma_app.sessions) as session:
        session.query(User).filter_by(username="admin").one().role = "viewer"
    assert client.get("/api/users", headers=headers).status_code == 403


def test_account_throttle_backs_off_after_five_failures(
    client: TestClient, clock: FakeClock
) -> None:
    bad = {"username": "trader", "password": "nope-nope"}
    for _ in range(5):
        assert client.post("/api/auth/token", data=bad).status_code == 401
    good = {"username": "trader", "password": PASSWORD}
    blocked = client.post("/api/auth/token", data=good)
    assert blocked.status_code == 429
    assert "too many failed logins for 'trader'" in blocked.json()["detail"]
    assert blocked.headers["retry-after"] == "1"  # a backoff, not a five-minute lock-out
    clock.now += 1
    assert client.post("/api/auth/token", data=bad).status_code == 401
    clock.now += 1.5  # the sixth failure doubled the wait to 2 s
    assert client.post("/api/auth/token", data=good).headers["retry-after"] == "1"
    # Other users are unaffected.
    assert (
        client.post(
            "/api/auth/token", data={"username": "viewer", "password": PASSWORD}
        ).status_code
        == 200
    )
    clock.now += 0.5
    assert client.post("/api/auth/token", data=good).status_code == 200
    # Success clears the count: one more failure does not slow the owner down.
    assert client.post("/api/auth/token", data=bad).status_code == 401
    assert client.post("/api/auth/token", data=good).status_code == 200


def test_concurrent_guesses_cannot_outrun_the_account_throttle(
    sigma_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Twenty wrong guesses sent at once: only the five free ones may reach the password
    # check; the others must be refused (429) without it, not counted only once they fail.
    guesses = 20
    checked: list[str] = []
    release = threading.Event()

    def held(session: Session, username: str, password: str, *, rounds: int) -> User | None:
        checked.append(username)
        release.wait(30)  # keeps every admitted guess in the check until all have arrived
        return authenticate(session, username, password, rounds=rounds)

    monkeypatch.setattr(auth_router, "authenticate", held)
    with serving(sigma_app) as (port, _, _):
        url = f"http://127.0.0.1:{port}/api/auth/token"
        refused: list[int] = []

        def guess(n: int) -> int:
            form = {"username": "trader", "password": f"wrong-guess-{n}"}
            status = httpx.post(url, data=form, timeout=60).status_code
            if status == 429:
                refused.append(n)
            return status

        with ThreadPoolExecutor(guesses) as pool:
            answers = pool.map(guess, range(guesses))
            deadline = time.monotonic() + 30
            while len(checked) + len(refused) < guesses and time.monotonic() < deadline:
                time.sleep(0.01)
            release.set()
            statuses = list(answers)
    assert statuses.count(401) == auth_router.ACCOUNT_FREE_FAILURES
    assert statuses.count(429) == guesses - auth_router.ACCOUNT_FREE_FAILURES


def test_a_successful_login_is_not_counted_against_its_address(client: TestClient) -> None:
    # Each login is counted before its password is checked: a success takes that back.
    for _ in range(auth_router.ADDRESS_MAX_FAILURES + 1):
        ok = client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORD})
        assert ok.status_code == 200


def test_logins_the_database_failed_are_not_counted_as_failures(
    api: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each try is counted before its password is checked: a try that ends in an error, not
    # a wrong password (the database away), must take that back, or an outage's retries
    # lock the account (and, at 50, everyone behind the address) out once it is back.
    def database_away(session: Session, username: str, password: str, *, rounds: int) -> None:
        raise OperationalError("SELECT", {}, ConnectionError("the database went away"))

    monkeypatch.setattr(auth_router, "authenticate", database_away)
    good = {"username": "trader", "password": PASSWORD}
    with TestClient(api, raise_server_exceptions=False) as client:
        for _ in range(auth_router.ACCOUNT_FREE_FAILURES + 1):
            assert client.post("/api/auth/token", data=good).status_code == 500
        monkeypatch.undo()  # the database is back
        assert client.post("/api/auth/token", data=good).status_code == 200


def test_unknown_usernames_are_throttled_like_real_ones(client: TestClient) -> None:
    # Otherwise the 429 itself would tell which usernames exist.
    for name in ("trader", "nobody"):
        for _ in range(5):
            client.post("/api/auth/token", data={"username": name, "password": "nope-nope"})
        answer = client.post("/api/auth/token", data={"username": name, "password": "x" * 8})
        assert answer.status_code == 429, name


def test_throttle_limits_one_address_across_usernames(client: TestClient, clock: FakeClock) -> None:
    # 50 per address: ten made-up users with five failures each (free per account).
    for n in range(50):
        bad = {"username": f"guess{n // 5}", "password": "nope-nope"}
        assert client.post("/api/auth/token", data=bad).status_code == 401
    good = {"username": "viewer", "password": PASSWORD}
    blocked = client.post("/api/auth/token", data=good)
    assert blocked.status_code == 429
    assert blocked.json()["detail"].startswith("too many failed logins from testclient")
    clock.now += 301
    assert client.post("/api/auth/token", data=good).status_code == 200


def test_an_overlong_username_is_422_and_not_kept_by_the_throttle(
    client: TestClient, api: FastAPI
) -> None:
    # Each failed name was kept as a throttle key: 10,000 keys of up to 1 MB each.
    throttle = ctx_of(api).throttle
    huge = {"username": "x" * 100_000, "password": "nope-nope"}
    response = client.post("/api/auth/token", data=huge)
    assert response.status_code == 422
    assert response.json()["detail"] == "body.username: at most 64 characters"
    assert all(len(key) < 100 for key in throttle._failures)
    # The longest possible name is still an ordinary failed login.
    longest = {"username": "x" * 64, "password": "nope-nope"}
    assert client.post("/api/auth/token", data=longest).status_code == 401
    assert f"account|{'x' * 64}" in throttle._failures


def test_missing_token_is_401_with_a_hint(client: TestClient) -> None:
    response = client.get("/api/orders")
    assert response.status_code == 401
    assert "POST /api/auth/token" in response.json()["detail"]


def test_expired_token_is_401(client: TestClient, api: FastAPI) -> None:
    token, _ = ctx_of(api).tokens.issue(
        "admin", "admin", version=0, family="f", now=datetime.now(UTC) - timedelta(hours=2)
    )
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["detail"] == "token expired: log in again"


def test_token_signed_with_another_secret_is_401(client: TestClient) -> None:
    forged = jwt.encode(
        {
            "sub": "admin",
            "role": "admin",
            "typ": "access",
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        "x" * 40,
        algorithm="HS256",
    )
    response = client.get("/api/me", headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("invalid token")


def test_token_of_deleted_user_is_401(client: TestClient, api: FastAPI) -> None:
    token, _ = ctx_of(api).tokens.issue("ghost", "admin", version=0, family="f")
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401
    assert "'ghost' no longer exists" in response.json()["detail"]


def test_refresh_issues_new_tokens_and_is_no_access_token(client: TestClient) -> None:
    body = client.post("/api/auth/token", data={"username": "viewer", "password": PASSWORD}).json()
    refresh = body["refresh_token"]
    assert client.get("/api/me", headers=bearer(refresh)).status_code == 401
    renewed = client.post("/api/auth/refresh", json={"refresh_token": refresh})
    assert renewed.status_code == 200
    access = renewed.json()["access_token"]
    assert client.get("/api/me", headers=bearer(access)).json()["username"] == "viewer"
    # An access token is not accepted as a refresh token.
    wrong_kind = client.post("/api/auth/refresh", json={"refresh_token": access})
    assert wrong_kind.status_code == 401
    assert "expected refresh" in wrong_kind.json()["detail"]


def test_refresh_for_a_vanished_user_is_401(client: TestClient, api: FastAPI) -> None:
    token, _ = ctx_of(api).tokens.issue("ghost", "viewer", "refresh", version=0, family="f")
    response = client.post("/api/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 401


def test_prefs_merge_and_delete(client: TestClient, auth: Headers) -> None:
    viewer = auth("viewer")
    assert client.get("/api/me/prefs", headers=viewer).json() == {}
    saved = client.put(
        "/api/me/prefs", json={"theme": "dark", "symbols": ["BTC", "ETH"]}, headers=viewer
    )
    assert saved.json() == {"theme": "dark", "symbols": ["BTC", "ETH"]}
    changed = client.put("/api/me/prefs", json={"theme": "light", "symbols": None}, headers=viewer)
    assert changed.json() == {"theme": "light"}
    assert client.get("/api/me/prefs", headers=viewer).json() == {"theme": "light"}
    # Preferences are per user.
    assert client.get("/api/me/prefs", headers=auth("trader")).json() == {}


def test_prefs_reject_a_non_object(client: TestClient, auth: Headers) -> None:
    response = client.put("/api/me/prefs", json=["theme"], headers=auth("viewer"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body:")


def test_prefs_of_the_dashboard_keep_their_form(client: TestClient, auth: Headers) -> None:
    viewer = auth("viewer")
    defaults = {"symbol": "ETH", "bars": 800, "freq": "4h", "cash": "5000", "commission": "0"}
    prefs = {"report_prefs": {"kind": "weekly", "format": "pdf"}, "backtest_defaults": defaults}
    saved = client.put("/api/me/prefs", json=prefs, headers=viewer)
    assert saved.status_code == 200, saved.text
    # Answered as stored: no key the user did not set is filled in with null.
    assert saved.json() == prefs
    assert client.get("/api/me/prefs", headers=viewer).json() == prefs
    wrong = client.put("/api/me/prefs", json={"backtest_defaults": {"bars": "800"}}, headers=viewer)
    assert wrong.status_code == 422
    assert wrong.json()["detail"].startswith("body.backtest_defaults.bars: ")
    assert client.get("/api/me/prefs", headers=viewer).json() == prefs


# --- every route, every role --------------------------------------------------------------

# The least role of each operation, written from docs/api.md (not read from the code).
LEAST_ROLE: dict[tuple[str, str], str | None] = {
    ("post", "/api/auth/token"): None,
    ("post", "/api/auth/refresh"): None,
    ("post", "/api/auth/logout"): "viewer",
    ("get", "/api/health"): None,
    ("get", "/api/metrics"): "viewer",
    ("get", "/api/me"): "viewer",
    ("get", "/api/me/prefs"): "viewer",
    ("put", "/api/me/prefs"): "viewer",
    ("get", "/api/strategies"): "viewer",
    ("get", "/api/params"): "viewer",
    ("put", "/api/params/{strategy}/{symbol}"): "trader",
    ("post", "/api/strategies/{strategy}/{symbol}/enable"): "trader",
    ("get", "/api/params/{strategy}/{symbol}/history"): "viewer",
    ("get", "/api/controls"): "viewer",
    ("put", "/api/controls/{strategy}/{symbol}/enabled"): "trader",
    ("put", "/api/controls/{strategy}/{symbol}/pinned"): "trader",
    ("post", "/api/controls/{strategy}/{symbol}/entry"): "trader",
    ("post", "/api/controls/{strategy}/{symbol}/close"): "trader",
    ("post", "/api/orders/{client_order_id}/cancel"): "trader",
    ("post", "/api/backtests"): "trader",
    ("get", "/api/backtests"): "viewer",
    ("get", "/api/backtests/{backtest_id}"): "viewer",
    ("get", "/api/backtests/{backtest_id}/report"): "viewer",
    ("post", "/api/backtests/jobs"): "trader",
    ("post", "/api/backtests/compare"): "trader",
    ("get", "/api/backtests/jobs"): "viewer",
    ("get", "/api/backtests/jobs/{job_id}"): "viewer",
    ("delete", "/api/backtests/jobs/{job_id}"): "trader",
    ("get", "/api/orders"): "viewer",
    ("get", "/api/fills"): "viewer",
    ("get", "/api/positions"): "viewer",
    ("get", "/api/ledger/summary"): "viewer",
    ("get", "/api/pnl"): "viewer",
    ("get", "/api/portfolio"): "viewer",
    ("get", "/api/chart"): "viewer",
    ("get", "/api/logs"): "admin",
    ("get", "/api/logs/{name}"): "admin",
    ("get", "/api/sim/runs"): "viewer",
    ("post", "/api/sim/runs/{run_id}/rating"): "trader",
    ("get", "/api/sim/runs/{run_id}/orders"): "viewer",
    ("get", "/api/alerts"): "viewer",
    ("get", "/api/actions"): "viewer",
    ("get", "/api/risk/limits"): "viewer",
    ("get", "/api/risk/kill-switch"): "viewer",
    ("put", "/api/risk/kill-switch"): "admin",
    ("get", "/api/users"): "admin",
    ("post", "/api/users"): "admin",
    ("patch", "/api/users/{username}"): "admin",
    ("get", "/api/bars"): "viewer",
    ("get", "/api/prices"): "viewer",
    ("get", "/api/trends"): "viewer",
    ("get", "/api/trends/latest"): "viewer",
    ("get", "/api/reports"): "viewer",
    ("get", "/api/reports/{report_id}/file"): "viewer",
    ("get", "/api/settings"): "admin",
    ("post", "/api/news"): "trader",
    ("get", "/api/jobs"): "viewer",
    ("get", "/api/jobs/{job_id}/runs"): "viewer",
    ("post", "/api/jobs/{job_id}/pause"): "admin",
    ("post", "/api/jobs/{job_id}/resume"): "admin",
    ("post", "/api/jobs/{job_id}/trigger"): "admin",
    ("post", "/api/jobs/{job_id}/cancel"): "admin",
    ("get", "/api/news"): "viewer",
    ("get", "/api/ml/models"): "viewer",
}
RANK = {"viewer": 0, "trader": 1, "admin": 2}
PATH_VALUES = {
    "strategy": "sma_cross",
    "symbol": "BTC",
    "backtest_id": "999",
    "run_id": "999",
    "job_id": "nope",
    "report_id": "999",
    "username": "nobody",
    "name": "nope",
    "client_order_id": "no-such-order",
}


LOGOUT = ("post", "/api/auth/logout")


def _operations(client: TestClient, auth: Headers) -> list[tuple[str, str]]:
    """Every operation of the schema; logging out last (it revokes the caller's token)."""
    schema = client.get("/openapi.json", headers=auth("admin")).json()
    found = [(m, p) for p, item in schema["paths"].items() for m in item]
    return sorted(found, key=lambda op: (op == LOGOUT, op))


def test_every_route_of_the_schema_is_in_the_role_table(client: TestClient, auth: Headers) -> None:
    assert set(_operations(client, auth)) == set(LEAST_ROLE)


@pytest.mark.parametrize("role", ["anonymous", "viewer", "trader", "admin"])
def test_every_route_enforces_its_role(client: TestClient, auth: Headers, role: str) -> None:
    operations = _operations(client, auth)
    headers = {} if role == "anonymous" else auth(role)
    for method, template in operations:
        path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], template)
        # An empty body: allowed callers get 422/404/200, never 401/403.
        kwargs = {"json": {}} if method in ("post", "put", "patch") else {}
        status = client.request(method, path, headers=headers, **kwargs).status_code
        needed = LEAST_ROLE[(method, template)]
        where = f"{method.upper()} {path} as {role}"
        if needed is None:
            assert status not in (401, 403), where
        elif role == "anonymous":
            assert status == 401, where
        elif RANK[role] < RANK[needed]:
            assert status == 403, where
        else:
            assert status not in (401, 403), where
            assert status < 500, where
