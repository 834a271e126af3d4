"""SIGMA settings: `SIGMA_*` environment variables, `.env`, then an optional YAML file.

Precedence (highest first): explicit keyword overrides, environment, `.env`, YAML file
(`SIGMA_CONFIG_FILE`), defaults. A wrong value fails at start with the setting's name.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class SettingsError(ValueError):
    """A setting has a wrong value; the message names the setting and the reason."""


class Settings(BaseSettings):
    """Every knob SIGMA reads at start. Environment names are `SIGMA_<FIELD>` in upper case."""

    model_config = SettingsConfigDict(
        env_prefix="SIGMA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = "sqlite:///./var/sigma.db"
    redis_url: str | None = None
    amqp_url: str | None = None
    var_dir: Path = Path("./var")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # NoDecode: the env value is a PATH-style list, not JSON.
    strategy_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # Backtest / paper account defaults.
    initial_cash: Decimal = Decimal("10000")
    commission_pct: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.1"))
    commission_fixed: Decimal = Field(default=Decimal("0"), ge=0)
    slippage_bps: Decimal = Field(default=Decimal("0"), ge=0, lt=Decimal("1000"))

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("strategy_paths", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        # An env var holds a path list the way PATH does: separated by os.pathsep.
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p]
        return value

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

    @property
    def is_postgres(self) -> bool:
        """True when the database URL points at PostgreSQL."""
        return self.database_url.startswith("postgresql")


def _check_yaml(path: str) -> None:
    """Fail with the file's name when the YAML file is missing or not a mapping."""
    file = Path(path)
    if not file.is_file():
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} must hold a mapping of settings")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning pydantic's errors into one message per bad setting."""
    yaml_file = os.environ.get("SIGMA_CONFIG_FILE")
    if yaml_file:
        _check_yaml(yaml_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "SIGMA_" + "_".join(str(p) for p in err["loc"][:1]).upper()
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from exc
