"""What a command prints when it cannot go on: one line on stderr saying what is wrong and
where, and a non-zero exit status; the traceback only when ``--debug`` asks for it.

Exit status 2 is a value the command cannot use (an option, a data file, a strategy's
parameters, a strategy that raised during the run); commands that talk to outside systems
keep 1 for those failing (see `sigma data`).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from sigma.domain.text import clip
from sigma.engine.engine import StrategyFailed

BAD_VALUE = 2
"""Exit status of a value the command cannot use."""

MAX_MESSAGE_CHARS = 500

Debug = Annotated[bool, typer.Option("--debug", help="on an error, show its traceback as well")]


class BadValue(ValueError):
    """An option's value a command cannot use: ``--commission: must be >= 0, got -0.1``."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")


EXPECTED: tuple[type[Exception], ...] = (ValueError, StrategyFailed)
"""What a bad value raises (BadValue and DataError are ValueErrors); anything else is a bug
and keeps its traceback."""


def one_line(exc: BaseException) -> str:
    """The exception as one line of at most `MAX_MESSAGE_CHARS` characters."""
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return clip(text, MAX_MESSAGE_CHARS)


@contextmanager
def one_line_errors(
    *, debug: bool = False, code: int = BAD_VALUE, expected: tuple[type[Exception], ...] = EXPECTED
) -> Iterator[None]:
    """Turn the `expected` exceptions raised inside into one line on stderr and exit `code`
    (with the traceback first when `debug`)."""
    try:
        yield
    except expected as exc:
        if debug:
            typer.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
        typer.echo(f"error: {one_line(exc)}", err=True)
        raise typer.Exit(code) from None
