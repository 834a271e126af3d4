"""Settings grouped per component: every environment name of the flat settings lands in its
group under the same name, overrides and stored settings go by name, and a name that is no
setting is refused with a clear error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sigma.config import SettingsError, load_settings
from sigma.config.settings import GROUP_OF, Settings

# One value per environment name of the flat settings (every one but SIGMA_BROKER, which only
# accepts its default and says what replaced it), each different from its default.
ENV = {
    "env": "prod",
    "var_dir": "/tmp/sigma-var",
    "log_level": "DEBUG",
    "log_max_bytes": "50000001",
    "log_rotate_days": "2",
    "metrics_port": "3",
    "database_url": "postgresql+psycopg://u@h/db",
    "timescale_compress_after_days": "8",
    "redis_url": "redis://r",
    "amqp_url": "amqp://a",
    "bus_prefix": "p-",
    "mode": "live",
    "symbols": "SOL",
    "live_strategies": "donchian_trend",
    "strategy_paths": "/a",
    "bar_seconds": "61",
    "sim_run_bars": "10081",
    "initial_cash": "5000",
    "stake_fraction": "0.125",
    "commission_pct": "0.0005",
    "commission_fixed": "1",
    "slippage_bps": "1",
    "adaptive": "false",
    "adaptive_test_bars": "1501",
    "adaptive_probation_bars": "1441",
    "ml_gate": "false",
    "ml_gate_threshold": "0.225",
    "news_feed_urls": "http://n/rss",
    "news_poll_seconds": "150.0",
    "news_drop_dir": "/tmp/news",
    "news_keywords": '{"SOL": ["solana"]}',
    "feed_url": "ws://127.0.0.1:1/",
    "feed_speed": "0.5",
    "market_history_bars": "10081",
    "feed_seed": "8",
    "feed_stale_seconds": "15.0",
    "venue_config": "/tmp/venue.yml",
    "venue": "binance",
    "exchange_config": '{"options": {"a": 1}}',
    "venue_api_key": "key",
    "venue_secret": "secret",
    "exchange_markets": '{"BTC": "BTC/KRW"}',
    "worker_prefetch": "17",
    "worker_name": "w1",
    "order_max_retries": "6",
    "order_poll_seconds": "1.0",
    "order_stream_poll_seconds": "15.0",
    "order_requests_per_second": "1.0",
    "order_timeout_seconds": "3",
    "reconcile_seconds": "150.0",
    "max_order_notional": "3",
    "max_position_notional": "3",
    "max_open_orders": "6",
    "max_daily_loss": "3",
    "max_drawdown": "0.125",
    "margin_account": "futures",
    "margin_leverage": "5",
    "margin_maintenance": "0.05",
    "notify": '{"slack_webhook_url": "http://s"}',
    "api_host": "0.0.0.0",
    "api_port": "8001",
    "jwt_secret": "jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj",
    "jwt_expire_minutes": "61",
    "jwt_refresh_days": "8",
    "bcrypt_rounds": "13",
    "admin_password": "pw",
    "api_trusted_proxies": "10.0.0.1",
    "api_allowed_origins": "https://sigma.example.com",
    "api_public_docs": "true",
    "api_public_metrics": "true",
    "api_ws_per_user": "11",
    "api_max_connections": "513",
    "api_max_connections_per_client": "65",
    "api_prefs_max_keys": "101",
    "api_prefs_max_bytes": "65537",
    "api_idempotency_pending_seconds": "61.0",
    "scheduler_timezone": "Asia/Seoul",
    "selection_cron": "1 3 * * *",
    "ml_tune_cron": "31 3 * * *",
    "weekly_report_cron": "0 5 * * mon",
    "daily_summary_cron": "6 0 * * *",
    "report_pdf": "false",
    "health_interval_seconds": "31",
    "trend_scan_minutes": "16",
    "misfire_grace_seconds": "3601",
    "user_inactive_days": "91",
    "disk_min_free_pct": "2.5",
    "memory_min_available_pct": "2.5",
    "worker_stale_seconds": "60.0",
    "research_timeframe": "5m",
    "research_lookback_bars": "2001",
    "optimize_trials": "41",
    "optimize_workers": "3",
    "optuna_storage": "sqlite:///o.db",
    "tick_retention_days": "31",
    "bar_retention_days": "3",
    "log_retention_days": "91",
    "recorder_batch_rows": "1001",
    "recorder_flush_ms": "501",
    "recorder_max_pending": "200001",
    "data_max_file_bytes": "2147483649",
    "data_max_uncompressed_bytes": "2147483649",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in GROUP_OF:
        monkeypatch.delenv(f"SIGMA_{name.upper()}", raising=False)
    monkeypatch.delenv("SIGMA_CONFIG_FILE", raising=False)


def test_every_flat_name_is_a_setting_of_one_group() -> None:
    assert set(ENV) | {"broker"} <= set(GROUP_OF)
    assert {name for name in GROUP_OF if not name.startswith("notify_")} == set(ENV) | {"broker"}


def test_every_environment_name_lands_in_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings().flat()
    for name, value in ENV.items():
        monkeypatch.setenv(f"SIGMA_{name.upper()}", value)
    settings = load_settings()
    for name in ENV:
        group = getattr(settings, GROUP_OF[name])
        assert getattr(group, name) == settings.flat()[name] != defaults[name], name
    assert settings.database.database_url == "postgresql+psycopg://u@h/db"
    assert settings.risk.max_drawdown == Decimal("0.125")
    assert settings.trading.symbols == ["SOL"] and settings.api.api_trusted_proxies == ["10.0.0.1"]


def test_overrides_go_by_setting_name_and_an_unknown_one_is_refused() -> None:
    settings = load_settings(max_open_orders=9, api_port=7001)
    assert settings.risk.max_open_orders == 9 and settings.api.api_port == 7001
    with pytest.raises(SettingsError, match="unknown setting 'database'"):
        load_settings(database="sqlite://")
    with pytest.raises(SettingsError, match="SIGMA_API_PORT: .*less than or equal to 65535"):
        load_settings(api_port=70_000)
    with pytest.raises(SettingsError, match="SIGMA_BROKER=binance is now SIGMA_VENUE=binance"):
        load_settings(broker="binance")


def test_settings_take_no_flat_keyword() -> None:
    with pytest.raises(ValueError, match="database_url"):
        Settings(database_url="sqlite://")  # type: ignore[call-arg]


def test_with_values_validates_a_copy_without_reading_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    monkeypatch.setenv("SIGMA_API_PORT", "7002")
    moved = settings.with_values({"optimize_trials": 75})
    assert moved.research.optimize_trials == 75 and moved.api.api_port == 8000
    assert settings.research.optimize_trials == 40
    with pytest.raises(KeyError):
        settings.with_values({"nonsense": 1})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        settings.with_values({"optimize_trials": 0})


def test_notify_keys_come_from_the_settings_with_variables_over_the_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIGMA_NOTIFY", '{"slack_webhook_url": "http://a", "smtp_port": 25}')
    monkeypatch.setenv("SIGMA_NOTIFY_SLACK_WEBHOOK_URL", "http://b")
    (tmp_path / ".env").write_text("SIGMA_NOTIFY_SMTP_PASSWORD=hush\n")
    notify = load_settings().notify
    assert isinstance(notify.notify_smtp_password, SecretStr)
    keys: dict[str, Any] = notify.channel_keys()
    assert keys == {
        "notify_slack_webhook_url": "http://b",
        "notify_smtp_port": 25,
        "notify_smtp_password": "hush",
    }


def test_flat_names_every_setting_once() -> None:
    flat = load_settings().flat()
    assert set(flat) == set(GROUP_OF) and flat["api_port"] == 8000
