"""The `sigma` command."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sigma.cli.api import api
from sigma.cli.backtest import backtest, print_plugin_errors
from sigma.cli.data import data_app
from sigma.cli.demo import demo
from sigma.cli.failures import OneLineUsageErrors
from sigma.cli.jobs import config_app, jobs_app, report_app, scheduler
from sigma.cli.live import bot, kill_switch, recorder, sim, up, worker
from sigma.cli.optimize import optimize
from sigma.cli.regime import app as regime_app
from sigma.cli.users import users_app
from sigma.cli.venue import venue_command
from sigma.feeds.ws_server import feed_command

app = typer.Typer(cls=OneLineUsageErrors, no_args_is_help=True, add_completion=False, help=__doc__)
app.command()(backtest)
app.command()(demo)
app.command()(up)
app.command()(worker)
app.command()(bot)
app.command()(sim)
app.command()(recorder)
app.command("feed")(feed_command)
app.command("venue")(venue_command)
app.command("kill-switch")(kill_switch)
app.command()(api)
app.add_typer(users_app, name="users")
app.add_typer(jobs_app, name="jobs")
app.add_typer(report_app, name="report")
app.add_typer(config_app, name="config")
app.add_typer(regime_app, name="regime")
app.add_typer(data_app, name="data")
app.command()(optimize)
app.command()(scheduler)
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

    application = bootstrap()
    try:
        application.db  # noqa: B018 - building the engine runs the migrations
        console.print(f"database ready: {application.settings.database.database_url}")
    finally:
        application.close()


if __name__ == "__main__":  # pragma: no cover
    app()
