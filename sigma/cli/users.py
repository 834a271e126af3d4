"""`sigma users`: manage API/dashboard users (e.g. create the first admin)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sigma.bootstrap import bootstrap
from sigma.store.db import session_scope

# sigma.api is imported inside the commands: it pulls in FastAPI, which every other `sigma`
# command would otherwise pay for at start.
users_app = typer.Typer(no_args_is_help=True, help="Manage API and dashboard users.")
console = Console()


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="username")],
    role: Annotated[str, typer.Option(help="viewer, trader or admin")] = "viewer",
    password: Annotated[
        str | None, typer.Option(help="password (prompted, hidden, when omitted)")
    ] = None,
) -> None:
    """Create a user."""
    from sigma.api.users import create_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    application = bootstrap()
    try:
        with session_scope(application.sessions) as session:
            create_user(
                session, name, password, role, rounds=application.settings.api.bcrypt_rounds
            )
    except ValueError as exc:  # also UserExistsError
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    finally:
        application.close()
    console.print(f"user {name!r} created with role {role}")


@users_app.command("list")
def list_() -> None:
    """Show every user."""
    from sigma.store.queries.users import list_users

    application = bootstrap()
    try:
        with session_scope(application.sessions) as session:
            table = Table("username", "role", "active", "last login")
            for user in list_users(session):
                last = user.last_login.isoformat() if user.last_login else "-"
                table.add_row(user.username, user.role, "yes" if user.active else "no", last)
    finally:
        application.close()
    console.print(table)
