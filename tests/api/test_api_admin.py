"""Kill switch and user management."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sigma.api import api_deps, create_api
from sigma.bootstrap import App
from sigma.bus.memory import InMemoryPubSub
from sigma.store.control import KILL_SWITCH, get_flag
from sigma.store.models import AlertLog
from sigma.store.queries import users
from tests.api.conftest import PASSWORD, add_users, login, make_app

Headers = Callable[[str], dict[str, str]]


def test_kill_switch_never_set_is_off(client: TestClient, auth: Headers) -> None:
    state = client.get("/api/risk/kill-switch", headers=auth("viewer")).json()
    assert state == {"enabled": False, "reason": "", "changed_by": "", "updated_at": None}


def test_risk_limits_are_the_configured_ones(tmp_path: Path) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 's.db'}",
        tmp_path / "var",
        max_order_notional=Decimal("2500.50"),
        max_daily_loss=Decimal("300"),
    )
    add_users(app)
    with TestClient(create_api(api_deps(app), InMemoryPubSub(), static_dir=None)) as client:
        shown = client.get("/api/risk/limits", headers=login(client, "viewer")).json()
    app.close()
    assert shown == {
        "max_order_notional": "2500.5",
        "max_position_notional": None,
        "max_open_orders": 5,
        "max_daily_loss": "300",
        "max_drawdown": "0.25",
    }


def test_kill_switch_records_user_writes_alert_and_broadcasts(
    client: TestClient, auth: Headers, sigma_app: App, pubsub: InMemoryPubSub
) -> None:
    sub = client.portal.call(pubsub.subscribe, "alerts")  # type: ignore[union-attr]
    response = client.put(
        "/api/risk/kill-switch",
        json={"enabled": True, "reason": "exchange outage"},
        headers=auth("admin"),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["enabled"], body["reason"], body["changed_by"]) == (
        True,
        "exchange outage",
        "admin",
    )
    assert body["updated_at"] is not None
    assert client.get("/api/risk/kill-switch", headers=auth("viewer")).json() == body

    with sigma_app.sessions() as session:
        flag = get_flag(session, KILL_SWITCH)
        assert (flag.enabled, flag.changed_by) == (True, "admin")
        alerts = session.scalars(select(AlertLog)).all()
    assert [(a.severity, a.source) for a in alerts] == [("critical", "api")]
    assert "ENGAGED" in alerts[0].message and "by admin: exchange outage" in alerts[0].message

    published = json.loads(client.portal.call(sub.__anext__))  # type: ignore[union-attr]
    assert published["severity"] == "critical"
    assert published["details"] == {"enabled": True, "changed_by": "admin"}

    released = client.put(
        "/api/risk/kill-switch", json={"enabled": False, "reason": "back"}, headers=auth("admin")
    ).json()
    assert released["enabled"] is False
    listed = client.get("/api/alerts", headers=auth("viewer")).json()
    assert [a["severity"] for a in listed] == ["warning", "critical"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"enabled": True}, "body.reason: Field required"),
        ({"enabled": True, "reason": ""}, "body.reason: String should have at least 1 character"),
        ({"enabled": "maybe", "reason": "x"}, "body.enabled: Input should be a valid boolean"),
    ],
)
def test_kill_switch_bad_payloads(
    client: TestClient, auth: Headers, body: dict[str, object], detail: str
) -> None:
    response = client.put("/api/risk/kill-switch", json=body, headers=auth("admin"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_trader_cannot_flip_the_kill_switch(
    client: TestClient, auth: Headers, sigma_app: App
) -> None:
    response = client.put(
        "/api/risk/kill-switch", json={"enabled": True, "reason": "x"}, headers=auth("trader")
    )
    assert response.status_code == 403
    assert "needs role 'admin'" in response.json()["detail"]
    with sigma_app.sessions() as session:
        assert get_flag(session, KILL_SWITCH).enabled is False


def test_admin_creates_lists_and_changes_users(client: TestClient, auth: Headers) -> None:
    admin = auth("admin")
    created = client.post(
        "/api/users",
        json={"username": "carol", "password": "long-enough", "role": "trader"},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.json()["role"] == "trader" and created.json()["last_login"] is None
    assert "password_hash" not in created.json()
    carol = login(client, "carol", "long-enough")
    assert client.get("/api/me", headers=carol).json() == {"username": "carol", "role": "trader"}

    names = [u["username"] for u in client.get("/api/users", headers=admin).json()]
    assert names == ["admin", "carol", "trader", "viewer"]

    patched = client.patch(
        "/api/users/carol", json={"role": "viewer", "password": "another-one"}, headers=admin
    )
    assert patched.json()["role"] == "viewer"
    # The change revoked carol's tokens; she logs in again, with the new role.
    assert client.get("/api/me", headers=carol).json() == {"detail": "token revoked: log in again"}
    carol = login(client, "carol", "another-one")
    assert client.get("/api/me", headers=carol).json()["role"] == "viewer"
    client.patch("/api/users/carol", json={"active": False}, headers=admin)
    assert client.get("/api/me", headers=carol).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"username": "trader", "password": "long-enough"},
            409,
            "body.username: user 'trader' already exists",
        ),
        (
            {"username": "bad name", "password": "long-enough"},
            422,
            "body.username: String should match",
        ),
        (
            {"username": "dave", "password": "short"},
            422,
            "body.password: String should have at least 8",
        ),
        (
            {"username": "dave", "password": "é" * 40},
            422,
            "body.password: password must be at most 72 bytes",
        ),
        (
            {"username": "dave", "password": "long-enough", "role": "god"},
            422,
            "body.role: Input should be",
        ),
    ],
)
def test_bad_user_creation(
    client: TestClient, auth: Headers, body: dict[str, str], status: int, detail: str
) -> None:
    response = client.post("/api/users", json=body, headers=auth("admin"))
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


def test_a_concurrent_creation_of_a_name_in_another_case_is_409(
    client: TestClient, auth: Headers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other creation lands between this one's check and its insert (the check is made
    # to miss it): the database's index refuses the name, and the answer is the same 409.
    monkeypatch.setattr(users, "_taken_name", lambda session, username: None)
    admin = auth("admin")
    body = {"username": "TRADER", "password": "long-enough"}
    response = client.post("/api/users", json=body, headers=admin)
    assert (response.status_code, response.json()["detail"]) == (
        409,
        "body.username: user 'TRADER' already exists",
    )
    names = [u["username"] for u in client.get("/api/users", headers=admin).json()]
    assert "TRADER" not in names and "trader" in names


def test_user_patch_errors(client: TestClient, auth: Headers) -> None:
    admin = auth("admin")
    missing = client.patch("/api/users/nobody", json={"role": "viewer"}, headers=admin)
    assert (missing.status_code, missing.json()["detail"]) == (404, "user 'nobody' not found")
    too_long = client.patch("/api/users/viewer", json={"password": "é" * 40}, headers=admin)
    assert too_long.status_code == 422
    for change in ({"role": "trader"}, {"active": False}):
        last = client.patch("/api/users/admin", json=change, headers=admin)
        assert (last.status_code, last.json()["detail"]) == (
            409,
            "user 'admin' is the last active admin",
        )
    # With a second admin the first may step down.
    client.patch("/api/users/trader", json={"role": "admin"}, headers=admin)
    assert (
        client.patch("/api/users/admin", json={"role": "viewer"}, headers=admin).status_code == 200
    )
    assert (
        client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD}).json()[
            "role"
        ]
        == "viewer"
    )
