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
from typing import Annotated, Any

import typer

# typer carries its own copy of click (`typer._click`): its exceptions are not click's.
from typer._click import exceptions as click_errors
from typer._click.core import Context
from typer.core import TyperGroup

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


def _given(args: list[str], opts: list[str]) -> str | None:
    """The value the command line gave one of `opts` (``--trials abc``, ``--trials=abc``)."""
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in opts:
            return value if eq else (args[i + 1] if i + 1 < len(args) else None)
    return None


def usage_line(exc: click_errors.UsageError, args: list[str]) -> str:
    """A usage error of click's own (a value that is not of the option's type, an unknown
    option) as one line naming the option and the value given (found in `args`, the command
    line): ``--trials: input should be a valid integer, got 'abc'``."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_errors.BadParameter) and param is not None:
        option = param.param_type_name == "option"
        name = max(param.opts, key=len) if option else param.human_readable_name
        reason = exc.format_message().split(": ", 1)[-1].removeprefix("Value error, ")
        reason = reason.rstrip(".")
        value = _given(args, param.opts) if option else None
        got = "" if value is None or repr(value) in reason else f", got {clip(repr(value))}"
        return one_line(ValueError(f"{name}: {reason[:1].lower()}{reason[1:]}{got}"))
    where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
    return one_line(ValueError(f"{exc.format_message().rstrip('.')}{where}"))


class OneLineUsageErrors(TyperGroup):
    """The `sigma` command group: click's own usage errors end in one line on stderr and exit
    status 2, as every other bad value does, instead of the multi-line usage box. A group
    called without a command still shows its help."""

    def invoke(self, ctx: Context) -> Any:
        # The group hands its arguments to the command (and forgets them): keep them first.
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except click_errors.NoArgsIsHelpError:
            raise
        except click_errors.UsageError as exc:
            typer.echo(f"error: {usage_line(exc, args)}", err=True)
            raise typer.Exit(BAD_VALUE) from None
