"""`sigma up` and the single-component commands (`worker`, `bot`, `recorder`, `sim`), and the
kill switch."""

from __future__ import annotations

import asyncio
import getpass
import signal
from typing import Annotated

import typer

from sigma.api.server import serve_embedded
from sigma.bootstrap import App, bootstrap
from sigma.runtime.event_loop import serve
from sigma.runtime.services import (
    COMPONENTS,
    KNOWN_COMPONENTS,
    Services,
    StartupError,
    load_compiled,
    run_services,
)
from sigma.store.control import KILL_SWITCH, get_flag, set_flag


def _serve(components: tuple[str, ...] | list[str], announce: bool = True) -> None:
    """Run `components` until Ctrl-C or SIGTERM, then stop in order."""
    app = bootstrap()
    load_compiled(components)  # before `serve` freezes what start-up loaded

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def ready(system: Services) -> None:
            if announce:
                _announce(app, system)

        await run_services(app, components, serve_api=serve_embedded, stop=stop, on_ready=ready)

    try:
        serve(main)
    except StartupError as exc:
        typer.echo(f"sigma: not started: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        app.close()
    typer.echo("stopped cleanly")


def _announce(app: App, system: Services) -> None:
    s = app.settings
    typer.echo(f"SIGMA {s.trading.mode} on {s.database.database_url}")
    typer.echo(
        f"  bus: {'redis' if s.bus.redis_url else 'in-process'} pub/sub, "
        f"{'rabbitmq' if s.bus.amqp_url else 'in-process'} order queue"
    )
    if system.market is not None:
        typer.echo(f"  market: built-in synthetic feed on {system.market.url}")
    if system.venue is not None:
        typer.echo(
            f"  venue: local exchange ({', '.join(system.venue.venues)}) on {system.venue.http_url}"
        )
    if system.bot is not None:
        typer.echo(
            f"  bot: {', '.join(sorted({n for n, _ in system.bot.engines}))} "
            f"on {', '.join(s.trading.symbols)}"
        )
    if system.api_url is not None:
        typer.echo(f"  dashboard and API: {system.api_url}")
    typer.echo("Ctrl-C stops")


def up(
    only: Annotated[
        str | None,
        typer.Option("--only", help=f"comma-separated subset of: {', '.join(KNOWN_COMPONENTS)}"),
    ] = None,
) -> None:
    """Start SIGMA: market feed, price client, bot, order worker, simulation and API."""
    components = [c.strip() for c in only.split(",")] if only else list(COMPONENTS)
    unknown = set(components) - set(KNOWN_COMPONENTS)
    if unknown:
        raise typer.BadParameter(
            f"unknown component(s): {', '.join(sorted(unknown))}", param_hint="--only"
        )
    if "api" in components:
        _bootstrap_admin()
    _serve(components)


def _bootstrap_admin() -> None:
    try:
        from sigma.api.users import ensure_admin
    except ImportError:  # the API is not part of this installation
        return
    app = bootstrap()
    try:
        password = ensure_admin(app.sessions, app.settings.api)
    finally:
        app.close()
    if password:
        typer.echo(f"created user 'admin' with password: {password}  (shown once)")


def worker() -> None:
    """Run only the order worker (several can run side by side on RabbitMQ)."""
    _serve(["worker"])


def bot() -> None:
    """Run the price client and the trading bot (SIGMA_FEED_URL names the market)."""
    _serve(["prices", "bot"])


def recorder() -> None:
    """Run only the recorder: ticks and bars of `price_update` into the database (with Redis,
    beside `sigma bot` in another process)."""
    _serve(["recorder"])


def sim() -> None:
    """Run only the paper simulation of every configured strategy on `price_update`."""
    _serve(["sim"])


def kill_switch(
    state: Annotated[str, typer.Argument(help="on, off or status")] = "status",
    reason: Annotated[str, typer.Option("--reason", help="why (recorded)")] = "",
) -> None:
    """Halt or resume trading in every SIGMA process (shared through the database)."""
    if state not in ("on", "off", "status"):
        raise typer.BadParameter("must be on, off or status", param_hint="STATE")
    app = bootstrap()
    try:
        with app.sessions.begin() as session:
            if state != "status":
                set_flag(
                    session,
                    KILL_SWITCH,
                    state == "on",
                    reason=reason,
                    changed_by=f"cli:{getpass.getuser()}",
                )
            flag = get_flag(session, KILL_SWITCH)
    finally:
        app.close()
    when = flag.updated_at.isoformat() if flag.updated_at else "never set"
    typer.echo(
        f"kill switch {'ON' if flag.enabled else 'off'} "
        f"({when}; by {flag.changed_by or '-'}; {flag.reason or 'no reason'})"
    )
