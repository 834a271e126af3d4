"""Settings kept in the database (`config_settings`): the source of truth that ConfigSync brings
to every running instance.

A stored value overrides the instance's own (environment, `.env`, YAML) for the keys that may
change while SIGMA runs; connection URLs, secrets and paths - what a process needs before it
can reach the database - are never stored. Every change bumps the key's version. An edit can
name the version it was made against (`expected_version`): when someone else changed the key
in between, the edit is refused with `VersionConflict` instead of silently overwriting it;
without one, the newest write wins and every instance converges on the highest version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sigma.config import Settings
from sigma.config.groups import NotifySettings
from sigma.config.settings import GROUP_OF
from sigma.store.jsonsafe import to_jsonable
from sigma.store.models import ConfigSetting

__all__ = [
    "LOCAL_ONLY",
    "StoredSetting",
    "VersionConflict",
    "apply_settings",
    "get_settings",
    "set_setting",
]

LOCAL_ONLY = frozenset(
    {
        "env",
        "database_url",
        "redis_url",
        "amqp_url",
        "var_dir",
        "strategy_paths",
        "bus_prefix",
        "exchange_config",
        "venue_api_key",
        "venue_secret",
        "api_host",
        "api_port",
        "api_trusted_proxies",
        "api_allowed_origins",
        "api_public_docs",
        "api_public_metrics",
        "metrics_port",
        "jwt_secret",
        "admin_password",
        "optuna_storage",
    }
) | frozenset(NotifySettings.model_fields)
"""Settings a process needs before it reaches the database, or secrets (the notification
channels' addresses and keys among them): never stored."""


class VersionConflict(Exception):
    """An edit was made against a version that is no longer the current one."""

    def __init__(self, key: str, expected: int, current: int) -> None:
        super().__init__(
            f"{key} was changed meanwhile: your edit is based on version {expected}, "
            f"the current one is {current}; reload and edit again"
        )
        self.key = key
        self.expected = expected
        self.current = current


@dataclass(frozen=True, slots=True)
class StoredSetting:
    """One stored value and its version."""

    key: str
    value: Any
    version: int
    changed_by: str
    updated_at: datetime


def _check(key: str, value: Any, base: Settings) -> Any:
    """`value` validated as setting `key` (raises ValueError naming the key); the JSON form."""
    if key not in GROUP_OF:
        raise ValueError(f"unknown setting {key!r}")
    if key in LOCAL_ONLY:
        raise ValueError(f"{key} is read by each process at start and cannot be stored")
    try:
        checked = apply_settings(base, {key: value})
    except ValidationError as exc:
        raise ValueError(f"{key}: {exc.errors()[0]['msg']} (got {value!r})") from None
    return to_jsonable(checked.flat()[key])


def apply_settings(base: Settings, values: Mapping[str, Any]) -> Settings:
    """`base` with `values` (by setting name) applied, validated like a fresh start (raises
    ValidationError)."""
    return base.with_values(values)


def get_settings(session: Session) -> dict[str, StoredSetting]:
    """Every stored setting by key."""
    return {
        row.key: StoredSetting(row.key, row.value, row.version, row.changed_by, row.updated_at)
        for row in session.scalars(select(ConfigSetting).order_by(ConfigSetting.key))
    }


def set_setting(
    session: Session,
    key: str,
    value: Any,
    *,
    changed_by: str,
    base: Settings,
    expected_version: int | None = None,
) -> int:
    """Store `value` for `key` (validated against `base`, the instance's settings) and return
    the new version; storing the current value again changes nothing. `expected_version`
    (0 for "not stored yet") turns a concurrent change into `VersionConflict`."""
    stored = _check(key, value, base)
    row = session.scalar(select(ConfigSetting).where(ConfigSetting.key == key).with_for_update())
    current = 0 if row is None else row.version
    if expected_version is not None and expected_version != current:
        raise VersionConflict(key, expected_version, current)
    if row is None:
        session.add(ConfigSetting(key=key, value=stored, version=1, changed_by=changed_by))
        session.flush()
        return 1
    if row.value == stored:
        return row.version
    row.value = stored
    row.version += 1
    row.changed_by = changed_by
    session.flush()
    return row.version
