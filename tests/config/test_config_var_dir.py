"""`SIGMA_VAR_DIR` moves the default database; the research timeframe follows the live bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigma.config import load_settings
from sigma.config.settings import timeframe_label
from sigma.store.settings import apply_settings


def test_default_database_lives_in_the_var_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIGMA_DATABASE_URL", raising=False)
    monkeypatch.setenv("SIGMA_VAR_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings()
    assert settings.database.database_url == f"sqlite:///{tmp_path / 'elsewhere' / 'sigma.db'}"
    # Settings changed at run time keep the database.
    assert (
        apply_settings(settings, {"symbols": ["BTC"]}).database.database_url
        == settings.database.database_url
    )
    monkeypatch.setenv("SIGMA_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert load_settings().database.database_url == "postgresql+psycopg://u@h/db"


def test_research_reads_the_live_bar_size_unless_told() -> None:
    assert load_settings(bar_seconds=60).research_bars_timeframe == "1m"
    assert load_settings(bar_seconds=3600).research_bars_timeframe == "1h"
    told = load_settings(bar_seconds=60, research_timeframe="5m")
    assert told.research_bars_timeframe == "5m"


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(1, "1s"), (90, "90s"), (60, "1m"), (300, "5m"), (3600, "1h"), (7200, "2h"), (86_400, "1d")],
)
def test_timeframe_label(seconds: int, label: str) -> None:
    assert timeframe_label(seconds) == label
