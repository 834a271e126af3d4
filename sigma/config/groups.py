"""The settings groups, one per component. Each field is read from ``SIGMA_<FIELD>`` (the field
names are the environment names without the prefix, so a group moves no variable), from
`.env`, then from the YAML file of ``SIGMA_CONFIG_FILE``; `sigma.config.settings` gathers the
groups into `Settings`.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


def split_names(value: Any) -> Any:
    """A comma-separated env value as a list of its non-empty, stripped names."""
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return value


class SettingsGroup(BaseSettings):
    """The sources every group reads, highest first: keyword arguments, the environment,
    `.env`, the YAML file (`SIGMA_CONFIG_FILE`), defaults. Keys of other groups are theirs."""

    model_config = SettingsConfigDict(
        env_prefix="SIGMA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        # `SIGMA_MAX_DRAWDOWN=none` switches an optional limit off.
        env_parse_none_str="none",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        yaml_file = os.environ.get("SIGMA_CONFIG_FILE")
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


class ProcessSettings(SettingsGroup):
    """The process: its environment, where it writes (`var_dir`), its logs and metrics."""

    env: Literal["dev", "test", "prod"] = "dev"
    var_dir: Path = Path("./var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_max_bytes: int = Field(default=50_000_000, ge=1024)
    # Logs are also rotated when this many days passed since their last rotation (0: by size only).
    log_rotate_days: int = Field(default=1, ge=0)
    # Processes without the API (bot, worker, sim) serve their Prometheus metrics on this port.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


class DatabaseSettings(SettingsGroup):
    """The database every component stores in."""

    # Unset: the SQLite database `<var_dir>/sigma.db`.
    database_url: str = ""
    # TimescaleDB only: chunks of ticks and bars older than this are compressed.
    timescale_compress_after_days: int = Field(default=7, ge=1)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def is_postgres(self) -> bool:
        """True when the database URL points at PostgreSQL."""
        return self.database_url.startswith("postgresql")


class BusSettings(SettingsGroup):
    """The message buses: Redis Pub/Sub and RabbitMQ when their URLs are set, else in-process."""

    redis_url: str | None = None
    amqp_url: str | None = None
    # Channel and queue names start with this (tests and several SIGMAs on one server).
    bus_prefix: str = ""


class TradingSettings(SettingsGroup):
    """What is traded (`sigma up`), and the accounts' money: the live strategies and symbols,
    the bar size, paper account defaults and the costs of simulated fills."""

    mode: Literal["paper", "live"] = "paper"
    # Symbols and strategy names are comma-separated in the env.
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["BTC", "ETH"])
    live_strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sma_cross", "rsi_reversion"]
    )
    # NoDecode: the env value is a PATH-style list, not JSON.
    strategy_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    bar_seconds: int = Field(default=60, ge=1, le=86_400)
    # The SimRunner finishes each paper run (statistics, report) after this many bars and opens
    # the next on the same account, which bounds its memory (10,080: a week of 1-minute bars).
    # A run needs two bars for its statistics.
    sim_run_bars: int = Field(default=10_080, ge=2)
    # Backtest / paper account defaults.
    initial_cash: Decimal = Decimal("10000")
    # The share of a strategy account's free equity one entry commits in the bot and the
    # simulations (a strategy's `go_long()` is "all in" on its own; 1 keeps it so, as a
    # backtest does). A quarter keeps a demo left running from paying a whole account's
    # commission on every signal.
    stake_fraction: Decimal = Field(default=Decimal("0.25"), gt=0, le=1)
    commission_pct: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.1"))
    commission_fixed: Decimal = Field(default=Decimal("0"), ge=0)
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0, lt=Decimal("1000"))

    @field_validator("symbols", "live_strategies", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return split_names(value)

    @field_validator("strategy_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        # An env var holds a path list the way PATH does: separated by os.pathsep.
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p]
        return value


class RegimeSettings(SettingsGroup):
    """The adaptive layer: the regime loop, the ML entry gate and the news it reads."""

    # The regime loop (RegimeDetector -> ParamAdjuster) re-tunes live strategies; each change
    # must first pass a walk-forward test on this many recent bars (0: changes are not tested).
    adaptive: bool = True
    adaptive_test_bars: int = Field(default=1500, ge=0)
    # A strategy the loop throttled or disabled sits out at least this many bars; then it is
    # reinstated once its paper shadow's grade is good enough (`QualityConfig.probation_bars`).
    adaptive_probation_bars: int = Field(default=1440, ge=1)
    # The ML entry gate (sigma.research.ml_gate) in the bot and the simulations: a symbol's
    # model, once a version beat both its baseline and the ungated strategies out of sample,
    # vetoes a long entry when its P(up) < ml_gate_threshold, a short one when P(up) >
    # 1 - ml_gate_threshold. Off: no model is consulted.
    ml_gate: bool = True
    ml_gate_threshold: float = Field(default=0.45, gt=0, le=0.5)
    # News for the regime loop: RSS/Atom URLs polled every news_poll_seconds (comma-separated
    # in the env), and the words that tie a headline to a symbol (JSON in the env).
    news_feed_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    news_poll_seconds: float = Field(default=300.0, ge=5)
    # A folder whose dropped news files (JSON, JSON lines, RSS/Atom) are read at each poll.
    news_drop_dir: Path | None = None
    news_keywords: dict[str, list[str]] = Field(
        default_factory=lambda: {"BTC": ["bitcoin", "btc"], "ETH": ["ethereum", "ether", "eth"]}
    )

    @field_validator("news_feed_urls", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return split_names(value)


class FeedSettings(SettingsGroup):
    """Where prices come from when no venue is named: the built-in market or a feed URL."""

    # Unset: the built-in synthetic market is served in-process and read over WebSocket.
    feed_url: str | None = None
    # Built-in market (sigma.runtime.market): 1 = in wall-clock time, going on from the last
    # stored price; any other value is an accelerated demo market playing that many seconds of
    # market time per second (0: as fast as it is read) until it reaches the present.
    feed_speed: float = Field(default=1.0, ge=0)
    # Minutes of history the wall-clock market stores on a fresh start (a week of 1m bars), so
    # the strategies start warm and the research jobs have bars to work on.
    market_history_bars: int = Field(default=10_080, ge=0, le=1_000_000)
    feed_seed: int = 7
    feed_stale_seconds: float = Field(default=30.0, gt=0)


class ExchangeSettings(SettingsGroup):
    """The venue SIGMA trades on (read through `sigma.config.venue.venue_settings`)."""

    # `sigma up --only venue,...` runs the local exchange (`sigma venue`) in-process with the
    # settings of this YAML file (see docs/venue.md); unset: its defaults and demo accounts.
    venue_config: Path | None = None
    # The venue SIGMA trades on (binance, upbit; `sigma venue` too, reached by the URLs in
    # SIGMA_EXCHANGE_CONFIG): prices from its WebSocket instead of the built-in market, orders
    # to it, sized by its rules. SIGMA_MODE is then live unless set: SIGMA_MODE=paper is a dry
    # run (paper fills on the venue's prices). Unset: the built-in market and the paper broker.
    venue: str | None = None
    # Only "paper": a venue is named by SIGMA_VENUE (a clear error for the old spelling).
    broker: str = "paper"
    # ccxt config of the venue (JSON): `urls` and options; `sigma venue` prints it.
    exchange_config: dict[str, Any] = Field(default_factory=dict)
    # The venue's API keys (they override apiKey/secret in SIGMA_EXCHANGE_CONFIG).
    venue_api_key: SecretStr | None = None
    venue_secret: SecretStr | None = None
    # SIGMA symbol -> venue market, e.g. {"BTC": "BTC/KRW"}; unset symbols trade against the
    # venue's quote currency (Binance USDT, Upbit KRW).
    exchange_markets: dict[str, str] = Field(default_factory=dict)

    @field_validator("broker")
    @classmethod
    def _broker_renamed(cls, value: str) -> str:
        if value != "paper":
            raise ValueError(
                f"SIGMA_BROKER={value} is now SIGMA_VENUE={value} (prices and orders from the "
                "venue; SIGMA_MODE=paper keeps paper fills)"
            )
        return value

    @field_validator("venue", mode="before")
    @classmethod
    def _no_empty_venue(cls, value: Any) -> Any:
        return None if value == "" else value


class WorkerSettings(SettingsGroup):
    """The OrderWorker: the order queue, and how venue orders are followed and reconciled."""

    worker_prefetch: int = Field(default=16, ge=1, le=1000)
    # The worker's heartbeat row (unset: one per host; name each of several workers per host).
    worker_name: str | None = Field(default=None, min_length=1, max_length=128)
    order_max_retries: int = Field(default=5, ge=0, le=50)
    # Open venue orders are followed until final (sigma.execution.follower): each is looked up
    # every order_poll_seconds while the venue's user stream is down (or it has none), every
    # order_stream_poll_seconds while it is up, within order_requests_per_second in all.
    order_poll_seconds: float = Field(default=2.0, gt=0)
    order_stream_poll_seconds: float = Field(default=30.0, gt=0)
    order_requests_per_second: float = Field(default=2.0, gt=0)
    # A resting limit order open longer than this is cancelled (unset: never).
    order_timeout_seconds: float | None = Field(default=None, gt=0)
    # The worker reconciles with the venue (balances, open orders, trades) at start and then
    # every reconcile_seconds (sigma.execution.reconcile).
    reconcile_seconds: float = Field(default=300.0, gt=0)


class RiskSettings(SettingsGroup):
    """Risk limits per strategy and symbol (unset: no limit); the names of `RiskLimits`."""

    max_order_notional: Decimal | None = Field(default=None, gt=0)
    max_position_notional: Decimal | None = Field(default=None, gt=0)
    max_open_orders: int | None = Field(default=5, ge=1)
    max_daily_loss: Decimal | None = Field(default=None, gt=0)
    max_drawdown: Decimal | None = Field(default=Decimal("0.25"), gt=0, lt=1)
    # The strategy accounts' borrowing rules in the bot and the simulations (see
    # sigma.engine.margin): spot (no borrowing, no shorts), margin or futures, with a leverage
    # (1 to 125; spot: 1) and a maintenance margin rate (0 <= rate < 1/leverage). An account
    # at or below zero equity, or under its maintenance margin, is closed out and stopped.
    margin_account: Literal["spot", "margin", "futures"] = "margin"
    margin_leverage: Decimal = Field(default=Decimal(1), ge=1, le=125)
    margin_maintenance: Decimal = Field(default=Decimal(0), ge=0, lt=1)

    @field_validator("margin_leverage")
    @classmethod
    def _spot_unlevered(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if info.data.get("margin_account") == "spot" and value != 1:
            raise ValueError("must be 1 on a spot account (SIGMA_MARGIN_ACCOUNT=spot)")
        return value

    @field_validator("margin_maintenance")
    @classmethod
    def _maintenance_below_initial(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        leverage = info.data.get("margin_leverage", Decimal(1))
        if value >= 1 / leverage:
            raise ValueError(f"must be below 1/leverage ({1 / leverage:.4g})")
        return value


class NotifySettings(SettingsGroup):
    """The notification channels (see `sigma.notify.config` for what each key does).

    ``SIGMA_NOTIFY`` holds any of the keys as JSON without their ``notify_`` prefix, e.g.
    ``{"slack_webhook_url": "..."}``; a ``SIGMA_NOTIFY_<KEY>`` variable overrides its key.
    Values stay text, as they arrive from the environment; `sigma.notify.config` parses them.
    """

    notify: dict[str, Any] = Field(default_factory=dict)
    notify_dedupe_window_s: str | None = None
    notify_channel_timeout_s: str | None = None
    notify_log_min_severity: str | None = None
    notify_pubsub_min_severity: str | None = None
    notify_webhook_url: str | None = None
    notify_webhook_headers: dict[str, str] | None = None
    notify_slack_webhook_url: str | None = None
    notify_telegram_token: SecretStr | None = None
    notify_telegram_chat_id: str | None = None
    notify_telegram_base_url: str | None = None
    notify_smtp_host: str | None = None
    notify_smtp_port: str | None = None
    notify_smtp_username: str | None = None
    notify_smtp_password: SecretStr | None = None
    notify_smtp_starttls: str | None = None
    notify_email_from: str | None = None
    notify_email_to: str | None = None
    # Reports are e-mailed whatever the alert threshold (default: to notify_email_to).
    notify_report_email_to: str | None = None
    notify_email_reports: str | None = None
    notify_webhook_min_severity: str | None = None
    notify_webhook_rate_per_minute: str | None = None
    notify_webhook_burst: str | None = None
    notify_slack_min_severity: str | None = None
    notify_slack_rate_per_minute: str | None = None
    notify_slack_burst: str | None = None
    notify_telegram_min_severity: str | None = None
    notify_telegram_rate_per_minute: str | None = None
    notify_telegram_burst: str | None = None
    notify_email_min_severity: str | None = None
    notify_email_rate_per_minute: str | None = None
    notify_email_burst: str | None = None

    def channel_keys(self) -> dict[str, Any]:
        """The ``notify_*`` keys `sigma.notify.config.from_settings` reads: ``SIGMA_NOTIFY``'s,
        then every ``SIGMA_NOTIFY_<KEY>`` that is set, secrets in clear."""
        values: dict[str, Any] = {f"notify_{k}": v for k, v in self.notify.items()}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "notify" or value is None:
                continue
            values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return values


class ApiSettings(SettingsGroup):
    """The REST/WebSocket API and its authentication."""

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    # Unset: a random secret is generated once and kept in `<var_dir>/jwt_secret`.
    jwt_secret: SecretStr | None = None
    jwt_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 7)
    jwt_refresh_days: int = Field(default=7, ge=1, le=90)
    # bcrypt work factor: 12 costs ~0.25 s per login; tests lower it.
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # Password of the first `admin` (created when no user exists); unset: a random one.
    admin_password: SecretStr | None = None
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto the API believes (addresses or
    # networks, comma-separated in the env, "*" for any); unset: none, so a client cannot pick
    # the address the login throttle counts against.
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Web origins (`https://host[:port]`, comma-separated in the env) besides the API's own
    # whose pages may open /ws: a dashboard served elsewhere, or a proxy that rewrites Host.
    # Unset: only pages of the API's own origin (and clients that send no Origin).
    api_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # /docs, /redoc and /openapi.json without login (else /openapi.json needs an admin and
    # the HTML pages are off); /metrics without login (else it needs an admin's token).
    api_public_docs: bool = False
    api_public_metrics: bool = False
    # Open /ws connections per user; stored preferences per user (keys, JSON bytes in all).
    api_ws_per_user: int = Field(default=10, ge=1, le=1000)
    # Open connections (HTTP and WebSocket) of the server, and from one address (the trusted
    # proxies' exempt): beyond them a request is a 503, a WebSocket closed with 1013. A
    # dashboard holds about 8; the total stays under the process's file descriptors (1024).
    api_max_connections: int = Field(default=512, ge=1, le=100_000)
    api_max_connections_per_client: int = Field(default=64, ge=1, le=100_000)
    api_prefs_max_keys: int = Field(default=100, ge=1, le=10_000)
    api_prefs_max_bytes: int = Field(default=65_536, ge=1024, le=10_000_000)
    # An order request with an Idempotency-Key unanswered this long is taken as lost (its API
    # process stopped): a retry then sends it when it was never handed to the bot, and is
    # told to look the order up when it was. Well above the few seconds a request takes.
    api_idempotency_pending_seconds: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("api_trusted_proxies", "api_allowed_origins", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        return split_names(value)


class SchedulerSettings(SettingsGroup):
    """The scheduler (`sigma scheduler`, `sigma jobs`): crontab expressions in
    `scheduler_timezone`, and the thresholds of the health and user checks."""

    scheduler_timezone: str = "UTC"
    selection_cron: str = "0 3 * * *"
    # The ML tuning job trains and validates each symbol's gate model (after the selection,
    # whose parameters its validation backtests).
    ml_tune_cron: str = "30 3 * * *"
    weekly_report_cron: str = "0 4 * * mon"
    daily_summary_cron: str = "5 0 * * *"
    # Performance reports are also rendered as PDF next to the HTML. (Reports are e-mailed
    # whatever the alert threshold: SIGMA_NOTIFY_REPORT_EMAIL_TO, see sigma/notify/config.py.)
    report_pdf: bool = True
    health_interval_seconds: int = Field(default=30, ge=1)
    trend_scan_minutes: int = Field(default=15, ge=1)
    # Runs due while the process was down are made up once if at most this late.
    misfire_grace_seconds: int = Field(default=3600, ge=1)
    user_inactive_days: int = Field(default=90, ge=1)
    disk_min_free_pct: float = Field(default=5.0, ge=0, lt=100)
    memory_min_available_pct: float = Field(default=5.0, ge=0, lt=100)
    worker_stale_seconds: float = Field(default=120.0, gt=0)


class ResearchSettings(SettingsGroup):
    """The research jobs: selection, optimisation and ML tuning on the stored bars."""

    # Research jobs read this many bars of this timeframe from the `bars` table; unset: the
    # timeframe the live strategies trade (`bar_seconds`), whose parameters they choose.
    research_timeframe: str = ""
    research_lookback_bars: int = Field(default=2000, ge=100)
    optimize_trials: int = Field(default=40, ge=1)
    # Processes per optimisation; unset: one per core for studies long enough to repay
    # starting them (`sigma.research.workers.auto_workers`), else one.
    optimize_workers: int | None = Field(default=None, ge=1)
    # A database URL for shared optuna studies (several machines, resuming); unset: in memory
    # (one process) or a temporary journal file the processes of one machine share.
    optuna_storage: str | None = None


class RetentionSettings(SettingsGroup):
    """How long stored rows are kept."""

    tick_retention_days: int = Field(default=30, ge=1)
    # Recorded bars (`bars`): unset keeps them forever (a year of 1-minute bars of one symbol
    # is about 40 MB).
    bar_retention_days: int | None = Field(default=None, ge=1)
    # alert_log, action_log, job_runs and trend_data.
    log_retention_days: int = Field(default=90, ge=1)


class RecorderSettings(SettingsGroup):
    """The recorder (`sigma recorder`, part of `sigma up`): it writes ticks and bars in batches
    of up to recorder_batch_rows, at least every recorder_flush_ms; it holds at most
    recorder_max_pending ticks while the database is slow or away (then drops the newest)."""

    recorder_batch_rows: int = Field(default=1000, ge=1)
    recorder_flush_ms: int = Field(default=500, ge=1)
    recorder_max_pending: int = Field(default=200_000, ge=1)


class DataSettings(SettingsGroup):
    """History files a backtest, optimisation or import reads: refused past this size on disk,
    and a compressed one once it inflates past the second limit (checked while reading). The
    defaults are sigma.feeds.limits.InputLimits'."""

    data_max_file_bytes: int = Field(default=2 * 1024**3, ge=1)
    data_max_uncompressed_bytes: int = Field(default=2 * 1024**3, ge=1)
