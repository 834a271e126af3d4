"""Subcommands load when run: `sigma backtest` does not import the live runtime or the ML
stack, and every command is still listed and runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from sigma.cli.lazy import LazyCommands, lazy_group, load_command
from sigma.cli.main import LAZY_COMMANDS, app

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
