"""`sigma api`: serve the REST API, `/ws` and the dashboard with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from sigma.bootstrap import bootstrap


def api(
    host: Annotated[str | None, typer.Option(help="bind address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: settings)")] = None,
) -> None:
    """Serve the API (dashboard at /, OpenAPI at /docs when SIGMA_API_PUBLIC_DOCS is on);
    creates `admin` on a fresh database (its password printed only when generated)."""
    # Imported here so other `sigma` commands do not load FastAPI and uvicorn at start.
    from sigma.api import api_deps, create_api, ensure_admin
    from sigma.api.server import api_server
    from sigma.runtime.event_loop import serve

    application = bootstrap()
    try:
        password = ensure_admin(application.sessions, application.settings.api)
        if password is not None:
            typer.echo(f"created user 'admin' with password: {password}  (shown once)")
        api = create_api(api_deps(application))
        server = api_server(application.settings, api, host=host, port=port)
        serve(server.serve)
    finally:
        application.close()
