"""Strategy parameters: a default, bounds and an optimiser step, declared on the class."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Generic, TypeVar, overload

from sigma.domain.text import clip

T = TypeVar("T", int, float, Decimal, bool, str)

BOOLEAN_WORDS: dict[str, bool] = {
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
}
"""What a boolean parameter accepts as text (any case); anything else is refused, not False."""


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in BOOLEAN_WORDS:
        raise ValueError(word)
    return BOOLEAN_WORDS[word]


def _finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return not isinstance(value, float) or math.isfinite(value)


class Param(Generic[T]):
    """A tunable strategy parameter.

    Declared as a class attribute (`fast = Param(10, low=2, high=100)`); on an instance the
    attribute holds the chosen value, typed like the default. `low`/`high` are inclusive bounds
    used for validation and by the optimiser, `step` is the optimiser's grid step.
    """

    __slots__ = ("default", "doc", "high", "low", "name", "step")

    def __init__(
        self,
        default: T,
        *,
        low: float | None = None,
        high: float | None = None,
        step: float | None = None,
        doc: str = "",
    ) -> None:
        self.default: T = default
        self.low = low
        self.high = high
        self.step = step
        self.doc = doc
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Param[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Param[T] | T:
        # Instances store their value in __dict__, which wins over this (non-data)
        # descriptor; reaching here on an instance means the value was never set.
        return self if obj is None else self.default

    def __repr__(self) -> str:
        return f"Param({self.default!r}, low={self.low}, high={self.high}, step={self.step})"

    @property
    def kind(self) -> type:
        """The Python type of the parameter, taken from its default."""
        return type(self.default)

    def coerce(self, name: str, value: Any) -> Any:
        """Convert `value` (possibly a CLI string) to this parameter's type and check bounds."""
        kind = self.kind
        try:
            if isinstance(value, bool) and kind is not bool:
                # JSON `true` would otherwise pass as 1 (bool is an int to Python): a client
                # that sent a flag for a period sent the wrong thing.
                raise ValueError
            if kind is bool:
                converted: Any = _boolean(value)
            elif kind is int:
                as_float = float(value)
                if not as_float.is_integer():
                    raise ValueError
                converted = int(as_float)
            elif kind is Decimal:
                converted = Decimal(str(value))
            else:
                converted = kind(value)
        except (TypeError, ValueError, ArithmeticError):
            expected = f"one of {', '.join(BOOLEAN_WORDS)}" if kind is bool else kind.__name__
            shown = clip(repr(value))
            raise ValueError(f"parameter {name!r} must be {expected}, got {shown}") from None
        if not _finite(converted):
            raise ValueError(f"parameter {name!r} must be a finite number, got {converted}")
        if isinstance(converted, int | float | Decimal) and not isinstance(converted, bool):
            if self.low is not None and converted < self.low:
                raise ValueError(f"parameter {name!r}={converted} is below its minimum {self.low}")
            if self.high is not None and converted > self.high:
                raise ValueError(f"parameter {name!r}={converted} is above its maximum {self.high}")
        return converted
