"""Token revocation (password, role, disabling, logout), refresh rotation and reuse, and the
store functions behind them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sigma.api.users import get_user
from sigma.bootstrap import App
from sigma.store.auth_sessions import RefreshRefused, rotate_refresh, start_family
from sigma.store.db import session_scope
from sigma.store.models import AuthSession
from tests.api.conftest import PASSWORD

Headers = Callable[[str], dict[str, str]]


def tokens(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def me(client: TestClient, body: dict[str, str]) -> int:
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    return client.get("/api/me", headers=headers).status_code


def refresh(client: TestClient, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    response = client.post("/api/auth/refresh", json={"refresh_token": body["refresh_token"]})
    answer: dict[str, str] = response.json()
    return response.status_code, answer


@pytest.mark.parametrize(
    "change",
    [{"password": "a-new-password"}, {"role": "admin"}, {"active": False}],
    ids=["password reset", "role change", "disabled"],
)
def test_an_admin_change_revokes_every_earlier_token(
    client: TestClient, auth: Headers, change: dict[str, object]
) -> None:
    first, second = tokens(client, "trader"), tokens(client, "trader")
    assert me(client, first) == me(client, second) == 200
    assert client.patch("/api/users/trader", json=change, headers=auth("admin")).status_code == 200
    for body in (first, second):
        assert me(client, body) == 401
        status, answer = refresh(client, body)
        assert status == 401, answer
    if change.get("active") is not False:
        password = str(change.get("password", PASSWORD))
        assert me(client, tokens(client, "trader", password)) == 200


def test_a_change_that_changes_nothing_revokes_nothing(client: TestClient, auth: Headers) -> None:
    body = tokens(client, "trader")
    same = {"role": "trader", "active": True}
    assert client.patch("/api/users/trader", json=same, headers=auth("admin")).status_code == 200
    assert me(client, body) == 200


def test_logout_revokes_every_login_of_the_caller_only(client: TestClient) -> None:
    laptop, phone, other = (
        tokens(client, "viewer"),
        tokens(client, "viewer"),
        tokens(client, "trader"),
    )
    headers = {"Authorization": f"Bearer {laptop['access_token']}"}
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert me(client, laptop) == me(client, phone) == 401
    assert refresh(client, phone)[0] == 401
    assert me(client, other) == 200
    assert client.post("/api/auth/logout", headers=headers).status_code == 401


def test_refresh_rotates_and_a_reused_token_revokes_its_login(client: TestClient) -> None:
    stolen = tokens(client, "viewer")
    other_login = tokens(client, "viewer")
    status, rotated = refresh(client, stolen)
    assert status == 200 and rotated["refresh_token"] != stolen["refresh_token"]
    assert me(client, rotated) == 200
    status, again = refresh(client, rotated)
    assert status == 200
    # The first token comes back (a thief replaying it): refused, and the login is over.
    status, answer = refresh(client, stolen)
    assert status == 401
    assert answer["detail"] == "refresh token already used: this session is revoked, log in again"
    for body in (rotated, again):
        assert me(client, body) == 401
    assert refresh(client, again) == (401, {"detail": "refresh token revoked: log in again"})
    # The user's other login is another family: untouched.
    assert me(client, other_login) == 200 and refresh(client, other_login)[0] == 200


def test_an_old_login_is_pruned_at_the_next_one(client: TestClient, sigma_app: App) -> None:
    body = tokens(client, "viewer")
    refresh(client, body)
    refresh(client, body)  # a reuse: this family is revoked
    tokens(client, "viewer")
    with sigma_app.sessions() as session:
        families = session.query(AuthSession).all()
    assert len(families) == 1 and families[0].revoked_at is None


def test_rotate_refresh_refuses_another_users_or_an_unknown_family(sigma_app: App) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    with session_scope(sigma_app.sessions) as session:
        viewer, trader = get_user(session, "viewer"), get_user(session, "trader")
        assert viewer is not None and trader is not None
        family = start_family(session, viewer.id, later)
        for user_id, family_id in ((trader.id, family.id), (viewer.id, "nope")):
            with pytest.raises(RefreshRefused, match="revoked"):
                rotate_refresh(session, user_id, family_id, family.refresh_jti, later)
        assert family.revoked_at is None  # refusing a stranger revokes nothing
        fresh = rotate_refresh(session, viewer.id, family.id, family.refresh_jti, later)
        assert len(fresh) == 32


def test_tokens_of_a_login_whose_family_vanished_are_refused(
    client: TestClient, sigma_app: App
) -> None:
    body = tokens(client, "viewer")
    with session_scope(sigma_app.sessions) as session:
        session.query(AuthSession).delete()
    assert me(client, body) == 401


def test_refresh_of_an_earlier_version_is_refused(client: TestClient, api: FastAPI) -> None:
    body = tokens(client, "viewer")
    ctx = api.state.ctx
    with session_scope(ctx.deps.sessions) as session:
        user = get_user(session, "viewer")
        assert user is not None
        family = start_family(session, user.id, ctx.tokens.expiry("refresh"))
        old, _ = ctx.tokens.issue(
            "viewer", "viewer", "refresh", version=user.token_version - 1, family=family.id
        )
    status, answer = refresh(client, {"refresh_token": old})
    assert (status, answer["detail"]) == (401, "refresh token revoked: log in again")
    assert me(client, body) == 200
