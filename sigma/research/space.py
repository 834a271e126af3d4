"""A strategy's search space: the ranges of its declared `Param` bounds as dimensions, the
values a grid tries in them, and the first parameters within them the strategy accepts.

    space = search_space(SmaCross, {"fast": (5, 20)}, max_int=100)
    first_valid(SmaCross, space)     # ValueError when the bounds contradict the strategy
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sigma.strategies.base import Strategy


@dataclass(frozen=True, slots=True)
class Dimension:
    """One searchable parameter: an int or float range (inclusive) or a bool choice."""

    name: str
    kind: Literal["int", "float", "bool"]
    low: float = 0.0
    high: float = 1.0
    step: float | None = None

    def contains(self, value: Any) -> bool:
        """True when `value` lies in the range (any bool for a bool choice)."""
        return self.kind == "bool" or self.low <= float(value) <= self.high

    def grid(self, points: int, default: Any) -> list[Any]:
        """`points` evenly spaced values over the range (bools: both), plus the default when
        it lies in the range."""
        if self.kind == "bool":
            return [True, False]
        raw = np.linspace(self.low, self.high, max(points, 2))
        values: list[Any] = (
            [round(float(v)) for v in raw] if self.kind == "int" else [float(v) for v in raw]
        )
        if self.contains(default):
            values.append(int(default) if self.kind == "int" else float(default))
        return sorted(set(values))


def search_space(
    strategy: type[Strategy],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    max_int: int | None = None,
) -> dict[str, Dimension]:
    """The strategy's tunable parameters as dimensions.

    Numeric parameters need declared `low`/`high`; those without bounds (and str parameters)
    keep their default. `bounds` narrows a range; it must lie inside the declared bounds.
    `max_int` caps int ranges (e.g. at half the training window: a look-back longer than that
    cannot be validated).
    """
    bounds = dict(bounds or {})
    specs = strategy.param_specs()
    unknown = sorted(set(bounds) - set(specs))
    if unknown:
        raise ValueError(f"{strategy.name} has no parameter(s) {', '.join(unknown)}")
    space: dict[str, Dimension] = {}
    for name, spec in specs.items():
        kind = spec.kind
        if kind is bool:
            space[name] = Dimension(name, "bool")
            continue
        if kind not in (int, float) or spec.low is None or spec.high is None:
            continue
        low, high = float(spec.low), float(spec.high)
        if name in bounds:
            new_low, new_high = bounds[name]
            if new_low > new_high:
                raise ValueError(f"bounds for {name!r} go down: {new_low} > {new_high}")
            if new_low < low or new_high > high or new_low > new_high:
                raise ValueError(
                    f"bounds for {name!r} must lie within [{spec.low}, {spec.high}], "
                    f"got [{new_low}, {new_high}]"
                )
            low, high = float(new_low), float(new_high)
        if kind is int and max_int is not None:
            high = max(low, min(high, float(max_int)))
        space[name] = Dimension(name, "int" if kind is int else "float", low, high, spec.step)
    return space


def default_params(strategy: type[Strategy]) -> dict[str, Any]:
    """The declared default of every parameter."""
    return {name: spec.default for name, spec in strategy.param_specs().items()}


_PROBES = 1000
"""Parameter sets `first_valid` tries before it calls a search space hopeless."""


def _probe_values(dim: Dimension) -> list[Any]:
    if dim.kind == "bool":
        return [True, False]
    values = [dim.low, (dim.low + dim.high) / 2, dim.high]
    return [int(v) for v in values] if dim.kind == "int" else values


def _clamped(dim: Dimension, value: Any) -> Any:
    if dim.kind == "bool":
        return value
    inside = min(max(float(value), dim.low), dim.high)
    return int(inside) if dim.kind == "int" else inside


def first_valid(strategy: type[Strategy], space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Parameters within `space` that the strategy accepts: its defaults moved into the
    ranges, else the first of the ranges' ends and middles that passes its checks.

    ValueError when none does: the bounds contradict the strategy's own rules (``fast`` bound
    above every ``slow``), and a search would only score invalid sets."""
    defaults = default_params(strategy)
    moved = {name: _clamped(dim, defaults[name]) for name, dim in space.items()}
    grid = (
        dict(zip(space, values, strict=True))
        for values in itertools.product(*(_probe_values(d) for d in space.values()))
    )
    problem = ""
    for candidate in itertools.islice(itertools.chain([moved], grid), _PROBES):
        try:
            strategy(**{**defaults, **candidate})
        except ValueError as exc:
            problem = str(exc)
            continue
        return candidate
    raise ValueError(f"no parameters within the bounds are valid for {strategy.name}: {problem}")


def grid_values(
    strategy: type[Strategy], space: Mapping[str, Dimension], points: int
) -> dict[str, list[Any]]:
    """The values a grid search tries per parameter: `points` evenly spaced over each range
    (both for a bool) and the default."""
    defaults = default_params(strategy)
    return {name: dim.grid(points, defaults[name]) for name, dim in space.items()}


def grid_size(space: Mapping[str, Dimension], defaults: Mapping[str, Any], points: int) -> int:
    """How many parameter sets a grid of `points` per range holds (see `Dimension.grid`)."""
    return math.prod(len(d.grid(points, defaults[n])) for n, d in space.items())


__all__ = [
    "Dimension",
    "default_params",
    "first_valid",
    "grid_size",
    "grid_values",
    "search_space",
]
