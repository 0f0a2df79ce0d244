"""``bastion apps``: the operator's view of apps (tenants): list, show, rename, disable,
enable. Each change is recorded in the audit log as the operator's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from bastion.app import audit_log, database
from bastion.chat.apps import AppAdmin, app_view
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.errors import NotFound, ValidationFailed
from bastion.core.settings import Settings
from bastion.observe.events import LogSink, SecurityEvents
from bastion.store.records import AppRecord

apps_cli = typer.Typer(
    help="Apps (tenants): list, show, rename, disable, enable.", no_args_is_help=True
)
_err = Console(stderr=True)
T = TypeVar("T")

AppId = Annotated[str, typer.Argument(help="The app id, app_…")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _run(settings: Settings, work: Callable[[AppAdmin], Awaitable[T]]) -> T:
    """Run ``work`` with the apps' admin over a fresh database; refusals exit 1 or 2."""

    async def run() -> T:
        db = database(settings)
        audit = audit_log(settings, db)
        # The audit log appends each change's record inside the change's transaction.
        db.add_hook(audit)
        events = SecurityEvents(SystemClock(), [LogSink(), audit])
        try:
            return await work(AppAdmin(db, SystemClock(), events))
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except NotFound as exc:
        _err.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from None
    except ValidationFailed as exc:
        for error in exc.errors:
            _err.print(f"[red]{error.field}: {error.message}[/red]")
        raise typer.Exit(2) from None


def _print(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(view))
        return
    for name, value in view.items():
        typer.echo(f"{name}: {value}")


@apps_cli.command("list")
def list_command(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Print every app: id, name, status and creation time."""
    settings = load_settings_or_exit(data_dir, logs=True)
    found: list[AppRecord] = _run(settings, lambda admin: admin.list())
    views = [app_view(app) for app in found]
    if as_json:
        typer.echo(json.dumps(views))
        return
    # One line per app, the name last: easy to read, and to grep or cut in scripts.
    for view in views:
        typer.echo(f"{view['id']}  {view['status']:<8}  {view['created_at']}  {view['name']}")


@apps_cli.command("show")
def show_command(app_id: AppId, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Print one app with how many users and OAuth clients it has."""
    settings = load_settings_or_exit(data_dir, logs=True)
    details = _run(settings, lambda admin: admin.show(app_id))
    view = {**app_view(details.app), "users": details.users, "clients": details.clients}
    _print(view, as_json)


@apps_cli.command("rename")
def rename_command(
    app_id: AppId,
    name: Annotated[str, typer.Option("--name", help="The new name (1 to 200 characters).")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Give an app a new name."""
    settings = load_settings_or_exit(data_dir, logs=True)
    _print(app_view(_run(settings, lambda admin: admin.rename(app_id, name))), as_json)


@apps_cli.command("disable")
def disable_command(app_id: AppId, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Disable an app: its clients get no tokens, every token it holds is refused and its
    sockets close (running servers apply it within resource_server.revocation_refresh_seconds).
    """
    settings = load_settings_or_exit(data_dir, logs=True)
    _print(app_view(_run(settings, lambda admin: admin.disable(app_id))), as_json)


@apps_cli.command("enable")
def enable_command(app_id: AppId, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Enable a disabled app: its clients may get tokens again (tokens issued before it was
    disabled stay refused)."""
    settings = load_settings_or_exit(data_dir, logs=True)
    _print(app_view(_run(settings, lambda admin: admin.enable(app_id))), as_json)
