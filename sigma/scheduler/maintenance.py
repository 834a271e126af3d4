"""Housekeeping jobs: UserValidation/UserRightsManager, LogRotator and ConfigSync."""

from __future__ import annotations

import gzip
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sigma.store.handles import Session
from sigma.store.job_notes import add_note, latest_note
from sigma.store.queries.params import all_sets
from sigma.store.queries.users import active_admins, list_users
from sigma.store.settings import get_settings

log = logging.getLogger(__name__)

USER_AUDIT = "users_audit"


# --- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserCheck:
    """What a user check did: who was deactivated and which rights changed since last time."""

    deactivated: list[str]
    changes: list[str]


def check_users(session: Session, now: datetime, inactive_after: timedelta) -> UserCheck:
    """Deactivate users who have not logged in (or, never logged in, were created) more than
    `inactive_after` ago - which also stops their tokens, since the API only honours active
    users - and report role/active changes against the previous audit (a `users_audit` row
    in `action_log`, written when the rights changed).

    The last active admin is never deactivated: that would lock everyone out. The admins are
    counted with their rows locked (`active_admins`), before the users are read, as the API
    does when it demotes or deactivates one: the check and an admin's change at the same time
    (the two admins left, one idle, the other being demoted) must not both go ahead.
    """
    cutoff = now - inactive_after
    admins = active_admins(session, lock=True)
    users = list_users(session)
    deactivated = []
    for user in users:
        seen = user.last_login or user.created_at
        if not user.active or seen >= cutoff:
            continue
        if user.role == "admin":
            if admins <= 1:
                continue
            admins -= 1
        user.active = False
        deactivated.append(user.username)
    snapshot = {u.username: {"role": u.role, "active": u.active} for u in users}
    previous = latest_note(session, USER_AUDIT)
    changes = _diff(previous or {}, snapshot) if previous is not None else []
    if snapshot != previous:
        # Only changes are recorded: a daily check of unchanged rights would add a row a day.
        add_note(session, now, "user_check", USER_AUDIT, snapshot)
    return UserCheck(deactivated, changes)


def _diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changes = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if new is None:
            changes.append(f"{name}: removed")
        elif old is None:
            changes.append(f"{name}: added as {new['role']}")
        elif old != new:
            parts = [
                f"{k} {old.get(k)} -> {new[k]}" for k in ("role", "active") if old.get(k) != new[k]
            ]
            changes.append(f"{name}: " + ", ".join(parts))
    return changes


# --- logs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationResult:
    """Files rotated (compressed copies made) and old archives deleted."""

    rotated: list[Path]
    deleted: list[Path]


_STAMP = "%Y%m%dT%H%M%SZ"


def _last_rotation(log_file: Path) -> datetime | None:
    """When `log_file` was last rotated, from the stamps of its archives."""
    stamps = []
    for archive in log_file.parent.glob(f"{log_file.name}.*.gz"):
        try:
            stamps.append(datetime.strptime(archive.name.split(".")[-2], _STAMP))
        except ValueError:
            continue
    return max(stamps).replace(tzinfo=UTC) if stamps else None


def rotate_logs(
    directory: Path,
    now: datetime,
    *,
    max_bytes: int,
    keep: timedelta,
    every: timedelta | None = None,
) -> RotationResult:
    """Rotate every ``*.log`` in `directory` larger than `max_bytes` - or, with `every`, any
    non-empty one not rotated for that long (time rotation) - and drop archives older than
    `keep`.

    Rotation is copy-then-truncate: the live file is compressed to
    ``<name>.<UTC time>.gz`` and truncated in place, so processes holding it open keep writing
    to the same file instead of to a renamed one.
    """
    rotated: list[Path] = []
    deleted: list[Path] = []
    if not directory.is_dir():
        return RotationResult(rotated, deleted)
    stamp = now.strftime(_STAMP)
    for log_file in sorted(directory.glob("*.log")):
        size = log_file.stat().st_size
        due = False
        if every is not None and size > 0:
            last = _last_rotation(log_file)
            due = last is None or now - last >= every
        if size <= max_bytes and not due:
            continue
        archive = log_file.with_name(f"{log_file.name}.{stamp}.gz")
        with log_file.open("rb") as src, gzip.open(archive, "wb") as dst:
            shutil.copyfileobj(src, dst)
        with log_file.open("r+b") as live:
            live.truncate(0)
        rotated.append(archive)
    oldest = (now - keep).timestamp()
    for archive in sorted(directory.glob("*.log.*.gz")):
        if archive.stat().st_mtime < oldest:
            archive.unlink()
            deleted.append(archive)
    return RotationResult(rotated, deleted)


# --- config sync ---------------------------------------------------------------------------------

# What it returns is ignored (`sigma up` returns the future of the change it scheduled).
ApplyFn = Callable[[str, str, dict[str, Any] | None, int], object]
SettingFn = Callable[[str, Any, int], None]


def _ignore_setting(key: str, value: Any, version: int) -> None:
    """Default: settings are not followed (an instance that reads none at run time)."""


@dataclass
class ConfigSync:
    """Keeps a running instance's strategy parameters and settings equal to the database's.

    The database is the source of truth; each (strategy, symbol) and each stored setting
    carries a version that grows with every change, so an instance applies a change only when
    its version is newer than the one it applied last - concurrent edits resolve to the highest
    version everywhere (and an edit made against an outdated version is refused when it is
    written: `VersionConflict`). `apply` receives (strategy, symbol, params or None when
    deactivated, version); `apply_setting` (key, value, version).
    """

    apply: ApplyFn
    apply_setting: SettingFn = _ignore_setting
    seen: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)
    seen_settings: dict[str, int] = field(default_factory=dict)

    def sync_settings(self, session: Session) -> list[tuple[str, int]]:
        """Apply every stored setting whose version is newer; returns (key, version) applied.
        A value this instance refuses (logged) is not retried until its next version."""
        applied = []
        for row in get_settings(session).values():
            if row.version <= self.seen_settings.get(row.key, 0):
                continue
            self.seen_settings[row.key] = row.version
            try:
                self.apply_setting(row.key, row.value, row.version)
            except ValueError as exc:
                log.warning("setting %s v%d not applied: %s", row.key, row.version, exc)
                continue
            applied.append((row.key, row.version))
        return applied

    def sync(self, session: Session) -> list[tuple[str, str, int]]:
        """Apply every newer version (or a deactivation); returns what was applied."""
        applied = []
        for row in all_sets(session):
            key = (row.strategy, row.symbol)
            version, active = self.seen.get(key, (0, False))
            # Deactivating keeps the version, so the active flag is part of the state compared.
            if row.version < version or (row.version, row.active) == (version, active):
                continue
            params = dict(row.params) if row.active else None
            self.apply(row.strategy, row.symbol, params, row.version)
            self.seen[key] = (row.version, row.active)
            applied.append((row.strategy, row.symbol, row.version))
        return applied
