"""`sigma venue`: run the local exchange that speaks Binance's and Upbit's protocols."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sigma.venues.emulator.config import VenueConfig, build_config

if TYPE_CHECKING:
    from sigma.venues.emulator.server import VenueServer

__all__ = ["venue_command"]

_FAULTS = ("latency_ms", "error_5xx", "rate_limit_storm", "drop_after_accept", "clock_skew_ms")


def venue_command(
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file of venue settings")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="interface (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="TCP port (8900; 0: any)")] = None,
    protocols: Annotated[
        str | None, typer.Option("--protocols", help="binance,upbit (both by default)")
    ] = None,
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account",
            help="PROTOCOL:KEY:SECRET:ASSET=AMOUNT,... (repeatable; a demo account otherwise)",
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="synthetic, manual, a CSV/Parquet path or pg:TABLE"),
    ] = None,
    speed: Annotated[
        float | None, typer.Option("--speed", help="60: a one-minute bar per second")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="synthetic path seed")] = None,
    history_bars: Annotated[
        int | None, typer.Option("--history-bars", help="one-minute candles of history")
    ] = None,
    state_file: Annotated[
        Path | None, typer.Option("--state", help="keep orders and balances across restarts")
    ] = None,
    admin_token: Annotated[
        str | None, typer.Option("--admin-token", help="required by the /sigma/ admin routes")
    ] = None,
    max_connections: Annotated[
        int | None, typer.Option("--max-connections", help="open connections in all (512)")
    ] = None,
    max_connections_per_client: Annotated[
        int | None,
        typer.Option("--max-connections-per-client", help="open connections per address (128)"),
    ] = None,
    head_seconds: Annotated[
        float | None, typer.Option("--head-seconds", help="a request head's time limit (10)")
    ] = None,
    body_seconds: Annotated[
        float | None, typer.Option("--body-seconds", help="a request body's time limit (30)")
    ] = None,
    latency_ms: Annotated[float | None, typer.Option(help="fault: added latency")] = None,
    error_5xx: Annotated[int | None, typer.Option(help="fault: next N requests 503")] = None,
    rate_limit_storm: Annotated[int | None, typer.Option(help="fault: next N 429")] = None,
    drop_after_accept: Annotated[
        int | None, typer.Option(help="fault: next N orders accepted, reply dropped")
    ] = None,
    stale_streams: Annotated[bool, typer.Option(help="fault: market streams go quiet")] = False,
    clock_skew_ms: Annotated[int | None, typer.Option(help="fault: venue clock offset")] = None,
) -> None:
    """Run the local exchange (Binance spot and Upbit protocols) for rehearsal and tests."""
    given = dict(
        zip(
            _FAULTS,
            (latency_ms, error_5xx, rate_limit_storm, drop_after_accept, clock_skew_ms),
            strict=True,
        )
    )
    faults: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if stale_streams:
        faults["stale_streams"] = True
    try:
        config = build_config(
            config_file,
            account or [],
            protocols,
            faults,
            host=host,
            port=port,
            source=source,
            speed=speed,
            seed=seed,
            history_bars=history_bars,
            state_file=state_file,
            admin_token=admin_token,
            max_connections=max_connections,
            max_connections_per_client=max_connections_per_client,
            head_seconds=head_seconds,
            body_seconds=body_seconds,
        )
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None
    database_url = None
    if config.source.startswith("pg:"):
        from sigma.config import load_settings

        database_url = load_settings().database.database_url
    try:
        asyncio.run(_run(config, database_url))
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        return


def venue_environment(server: VenueServer, protocol: str) -> str:
    """The settings that point `sigma up` at ``protocol`` on ``server`` with its first account,
    as shell assignments (``SIGMA_VENUE=... SIGMA_EXCHANGE_CONFIG='...'``)."""
    key = next(iter(server.venues[protocol].accounts.values()))
    ccxt = {**server.ccxt_config(protocol), "apiKey": key.api_key, "secret": key.secret}
    return f"SIGMA_VENUE={protocol} SIGMA_EXCHANGE_CONFIG={shlex.quote(json.dumps(ccxt))}"


async def _run(config: VenueConfig, database_url: str | None) -> None:
    from sigma.venues.emulator.server import VenueServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = VenueServer(config, database_url=database_url)
    async with server.serve():
        typer.echo(f"sigma venue on {server.http_url} ({', '.join(server.venues)})")
        for name, venue in server.venues.items():
            keys = ", ".join(venue.accounts)
            typer.echo(f"  {name}: markets {', '.join(venue.markets)}; API keys {keys}")
        for name in server.venues:
            typer.echo(f"  to trade on {name}: {venue_environment(server, name)} sigma up")
        await stop.wait()
    typer.echo("venue stopped")
