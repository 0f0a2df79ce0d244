"""``bastion roles``: assign app roles as the operator (to make an app's first admin)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from bastion.app import database
from bastion.chat.app_roles import grant_as_operator
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.errors import BastionError
from bastion.core.ids import Kind, is_id

roles_cli = typer.Typer(
    help="Assign app roles (admin, moderator, auditor...).", no_args_is_help=True
)
_console = Console(stderr=True)


@roles_cli.command("grant")
def grant(
    app_id: Annotated[str, typer.Option("--app", help="The app (app_...).")],
    user_id: Annotated[str, typer.Option("--user", help="The user (usr_...).")],
    role: Annotated[list[str], typer.Option("--role", help="A role; repeat for several.")],
    data_dir: DataDir = None,
) -> None:
    """Replace a user's app roles, e.g. ``--role admin`` for the app's first admin."""
    settings = load_settings_or_exit(data_dir)
    if not is_id(Kind.APP, app_id) or not is_id(Kind.USER, user_id):
        _console.print("[red]--app and --user take an app_... and a usr_... id.[/red]")
        raise typer.Exit(2)

    async def run() -> None:
        db = database(settings)
        try:
            await grant_as_operator(db, SystemClock(), app_id, user_id, frozenset(role))
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except BastionError as exc:
        _console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    _console.print(f"{user_id} now holds: {', '.join(sorted(set(role)))}")
