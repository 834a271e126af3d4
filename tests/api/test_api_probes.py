"""What an attack pass on the API found: a login form naming a field twice, and user names
that differ from another only in case."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD

Headers = Callable[[str], dict[str, str]]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f"username=viewer&username=admin&password={PASSWORD}", "username"),
        (f"username=admin&password=wrong-password&password={PASSWORD}", "password"),
    ],
)
def test_a_login_naming_a_field_twice_is_422_and_issues_nothing(
    client: TestClient, body: str, field: str
) -> None:
    # The form's last value counted: a proxy or a log reading the first saw another user.
    response = client.post("/api/auth/token", content=body, headers=FORM)
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": f"body.{field}: given more than once"}
    assert "access_token" not in response.text


def test_a_user_name_is_taken_in_every_case(client: TestClient, auth: Headers) -> None:
    created = client.post(
        "/api/users",
        json={"username": "Admin", "password": "another-password", "role": "admin"},
        headers=auth("admin"),
    )
    assert created.status_code == 409, created.text
    assert created.json() == {"detail": "body.username: user 'admin' already exists"}
    names = [u["username"] for u in client.get("/api/users", headers=auth("admin")).json()]
    assert sorted(names) == ["admin", "trader", "viewer"]
    # Logins stay exact: no other case of a name signs in as it.
    refused = client.post("/api/auth/token", data={"username": "ADMIN", "password": PASSWORD})
    assert refused.status_code == 401
