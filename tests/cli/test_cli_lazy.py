"""Subcommands load when run: `sigma backtest` does not import the live runtime or the ML
stack, and every command is still listed and runs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from sigma.cli.lazy import LazyCommands, lazy_group, load_command
from sigma.cli.main import LAZY_COMMANDS, app
from sigma.feeds.synthetic import generate_bars, write_csv

runner = CliRunner()


def test_importing_the_command_leaves_the_heavy_modules_alone() -> None:
    probe = (
        "import sys, sigma.cli.main; "
        "print(sorted(m for m in ('sigma.cli.live', 'sigma.app', 'sklearn', 'ccxt') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# Runs `sigma backtest` as the command does (a fresh process) and names the libraries of
# _LIBRARIES it has loaded by the end.
_RUN_AND_LIST = """
import sys
from sigma.cli.main import app
app(sys.argv[1:], standalone_mode=False)
print(sorted(m for m in ('pyarrow', 'sqlalchemy', 'alembic') if m in sys.modules))
"""


def _backtest_loads(tmp_path: Path, *args: str) -> list[str]:
    frame, _ = generate_bars(500, seed=3, freq="1h")
    write_csv(frame, tmp_path / "bars.csv")
    env = {
        **os.environ,
        "SIGMA_VAR_DIR": str(tmp_path / "var"),
        "SIGMA_DATABASE_URL": f"sqlite:///{tmp_path / 'sigma.db'}",
    }
    command = ["backtest", "--data", str(tmp_path / "bars.csv"), "--out", str(tmp_path / "r")]
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_LIST, *command, *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return list(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_a_backtest_loads_pyarrow_for_parquet_and_sqlalchemy_to_store_only(
    tmp_path: Path,
) -> None:
    assert _backtest_loads(tmp_path, "--no-store") == []
    # pandas was loaded without pyarrow: a Parquet export still loads it and writes
    assert _backtest_loads(tmp_path, "--no-store", "--export", "parquet") == ["pyarrow"]
    trades = pd.read_parquet(tmp_path / "r" / "trades.parquet")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert int((~trades["is_open"]).sum()) == summary["trades"] > 0
    assert _backtest_loads(tmp_path) == ["alembic", "sqlalchemy"]


def test_commands_list_every_name_and_load_one_when_looked_up() -> None:
    commands = LazyCommands({"eager": "E"}, {"hi": f"{__name__}:hello", "eager": "x:y"})
    assert list(commands) == ["eager", "hi"] and len(commands) == 2
    assert commands["hi"].name == "hi" and commands["eager"] == "E"
    commands["new"] = "N"
    del commands["hi"]
    assert list(commands) == ["eager", "new"]
    del commands["new"]
    assert list(commands) == ["eager"]
    with pytest.raises(KeyError):
        commands["nope"]
    with pytest.raises(KeyError):
        del commands["nope"]


def test_every_lazy_command_is_listed_and_loads() -> None:
    shown = runner.invoke(app, ["--help"], terminal_width=200)
    assert shown.exit_code == 0
    for name in LAZY_COMMANDS:
        assert name in shown.output
    users = runner.invoke(app, ["users", "--help"])
    assert users.exit_code == 0 and "Manage API and dashboard users" in users.output
    assert runner.invoke(app, ["nope"]).exit_code == 2


def hello(name: str = "world") -> None:
    """Say hello."""
    typer.echo(f"hello {name}")


greetings = typer.Typer(help="Greetings.")
greetings.command()(hello)
greetings.command("bye")(hello)


def test_functions_and_typer_groups_load_under_their_names() -> None:
    command = load_command("hi", f"{__name__}:hello")
    assert command.name == "hi"
    group = load_command("greet", f"{__name__}:greetings")
    assert group.name == "greet"
    lazy = typer.Typer(cls=lazy_group({"hi": f"{__name__}:hello"}))

    @lazy.callback()
    def root() -> None:
        """An app of commands."""

    @lazy.command()
    def eager() -> None:
        """Loaded with the app."""

    listed = runner.invoke(lazy, ["--help"])
    assert "eager" in listed.output and "hi" in listed.output
    said = runner.invoke(lazy, ["hi", "--name", "sigma"])
    assert said.exit_code == 0 and said.output == "hello sigma\n"
