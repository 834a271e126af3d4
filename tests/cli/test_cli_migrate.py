"""`sigma migrate` on a database it cannot use: one line saying which and why, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.private_servers import free_port


def migrate(database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGMA_DATABASE_URL": database_url, "SIGMA_VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "sigma.cli.main", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_file_that_is_no_database_is_one_line_naming_it(tmp_path: Path) -> None:
    damaged = tmp_path / "sigma.db"
    damaged.write_bytes(bytes(range(256)) * 32)  # random-looking bytes, no SQLite header
    done = migrate(f"sqlite:///{damaged}", tmp_path)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line[:4].isdigit()]  # no logs
    assert errors == [
        f"error: SQLite database {damaged}: file is not a database (SQLITE_NOTADB); restore it "
        "from a backup, or move it aside to start an empty one"
    ], done.stderr
    assert damaged.read_bytes() == bytes(range(256)) * 32  # left as it was


def test_a_server_that_does_not_answer_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"postgresql://sigma@127.0.0.1:{free_port()}/nowhere"
    done = migrate(url, tmp_path)
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: the database postgresql+psycopg://sigma@127.0.0.1:"), line
    assert "/nowhere is unavailable: OperationalError: connection failed" in line
