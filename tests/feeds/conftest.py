"""Fixtures for the feeds tests: small files written on the fly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def csv_file(tmp_path: Path) -> Callable[..., str]:
    """Write ``text`` (str or bytes) to a CSV file in tmp_path and return its path."""

    def write(text: str | bytes, name: str = "x.csv") -> str:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return str(path)

    return write
