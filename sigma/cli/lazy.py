"""Subcommands imported when they are run, not whenever `sigma` starts.

Importing every command's module (the live runtime, the API, venue clients, scikit-learn
through the ML gate) took longer than a 100k-bar backtest itself, and every command paid it.
A lazy group names each such command's home as ``"module:attribute"`` (a typer function or
a `typer.Typer` of subcommands) and builds it on first use. Its `commands` mapping lists every
name at once and loads a command when it is looked up, so `sigma --help` still shows them all
(importing them to show their help) and code that reads `group.commands[name]` is unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_command, get_group

from sigma.cli.failures import OneLineUsageErrors

Command = Any  # typer's vendored click Command; typer exports no name for it


def load_command(name: str, target: str) -> Command:
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


class LazyCommands(MutableMapping[str, Command]):
    """A group's commands: the loaded ones, then the lazy ones, each loaded when looked up."""

    def __init__(self, loaded: Mapping[str, Command], lazy: Mapping[str, str]) -> None:
        self._loaded = dict(loaded)
        self._lazy = dict(lazy)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            self._loaded[name] = load_command(name, self._lazy[name])  # KeyError: no such
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        found = self._loaded.pop(name, None) is not None
        if self._lazy.pop(name, None) is None and not found:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._loaded
        yield from (name for name in self._lazy if name not in self._loaded)

    def __len__(self) -> int:
        return len(self._loaded.keys() | self._lazy.keys())


def lazy_group(commands: Mapping[str, str]) -> type[TyperGroup]:
    """The `sigma` group class (one-line usage errors, `OneLineUsageErrors`) whose `commands`
    add `commands` (name -> "module:attribute"), each imported on first use."""

    class LazyGroup(OneLineUsageErrors):
        def __init__(self, **attrs: Any) -> None:
            super().__init__(**attrs)
            self.commands = LazyCommands(self.commands, commands)

        def list_commands(self, ctx: Any) -> list[str]:
            return list(self.commands)  # the names only: nothing is imported to list them

    return LazyGroup
