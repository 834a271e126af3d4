"""SIGMA settings: `SIGMA_*` environment variables, `.env`, then an optional YAML file, grouped
per component (`sigma.config.groups`): ``settings.database.database_url`` is
``SIGMA_DATABASE_URL``, ``settings.risk.max_drawdown`` is ``SIGMA_MAX_DRAWDOWN``.

Precedence (highest first): explicit keyword overrides, environment, `.env`, YAML file
(`SIGMA_CONFIG_FILE`), defaults. A wrong value fails at start with the setting's name; so does
an override or stored setting that names no setting.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sigma.config.groups import (
    ApiSettings,
    BusSettings,
    DatabaseSettings,
    DataSettings,
    ExchangeSettings,
    FeedSettings,
    NotifySettings,
    ProcessSettings,
    RecorderSettings,
    RegimeSettings,
    ResearchSettings,
    RetentionSettings,
    RiskSettings,
    SchedulerSettings,
    SettingsGroup,
    TradingSettings,
    WorkerSettings,
)


class SettingsError(ValueError):
    """A setting has a wrong value; the message names the setting and the reason."""


class Settings(BaseModel):
    """Every knob SIGMA reads at start, one group per component. `Settings()` reads the
    environment; `load_settings` also takes overrides by setting name."""

    model_config = ConfigDict(extra="forbid")

    process: ProcessSettings = Field(default_factory=ProcessSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    regime: RegimeSettings = Field(default_factory=RegimeSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    venue: ExchangeSettings = Field(default_factory=ExchangeSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    recorder: RecorderSettings = Field(default_factory=RecorderSettings)
    data: DataSettings = Field(default_factory=DataSettings)

    @model_validator(mode="after")
    def _across_groups(self) -> Settings:
        # The default database moves with SIGMA_VAR_DIR, as everything else SIGMA writes.
        if not self.database.database_url:
            self.database.database_url = f"sqlite:///{self.process.var_dir / 'sigma.db'}"
        # Naming a venue means trading there unless paper is asked for explicitly.
        if self.venue.venue is not None and "mode" not in self.trading.model_fields_set:
            self.trading.mode = "live"
        return self

    @property
    def research_bars_timeframe(self) -> str:
        """The `bars` timeframe the research jobs read (`research_timeframe` or the live one)."""
        return self.research.research_timeframe or timeframe_label(self.trading.bar_seconds)

    def flat(self) -> dict[str, Any]:
        """Every setting by its name (the environment name without ``SIGMA_``)."""
        return {
            name: getattr(group, name)
            for group in self._groups()
            for name in type(group).model_fields
        }

    def with_values(self, values: Mapping[str, Any]) -> Settings:
        """A copy with ``values`` (by setting name) applied, validated like a fresh start but
        without reading the environment again (raises ValidationError; KeyError for a name
        that is no setting)."""
        routed = _route(values)
        groups = {
            field: type(group).model_validate({**group.model_dump(), **routed.get(field, {})})
            for field, group in self._fields()
        }
        return Settings.model_validate(groups)

    def _fields(self) -> list[tuple[str, SettingsGroup]]:
        return [(name, getattr(self, name)) for name in type(self).model_fields]

    def _groups(self) -> list[SettingsGroup]:
        return [group for _, group in self._fields()]


#: setting name -> the `Settings` field of its group
GROUP_OF: dict[str, str] = {
    name: field
    for field, info in Settings.model_fields.items()
    for name in info.annotation.model_fields  # type: ignore[union-attr]
}


def _route(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``values`` by setting name, sorted into their groups (KeyError names an unknown one)."""
    routed: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if name not in GROUP_OF:
            raise KeyError(name)
        routed.setdefault(GROUP_OF[name], {})[name] = value
    return routed


def timeframe_label(seconds: int) -> str:
    """The `bars` table's name of a bar `seconds` long: 60 -> ``1m``, 3600 -> ``1h``, 90 ->
    ``90s`` (the shorthand `sigma.feeds.resample.normalise_rule` reads)."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_yaml(path: str) -> None:
    """Fail with the file's name when the YAML file is missing or not a mapping."""
    import yaml  # only with a settings file (~1 MB a command otherwise)

    file = Path(path)
    if not file.is_file():
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} does not exist")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise SettingsError(f"SIGMA_CONFIG_FILE: {path} must hold a mapping of settings")
    for key in data or {}:
        if str(key).lower() not in GROUP_OF:
            raise SettingsError(f"SIGMA_CONFIG_FILE: {path}: {_unknown_key(str(key))}")


def _unknown_key(key: str) -> str:
    """Why `key` of the YAML file is no setting, and what was likely meant: the file would
    otherwise ignore a misspelt or misplaced setting without a word."""
    name = key.lower()
    if name.removeprefix("sigma_") in GROUP_OF:
        return f"unknown setting {key!r}: write it {name.removeprefix('sigma_')!r}, without SIGMA_"
    if name in Settings.model_fields:
        return f"unknown setting {key!r}: settings are not nested in groups, write them at the top"
    close = difflib.get_close_matches(name, GROUP_OF, n=1)
    return f"unknown setting {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, overriding settings by name (``database_url=...``), turning
    pydantic's errors into one message per bad setting."""
    yaml_file = os.environ.get("SIGMA_CONFIG_FILE")
    if yaml_file:
        _check_yaml(yaml_file)
    try:
        routed = _route(overrides)
    except KeyError as exc:
        raise SettingsError(f"unknown setting {exc.args[0]!r}") from None
    groups: dict[str, SettingsGroup] = {}
    problems: list[str] = []
    for field, info in Settings.model_fields.items():
        group_cls: type[SettingsGroup] = info.annotation  # type: ignore[assignment]
        try:
            groups[field] = group_cls(**routed.get(field, {}))
        except ValidationError as exc:
            problems += [_problem(err) for err in exc.errors()]
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**groups)


def _problem(err: Any) -> str:
    name = "SIGMA_" + "_".join(str(p) for p in err["loc"][:1]).upper()
    return f"{name}: {err['msg']} (got {err.get('input')!r})"
