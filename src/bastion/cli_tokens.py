"""``bastion tokens``: incident response from the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from bastion.app import database
from bastion.chat.revocations import cutoff_seconds
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import rfc3339
from bastion.core.ids import Kind, is_id
from bastion.core.settings import Settings
from bastion.store.repos import cutoffs as repo
from bastion.store.repos import users as users_repo

tokens_cli = typer.Typer(help="Revoke access tokens (incident response).", no_args_is_help=True)


def _moment(value: str | None) -> datetime:
    now = datetime.now(UTC)
    if value is None:
        return now
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("use an RFC 3339 time such as 2026-11-28T17:00:00Z") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter("the time needs a zone (Z or +hh:mm)")
    if moment > now:
        raise typer.BadParameter("the time must not be in the future")
    return moment


async def _revoke(settings: Settings, app_id: str, user_id: str | None, before: datetime) -> str:
    db = database(settings)
    try:
        async with db.write() as conn:
            if not await repo.app_exists(conn, app_id):
                raise typer.BadParameter(f"no app {app_id}")
            if user_id is not None and await users_repo.get_user(conn, app_id, user_id) is None:
                raise typer.BadParameter(f"no user {user_id} in app {app_id}")
            now = datetime.now(UTC)
            stored = await repo.raise_cutoff(conn, app_id, user_id or repo.WHOLE_APP, before, now)
    finally:
        await db.close()
    return rfc3339(datetime.fromtimestamp(cutoff_seconds(stored), UTC))


@tokens_cli.command("revoke-before")
def revoke_before(
    app_id: Annotated[str, typer.Option("--app", help="The app (tenant) id, app_…")],
    user_id: Annotated[
        str | None, typer.Option("--user", help="Only this user's tokens (usr_…).")
    ] = None,
    before: Annotated[
        str | None, typer.Option("--before", help="RFC 3339 time (default: now).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Refuse every token of the app, or of one user, issued before a time.

    Running servers apply it within resource_server.revocation_refresh_seconds.
    """
    settings = load_settings_or_exit(data_dir)
    if not is_id(Kind.APP, app_id) or (user_id is not None and not is_id(Kind.USER, user_id)):
        raise typer.BadParameter("--app takes an app_… id and --user a usr_… id")
    cutoff = asyncio.run(_revoke(settings, app_id, user_id, _moment(before)))
    typer.echo(json.dumps({"app_id": app_id, "user_id": user_id, "issued_before": cutoff}))
