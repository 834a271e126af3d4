"""The `sigma` command."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import sigma.cli.lean_pandas  # noqa: F401  (first: pandas without pyarrow)
from sigma.cli.backtest import backtest, print_plugin_errors
from sigma.cli.lazy import lazy_group

# Imported when run (sigma.cli.lazy): a backtest should not wait for the live runtime to load.
LAZY_COMMANDS = {
    "demo": "sigma.cli.demo:demo",
    "up": "sigma.cli.live:up",
    "worker": "sigma.cli.live:worker",
    "bot": "sigma.cli.live:bot",
    "sim": "sigma.cli.live:sim",
    "recorder": "sigma.cli.live:recorder",
    "feed": "sigma.feeds.ws_server:feed_command",
    "venue": "sigma.cli.venue:venue_command",
    "kill-switch": "sigma.cli.live:kill_switch",
    "api": "sigma.cli.api:api",
    "users": "sigma.cli.users:users_app",
    "jobs": "sigma.cli.jobs:jobs_app",
    "report": "sigma.cli.jobs:report_app",
    "config": "sigma.cli.jobs:config_app",
    "regime": "sigma.cli.regime:app",
    "data": "sigma.cli.data:data_app",
    "optimize": "sigma.cli.optimize:optimize",
    "scheduler": "sigma.cli.jobs:scheduler",
}

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__,
    cls=lazy_group(LAZY_COMMANDS),
)
app.command()(backtest)
console = Console()


@app.callback()
def _log_files(ctx: typer.Context) -> None:
    # Every command logs to <var>/logs/<command>.log as well as to stderr (the log rotation job
    # rotates that folder); the file handler goes when the command ends. Wrong settings are
    # left for the command itself to report.
    from sigma.config import SettingsError, load_settings
    from sigma.ops.logging import close_file_log, init_process_logging, log_file

    try:
        settings = load_settings()
    except SettingsError:
        return
    command = ctx.invoked_subcommand or "sigma"
    init_process_logging(settings.process.log_level, log_file(settings.process.var_dir, command))
    ctx.call_on_close(close_file_log)


@app.command()
def strategies(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show parameters")] = False,
) -> None:
    """List the strategies SIGMA can run, with their parameters and plugin problems."""
    from sigma.config import load_settings
    from sigma.strategies import load_strategies

    registry = load_strategies(load_settings().trading.strategy_paths)
    table = Table("strategy", "description", *(["parameters"] if verbose else []))
    for name in registry.names:
        cls = registry.get(name)
        row = [name, cls.description]
        if verbose:
            row.append(
                ", ".join(
                    f"{k}={p.default} [{p.low}..{p.high}]" for k, p in cls.param_specs().items()
                )
            )
        table.add_row(*row)
    console.print(table)
    print_plugin_errors(registry)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (also done automatically at start)."""
    from sigma.bootstrap import bootstrap
    from sigma.store.outage import DatabaseUnavailable

    application = bootstrap()
    try:
        application.open_db()  # building the engine runs the migrations
        console.print(f"database ready: {application.settings.database.database_url}")
    except DatabaseUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        application.close()


if __name__ == "__main__":  # pragma: no cover
    app()
