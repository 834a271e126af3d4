"""`sigma users` and `sigma api`."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from sigma.api.users import authenticate
from sigma.cli.main import app as cli
from tests.api.conftest import make_app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("SIGMA_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SIGMA_BCRYPT_ROUNDS", "4")
    return db


def check_login(db: Path, username: str, password: str) -> str | None:
    app = make_app(f"sqlite:///{db}", db.parent / "var")
    try:
        with app.sessions() as session:
            user = authenticate(session, username, password)
            return None if user is None else user.role
    finally:
        app.close()


def test_users_add_with_password_option_and_list(env: Path) -> None:
    result = runner.invoke(
        cli, ["users", "add", "alice", "--role", "trader", "--password", "pw-alice-1"]
    )
    assert result.exit_code == 0, result.output
    assert "user 'alice' created with role trader" in result.output
    assert check_login(env, "alice", "pw-alice-1") == "trader"
    listed = runner.invoke(cli, ["users", "list"])
    assert listed.exit_code == 0 and "alice" in listed.output and "trader" in listed.output


def test_users_add_prompts_for_the_password(env: Path) -> None:
    result = runner.invoke(cli, ["users", "add", "bob"], input="pw-bob-12\npw-bob-12\n")
    assert result.exit_code == 0, result.output
    assert "pw-bob-12" not in result.output  # hidden input
    assert check_login(env, "bob", "pw-bob-12") == "viewer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["carol", "--role", "god", "--password", "long-enough"], "unknown role 'god'"),
        (["carol", "--password", "short"], "at least 8 characters"),
        (["carol smith", "--password", "long-enough"], "username must be 1-64 characters"),
    ],
)
def test_users_add_rejects_bad_input(env: Path, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["users", "add", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_users_add_twice_fails(env: Path) -> None:
    runner.invoke(cli, ["users", "add", "dave", "--password", "long-enough"])
    again = runner.invoke(cli, ["users", "add", "dave", "--password", "long-enough"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_api_command_creates_admin_and_serves(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[uvicorn.Config] = []

    async def fake_serve(self: uvicorn.Server) -> None:
        served.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "serve", fake_serve)
    monkeypatch.setenv("SIGMA_ADMIN_PASSWORD", "first-admin-pw")
    result = runner.invoke(cli, ["api", "--port", "8123"])
    assert result.exit_code == 0, result.output
    # The operator supplied the password: it is used, never echoed.
    assert "first-admin-pw" not in result.output
    config = served[0]
    assert (config.host, config.port, config.log_level, config.access_log) == (
        "127.0.0.1",
        8123,
        "info",
        False,
    )
    # No proxy is trusted by default: X-Forwarded-For is ignored even from 127.0.0.1 (the
    # connection gate wraps the app itself, no forwarded-headers middleware).
    assert (config.proxy_headers, config.forwarded_allow_ips) == (False, [])
    assert config.app.app.title == "SIGMA"
    assert check_login(env, "admin", "first-admin-pw") == "admin"
    # Second start: the admin exists, no password printed; the port comes from the settings.
    second = runner.invoke(cli, ["api"])
    assert "created user" not in second.output
    assert served[1].port == 8000


def test_api_command_prints_a_generated_password_and_trusts_listed_proxies(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[uvicorn.Config] = []

    async def fake_serve(self: uvicorn.Server) -> None:
        served.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "serve", fake_serve)
    monkeypatch.setenv("SIGMA_API_TRUSTED_PROXIES", "10.0.0.7, 192.168.0.0/16")
    result = runner.invoke(cli, ["api"])
    assert result.exit_code == 0, result.output
    printed = result.output.split("created user 'admin' with password: ")[1].split()[0]
    assert check_login(env, "admin", printed) == "admin"
    config = served[0]
    # uvicorn's forwarded-headers middleware, inside the connection gate (which must see the
    # TCP peer), believes the listed proxies only.
    assert config.proxy_headers is False
    trusted = config.app.app.trusted_hosts
    assert "10.0.0.7" in trusted and "192.168.4.5" in trusted
    assert "127.0.0.1" not in trusted and "10.0.0.8" not in trusted
