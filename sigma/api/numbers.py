"""Whole numbers in query strings and paths, in ASCII digits only.

Python's int() (and pydantic's lax mode with it) reads "1_0" as 10, "+5", " 5" and "5 " as 5,
and any script's digits ("５", "٥") as theirs: a query string a proxy, a log search or a
cache key reads one way meant another to the API. `ASCII_DIGITS` refuses them with a 422 naming
the parameter. It goes last in the parameter's annotation, after its bounds:
``Annotated[int, Query(ge=1, le=1000), ASCII_DIGITS]`` (before them, pydantic could not put the
bounds into the integer's schema, and the OpenAPI document would lose its minimum and maximum).
"""

from __future__ import annotations

import re

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

MAX_DIGITS = 18
"""Enough for any bound a route sets, and short of int()'s 4300-digit refusal."""
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")


def _ascii_digits(value: object) -> object:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError(
            "whole_number",
            "Input should be a whole number of 1-{digits} ASCII digits, got {text}",
            {"digits": MAX_DIGITS, "text": repr(value[:40])},
        )
    return value


ASCII_DIGITS = BeforeValidator(_ascii_digits)
"""A whole number sent as text (a query or path parameter): ASCII digits only, no sign, space,
underscore or other script's digits (no parameter takes a negative number)."""
