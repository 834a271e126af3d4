"""Settings: defaults, environment, YAML file, and errors that name the setting."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sigma.config import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in ("SIGMA_DATABASE_URL", "SIGMA_CONFIG_FILE", "SIGMA_API_PORT"):
        monkeypatch.delenv(var, raising=False)


def test_defaults_use_sqlite_under_var() -> None:
    s = load_settings()
    assert s.database.database_url == "sqlite:///var/sigma.db" and not s.database.is_postgres
    assert s.trading.initial_cash == Decimal(10000) and s.trading.strategy_paths == []


def test_sim_run_bars_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trading.sim_run_bars == 10_080
    monkeypatch.setenv("SIGMA_SIM_RUN_BARS", "1440")
    assert load_settings().trading.sim_run_bars == 1440


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SIGMA_API_PORT=9001\n")
    monkeypatch.setenv("SIGMA_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("SIGMA_STRATEGY_PATHS", "/a:/b")
    s = load_settings()
    assert s.database.is_postgres and s.api.api_port == 9001
    assert [str(p) for p in s.trading.strategy_paths] == ["/a", "/b"]


def test_yaml_file_is_lower_precedence_than_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "sigma.yaml"
    cfg.write_text("api_port: 7000\ncommission_pct: '0.002'\n")
    monkeypatch.setenv("SIGMA_CONFIG_FILE", str(cfg))
    assert load_settings().api.api_port == 7000
    assert load_settings().trading.commission_pct == Decimal("0.002")
    monkeypatch.setenv("SIGMA_API_PORT", "7100")
    assert load_settings().api.api_port == 7100


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("SIGMA_API_PORT", "abc", "SIGMA_API_PORT: Input should be a valid integer"),
        ("SIGMA_API_PORT", "70000", "SIGMA_API_PORT: Input should be less than or equal"),
        ("SIGMA_DATABASE_URL", "mysql://x", "SIGMA_DATABASE_URL: Value error, must be a sqlite"),
        ("SIGMA_COMMISSION_PCT", "0.5", "SIGMA_COMMISSION_PCT: Input should be less than 0.1"),
        ("SIGMA_LOG_LEVEL", "LOUD", "SIGMA_LOG_LEVEL: Input should be"),
        (
            "SIGMA_SIM_RUN_BARS",
            "1",
            "SIGMA_SIM_RUN_BARS: Input should be greater than or equal to 2",
        ),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()


def test_bad_yaml_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIGMA_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match="nope.yaml does not exist"):
        load_settings()
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    monkeypatch.setenv("SIGMA_CONFIG_FILE", str(broken))
    with pytest.raises(SettingsError, match="broken.yaml is not valid YAML"):
        load_settings()
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    monkeypatch.setenv("SIGMA_CONFIG_FILE", str(listy))
    with pytest.raises(SettingsError, match="must hold a mapping"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "comission_pct: 0.002\n",
            "unknown setting 'comission_pct' (did you mean 'commission_pct'?)",
        ),
        (
            "SIGMA_INITIAL_CASH: 5000\n",
            "unknown setting 'SIGMA_INITIAL_CASH': write it 'initial_cash', without SIGMA_",
        ),
        (
            "trading:\n  initial_cash: 5000\n",
            "unknown setting 'trading': settings are not nested in groups, write them at the top",
        ),
        ("colour: blue\n", "unknown setting 'colour'"),
    ],
)
def test_a_yaml_key_that_is_no_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, reason: str
) -> None:
    cfg = tmp_path / "sigma.yaml"
    cfg.write_text("Initial_Cash: 5000\n" + text)  # names are matched in any case
    monkeypatch.setenv("SIGMA_CONFIG_FILE", str(cfg))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert str(info.value) == f"SIGMA_CONFIG_FILE: {cfg}: {reason}"
