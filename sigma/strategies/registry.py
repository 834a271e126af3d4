"""Finding strategies: built-ins, the `sigma.strategies` entry-point group, plugin folders.

A plugin that fails to import, or exposes something that is not a Strategy, is reported by name
in `StrategyRegistry.errors` and logged, and the rest still load.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from sigma.strategies.base import Strategy
from sigma.strategies.builtin import BUILTIN_STRATEGIES

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sigma.strategies"


@dataclass(slots=True)
class StrategyRegistry:
    """Strategy classes by name, with the load problems met on the way."""

    classes: dict[str, type[Strategy]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, cls: Any, origin: str) -> None:
        """Register a Strategy subclass; anything else is recorded as an error of `origin`."""
        if not (inspect.isclass(cls) and issubclass(cls, Strategy) and cls is not Strategy):
            self._error(origin, f"{cls!r} is not a Strategy subclass")
            return
        if not cls.name:
            self._error(origin, f"{cls.__name__} has no `name`")
            return
        if cls.name in self.classes and self.classes[cls.name] is not cls:
            self._error(origin, f"name {cls.name!r} is already taken; plugin skipped")
            return
        self.classes[cls.name] = cls

    def _error(self, origin: str, message: str) -> None:
        log.warning("strategy plugin %s skipped: %s", origin, message)
        self.errors[origin] = message

    def get(self, name: str) -> type[Strategy]:
        """The class registered as `name`; KeyError listing the known names otherwise."""
        try:
            return self.classes[name]
        except KeyError:
            known = ", ".join(sorted(self.classes))
            raise KeyError(f"unknown strategy {name!r}; known: {known}") from None

    def create(self, name: str, **params: Any) -> Strategy:
        """Instantiate strategy `name` with parameter overrides."""
        return self.get(name)(**params)

    @property
    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self.classes)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Register every strategy advertised by installed packages."""
        for ep in entry_points(group=group):
            origin = f"entry point {ep.name} ({ep.value})"
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                self._error(origin, f"{type(exc).__name__}: {exc}")
                continue
            self.add(loaded, origin)

    def load_folder(self, folder: Path) -> None:
        """Register Strategy subclasses defined in the `*.py` files of `folder`."""
        if not folder.is_dir():
            self._error(str(folder), "strategy folder does not exist")
            return
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            module_name = _module_name(path)
            try:
                module = import_plugin_file(path)
            except Exception as exc:  # a broken plugin must not stop the others
                self._error(str(path), f"{type(exc).__name__}: {exc}")
                continue
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, Strategy) and obj.__module__ == module_name and obj.name:
                    self.add(obj, str(path))


_PLUGIN_PREFIX = "sigma_plugin_"


def _module_name(path: Path) -> str:
    return f"{_PLUGIN_PREFIX}{path.stem}"


def import_plugin_file(path: Path) -> ModuleType:
    """Import a plugin folder's `*.py` file as module ``sigma_plugin_<stem>`` (registered in
    `sys.modules`, so its classes pickle by reference); its error when it fails."""
    module_name = _module_name(path)
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


@dataclass(frozen=True, slots=True)
class PluginRef:
    """A strategy class of a plugin file, by file and class name: a spawned process cannot
    import ``sigma_plugin_*`` modules by name, so it loads the file again (`resolve`)."""

    path: str
    name: str


def portable(cls: type[Strategy]) -> type[Strategy] | PluginRef:
    """What another process can turn back into `cls` (`resolve`): the class itself when its
    module is importable by name, a `PluginRef` when it came from a plugin folder."""
    module = sys.modules.get(cls.__module__)
    origin = getattr(module, "__file__", None)
    if cls.__module__.startswith(_PLUGIN_PREFIX) and origin:
        return PluginRef(origin, cls.__qualname__)
    return cls


def resolve(ref: type[Strategy] | PluginRef) -> type[Strategy]:
    """The class `portable` described, loading its plugin file when this process has not."""
    if not isinstance(ref, PluginRef):
        return ref
    path = Path(ref.path)
    module = sys.modules.get(_module_name(path)) or import_plugin_file(path)
    cls: type[Strategy] = getattr(module, ref.name)
    return cls


def load_strategies(
    folders: Iterable[Path] = (), *, entry_points_group: bool = True
) -> StrategyRegistry:
    """Built-ins, then entry points, then each folder (SIGMA_STRATEGY_PATHS)."""
    registry = StrategyRegistry()
    for cls in BUILTIN_STRATEGIES:
        registry.add(cls, "builtin")
    if entry_points_group:
        registry.load_entry_points()
    for folder in folders:
        registry.load_folder(Path(folder))
    return registry
