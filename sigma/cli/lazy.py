"""Subcommands imported when they are run, not whenever `sigma` starts.

Importing every command's module (the live runtime, the API, venue clients, scikit-learn
through the ML gate) took longer than a 100k-bar backtest itself, and every command paid it.
A `LazyGroup` names each such command's home as ``"module:attribute"`` (a typer function or
a `typer.Typer` of subcommands) and builds it on first use; `sigma --help` still lists them
all (it imports them to show their help).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command, get_group


def load_command(name: str, target: str) -> Any:
    """The click command `target` ("module:attribute") names, called `name`."""
    module, attribute = target.split(":")
    found = getattr(importlib.import_module(module), attribute)
    if isinstance(found, typer.Typer):
        group = get_group(found)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)
    single.command(name=name)(found)
    return get_command(single)


def lazy_group(commands: Mapping[str, str]) -> type[TyperGroup]:
    """A typer group class that adds `commands` (name -> "module:attribute") on first use."""

    class LazyGroup(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            eager = super().list_commands(ctx)
            return [*eager, *(name for name in commands if name not in eager)]

        def get_command(self, ctx: Any, cmd_name: str) -> Any:
            if cmd_name in commands and cmd_name not in self.commands:
                self.commands[cmd_name] = load_command(cmd_name, commands[cmd_name])
            return super().get_command(ctx, cmd_name)

    return LazyGroup
